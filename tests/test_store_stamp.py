"""A full build reads the whole store (``quick_check``) only when someone else wrote it (#9).

At 100k articles the store is ~670 MB: reading it all on every ``feedsvc build`` cost seconds.
A clean close records the file's stat; the next full build checks the file only when the stat
differs (another writer, a restore, a disk that scribbled, a killed build).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from feedsvc.store import SQLiteStore

from .conftest import Project, seed_text


def _site(project: Project) -> Path:
    for i in range(1, 4):
        project.write_seed(f"{i:03d}_{i:016x}.txt", seed_text(f"Meldung {i}.", date=f"2024-0{i}"))
    assert project.build().exit_code == 0
    return project.state / "feedsvc.sqlite3"


def test_a_store_as_our_build_left_it_is_not_read_again(project: Project) -> None:
    db = _site(project)
    with SQLiteStore(db, verify=True) as store:
        assert not store.checked
    assert project.build().exit_code == 0  # and again, after our own close
    with SQLiteStore(db, verify=True) as store:
        assert not store.checked


def test_a_store_someone_else_wrote_is_read_in_full(project: Project) -> None:
    db = _site(project)
    other = sqlite3.connect(db)  # another program writes the file behind our back
    other.execute("INSERT INTO meta (name, value) VALUES ('someone', 'else')")
    other.commit()
    other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    other.close()
    with SQLiteStore(db, verify=True) as store:
        assert store.checked
    with SQLiteStore(db, verify=True) as store:  # our clean close recorded it
        assert not store.checked


def test_the_same_times_put_back_do_not_hide_a_write(project: Project) -> None:
    """mtime can be set back (``touch -r``); ctime and the size cannot.

    The byte written is the one that was there: what lies at a given offset depends on the
    schema (a changed byte may land in ``sqlite_schema`` and make the file unreadable), and
    the stamp must see the write whatever it wrote.
    """
    db = _site(project)
    st = db.stat()
    with db.open("r+b") as f:
        f.seek(st.st_size - 10)
        same = f.read(1)
        f.seek(st.st_size - 10)
        f.write(same)
    os.utime(db, ns=(st.st_atime_ns, st.st_mtime_ns))
    with SQLiteStore(db, verify=True) as store:
        assert store.checked


def test_a_build_that_was_killed_leaves_the_store_to_be_checked(project: Project) -> None:
    db = _site(project)
    (db.with_name(db.name + ".stamp")).unlink()  # what a kill before the close leaves: no match
    with SQLiteStore(db, verify=True) as store:
        assert store.checked


def test_without_verify_nothing_is_read(project: Project) -> None:
    db = _site(project)
    db.with_name(db.name + ".stamp").unlink()
    with SQLiteStore(db) as store:
        assert not store.checked
