"""A real feed reader: newsboat subscribes to a running ``feedsvc run`` on loopback.

Each feed gets its own newsboat profile: newsboat keys its cache by guid alone, so the Atom and
the RSS feed (which share their ids, as they should) in one profile would fight over one item.
"""

from __future__ import annotations

import calendar
import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import seed_text
from .harness import Daemon, make_site, seed_name, wait_for, write

pytestmark = pytest.mark.slow

NEWSBOAT = shutil.which("newsboat")
FEEDS = ("atom.xml", "rss.xml")
SEEDS = {
    1: seed_text(
        "Österreichs Bäcker kämpfen mit höheren Energiepreisen.",
        date="2024-11-04",
        body="Viele Betriebe überlegen, die Öfen früher abzuschalten.\n\n"
        "Förderungen gefordert\n\n"
        "Die Innung verlangt Zuschüsse für die Umstellung auf Wärmepumpen.",
    ),
    2: seed_text(
        "Der Gemeinderat beschließt das Budget für 2025.",
        date="2024-11-05",
        body="Die Opposition stimmte dagegen.",
    ),
    3: seed_text(
        "Ein Zug der Westbahn fährt wieder nach Plan.",
        date="2024-11-06T07:15:00+01:00",
        body="Die Störung ist behoben.",
    ),
    4: seed_text("Die Straßenbahn bekommt neue Wägen.", date="2024-10", body="Sie sind leiser."),
}


@pytest.fixture
def newsboat() -> str:
    if NEWSBOAT is None:
        if os.environ.get("CI") == "true":
            pytest.fail("newsboat is not installed in CI (apt-get install newsboat)")
        pytest.skip("newsboat is not installed (Debian: apt-get install newsboat)")
    return NEWSBOAT


class Reader:
    """One newsboat profile in a temp HOME, driven with ``newsboat -x reload``."""

    def __init__(self, exe: str, home: Path, urls: list[str]) -> None:
        self.exe = exe
        self.home = home
        home.mkdir()
        (home / "urls").write_text("".join(u + "\n" for u in urls), encoding="utf-8")
        (home / "config").write_text(
            "reload-threads 1\ndownload-timeout 10\nshow-read-feeds yes\n", encoding="utf-8"
        )
        self.cache = home / "cache.db"

    def log(self) -> str:
        return (self.home / "newsboat.log").read_text(encoding="utf-8", errors="replace")

    def reload(self, *, log: bool = False) -> None:
        env = {
            "HOME": str(self.home),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_DATA_HOME": str(self.home / ".local" / "share"),
        }
        cmd = [self.exe, "-u", str(self.home / "urls"), "-c", str(self.cache)]
        cmd += ["-C", str(self.home / "config"), "-x", "reload"]
        if log:
            cmd += ["-l", "6", "-d", str(self.home / "newsboat.log")]
        done = subprocess.run(
            cmd, env=env, cwd=self.home, capture_output=True, text=True, timeout=60,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert done.returncode == 0, (done.stdout, done.stderr)

    def items(self, url: str) -> dict[str, dict[str, Any]]:
        """What newsboat stored for one feed, by guid."""
        db = sqlite3.connect(self.cache)
        db.row_factory = sqlite3.Row
        try:
            rows = db.execute(
                "SELECT guid, title, url, pubDate, content FROM rss_item WHERE feedurl = ?",
                (url,),
            ).fetchall()
        finally:
            db.close()
        return {r["guid"]: dict(r) for r in rows}

    def validators(self, url: str) -> tuple[str, int]:
        db = sqlite3.connect(self.cache)
        try:
            row = db.execute(
                "SELECT etag, lastmodified FROM rss_feed WHERE rssurl = ?", (url,)
            ).fetchone()
        finally:
            db.close()
        assert row is not None, url
        return row[0], row[1]


def assert_same_items(reader: Reader, daemon: Daemon, name: str) -> dict[str, dict[str, Any]]:
    url = f"http://127.0.0.1:{daemon.port}/{name}"
    stored = reader.items(url)
    entries = daemon.feed(name).entries
    assert sorted(stored) == sorted(e.id for e in entries), name
    for entry in entries:
        item = stored[entry.id]
        assert item["title"] == entry.title, (name, entry.id)
        assert item["url"] == entry.link, (name, entry.id)
        assert item["pubDate"] == calendar.timegm(entry.published_parsed), (name, entry.id)
        lead = entry.summary
        assert lead in item["content"], (name, entry.id)
    return stored


def test_newsboat_stores_what_we_serve_and_sees_updates(newsboat: str, tmp_path: Path) -> None:
    site = make_site(tmp_path / "site")
    for n, text in SEEDS.items():
        write(site / "seeds" / seed_name(n), text)
    daemon = Daemon(site)
    try:
        wait_for(lambda: len(daemon.feed().entries) == len(SEEDS), what="all seeds served")
        urls = {name: f"http://127.0.0.1:{daemon.port}/{name}" for name in FEEDS}
        readers = {
            name: Reader(newsboat, tmp_path / f"reader-{name}", [url]) for name, url in urls.items()
        }
        for name, reader in readers.items():
            reader.reload()
            stored = assert_same_items(reader, daemon, name)
            bakers = next(i for i in stored.values() if i["title"].startswith("Österreichs"))
            assert "Förderungen gefordert" in bakers["content"]
            assert "<h2>" in bakers["content"]
            assert "Wärmepumpen" in bakers["content"]
        # newsboat 2.21 stores the validators only once it has a row for the feed, i.e. from
        # the second fetch on; the third one is a conditional GET that gets a 304.
        validators: dict[str, tuple[str, int]] = {}
        for name, reader in readers.items():
            reader.reload()
            validators[name] = reader.validators(urls[name])
            assert validators[name][0].startswith('"'), "the ETag is kept"
            assert validators[name][1] > 0, "Last-Modified is kept"
            reader.reload(log=True)
            # a 304 gives newsboat an empty body, which it logs as such
            empty = re.compile(rf"retrieved data for {re.escape(urls[name])}: ?\n")
            assert empty.search(reader.log()), "a conditional GET answered 304 Not Modified"
            assert_same_items(reader, daemon, name)
            assert reader.validators(urls[name]) == validators[name]

        write(
            site / "seeds" / seed_name(2),
            seed_text(
                "Der Gemeinderat beschließt das Budget für 2025.",
                date="2024-11-05",
                body="Die Opposition stimmte dagegen.\n\nNachtrag: Der Beschluss fiel knapp.",
            ),
        )
        for name in FEEDS:
            wait_for(
                lambda name=name: any(
                    "Nachtrag" in str(e.content) for e in daemon.feed(name).entries
                ),
                what=f"the edit served in {name}",
            )
        for name, reader in readers.items():
            reader.reload()
            stored = assert_same_items(reader, daemon, name)
            budget = [i for i in stored.values() if i["title"].startswith("Der Gemeinderat")]
            assert len(budget) == 1, "an edit updates the item, it does not add one"
            assert "Nachtrag: Der Beschluss fiel knapp." in budget[0]["content"]
            etag, modified = reader.validators(urls[name])
            assert etag != validators[name][0]
            assert modified > validators[name][1], "Last-Modified moved forward"
    finally:
        daemon.close()
