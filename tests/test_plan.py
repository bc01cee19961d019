"""The plan stage on its own (#8): archive places settled before anything is written.

A real store filled through the ledger; the plan is inspected without a writer, then written
with one to see that the writer needs nothing else.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest

from feedsvc.build.feeds import FeedSet
from feedsvc.build.ledger import Ledger
from feedsvc.build.outputs import Writer
from feedsvc.build.plan import Planner
from feedsvc.build.scan import FileResult
from feedsvc.config import Settings
from feedsvc.seeds import parse_seed
from feedsvc.store import SQLiteStore, Store

from .conftest import seed_text

NOW = datetime(2025, 1, 10, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with SQLiteStore(tmp_path / "state" / "store.sqlite3") as s, s.transaction():
        yield s


def _settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(
        base_url="https://example.org/",
        feeds_dir=tmp_path / "feeds",
        max_items=3,
        archive_page_size=2,
        **extra,  # type: ignore[arg-type]
    )


def _fill(store: Store, settings: Settings, count: int) -> Ledger:
    feeds = FeedSet(settings)
    ledger = Ledger(
        store,
        feeds,
        now=NOW,
        authority=settings.id_authority,
        tz=settings.tz,
        page_size=settings.archive_page_size,
        membership_fp=Planner(settings).membership_fp,
    )
    for n in range(count):
        rel = f"{n:03d}_{n:016x}.txt"
        article = parse_seed(seed_text(f"Meldung {n}.").encode(), source=rel, now=NOW)
        ledger.record(FileResult(rel, 1, 1, file_hash=str(n), article=article))
    return ledger


def test_the_plan_settles_archive_places_and_writes_no_file(tmp_path: Path, store: Store) -> None:
    settings = _settings(tmp_path)
    ledger = _fill(store, settings, 7)
    plan = Planner(settings).plan(store, ledger.changes)
    assert plan.full, "a store that never wrote feeds/ plans everything"
    assert not (tmp_path / "feeds").exists(), "planning writes no file"
    # the four oldest entries left the feed for the archive, two to a page, oldest first
    archived = [(k, s) for k, s in store.last_archived("all", 10)]
    assert sorted(s for _, s in archived) == [0, 1, 2, 3]
    assert len(store.feed_articles("all", 10)) == 3
    paths = [d.path for d in plan.documents]
    assert paths[:1] == ["atom.xml"]
    assert {"archive/0.xml", "archive/1.xml", "rss.xml", "feed.json", "index.html"} <= set(paths)
    assert {"archive/0.xml", "archive/1.xml", "atom.xml.gz"} <= plan.owned
    feeds = {d.path: d.feed for d in plan.documents if d.kind in ("feed", "archive")}
    assert set(feeds.values()) == {"all"}, "each feed document knows its feed"


def test_article_pages_are_rendered_one_at_a_time(tmp_path: Path, store: Store) -> None:
    settings = _settings(tmp_path)
    ledger = _fill(store, settings, 4)
    plan = Planner(settings).plan(store, ledger.changes)
    assert inspect.isgenerator(iter(plan.pages)), "thousands of pages never sit in memory at once"
    pages = list(plan.pages)
    assert sorted(p.path for p in pages) == [f"articles/{n:016x}.html" for n in range(4)]
    assert all(not p.durable for p in pages)


def test_the_writer_needs_nothing_but_the_plan(tmp_path: Path, store: Store) -> None:
    settings = _settings(tmp_path)
    ledger = _fill(store, settings, 7)
    plan = Planner(settings).plan(store, ledger.changes)
    writer = Writer(settings.feeds_dir, gzip_feeds=settings.gzip_feeds)
    written = writer.write(
        [*plan.documents, *plan.pages], remove=plan.remove, stamp_also=plan.owned
    )
    feed = feedparser.parse((tmp_path / "feeds" / "atom.xml").read_bytes())
    assert len(feed.entries) == 3
    assert {"prev-archive"} <= {link.rel for link in feed.feed.links}
    assert set(written.stamps) >= plan.owned, "the manifest covers every output"
    kinds = {f.path: f.kind for f in written.files}
    assert kinds["atom.xml"] == "feed"
    assert kinds["archive/0.xml"] == "archive"


def test_nothing_changed_and_nothing_missing_is_an_idle_plan(tmp_path: Path, store: Store) -> None:
    settings = _settings(tmp_path)
    planner = Planner(settings)
    ledger = _fill(store, settings, 3)
    plan = planner.plan(store, ledger.changes)
    written = Writer(settings.feeds_dir, gzip_feeds=True).write(
        [*plan.documents, *plan.pages], stamp_also=plan.owned, folders=plan.folders
    )
    store.record_outputs(written.stamps)
    store.set_meta("render_fp", planner.render_fp)
    again = planner.plan(store, _fill(store, settings, 0).changes)
    assert again.idle
    (tmp_path / "feeds" / "rss.xml").unlink()
    repair = planner.plan(store, _fill(store, settings, 0).changes)
    assert not repair.idle
    assert "rss.xml" in repair.suspect
    assert "rss.xml" in [d.path for d in repair.documents]


def test_an_empty_feed_is_dated_from_the_store_not_1970(tmp_path: Path, store: Store) -> None:
    """Bug 3 (#8): RFC 4287 wants atom:updated; the newest date the store knows, never now."""
    settings = _settings(tmp_path)
    _fill(store, settings, 1)
    ledger = _fill(store, settings, 0)
    ledger.record(FileResult(f"000_{0:016x}.txt", gone=True))
    plan = Planner(settings).plan(store, ledger.changes)
    [atom] = [d for d in plan.documents if d.path == "atom.xml"]
    feed = feedparser.parse(atom.render())
    assert feed.entries == []
    assert feed.feed.updated.startswith("2025-01-10"), "when the ledger last saw an article"
    [rss] = [d for d in plan.documents if d.path == "rss.xml"]
    assert b"1970" not in rss.render()
