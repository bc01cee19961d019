"""Shared fixtures: a real project layout in a temp dir and the real CLI."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import feedparser
import pytest
from click.testing import CliRunner, Result

from feedsvc.cli import main
from feedsvc.config import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "seeds" / "000_98f79bfdbc50e318.txt"
CORPUS = REPO.parent / "shared" / "corpus" / "de-news.tar.gz"

pytest_plugins = ["tests.pg"]  # pg_server, pg_db, pg_module_db, pg_url: a real PostgreSQL (#10)


@dataclass
class Project:
    """A throw-away feedsvc project: config/, seeds/, feeds/ under one temp dir."""

    root: Path

    @property
    def seeds(self) -> Path:
        return self.root / "seeds"

    @property
    def feeds(self) -> Path:
        return self.root / "feeds"

    @property
    def config(self) -> Path:
        return self.root / "config" / "feedsvc.toml"

    @property
    def state(self) -> Path:
        return self.root / "config" / ".feedsvc"

    def write_seed(self, name: str, text: str | bytes) -> Path:
        path = self.seeds / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return path

    def build(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["build", "--config", str(self.config), *args])

    def atom(self) -> feedparser.FeedParserDict:
        return parse_feed(self.feeds / "atom.xml")

    def rss(self) -> feedparser.FeedParserDict:
        return parse_feed(self.feeds / "rss.xml")


def parse_feed(path: Path) -> feedparser.FeedParserDict:
    """Parse a feed file and insist feedparser found nothing wrong with it."""
    parsed = feedparser.parse(path.read_bytes())
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed


def seed_text(
    lead: str = "Ein Satz als Aufmacher.",
    *,
    date: str = "2024-11",
    body: str = "Erster Absatz mit Inhalt.\n\nZweiter Absatz.",
) -> str:
    return f" date {date} {lead}\n\n{body}"


def category_corpus(root: Path, n: int, *, days: bool = False) -> Path:
    """``root/seeds`` with the sample and ``n - 1`` short seeds, every fourth in ``sport/``
    (a category feed), over 15 years of months (or days): archives and several feeds."""
    seeds = root / "seeds"
    (seeds / "sport").mkdir(parents=True)
    (seeds / "000_98f79bfdbc50e318.txt").write_bytes(SAMPLE.read_bytes())
    for i in range(1, n):
        folder = seeds / ("sport" if i % 4 == 0 else "")
        body = f"Erster Absatz {i}.\n\nZwischentitel\n\nZweiter Absatz mit mehr Text {i}."
        when = f"20{10 + i % 15}-{i % 12 + 1:02d}" + (f"-{i % 28 + 1:02d}" if days else "")
        text = seed_text(f"Meldung {i} über den Stand der Dinge.", date=when, body=body)
        (folder / f"{i:03d}_{i:016x}.txt").write_text(text)
    return seeds


def category_settings(root: Path, seeds: Path, **more: Any) -> Settings:
    """Settings for ``category_corpus``: category feeds, 10 items, archive pages of 50."""
    return load_settings(
        env={},
        overrides={
            "seeds_dir": seeds,
            "feeds_dir": root / "feeds",
            "state_dir": root / "state",
            "base_url": "https://news.example.org/",
            "detect_language": False,
            "category_feeds": True,  # several feeds: an article page links the feeds it is in
            "max_items": 10,
            "archive_page_size": 50,
            **more,
        },
    )


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_directory(root: Path) -> Iterator[str]:
    """Plain static files from ``root`` on 127.0.0.1 in a thread (not our server); its URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "site"
    (root / "config").mkdir(parents=True)
    (root / "seeds").mkdir()
    (root / "feeds").mkdir()
    (root / "config" / "feedsvc.toml").write_text(
        'title = "Testfeed"\n'
        'base_url = "https://news.example.org/"\n'
        'seeds_dir = "../seeds"\nfeeds_dir = "../feeds"\nstate_dir = ".feedsvc"\n',
        encoding="utf-8",
    )
    return Project(root)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests must not pick up a developer's FEEDSVC_* variables."""
    for name in list(os.environ):
        if name.startswith("FEEDSVC_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The shared corpus (1014 real articles), unpacked once per session."""
    if not CORPUS.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"the shared corpus is missing in CI: {CORPUS}")
        pytest.skip(f"shared corpus not found at {CORPUS}")
    target = tmp_path_factory.mktemp("corpus")
    with tarfile.open(CORPUS) as tar:
        tar.extractall(target, filter="data")
    yield target / "de-news"
    shutil.rmtree(target, ignore_errors=True)
