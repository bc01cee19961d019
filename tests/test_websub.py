"""WebSub pings against a real recording hub on 127.0.0.1: the notifier, the CLI, the daemon."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from feedsvc import BuildReport, ConfigError, Settings, load_settings
from feedsvc.build.outputs import WrittenFile
from feedsvc.cli import WEBSUB_CLOSE_SECONDS
from feedsvc.service.websub import HubNotifier, feed_urls

from .conftest import Project, seed_text
from .harness import Daemon, make_site, seed_name, wait_for, write

BASE_URL = "https://news.example.org/"
FEED = BASE_URL + "atom.xml"
FEEDS = [BASE_URL + "atom.xml", BASE_URL + "rss.xml", BASE_URL + "feed.json"]


@dataclass(frozen=True)
class Ping:
    at: float
    content_type: str
    user_agent: str
    form: dict[str, list[str]]


class RecordingHub:
    """A hub that records every POST; it can fail the first N with a status, or be down."""

    def __init__(self) -> None:
        self.pings: list[Ping] = []
        self.fail_first = 0
        self.fail_status = 503
        self.retry_after: str | None = None
        self.status = 204
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with hub._lock:
                    hub.pings.append(
                        Ping(
                            time.monotonic(),
                            self.headers.get("Content-Type", ""),
                            self.headers.get("User-Agent", ""),
                            parse_qs(body.decode("ascii"), strict_parsing=True),
                        )
                    )
                    failing = len(hub.pings) <= hub.fail_first
                status = hub.fail_status if failing else hub.status
                self.send_response(status)
                if failing and hub.retry_after is not None:
                    self.send_header("Retry-After", hub.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hub"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def urls(self) -> list[str]:
        with self._lock:
            return [u for p in self.pings for u in p.form.get("hub.url", [])]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def hub() -> Iterator[RecordingHub]:
    recording = RecordingHub()
    try:
        yield recording
    finally:
        recording.close()


@pytest.fixture
def dead_hub() -> str:
    """The URL of a hub that refuses connections: a port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hub"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pings to the loopback hub must not go through a developer's proxy."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def notifier(
    hub_url: str, *, retries: int = 5, backoff: float = 0.05, max_retry_after: float = 60.0
) -> HubNotifier:
    """A notifier with quick, jitter-free backoff."""
    return HubNotifier(
        hub_url, retries=retries, backoff=backoff, jitter=0.0, max_retry_after=max_retry_after
    )


# --- the notifier -----------------------------------------------------------------------------
def test_a_ping_is_a_form_post_with_mode_and_url(hub: RecordingHub) -> None:
    n = notifier(hub.url)
    started = time.monotonic()
    n.notify([FEED, BASE_URL + "rss.xml", FEED])
    assert time.monotonic() - started < 1.0  # notify only queues
    n.close(timeout=10)
    assert sorted(hub.urls()) == sorted([FEED, BASE_URL + "rss.xml"])
    for ping in hub.pings:
        assert ping.content_type == "application/x-www-form-urlencoded"
        assert ping.user_agent.startswith("feedsvc/")
        assert ping.form["hub.mode"] == ["publish"]
        assert set(ping.form) == {"hub.mode", "hub.url"}


def test_503_is_retried_with_growing_backoff_until_it_succeeds(hub: RecordingHub) -> None:
    hub.fail_first = 2
    n = notifier(hub.url, backoff=0.2)
    n.notify([FEED])
    n.close(timeout=10)
    assert hub.urls() == [FEED] * 3  # two failures, one success, then nothing more
    first, second, third = (p.at for p in hub.pings)
    assert second - first >= 0.2 * 0.9
    assert third - second >= 0.4 * 0.9


def test_retry_after_is_honoured_and_capped(hub: RecordingHub) -> None:
    hub.fail_first, hub.retry_after = 1, "1"
    n = notifier(hub.url, backoff=0.01)
    n.notify([FEED])
    n.close(timeout=10)
    assert hub.urls() == [FEED] * 2
    assert hub.pings[1].at - hub.pings[0].at >= 0.9

    hub.pings.clear()
    hub.fail_first, hub.fail_status, hub.retry_after = 1, 429, "3600"
    n = notifier(hub.url, backoff=0.01, max_retry_after=0.1)
    started = time.monotonic()
    n.notify([FEED])
    n.close(timeout=10)
    assert hub.urls() == [FEED] * 2
    assert time.monotonic() - started < 5  # not an hour


@pytest.mark.parametrize("status", [400, 404, 410])
def test_other_4xx_are_not_retried(hub: RecordingHub, status: int) -> None:
    hub.fail_first, hub.fail_status = 100, status
    n = notifier(hub.url)
    n.notify([FEED])
    n.close(timeout=10)
    assert hub.urls() == [FEED]


