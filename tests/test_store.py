"""The store file: damage found at open, schema versions, online backup and restore (#7).

Real stores written by real builds, damaged the way disks and people damage them; the CLI's
answer must be one line naming the file and what to do. SQLite only: these are about the file
(its header, pages, WAL, online backup); what every backend shares (schema versions, migrations,
the queries) runs on SQLite and PostgreSQL in tests/test_store_backends.py (#10).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import feedsvc.store.sqlite
from feedsvc.build.publisher import Publisher
from feedsvc.cli import main
from feedsvc.config import load_settings
from feedsvc.errors import FeedsvcError
from feedsvc.store import SQLiteStore as Store

from .conftest import Project, seed_text
from .harness import Daemon, make_site, seed_name, wait_for, write
from .harness import feedsvc as run_feedsvc

pytestmark = pytest.mark.sqlite_only

ADVICE = "restore a backup with 'feedsvc store restore BACKUP'"


def _site(project: Project, n: int = 6) -> None:
    for i in range(1, n + 1):
        project.write_seed(
            f"{i:03d}_{i:016x}.txt", seed_text(f"Meldung {i} des Tages.", date=f"2024-{i:02d}")
        )
    assert project.build().exit_code == 0


def _db(project: Project) -> Path:
    return project.state / "feedsvc.sqlite3"


def _settle(project: Project) -> None:
    """Everything in the main file, no WAL: damage then lands where SQLite will read it."""
    db = sqlite3.connect(_db(project))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    for suffix in ("-wal", "-shm"):
        _db(project).with_name(f"feedsvc.sqlite3{suffix}").unlink(missing_ok=True)


def _scribble(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(data)


def _store(project: Project, *args: str) -> Result:
    return CliRunner().invoke(main, ["store", *args, "--config", str(project.config)])


def _one_line_error(result: Result, *parts: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.output.count("\n") == 1, result.output
    for part in parts:
        assert part in result.output, result.output


def _feed_files(project: Project) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in project.feeds.glob("*.xml")}


# --- damage found at open ------------------------------------------------------------------
def _root_page(project: Project, table: str) -> int:
    db = sqlite3.connect(_db(project))
    (page,) = db.execute("SELECT rootpage FROM sqlite_schema WHERE name = ?", (table,)).fetchone()
    (size,) = db.execute("PRAGMA page_size").fetchone()
    db.close()
    return int((page - 1) * size)


def _garbage_in_the_header(project: Project) -> None:
    _scribble(_db(project), 0, b"garbage" * 4)


def _garbage_in_a_btree_page(project: Project) -> None:
    _scribble(_db(project), _root_page(project, "articles"), b"garbage" * 40)


def _cut_short(project: Project) -> None:
    with _db(project).open("r+b") as f:
        f.truncate(_db(project).stat().st_size // 2)


def _garbage_in_an_article(project: Project) -> None:
    data = _db(project).read_bytes()
    _scribble(_db(project), data.index(b'"lead":'), b"garbage")


def _bytes_that_are_not_utf8(project: Project) -> None:
    data = _db(project).read_bytes()
    _scribble(_db(project), data.index(b'"lead":') + 9, b"\xff\xfe")


DAMAGE = {
    "header": (_garbage_in_the_header, "not an SQLite database"),
    "btree page": (_garbage_in_a_btree_page, "quick_check"),
    "cut short": (_cut_short, "cut short"),
    "article json": (_garbage_in_an_article, "does not validate"),
    "not utf-8": (_bytes_that_are_not_utf8, "not UTF-8"),
}


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_damaged_store_is_one_line_naming_the_file_and_the_way_back(
    project: Project, kind: str
) -> None:
    _site(project)
    _settle(project)
    before = _feed_files(project)
    damage, detail = DAMAGE[kind]
    damage(project)
    if kind in ("article json", "not utf-8"):
        # garbage inside a record: quick_check cannot see it; reading the article does
        (project.feeds / "atom.xml").unlink()
        before.pop("atom.xml")

    result = project.build()

    _one_line_error(result, str(_db(project)), "the store is damaged", detail, ADVICE)
    assert "adopts the ids published in feeds/" in result.output
    assert _feed_files(project) == before


@pytest.mark.parametrize("kind", DAMAGE)
def test_store_check_finds_the_damage_and_changes_nothing(project: Project, kind: str) -> None:
    _site(project)
    _settle(project)
    ok = _store(project, "check")
    assert ok.exit_code == 0, ok.output
    assert f"{_db(project)}: ok (schema 4, 6 articles published" in ok.output
    damage, detail = DAMAGE[kind]
    damage(project)
    damaged = _db(project).read_bytes()

    _one_line_error(_store(project, "check"), str(_db(project)), detail, ADVICE)
    assert _db(project).read_bytes() == damaged


def test_moving_a_damaged_store_away_rebuilds_it_with_the_same_ids(project: Project) -> None:
    """The documented way back without a backup: move the file (and WAL) away, build."""
    _site(project)
    before = project.atom()
    _garbage_in_the_header(project)
    assert project.build().exit_code == 1
    for suffix in ("", "-wal", "-shm"):
        path = project.state / f"feedsvc.sqlite3{suffix}"
        if path.exists():
            path.rename(path.with_name(path.name + ".damaged"))
    result = project.build()
    assert result.exit_code == 0, result.output
    assert "adopted 6 ids" in result.output
    after = project.atom()
    assert [(e.id, e.updated) for e in after.entries] == [(e.id, e.updated) for e in before.entries]


# --- schema versions -----------------------------------------------------------------------
def _set_schema(project: Project, version: str) -> None:
    db = sqlite3.connect(_db(project))
    db.execute("UPDATE meta SET value = ? WHERE name = 'schema'", (version,))
    db.commit()
    db.close()


def _schema(project: Project) -> str:
    db = sqlite3.connect(_db(project))
    (value,) = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
    db.close()
    return str(value)


def test_a_store_from_a_newer_feedsvc_is_refused_never_downgraded(project: Project) -> None:
    _site(project)
    _set_schema(project, "5")
    before = _feed_files(project)

    result = project.build()

    _one_line_error(result, str(_db(project)), "schema 5, newer than this feedsvc knows (4)")
    assert _schema(project) == "5"
    assert _feed_files(project) == before
    _one_line_error(_store(project, "check"), "newer than this feedsvc knows")


def test_an_older_store_is_migrated_in_one_transaction(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This version's store opened by a next version whose schema 5 adds a column and index."""
    _site(project)
    monkeypatch.setattr(feedsvc.store.sqlite, "SCHEMA_VERSION", "5")
    monkeypatch.setattr(
        feedsvc.store.sqlite,
        "MIGRATIONS",
        {
            **feedsvc.store.sqlite.MIGRATIONS,
            5: "ALTER TABLE files ADD COLUMN extra_ns INTEGER;\n"
            "CREATE INDEX files_extra ON files (extra_ns); -- a comment; with a semicolon\n"
            "UPDATE files SET extra_ns = 0;",
        },
    )
    settings = load_settings(config=project.config)
    with Store(_db(project)) as store:
        assert store.get_meta("schema") == "5"
        assert store.count_live() == 6
    db = sqlite3.connect(_db(project))
    assert {r[1] for r in db.execute("PRAGMA table_info(files)")} >= {"extra_ns"}
    assert db.execute("SELECT COUNT(*) FROM files WHERE extra_ns = 0").fetchone() == (6,)
    db.close()
    assert Publisher(settings).build().total == 6  # the migrated store works as before


