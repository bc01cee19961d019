"""The main process of a cold build (#9): what it reads back, and what it leaves to the workers.

Articles the store wrote itself are read back without a pydantic validation and in batches,
not one query per article; garbage inside one stored article is still one ``StoreError``
naming it. A cold build's new rows (the article's JSON, dates, feeds) are made once, in the
pool's workers when there is a pool, and come out the same as those the ledger makes
itself (tests/test_cold.py compares every byte of the feeds and every row).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from feedsvc import Publisher
from feedsvc.build.feeds import FeedSet
from feedsvc.build.rows import new_article
from feedsvc.build.scan import Scanner
from feedsvc.models import Entry
from feedsvc.store import FileState, Store
from feedsvc.store.sql import stored_entry

from .conftest import Project, category_corpus, category_settings, seed_text

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SEEDS = 120


def _corpus(root: Path, n: int = SEEDS) -> Path:
    return category_corpus(root, n)


def _publisher(root: Path, seeds: Path, **more: Any) -> Publisher:
    return Publisher(category_settings(root, seeds, **more), clock=lambda: NOW)


def _published_three(project: Project) -> str:
    """Three seeds built; the key of the second, the article the damage tests spoil."""
    for i in range(1, 4):
        name = f"{i:03d}_{i:016x}.txt"
        project.write_seed(name, seed_text(f"Meldung {i} des Tages.", date=f"2024-{i:02d}"))
    assert project.build().exit_code == 0
    return f"{2:016x}"


def _stored_article(project: Project, key: str) -> str:
    db = sqlite3.connect(project.state / "feedsvc.sqlite3")
    try:
        (raw,) = db.execute("SELECT article FROM articles WHERE key = ?", (key,)).fetchone()
        return str(raw)
    finally:
        db.close()


def _store_article(project: Project, key: str, raw: str) -> None:
    """Overwrite ``key``'s stored JSON behind feedsvc's back, as damage would."""
    db = sqlite3.connect(project.state / "feedsvc.sqlite3")
    with db:
        db.execute("UPDATE articles SET article = ? WHERE key = ?", (raw, key))
    db.close()


def _stored(state: Path) -> Iterator[tuple[str, str]]:
    db = sqlite3.connect(state / "feedsvc.sqlite3")
    try:
        yield from db.execute("SELECT key, article FROM articles ORDER BY key")
    finally:
        db.close()


def test_a_cold_build_reads_its_articles_back_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages and archive pages of 120 articles: a handful of reads, not one per article."""
    publisher = _publisher(tmp_path, _corpus(tmp_path))
    statements: list[str] = []
    opened = Publisher.open_store

    def traced(self: Publisher, *, verify: bool = False) -> Store:
        store = opened(self, verify=verify)
        store._db.set_trace_callback(statements.append)  # type: ignore[attr-defined]
        return store

    monkeypatch.setattr(Publisher, "open_store", traced)
    report = publisher.build()
    assert report.new == SEEDS, report
    assert len(list((tmp_path / "feeds" / "articles").glob("*.html"))) == SEEDS
    assert (tmp_path / "feeds" / "archive" / "1.xml").is_file()  # 110 archived: pages 0, 1, 2
    reads = [s for s in statements if s.startswith("SELECT") and "article FROM" in s]
    assert 0 < len(reads) <= SEEDS // 10, reads


def test_what_the_store_wrote_reads_back_as_pydantic_would_read_it(tmp_path: Path) -> None:
    """``stored_entry`` (no validation) gives what ``Entry.model_validate_json`` gives."""
    seeds = _corpus(tmp_path, 30)
    (seeds / "zzz_00000000000000ee.txt").write_text(  # a date with an offset, warnings
        seed_text("Mit\x07Steuerzeichen.", date="2024-06-30T23:30:00+02:00")
    )
    _publisher(tmp_path, seeds).build()
    rows = list(_stored(tmp_path / "state"))
    assert len(rows) == 31
    for _key, raw in rows:
        ours, theirs = stored_entry(raw), Entry.model_validate_json(raw)
        assert ours == theirs
        assert ours.model_dump_json() == theirs.model_dump_json()
        assert ours.published.utcoffset() == theirs.published.utcoffset()


@pytest.mark.parametrize(
    "garbage",
    ['{"key": "', '{"key": "{key}", "title": 5}', '["not", "an", "article"]', "{}"],
)
def test_garbage_in_one_stored_article_is_one_store_error_naming_it(
    project: Project, garbage: str
) -> None:
    key = _published_three(project)
    _store_article(project, key, garbage.replace("{key}", key))
    (project.feeds / "articles" / f"{key}.html").unlink()  # its page is written again

    result = project.build()

    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1, result.output
    assert "the store is damaged" in result.output, result.output
    assert f"article {key} does not validate" in result.output, result.output


@pytest.mark.parametrize(
    "block",
    [{"sort": "paragraph", "text": "Ein Absatz."}, {"kind": "heading", "text": "Ein Absatz."}],
)
def test_a_stored_block_without_a_valid_kind_is_a_store_error_naming_it(
    project: Project, block: dict[str, str]
) -> None:
    """A body block of two keys but no ``kind`` (or one ``Block`` does not have) is garbage
    ``stored_entry`` names, not an ``AttributeError`` while a page renders (#9 review)."""
    key = _published_three(project)
    stored = json.loads(_stored_article(project, key))
    stored["body"][0] = block
    _store_article(project, key, json.dumps(stored))
    (project.feeds / "articles" / f"{key}.html").unlink()  # its page is written again

    result = project.build()

    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1, result.output
    assert "the store is damaged" in result.output, result.output
    assert f"article {key} does not validate" in result.output, result.output


@pytest.mark.parametrize("bad", ["\x01", "\x0c", "\ufffe", "\ud800"])
def test_a_stored_text_xml_forbids_is_a_store_error_not_an_invalid_feed(
    project: Project, bad: str
) -> None:
    """The entry writer writes an article's texts as they are (``XmlText`` by validation);
    read back without validation, a damaged record's control character must not reach
    atom.xml as is, where no reader could parse the feed (#9 review)."""
    key = _published_three(project)
    stored = json.loads(_stored_article(project, key))
    stored["lead"] = f"Meldung{bad} 2 des Tages."
    _store_article(project, key, json.dumps(stored))
    (project.feeds / "atom.xml").unlink()  # written again, from the store

    result = project.build()

    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1, result.output
    assert f"article {key} does not validate" in result.output, result.output


@pytest.mark.timeout(120)
def test_the_pool_makes_the_rows_of_a_cold_build(tmp_path: Path) -> None:
    """The workers send each article's row along, the one the ledger would make itself, so
    the main process only writes it; asked for none (a store that is not empty: the ledger
    looks ids up), they send none."""
    seeds = _corpus(tmp_path, 40)
    settings = _publisher(tmp_path, seeds).settings
    scanner, feeds = Scanner(settings), FeedSet(settings)
    todo: list[tuple[str, FileState | None]] = [(rel, None) for rel in scanner.list_seeds()]
    for rows in (True, False):
        results = [r for r in scanner._scan_pooled(todo, NOW, 0, 2, rows=rows) if r is not None]
        assert len(results) == 40
        for result in results:
            assert result.article is not None
            made = new_article(
                result.article, authority=settings.id_authority, tz=settings.tz, feeds=feeds
            )
            assert result.row == (made if rows else None)
