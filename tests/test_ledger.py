"""The ledger's rules on their own (#8): a real store, file results made by hand, no feeds/.

ids for life, renames, duplicates, retirement, membership and the deletion limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feedsvc.build.feeds import FeedSet
from feedsvc.build.ledger import Ledger, deletion_limit, mint_id
from feedsvc.build.scan import FileResult
from feedsvc.config import Settings
from feedsvc.errors import SeedParseError
from feedsvc.seeds import parse_seed
from feedsvc.store import SQLiteStore, Store

from .conftest import seed_text

NOW = datetime(2025, 1, 10, tzinfo=UTC)
LATER = datetime(2025, 2, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The same rules on both backends (a fresh PostgreSQL schema per test)."""
    if request.param == "sqlite":
        opened: Store = SQLiteStore(tmp_path / "state" / "store.sqlite3")
    else:
        from feedsvc.store.postgres import PostgresStore

        opened = PostgresStore(request.getfixturevalue("pg_schema_url"), site_id="example.org")
    with opened as s, s.transaction():
        yield s


def _settings(**extra: object) -> Settings:
    return Settings(base_url="https://example.org/", **extra)  # type: ignore[arg-type]


def _ledger(store: Store, *, now: datetime = NOW, **extra: object) -> Ledger:
    settings = _settings(**extra)
    return Ledger(
        store,
        FeedSet(settings),
        now=now,
        authority=settings.id_authority,
        tz=settings.tz,
        page_size=settings.archive_page_size,
        membership_fp="fp",
    )


def _result(name: str, text: str | None = None, *, folder: str = "") -> FileResult:
    rel = folder + name
    article = parse_seed((text or seed_text()).encode(), source=rel, now=NOW)
    return FileResult(rel, size=1, mtime_ns=1, file_hash="h" + rel, article=article)


def test_a_new_article_gets_a_tag_id_from_its_key_and_local_day(store: Store) -> None:
    ledger = _ledger(store)
    assert ledger.record(_result("001_00000000000000aa.txt")) == "new"
    [entry] = store.live_articles()
    assert entry.entry_id == "tag:example.org,2024-11-01:00000000000000aa"
    assert ledger.changes.feeds == {"all"}
    assert ledger.changes.articles == {"00000000000000aa"}


def test_the_id_survives_an_edit_and_a_rebuild(store: Store) -> None:
    _ledger(store).record(_result("001_00000000000000aa.txt"))
    [before] = store.live_articles()
    edited = _result("001_00000000000000aa.txt", seed_text("Ein ganz neuer Titel."))
    assert _ledger(store, now=LATER).record(edited) == "changed"
    [after] = store.live_articles()
    assert after.entry_id == before.entry_id
    assert after.title == "Ein ganz neuer Titel"
    assert after.updated == LATER, "an edit moves updated to when it was seen"


def test_a_rename_keeps_the_id_and_a_deleted_id_is_never_given_out_again(store: Store) -> None:
    _ledger(store).record(_result("001_00000000000000aa.txt"))
    [old] = store.live_articles()
    ledger = _ledger(store)
    assert ledger.record(FileResult("001_00000000000000aa.txt", gone=True)) == "deleted"
    assert ledger.unpublished == {"00000000000000aa"}
    assert ledger.record(_result("001_00000000000000bb.txt")) == "changed"  # same content
    [moved] = store.live_articles()
    assert (moved.key, moved.entry_id) == ("00000000000000bb", old.entry_id)
    assert ledger.unpublished == set(), "a rename unpublishes nothing"
    # the old key comes back with other content: a fresh id, never the one that moved on
    again = _result("001_00000000000000aa.txt", seed_text("Etwas anderes."))
    assert _ledger(store).record(again) == "new"
    ids = {a.key: a.entry_id for a in store.live_articles()}
    assert ids["00000000000000aa"] == old.entry_id + "-2"


def test_a_deleted_seed_is_retired_but_its_id_stays(store: Store) -> None:
    _ledger(store).record(_result("001_00000000000000aa.txt"))
    _ledger(store).record(FileResult("001_00000000000000aa.txt", gone=True))
    assert store.live_articles() == []
    assert store.has_entry_id("tag:example.org,2024-11-01:00000000000000aa")


def test_a_second_file_with_the_same_key_is_a_duplicate(store: Store) -> None:
    ledger = _ledger(store)
    ledger.record(_result("001_00000000000000aa.txt"))
    dup = parse_seed(seed_text("Doppelt.").encode(), source="002_00000000000000aa.txt", now=NOW)
    result = FileResult("002_00000000000000aa.txt", 1, 1, file_hash="y", article=dup)
    assert ledger.record(result) is None
    [entry] = store.live_articles()
    assert entry.title == "Ein Satz als Aufmacher", "the first file keeps publishing the key"


def test_a_seed_that_turns_bad_keeps_its_last_good_version(store: Store) -> None:
    _ledger(store).record(_result("001_00000000000000aa.txt"))
    bad = FileResult(
        "001_00000000000000aa.txt", 1, 2, file_hash="z", error=SeedParseError("x", 1, "empty")
    )
    assert _ledger(store).record(bad) == "error"
    assert [a.key for a in store.live_articles()] == ["00000000000000aa"]
    assert store.errors() == [("001_00000000000000aa.txt", 1, "empty")]


def test_membership_follows_the_folder_into_category_feeds(store: Store) -> None:
    ledger = _ledger(store, category_feeds=True)
    ledger.record(_result("001_00000000000000aa.txt", folder="Sport/"))
    assert {m.feed for m in store.members_of("00000000000000aa")} == {"all", "category/sport"}
    assert ledger.changes.feeds == {"all", "category/sport"}


def test_mint_id_skips_ids_already_given_out(store: Store) -> None:
    article = _result("001_00000000000000aa.txt").article
    assert article is not None
    first = mint_id(store, article, authority="example.org", tz=UTC)
    assert first == "tag:example.org,2024-11-01:00000000000000aa"
    _ledger(store).record(_result("001_00000000000000aa.txt"))
    assert mint_id(store, article, authority="example.org", tz=UTC) == first + "-2"


@pytest.mark.parametrize(
    ("published", "max_delete", "limit"),
    [(10, None, 5), (1, None, 1), (0, None, 1), (10, 3, 3), (10, "all", None)],
)
def test_deletion_limit(published: int, max_delete: int | str | None, limit: int | None) -> None:
    assert deletion_limit(published, max_delete, 0.5) == limit  # type: ignore[arg-type]
