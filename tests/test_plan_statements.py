"""The statements a build runs per article (#9): archive places and article pages in batches.

A cold build gives every archived entry its place (``set_seqs``: one ``executemany`` per
archive page, not one ``UPDATE`` per entry) and, when the site has several feeds, reads the
feeds of 500 article pages in one query (``members_of_keys``), not one query per page. A build
with nothing changed reads the duplicate keys once (the scan's), not twice. Counted at the
Python level (``execute``/``executemany`` calls, as ``bench/profile_cold.py`` counts them);
the bytes are those of the one-at-a-time path (tests/test_cold.py compares the feeds).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from feedsvc import Publisher
from feedsvc.store import Store

from .conftest import category_corpus, category_settings, seed_text

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SEEDS = 240


def _corpus(root: Path, n: int = SEEDS) -> Path:
    return category_corpus(root, n, days=True)


def _publisher(root: Path, seeds: Path, **more: Any) -> Publisher:
    return Publisher(category_settings(root, seeds, **more), clock=lambda: NOW)


class _Counted:
    """The store's connection, counting ``execute``/``executemany`` calls by statement."""

    def __init__(self, db: sqlite3.Connection, calls: Counter[str]) -> None:
        self._db, self._calls = db, calls

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._calls[sql] += 1
        return self._db.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._calls[sql] += 1
        return self._db.executemany(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every statement the builds' stores run from now on, by text."""
    counted: Counter[str] = Counter()
    opened = Publisher.open_store

    def counting(self: Publisher, *, verify: bool = False) -> Store:
        store = opened(self, verify=verify)
        store._db = _Counted(store._db, counted)  # type: ignore[attr-defined]
        return store

    monkeypatch.setattr(Publisher, "open_store", counting)
    return counted


def _count(calls: Counter[str], *parts: str) -> int:
    return sum(n for sql, n in calls.items() if all(p in sql for p in parts))


def test_a_cold_build_sets_archive_places_and_reads_page_feeds_in_batches(
    tmp_path: Path, calls: Counter[str]
) -> None:
    """240 articles in three feeds ("all", two categories), 10 a feed's current document:
    hundreds of archived entries and 240 pages, a handful of statements for them."""
    report = _publisher(tmp_path, _corpus(tmp_path)).build()
    assert report.new == SEEDS, report
    feeds = tmp_path / "feeds"
    assert len(list((feeds / "articles").glob("*.html"))) == SEEDS
    assert (feeds / "archive" / "4.xml").is_file()  # 230 archived in "all": pages 0..4
    # archive places: one ``executemany`` per archive page and feed (5 + 4 + 1 pages)
    places = _count(calls, "UPDATE members SET seq")
    assert 0 < places <= 12, places
    # the feeds of the article pages: one query for up to 500 pages (none one key at a time)
    assert _count(calls, "FROM members WHERE key IN") == 1
    assert _count(calls, "FROM members WHERE key = ?") == 0
    # every statement of the build: about 0.4 per article (2.5 one entry and page at a time)
    assert sum(calls.values()) / SEEDS < 0.5, calls.most_common(8)


def test_a_page_links_the_feeds_its_article_is_in(tmp_path: Path) -> None:
    """The batched read gives each page the feeds ``members_of`` gives it: the main feed and
    its category's."""
    _publisher(tmp_path, _corpus(tmp_path)).build()
    pages = tmp_path / "feeds" / "articles"
    sport = (pages / f"{4:016x}.html").read_text()
    other = (pages / f"{5:016x}.html").read_text()
    assert "category/sport" in sport
    assert "category/sport" not in other


def test_a_build_with_nothing_changed_reads_the_duplicate_keys_once(
    tmp_path: Path, calls: Counter[str]
) -> None:
    """Every file proven unchanged by its stat, none read: the scan's reading of the keys
    several files carry (none) is the report's (and the ledger's, keeping the digest of the
    listing); the next build trusts that digest (``test_stamps_digest``): not even that one
    read. (A rejected seed, or a duplicate, is read again each build: then the ledger
    records it and the report reads the keys again.)"""
    publisher = _publisher(tmp_path, _corpus(tmp_path, 20))
    publisher.racy_ns = 0  # files written just now: their stats prove them unchanged anyway
    publisher.build()
    calls.clear()
    again = publisher.build()
    assert (again.new, again.changed, again.deleted, again.unchanged) == (0, 0, 0, 20), again
    assert _count(calls, "GROUP BY key HAVING") == 1
    assert again.errors == []
    calls.clear()
    assert publisher.build().unchanged == 20
    assert _count(calls, "GROUP BY key HAVING") == 0


def test_duplicate_keys_are_still_reported_when_nothing_changed(tmp_path: Path) -> None:
    """A key carried by two files: both named in every build's report, changed or not."""
    seeds = _corpus(tmp_path, 20)
    (seeds / "sport" / f"999_{1:016x}.txt").write_text(seed_text("Noch einmal.", date="2024-01-02"))
    publisher = _publisher(tmp_path, seeds)
    builds = [publisher.build() for _ in range(3)]
    for report in builds:
        assert sum("duplicate key" in str(e) for e in report.errors) == 2, report.errors