def test_a_failed_migration_changes_nothing(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    _site(project)
    monkeypatch.setattr(feedsvc.store.sqlite, "SCHEMA_VERSION", "6")
    monkeypatch.setattr(
        feedsvc.store.sqlite,
        "MIGRATIONS",
        {
            5: "ALTER TABLE files ADD COLUMN extra_ns INTEGER;",
            6: "CREATE TABLE extra (x INTEGER); ALTER TABLE no_such_table ADD COLUMN y;",
        },
    )
    with pytest.raises(FeedsvcError, match="no such table: no_such_table"):
        Store(_db(project))
    assert _schema(project) == "4"
    db = sqlite3.connect(_db(project))
    assert "extra_ns" not in {r[1] for r in db.execute("PRAGMA table_info(files)")}
    assert db.execute("SELECT name FROM sqlite_schema WHERE name = 'extra'").fetchone() is None
    db.close()
    monkeypatch.setattr(feedsvc.store.sqlite, "MIGRATIONS", {6: "SELECT 1;"})
    with pytest.raises(FeedsvcError, match="no migration from schema 4 to 5"):
        Store(_db(project))


# --- backup and restore --------------------------------------------------------------------
def test_backup_is_online_and_consistent(project: Project, tmp_path: Path) -> None:
    """A writer in the middle of a transaction (as the daemon's build) neither blocks the
    backup nor leaks its uncommitted rows into it."""
    _site(project)
    writer = sqlite3.connect(_db(project), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO meta (name, value) VALUES ('uncommitted', 'x')")
    try:
        result = _store(project, "backup", str(tmp_path / "backup.sqlite3"))
    finally:
        writer.execute("COMMIT")
        writer.close()

    assert result.exit_code == 0, result.output
    assert f"backed up the store to {tmp_path / 'backup.sqlite3'} (6 articles published" in (
        result.output
    )
    copy = sqlite3.connect(tmp_path / "backup.sqlite3")
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert copy.execute("SELECT COUNT(*) FROM meta WHERE name = 'uncommitted'").fetchone() == (0,)
    assert copy.execute("SELECT COUNT(*) FROM articles").fetchone() == (6,)
    copy.close()
    assert not list(tmp_path.glob(".*tmp*"))
    # a folder as FILE gets feedsvc.sqlite3 in it; the store itself is refused
    assert _store(project, "backup", str(tmp_path)).exit_code == 0
    assert (tmp_path / "feedsvc.sqlite3").is_file()
    _one_line_error(_store(project, "backup", str(_db(project))), "is the store itself")


def test_a_damaged_store_is_not_backed_up(project: Project, tmp_path: Path) -> None:
    _site(project)
    _settle(project)
    _garbage_in_a_btree_page(project)
    _one_line_error(_store(project, "backup", str(tmp_path / "b.sqlite3")), "damaged")
    assert not (tmp_path / "b.sqlite3").exists()


def test_restore_puts_a_backup_back_and_keeps_later_ids(project: Project, tmp_path: Path) -> None:
    _site(project)
    backup = tmp_path / "backup.sqlite3"
    assert _store(project, "backup", str(backup)).exit_code == 0
    # after the backup: a new article and a rename (its id is not the one its name would get)
    project.write_seed(f"007_{7:016x}.txt", seed_text("Meldung 7 des Tages.", date="2024-07"))
    (project.seeds / f"002_{2:016x}.txt").rename(project.seeds / f"002_{0x22:016x}.txt")
    assert project.build().exit_code == 0
    published = {e.link: (e.id, e.updated) for e in project.atom().entries}
    _garbage_in_the_header(project)
    assert project.build().exit_code == 1

    result = _store(project, "restore", str(backup))

    assert result.exit_code == 0, result.output
    assert f"restored {_db(project)} from {backup} (6 ids in the ledger)" in result.output
    assert (project.state / "feedsvc.sqlite3.replaced").is_file()
    rebuilt = project.build()
    assert rebuilt.exit_code == 0, rebuilt.output
    assert {e.link: (e.id, e.updated) for e in project.atom().entries} == published
    assert "adopted" not in project.build().output  # only once, right after the restore


def test_restoring_a_file_that_is_no_store_changes_nothing(
    project: Project, tmp_path: Path
) -> None:
    _site(project)
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"not a database at all" * 10)
    store = _db(project).read_bytes()
    _one_line_error(_store(project, "restore", str(bad)), str(bad), "damaged")
    _one_line_error(_store(project, "restore", str(tmp_path / "none")), "no store here")
    assert _db(project).read_bytes() == store
    assert not (project.state / "feedsvc.sqlite3.replaced").exists()


def test_store_commands_have_help(project: Project) -> None:
    for command in ("check", "backup", "restore"):
        result = CliRunner().invoke(main, ["store", command, "--help"])
        assert result.exit_code == 0
        assert "Example" in result.output


def test_backups_while_the_daemon_builds_are_whole(tmp_path: Path) -> None:
    """`store backup` next to a running `feedsvc run` that keeps publishing new seeds."""
    site = make_site(tmp_path / "site")
    write(site / "seeds" / seed_name(1), seed_text("Meldung 1 des Tages."))
    daemon = Daemon(site, serve=False)
    try:
        for n in range(2, 6):
            write(site / "seeds" / seed_name(n), seed_text(f"Meldung {n} des Tages."))
            backup = tmp_path / f"backup{n}.sqlite3"
            result = run_feedsvc(site, "store", "backup", str(backup))
            assert result.returncode == 0, result.stderr
            copy = sqlite3.connect(backup)
            assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            (count,) = copy.execute("SELECT COUNT(*) FROM articles").fetchone()
            copy.close()
            assert n - 1 <= count <= n  # the last committed build, never half of one
            wait_for(lambda n=n: daemon.logged(f"build: {n} articles"), what=f"{n} articles built")
    finally:
        assert daemon.stop() == 0
    last = tmp_path / "backup5.sqlite3"
    assert run_feedsvc(site, "store", "restore", str(last)).returncode == 0
    assert "5 articles" in run_feedsvc(site, "build").stdout
