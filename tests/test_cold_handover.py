"""What a cold build's workers send the main process (#9): each article once, as its row.

A worker that makes an article's store row (a cold build) sends the row and only what the
row leaves out of the article (its own ``updated``, its warnings), not the article packed
beside it: half the bytes to pickle, send and unpickle. The article is made again from the
row when something asks for it, equal to the one parsed in process.
"""

from __future__ import annotations

import pickle
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feedsvc import Publisher
from feedsvc.build import scan
from feedsvc.build.feeds import FeedSet
from feedsvc.build.rows import new_article
from feedsvc.build.scan import Scanner
from feedsvc.models import Entry
from feedsvc.store import FileState

from .conftest import category_corpus, category_settings, seed_text

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
_REPARSE = {"reread": False, "reparse": True, "racy_ns": 0}


def _corpus(root: Path) -> Path:
    seeds = category_corpus(root, 30)
    # an article with a warning
    (seeds / "200_00000000000000c8.txt").write_text(seed_text("Mit\x07Steuerzeichen."))
    return seeds


@pytest.mark.timeout(120)
def test_a_cold_builds_article_comes_back_from_its_row_as_parsed(tmp_path: Path) -> None:
    seeds = _corpus(tmp_path)
    settings = category_settings(tmp_path, seeds)
    scanner = Scanner(settings)
    todo: list[tuple[str, FileState | None]] = [(rel, None) for rel in scanner.list_seeds()]
    pooled = [r for r in scanner._scan_pooled(todo, NOW, 0, 2, rows=True) if r is not None]
    assert len(pooled) == len(todo) == 31
    for result in pooled:
        here = scanner.scan_one(result.path, None, NOW, reread=False, reparse=True, racy_ns=0)
        assert here is not None
        assert here.article is not None
        assert result.row is not None
        assert result.warnings == here.article.warnings
        assert result.article == here.article  # every field, ``updated`` and warnings too
    assert any(r.warnings for r in pooled)


def test_a_worker_sends_each_article_once_when_it_makes_its_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeds = _corpus(tmp_path)
    settings = category_settings(tmp_path, seeds)
    worker = Scanner(settings)
    monkeypatch.setattr(scan, "_WORKER", worker)  # what the pool's initializer sets up
    monkeypatch.setattr(scan, "_FEEDS", FeedSet(settings))
    chunk: list[tuple[str, FileState | None]] = [(rel, None) for rel in worker.list_seeds()]
    blob = pickle.dumps(scan._scan_chunk(chunk, NOW, 0, True), protocol=pickle.HIGHEST_PROTOCOL)
    for i in range(1, 30):  # each body text once: in the row's JSON (before: packed too)
        assert blob.count(f"Zweiter Absatz mit mehr Text {i}.".encode()) == 1, i
    without = scan._scan_chunk(chunk, NOW, 0, False)  # no row: the article itself, packed
    assert all(p is None or p[3] is None for p in without)


def test_a_rows_json_travels_as_utf8_bytes_and_is_stored_as_the_same_text(
    tmp_path: Path,
) -> None:
    """No decoding in the worker, the pipe or the main process: the JSON stays the bytes
    pydantic wrote, bound as they are, and SQLite keeps them as text (not a BLOB)."""
    seeds = _corpus(tmp_path)
    settings = category_settings(tmp_path, seeds)
    scanner, feeds = Scanner(settings), FeedSet(settings)
    result = scanner.scan_one("sport/004_0000000000000004.txt", None, NOW, **_REPARSE)
    assert result is not None
    assert result.article is not None
    row = new_article(result.article, authority=settings.id_authority, tz=settings.tz, feeds=feeds)
    assert isinstance(row.article, bytes)
    entry = Entry.of(result.article, entry_id=row.entry_id, updated=result.article.published)
    assert row.article.decode() == entry.model_dump_json(exclude={"warnings"})
    assert Publisher(settings, clock=lambda: NOW).build().new == 31
    db = sqlite3.connect(settings.state_dir / "feedsvc.sqlite3")
    try:
        kinds = db.execute("SELECT DISTINCT typeof(article) FROM articles").fetchall()
        (stored,) = db.execute("SELECT article FROM articles WHERE key = ?", (row.key,)).fetchone()
    finally:
        db.close()
    assert kinds == [("text",)]
    assert stored == row.article.decode()
