"""A no-change full scan trusts the digest of its listing kept in the store's meta (#9, target 3).

Every build that scans everything keeps the digest of what it listed and stat'ed (path, size,
mtime, ctime, inode of every seed) in the store's meta, bound to that scan, when the store's
files are then exactly that listing; every stamp written since drops it. The next full scan
that lists the same trusts it: no stored stamp is read. #7's rules must hold exactly, so each
test below either shows that nothing stored is read (``_files_read``: the statements SQLite
ran, from its own trace) or that a change the digest could hide is still seen.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from feedsvc import Publisher, load_settings
from feedsvc.build.scan import FileResult
from feedsvc.store import STAMPS_META
from feedsvc.store import SQLiteStore as Store

from .conftest import Project, seed_text

OLD_MTIME_NS = 1_735_689_600 * 10**9  # 2025-01-01: older than any racy window


# As if the seeds' file server ran an hour behind this clock: a file changed after a scan has
# a ctime before its start, so the racy rule never reads it again; only the stamps tell.
CLOCK_BEHIND_NS = -3600 * 10**9


def _publisher(project: Project, **overrides: Any) -> Publisher:
    publisher = Publisher(load_settings(config=project.config, env={}, overrides=overrides))
    publisher.racy_ns = 0  # the stamps are old; the racy rule has its own test
    return publisher


def _old_seeds(project: Project, count: int) -> list[Path]:
    paths = []
    for n in range(count):
        path = project.write_seed(f"{n:03d}_{n:016x}.txt", seed_text(f"Meldung Nummer {n}."))
        os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
        paths.append(path)
    return paths


def _scan(publisher: Publisher) -> tuple[dict[str, FileResult], int, list[str]]:
    """One full scan (not published): its results by path, how many files its stats proved
    unchanged, and the statements that read the store's files table."""
    statements: list[str] = []
    with publisher.open_store() as store:
        store._db.set_trace_callback(statements.append)
        scan = publisher.scan(store)
        results = {r.path: r for r in scan.results}
    return results, scan.unchanged, [s for s in statements if "FROM files" in s]


def _built(publisher: Publisher, new: int) -> None:
    """A cold build (it reads every file: no digest), then one that compares the stored
    stamps once and keeps the digest of its listing."""
    assert publisher.build().new == new
    assert publisher.build().unchanged == new


def _held(project: Project) -> str | None:
    with Store(project.state / "feedsvc.sqlite3") as store:
        return store.get_meta(STAMPS_META)


def test_a_no_change_full_scan_reads_no_stored_stamp(project: Project) -> None:
    _old_seeds(project, 5)
    publisher = _publisher(project)
    _built(publisher, 5)
    results, unchanged, read = _scan(publisher)
    assert (results, unchanged) == ({}, 5)
    assert read == []  # neither the stamps nor the duplicate keys: the digest speaks for them
    report = publisher.build()
    assert (report.total, report.unchanged, report.new, report.changed) == (5, 5, 0, 0)


def test_after_a_change_the_next_scans_trust_the_digest_again(project: Project) -> None:
    paths = _old_seeds(project, 4)
    publisher = _publisher(project)
    _built(publisher, 4)
    paths[0].write_text(seed_text("Meldung Nummer 0, berichtigt."), encoding="utf-8")
    os.utime(paths[0], ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    results, unchanged, read = _scan(publisher)
    assert (list(results), unchanged) == ([paths[0].name], 3)
    assert read  # another listing: the stored stamps are compared as before
    assert publisher.build().changed == 1
    assert _scan(publisher) == ({}, 4, [])


def test_an_edit_keeping_size_and_mtime_is_seen_through_the_digest(project: Project) -> None:
    [path, _] = _old_seeds(project, 2)
    publisher = _publisher(project)
    publisher.racy_ns = CLOCK_BEHIND_NS
    _built(publisher, 2)
    assert _scan(publisher)[2] == []  # the digest is trusted
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("Nummer 0.", "Nummer X."), encoding="utf-8")  # same size
    os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))  # only its ctime tells
    results, unchanged, _ = _scan(publisher)
    assert (list(results), unchanged) == ([path.name], 1)
    assert results[path.name].article is not None
    assert publisher.build().changed == 1
    assert any("Nummer X." in e.title for e in project.atom().entries)


