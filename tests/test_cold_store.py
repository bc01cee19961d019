"""A cold build's store (#9): the bulk load writes its pages once, and a kill stays harmless.

A transaction into an empty store runs with a rollback journal instead of the WAL (the WAL
would take every page at commit and the checkpoint would copy it again); the store is WAL
again afterwards. A load killed midway leaves a hot journal: the next open rolls it back to
the empty store, and a restore takes the journal aside with the file it belongs to.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from feedsvc import Publisher
from feedsvc.store import Store, backup_store, restore_store
from feedsvc.store.sqlite import STORE_FILE, SQLiteStore

from .conftest import category_corpus, category_settings, seed_text

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

# A bulk load killed midway: far more rows than the page cache holds (SQLite spills them into
# the store file before the commit), then SIGKILL inside the transaction.
KILLED_LOAD = """
import os, signal, sys
from pathlib import Path
from feedsvc.store import FileState
from feedsvc.store.sqlite import SQLiteStore

store = SQLiteStore(Path(sys.argv[1]))
with store.transaction():
    store.bulk_indexes(built=False)
    for batch in range(20):
        store.add_files(
            FileState(f"{batch}/{i}.txt", f"{batch}-{i}", 1, 1, "x" * 64, None, None, (), 1, i)
            for i in range(2000)
        )
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _header_modes(path: Path) -> tuple[int, int]:
    """The file format's write and read versions: (2, 2) in WAL mode, (1, 1) with a journal."""
    header = path.read_bytes()[:20]
    return header[18], header[19]


def test_a_cold_build_loads_the_store_with_a_rollback_journal_then_it_is_wal_again(
    tmp_path: Path,
) -> None:
    seeds = category_corpus(tmp_path, 30)
    store_file = tmp_path / "state" / STORE_FILE
    seen: list[tuple[int, int]] = []

    def look(store: Store) -> None:  # inside the build's transaction
        seen.append(_header_modes(store_file))

    settings = category_settings(tmp_path, seeds)
    assert Publisher(settings, clock=lambda: NOW, fence=look).build().new == 30
    assert seen == [(1, 1), (1, 1)]  # the fence runs twice: before the ledger, before writing
    assert _header_modes(store_file) == (2, 2)
    (seeds / "001_0000000000000001.txt").write_text(seed_text("Neu.", date="2024-01"))
    assert Publisher(settings, clock=lambda: NOW, fence=look).build().changed == 1
    assert seen[2:] == [(2, 2), (2, 2)]  # not empty: the WAL, as always
    db = sqlite3.connect(store_file)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        db.close()


def _killed_load(state: Path) -> Path:
    """A store whose first (bulk) transaction was killed: its hot journal is beside it."""
    state.mkdir(parents=True, exist_ok=True)
    store_file = state / STORE_FILE
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_LOAD, str(store_file)], capture_output=True, text=True
    )
    assert proc.returncode == -9, proc.stderr
    journal = store_file.with_name(STORE_FILE + "-journal")
    assert journal.stat().st_size > 0  # a hot journal: the load was not in the WAL
    return journal


def test_a_killed_bulk_load_is_rolled_back_by_the_next_open(tmp_path: Path) -> None:
    state = tmp_path / "state"
    journal = _killed_load(state)
    with SQLiteStore(state / STORE_FILE, verify=True) as store:  # no "damaged", no "cut short"
        assert store.is_empty()
        assert store.file_states() == {}
    assert not journal.exists()
    db = sqlite3.connect(state / STORE_FILE)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        db.close()


def test_a_restore_takes_a_hot_journal_aside_with_the_file_it_belongs_to(tmp_path: Path) -> None:
    seeds = category_corpus(tmp_path / "good", 12)
    settings = category_settings(tmp_path / "good", seeds)
    assert Publisher(settings, clock=lambda: NOW).build().new == 12
    backup = tmp_path / "backup.sqlite3"
    backup_store(settings.state_dir, backup)
    state = tmp_path / "state"
    journal = _killed_load(state)
    restore_store(state, backup, lock_timeout=1)
    assert not journal.exists()  # not left to be played back into the restored file
    assert journal.with_name(STORE_FILE + ".replaced-journal").exists()
    with SQLiteStore(state / STORE_FILE, verify=True) as store:
        assert store.count_live() == 12
