"""Review of the cold build's rollback journal (#9): what an operator runs after a kill.

A cold build killed inside its bulk load leaves a hot rollback journal beside the store
(``SQLiteStore._bulk_journal``). The commands that only read the store (``store check``,
``store backup``) open it read-only, and SQLite cannot roll a hot journal back through a
read-only connection: they must still work, and see the store as it was before the load.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedsvc import Publisher
from feedsvc.cli import main
from feedsvc.errors import StoreError
from feedsvc.store import backup_store, check_store
from feedsvc.store import sqlite as sqlite_module
from feedsvc.store.sqlite import STORE_FILE, SQLiteStore

from .conftest import category_settings, seed_text
from .test_cold_store import _killed_load

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_store_check_and_backup_read_a_store_left_with_a_hot_journal(tmp_path: Path) -> None:
    state = tmp_path / "state"
    journal = _killed_load(state)
    summary = check_store(state / STORE_FILE)  # was: "read-only ... SQLITE_READONLY_ROLLBACK"
    assert (summary.articles, summary.live) == (0, 0)
    assert not journal.exists()  # rolled back, as any writer's open would have
    backup = tmp_path / "backup.sqlite3"
    assert backup_store(state, backup).articles == 0
    db = sqlite3.connect(backup)
    try:
        assert db.execute("SELECT COUNT(*) FROM files").fetchone() == (0,)  # nothing half-loaded
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        db.close()
    with SQLiteStore(state / STORE_FILE, verify=True) as store:  # and the next build's open
        assert store.is_empty()
    db = sqlite3.connect(state / STORE_FILE)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        db.close()


def test_the_store_check_command_after_a_killed_cold_build(tmp_path: Path) -> None:
    state = tmp_path / "state"
    _killed_load(state)
    config = tmp_path / "feedsvc.toml"
    config.write_text(
        f'title = "T"\nbase_url = "https://example.org/"\nseeds_dir = "{tmp_path / "seeds"}"\n'
        f'feeds_dir = "{tmp_path / "feeds"}"\nstate_dir = "{state}"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["store", "check", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "read-only" not in result.output


# --- odd text through the cold build's bulk load (JSON bound as UTF-8 bytes) -----------------
ODD = {
    "emoji": "Ein Gesicht \U0001f600 und \U0001f1e9\U0001f1ea lacht.",
    "nonchar": "Ein Zeichen \uffff und \ufffe hier.",
    "separators": "Zeilen\u2028trenner und Absatz\u2029trenner und \u0085 NEL.",
    "rtl": "Rechts \u202e nach links \u200d Joiner \ufeff BOM.",
}


def _odd_publisher(root: Path, **more: object) -> Publisher:
    seeds = root / "seeds"
    seeds.mkdir(parents=True)
    for n, lead in enumerate(ODD.values()):
        (seeds / f"{n:03d}_{n:016x}.txt").write_text(
            seed_text(lead, body=f"{lead}\n\nZweiter {lead}"), encoding="utf-8"
        )
    settings = category_settings(root, seeds, **more)
    return Publisher(settings, clock=lambda: NOW)


def _odd_text_round_trip(publisher: Publisher) -> None:
    assert publisher.build().new == len(ODD)  # a cold build: the bulk load, rows as bytes
    with publisher.open_store() as store:
        stored = {e.key: e for e in store.iter_live_articles()}
    assert len(stored) == len(ODD)
    for entry in stored.values():
        here = publisher.scanner.scan_one(
            entry.source, None, NOW, reread=False, reparse=True, racy_ns=0
        )
        assert here is not None
        assert here.article is not None
        assert (entry.title, entry.lead, entry.body) == (
            here.article.title,
            here.article.lead,
            here.article.body,
        )
    assert ODD["emoji"] in {e.lead for e in stored.values()}  # 4-byte UTF-8 kept as it is


def test_odd_text_is_stored_and_read_back_identical_in_sqlite(tmp_path: Path) -> None:
    _odd_text_round_trip(_odd_publisher(tmp_path))


def test_odd_text_is_stored_and_read_back_identical_in_postgresql(
    tmp_path: Path, pg_schema_url: str
) -> None:
    _odd_text_round_trip(_odd_publisher(tmp_path, store_url=pg_schema_url))


# A cold build's bulk load that holds the store (a rollback journal, pages spilled into the
# file: an EXCLUSIVE lock) until the test lets it commit.
HELD_LOAD = """
import sys
from pathlib import Path
from feedsvc.store import FileState
from feedsvc.store.sqlite import SQLiteStore

store = SQLiteStore(Path(sys.argv[1]))
with store.transaction():
    store._db.execute("PRAGMA cache_size=16")  # spill early: the load holds the file whole
    store.bulk_indexes(built=False)
    for batch in range(10):
        store.add_files(
            FileState(f"{batch}/{i}.txt", f"{batch}-{i}", 1, 1, "x" * 64, None, None, (), 1, i)
            for i in range(2000)
        )
    print("loaded", flush=True)
    sys.stdin.readline()  # the test says when
store.close()
print("committed", flush=True)
"""


@pytest.mark.timeout(120)
def test_store_check_and_backup_wait_for_a_cold_builds_bulk_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: a reader waited ``busy_timeout`` (10 s) and failed with "locked by another
    process for too long" while a cold build loaded the store (100,000 seeds: ~45 s), where
    in WAL mode it read the last commit at once. Now it waits for the load's commit."""
    state = tmp_path / "state"
    state.mkdir()
    store_file = state / STORE_FILE
    monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT_MS", 200)  # a short wait shows it
    results: dict[str, object] = {}

    def read() -> None:
        try:
            results["check"] = check_store(store_file)
            results["backup"] = backup_store(state, tmp_path / "backup.sqlite3")
        except Exception as e:  # reported by the assert below
            results["error"] = e

    with subprocess.Popen(
        [sys.executable, "-c", HELD_LOAD, str(store_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            assert proc.stdout.readline() == "loaded\n"
            reader = threading.Thread(target=read)
            reader.start()
            # the reader is held by the load: it neither answers nor fails before the commit
            reader.join(timeout=1.0)
            assert results == {}, results
            proc.stdin.write("\n")
            proc.stdin.flush()
            assert proc.stdout.readline() == "committed\n"
            reader.join(timeout=60)
            assert "error" not in results, results["error"]
        finally:
            proc.kill()
    db = sqlite3.connect(tmp_path / "backup.sqlite3")
    try:
        assert db.execute("SELECT COUNT(*) FROM files").fetchone() == (20_000,)  # the commit
    finally:
        db.close()


@pytest.mark.timeout(120)
def test_a_reader_that_gives_up_on_a_bulk_load_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    store_file = state / STORE_FILE
    monkeypatch.setattr(sqlite_module, "BULK_LOAD_WAIT_MS", 200)  # a load that never ends
    with subprocess.Popen(
        [sys.executable, "-c", HELD_LOAD, str(store_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        try:
            assert proc.stdout.readline() == "loaded\n"
            with pytest.raises(StoreError, match="a cold build is still loading the store"):
                check_store(store_file)
        finally:
            proc.kill()
