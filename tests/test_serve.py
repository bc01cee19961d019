"""serve.py on a real socket: granian on 127.0.0.1, port 0, in a thread; http.client as client."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from feedsvc.build.outputs import ATOM_TYPE, RSS_TYPE
from feedsvc.service.serve import FeedApp, HTTPServer, ServeOptions

ATOM = b'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
RSS = b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


@dataclass
class Site:
    feeds: Path
    port: int
    health: dict[str, Any]

    def request(
        self, path: str, *, method: str = "GET", headers: Mapping[str, str] | None = None
    ) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)  # path sent as is
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            conn.endheaders()
            resp = conn.getresponse()
            return Reply(resp.status, resp.headers, resp.read())
        finally:
            conn.close()


def _write(path: Path, data: bytes, *, mtime: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


@dataclass
class _Running:
    app: FeedApp
    port: int
    health: dict[str, Any]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Running]:
    """One server for the module (a stop takes half a second); each test gets its own feeds/."""
    health: dict[str, Any] = {}
    app = FeedApp(
        ServeOptions(root=tmp_path_factory.mktemp("unused")),
        status=lambda: (bool(health["healthy"]), dict(health)),
    )
    server = HTTPServer(app, host="127.0.0.1", port=0)
    _, port = server.start()
    try:
        yield _Running(app, port, health)
    finally:
        server.stop()


@pytest.fixture
def site(running: _Running, tmp_path: Path) -> Site:
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    _write(feeds / "atom.xml", ATOM + b"<title>eins</title>" * 100 + b"</feed>\n")
    _write(feeds / "rss.xml", RSS + b"<title>eins</title>" * 100 + b"</channel></rss>\n")
    running.health.clear()
    running.health.update(healthy=True, reason="ok", builds=3)
    running.app.configure(
        ServeOptions(
            root=feeds,
            cache_max_age=120,
            content_types={"atom.xml": ATOM_TYPE, "rss.xml": RSS_TYPE},
        )
    )
    return Site(feeds, running.port, running.health)


def test_feeds_are_served_at_the_root_with_their_types_and_validators(site: Site) -> None:
    atom = site.request("/atom.xml")
    assert atom.status == 200
    assert atom.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert atom.body == (site.feeds / "atom.xml").read_bytes()
    assert atom.headers["ETag"].startswith('"')
    assert atom.headers["Last-Modified"].endswith("GMT")
    assert atom.headers["Cache-Control"] == "max-age=120"
    assert int(atom.headers["Content-Length"]) == len(atom.body)
    rss = site.request("/rss.xml")
    assert rss.headers["Content-Type"] == "application/rss+xml; charset=utf-8"
    assert rss.headers["ETag"] != atom.headers["ETag"]


def test_sub_feeds_archives_and_pages_get_their_types(site: Site) -> None:
    _write(site.feeds / "category" / "sport" / "atom.xml", ATOM + b"</feed>\n")
    _write(site.feeds / "category" / "sport" / "archive" / "0.xml", ATOM + b"</feed>\n")
    _write(site.feeds / "index.html", b"<!DOCTYPE html><title>x</title>")
    assert site.request("/category/sport/atom.xml").headers["Content-Type"] == ATOM_TYPE
    archive = site.request("/category/sport/archive/0.xml")
    assert archive.headers["Content-Type"] == ATOM_TYPE
    index = site.request("/")
    assert index.status == 200
    assert index.headers["Content-Type"] == "text/html; charset=utf-8"


def test_conditional_requests_get_304_without_a_body(site: Site) -> None:
    first = site.request("/atom.xml")
    again = site.request("/atom.xml", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304
    assert again.body == b""
    assert again.headers["ETag"] == first.headers["ETag"]
    since = site.request("/atom.xml", headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert since.status == 304
    stale = site.request("/atom.xml", headers={"If-None-Match": '"not-it"'})
    assert stale.status == 200
    assert stale.body == first.body


def test_if_match_and_if_unmodified_since_that_fail_get_412(site: Site) -> None:
    first = site.request("/atom.xml")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert site.request("/atom.xml", headers={"If-Match": etag}).status == 200
    assert site.request("/atom.xml", headers={"If-Match": f'"x", {etag}'}).status == 200
    assert site.request("/atom.xml", headers={"If-Match": '"other"'}).status == 412
    assert site.request("/atom.xml", headers={"If-Match": f"W/{etag}"}).status == 412  # strong
    assert site.request("/atom.xml", headers={"If-Unmodified-Since": modified}).status == 200
    earlier = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert site.request("/atom.xml", headers={"If-Unmodified-Since": earlier}).status == 412
    weak = site.request("/atom.xml", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status == 304  # If-None-Match compares weakly


def test_last_modified_moves_forward_on_every_change_even_within_one_second(site: Site) -> None:
    path = site.feeds / "atom.xml"
    second = 1_700_000_000.0
    seen = []
    for n in range(3):  # three different contents, all with an mtime in the same second
        _write(path, ATOM + f"<title>{n}</title></feed>\n".encode(), mtime=second + n / 10)
        reply = site.request("/atom.xml")
        assert reply.body.endswith(f"<title>{n}</title></feed>\n".encode())
        seen.append((parsedate_to_datetime(reply.headers["Last-Modified"]), reply.headers["ETag"]))
    dates = [d for d, _ in seen]
    assert dates[0].timestamp() == second
    assert dates[0] < dates[1] < dates[2]
    assert len({etag for _, etag in seen}) == 3
    # A client holding the middle version's date is told the last one is newer.
    newer = site.request("/atom.xml", headers={"If-Modified-Since": reply.headers["Last-Modified"]})
    assert newer.status == 304
    # The same bytes written again (new mtime) keep their validators.
    _write(path, path.read_bytes(), mtime=second + 50)
    same = site.request("/atom.xml")
    assert same.headers["ETag"] == seen[-1][1]
    assert parsedate_to_datetime(same.headers["Last-Modified"]) == dates[2]


def test_gzip_when_the_client_accepts_it(site: Site) -> None:
    plain = site.request("/rss.xml")
    packed = site.request("/rss.xml", headers={"Accept-Encoding": "br, gzip;q=0.8"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert gzip.decompress(packed.body) == plain.body
    assert len(packed.body) < len(plain.body)
    assert packed.headers["ETag"] != plain.headers["ETag"]
    again = site.request(
        "/rss.xml",
        headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]},
    )
    assert again.status == 304
    refused = site.request("/rss.xml", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused.headers
    assert refused.body == plain.body


def test_head_has_the_headers_of_get_and_no_body(site: Site) -> None:
    get = site.request("/atom.xml")
    head = site.request("/atom.xml", method="HEAD")
    assert head.status == 200
    assert head.body == b""
    for name in ("Content-Type", "Content-Length", "ETag", "Last-Modified", "Cache-Control"):
        assert head.headers[name] == get.headers[name]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_only_get_and_head(site: Site, method: str) -> None:
    reply = site.request("/atom.xml", method=method)
    assert reply.status == 405
    assert reply.headers["Allow"] == "GET, HEAD"
    assert (site.feeds / "atom.xml").is_file()


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/../secret.txt",
        "/../../etc/passwd",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/..%2fsecret.txt",
        "/sub/../../secret.txt",
        "/%252e%252e/secret.txt",
        "/..\\secret.txt",
        "/escape.txt",
        "/linked/secret.txt",
        "/sub/",
        "/sub",
        "/.hidden.xml",
        "/sub/.atom.xml.tmp",
        "/missing.xml",
        "/atom.xml%00.txt",
    ],
)
def test_nothing_outside_feeds_is_reachable_and_nothing_is_listed(site: Site, path: str) -> None:
    outside = site.feeds.parent / "secret.txt"
    outside.write_text("top secret\n")
    (site.feeds / "sub").mkdir()
    (site.feeds / "sub" / ".atom.xml.tmp").write_text("half\n")
    (site.feeds / ".hidden.xml").write_text("hidden\n")
    (site.feeds / "escape.txt").symlink_to(outside)
    (site.feeds / "linked").symlink_to(site.feeds.parent)
    reply = site.request(path)
    assert reply.status == 404, (path, reply.status, reply.body[:100])
    assert b"secret" not in reply.body
    assert b"atom.xml" not in reply.body


def test_a_file_served_before_is_not_served_once_its_folder_is_a_link_out(site: Site) -> None:
    """What was checked once is checked again when anything on the path changes."""
    _write(site.feeds / "sub" / "a.xml", ATOM + b"</feed>\n")
    assert site.request("/sub/a.xml").status == 200
    outside = site.feeds.parent / "outside"
    _write(outside / "a.xml", b"top secret\n")
    shutil.rmtree(site.feeds / "sub")
    (site.feeds / "sub").symlink_to(outside)
    reply = site.request("/sub/a.xml")
    assert reply.status == 404
    assert b"secret" not in reply.body


def test_symlinks_inside_feeds_are_fine(site: Site) -> None:
    (site.feeds / "feed.xml").symlink_to("atom.xml")
    reply = site.request("/feed.xml")
    assert reply.status == 200
    assert reply.body == (site.feeds / "atom.xml").read_bytes()


def test_health_and_status_come_from_the_daemon(site: Site) -> None:
    ok = site.request("/healthz")
    assert ok.status == 200
    assert ok.body == b"ok\n"
    assert ok.headers["Cache-Control"] == "no-store"
    status = site.request("/status")
    assert status.headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(status.body)["builds"] == 3
    site.health.update(healthy=False, reason="last build failed: disk full")
    bad = site.request("/healthz")
    assert bad.status == 503
    assert b"disk full" in bad.body
    assert site.request("/status").status == 503


def test_a_failing_status_gives_500_and_the_server_goes_on(site: Site) -> None:
    site.health.clear()  # the status callable now fails (KeyError)
    assert site.request("/status").status == 500
    assert site.request("/atom.xml").status == 200