def test_a_twin_swapped_in_with_the_same_stat_is_seen_through_the_digest(
    project: Project,
) -> None:
    [path, _] = _old_seeds(project, 2)
    publisher = _publisher(project)
    publisher.racy_ns = CLOCK_BEHIND_NS
    _built(publisher, 2)
    assert _scan(publisher)[2] == []  # the digest is trusted
    twin = path.with_suffix(".new")
    twin.write_text(path.read_text(encoding="utf-8").replace("Nummer 0.", "Nummer Y."))
    os.utime(twin, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    twin.replace(path)  # a new inode (and ctime) under the old name, size and mtime
    results, unchanged, _ = _scan(publisher)
    assert (list(results), unchanged) == ([path.name], 1)
    assert publisher.build().changed == 1


def test_a_racily_clean_file_is_read_again_though_the_digest_matches(project: Project) -> None:
    [path, _] = _old_seeds(project, 2)
    future = OLD_MTIME_NS + 10**9 * 3600 * 24 * 365 * 10  # a wrong clock on a share: years ahead
    os.utime(path, ns=(OLD_MTIME_NS, future))  # never before the previous scan's start: racy
    publisher = _publisher(project)
    _built(publisher, 2)
    assert _held(project)  # the store's files are the listing: the digest is kept...
    results, unchanged, read = _scan(publisher)
    assert list(results) == [path.name]  # ...but the racy file's stat proves nothing
    assert results[path.name].hashed
    assert results[path.name].unchanged
    assert unchanged == 1
    assert read  # only its own row was looked up
    assert all("WHERE path = " in s for s in read), read


def test_a_lost_damaged_or_foreign_digest_falls_back_to_the_stored_stamps(
    project: Project,
) -> None:
    paths = _old_seeds(project, 3)
    publisher = _publisher(project)
    _built(publisher, 3)
    held = _held(project)
    assert held is not None
    scan_ns, digest = held.split(":")
    for value in (None, "", "garbage", f"{int(scan_ns) + 1}:{digest}", f"{scan_ns}:{'0' * 64}"):
        with Store(project.state / "feedsvc.sqlite3") as store, store.transaction():
            if value is None:
                store._db.execute("DELETE FROM meta WHERE name = ?", (STAMPS_META,))
            else:
                store.set_meta(STAMPS_META, value)
        results, unchanged, read = _scan(publisher)
        assert (results, unchanged) == ({}, 3), value
        assert read, value  # compared row by row, as before the digest
    paths[1].unlink()
    assert publisher.build().deleted == 1


def test_every_stamp_written_drops_the_digest(project: Project) -> None:
    [path, other] = _old_seeds(project, 2)
    publisher = _publisher(project)
    _built(publisher, 2)
    assert _held(project)
    assert publisher.build([path]).unchanged == 1  # a named file is read and recorded again
    os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS + 1))  # a stamp the store must write
    publisher.build([path])
    assert _held(project) is None
    assert publisher.build().unchanged == 2  # a full build compares and keeps it again
    assert _held(project)
    with Store(project.state / "feedsvc.sqlite3") as store:
        [state] = store.file_states([path.name]).values()
        with store.transaction():
            store.put_file(state)
            assert store.get_meta(STAMPS_META) is None
    publisher.build()
    with Store(project.state / "feedsvc.sqlite3") as store, store.transaction():
        store.delete_file(other.name)
        assert store.get_meta(STAMPS_META) is None


def test_no_digest_while_a_seed_is_rejected_or_a_key_shared(project: Project) -> None:
    _old_seeds(project, 2)
    publisher = _publisher(project)
    _built(publisher, 2)
    bad = project.write_seed("100_00000000000000aa.txt", "no date line here\n")
    os.utime(bad, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    assert publisher.build().errors
    assert not _held(project)  # a rejected seed is read again by every full build
    results, _, read = _scan(publisher)
    assert list(results) == [bad.name]
    assert read
    bad.unlink()
    twin = project.write_seed("sub/000_0000000000000000.txt", seed_text("Zwilling."))
    os.utime(twin, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    publisher.build()
    assert not _held(project)  # files of a shared key are parsed again by every full build
    results, _, _ = _scan(publisher)
    assert set(results) == {"000_0000000000000000.txt", "sub/000_0000000000000000.txt"}
    twin.unlink()
    publisher.build()
    assert _held(project)
    assert _scan(publisher) == ({}, 2, [])


def test_a_file_state_written_outside_a_build_is_not_trusted_away(project: Project) -> None:
    """The store's own writers drop the digest: a file recorded as rejected (as an older
    feedsvc might) is read again by the next full build."""
    [path, _] = _old_seeds(project, 2)
    publisher = _publisher(project)
    _built(publisher, 2)
    with Store(project.state / "feedsvc.sqlite3") as store:
        [state] = store.file_states([path.name]).values()
        with store.transaction():
            store.put_file(dataclasses.replace(state, error="x"))
    results, _, _ = _scan(publisher)
    assert list(results) == [path.name]


def test_on_postgresql_the_digest_is_kept_trusted_and_dropped_the_same_way(
    project: Project, pg_schema_url: str
) -> None:
    [path, other, _] = _old_seeds(project, 3)
    publisher = _publisher(project, store_url=pg_schema_url)
    publisher.racy_ns = CLOCK_BEHIND_NS
    _built(publisher, 3)

    def held() -> str | None:
        with publisher.open_store() as store:
            return store.get_meta(STAMPS_META)

    def scan() -> tuple[list[str], int, str | None]:
        with publisher.open_store() as store:
            found = publisher.scan(store)
            results = [r.path for r in found.results]
        return results, found.unchanged, found.listed.held if found.listed else None

    kept = held()
    assert kept
    assert scan() == ([], 3, kept)  # trusted: the stored stamps are not read
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("Nummer 0.", "Nummer X."), encoding="utf-8")  # same size
    os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    assert scan() == ([path.name], 2, None)
    assert publisher.build().changed == 1
    assert held() not in (None, kept)
    os.utime(other, ns=(OLD_MTIME_NS, OLD_MTIME_NS + 1))
    publisher.build([other])  # a named build writes its stamp: the digest is dropped
    assert held() is None
    assert publisher.build().unchanged == 3
    assert scan()[2] is not None


def test_a_racy_file_read_again_unchanged_leaves_the_duplicate_keys_unread(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing written to the files table: the digest still holds, and with it "no key is
    shared", so the build's report does not read the keys again either."""
    [path, _] = _old_seeds(project, 2)
    os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS + 10**9 * 3600 * 24 * 365 * 10))  # racy
    publisher = _publisher(project)
    _built(publisher, 2)
    statements: list[str] = []
    opened = Publisher.open_store

    def traced(self: Publisher, *, verify: bool = False) -> Store:
        store = opened(self, verify=verify)
        store._db.set_trace_callback(statements.append)  # type: ignore[attr-defined]
        return store

    monkeypatch.setattr(Publisher, "open_store", traced)
    report = publisher.build()
    assert (report.unchanged, report.errors) == (2, [])
    assert [s for s in statements if "GROUP BY key" in s] == []
    assert [s for s in statements if "THEN size ELSE -1" in s] == []  # no stamp compared
