"""Review of the cold build's rollback journal (#9): what an operator runs after a kill.

A cold build killed inside its bulk load leaves a hot rollback journal beside the store
(``SQLiteStore._bulk_journal``). The commands that only read the store (``store check``,
``store backup``) open it read-only, and SQLite cannot roll a hot journal back through a
read-only connection: they must still work, and see the store as it was before the load.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner

from feedsvc.cli import main
from feedsvc.store import backup_store, check_store
from feedsvc.store.sqlite import STORE_FILE, SQLiteStore

from .test_cold_store import _killed_load


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