def test_retries_stop_after_the_limit(hub: RecordingHub, caplog: pytest.LogCaptureFixture) -> None:
    hub.fail_first = 100
    n = notifier(hub.url, retries=2, backoff=0.01)
    with caplog.at_level(logging.INFO, logger="feedsvc.service.websub"):
        n.notify([FEED])
        n.close(timeout=10)
    assert hub.urls() == [FEED] * 3
    assert "failed after 3 attempt(s), giving up: HTTP 503" in caplog.text


def test_a_url_already_pending_is_not_queued_twice(hub: RecordingHub) -> None:
    hub.fail_first, hub.retry_after = 1, "1"
    n = notifier(hub.url)
    n.notify([FEED])
    wait_for(lambda: hub.urls(), what="the first (failing) ping")
    n.notify([FEED])  # waiting for its retry (or about to): coalesced
    n.close(timeout=10)
    assert hub.urls() == [FEED] * 2


def test_an_unreachable_hub_is_retried_then_given_up_at_close(
    dead_hub: str, caplog: pytest.LogCaptureFixture
) -> None:
    n = HubNotifier(dead_hub, backoff=0.1, jitter=0.0)
    with caplog.at_level(logging.INFO, logger="feedsvc.service.websub"):
        n.notify([FEED])
        started = time.monotonic()
        n.close(timeout=1.0)
        assert time.monotonic() - started < 1.0 + 3.0
    assert "retry 1 of 5" in caplog.text
    assert "gave up on 1 WebSub ping(s)" in caplog.text
    n.notify([FEED])  # after close: ignored, logged, never raised


def test_feed_urls_maps_written_feeds_to_public_urls(tmp_path: Path) -> None:
    """Topics come from what the writer says it wrote (#8), not from file suffixes."""
    feeds = tmp_path / "feeds"
    settings = Settings(base_url="https://news.example.org/news", feeds_dir=feeds)
    report = BuildReport(
        files=[
            WrittenFile("atom.xml", "feed", "all"),
            WrittenFile("feed.json", "feed", "all"),
            WrittenFile("de/rss.xml", "feed", "de"),
            WrittenFile("articles/0123456789abcdef.html", "article"),
            WrittenFile("atom.xml.gz", "gzip", "all"),
            WrittenFile("archive/0.xml", "archive", "all"),
            WrittenFile("atom.xml", "feed", "all"),
        ]
    )
    assert feed_urls(report, settings) == [
        "https://news.example.org/news/atom.xml",
        "https://news.example.org/news/feed.json",
        "https://news.example.org/news/de/rss.xml",
    ]


def test_websub_hub_must_be_an_absolute_http_url() -> None:
    assert Settings().websub_hub is None
    assert Settings(websub_hub="https://hub.example.org/hub").websub_hub == (
        "https://hub.example.org/hub"  # no slash added
    )
    with pytest.raises(ConfigError, match="websub_hub"):
        load_settings(env={"FEEDSVC_WEBSUB_HUB": "hub.example.org"})


# --- feedsvc build ------------------------------------------------------------------------------
def with_hub(project: Project, hub_url: str) -> None:
    with project.config.open("a", encoding="utf-8") as f:
        f.write(f'websub_hub = "{hub_url}"\n')


def test_build_pings_each_written_feed_and_a_no_change_build_pings_nothing(
    project: Project, hub: RecordingHub
) -> None:
    with_hub(project, hub.url)
    project.write_seed("000_0123456789abcdef.txt", seed_text())
    result = project.build()
    assert result.exit_code == 0, result.output
    assert sorted(hub.urls()) == sorted(FEEDS)  # close() waited for them

    again = project.build()
    assert again.exit_code == 0, again.output
    assert "(unchanged)" in again.output
    assert len(hub.urls()) == 3

    project.write_seed("001_0123456789abcde0.txt", seed_text("Noch ein Satz."))
    assert project.build().exit_code == 0
    assert sorted(hub.urls()) == sorted(FEEDS * 2)


def test_an_unreachable_hub_never_fails_or_blocks_the_build(
    project: Project, dead_hub: str
) -> None:
    with_hub(project, dead_hub)
    project.write_seed("000_0123456789abcdef.txt", seed_text())
    started = time.monotonic()
    result = project.build()
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < WEBSUB_CLOSE_SECONDS + 10
    assert (project.feeds / "atom.xml").is_file()


# --- feedsvc run --------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_daemon_pings_the_hub_after_a_build_that_wrote_feeds(
    tmp_path: Path, hub: RecordingHub
) -> None:
    daemon = Daemon(make_site(tmp_path / "site", websub_hub=hub.url))
    try:
        wait_for(lambda: FEED in hub.urls(), what="the ping after the first build")
        before = len(hub.urls())
        write(daemon.seeds / seed_name(7), seed_text("Der Hub erfährt es sofort."))
        wait_for(lambda: FEED in hub.urls()[before:], what="a ping for the atom feed")
        wait_for(lambda: daemon.logged("pinged WebSub hub"), what="the ping logged")
        assert daemon.stop() == 0
    finally:
        daemon.close()
