"""The scan stage on real files: folders that cannot be listed, hostile names, change detection.

Each test names the issue #7 item it guards; every one of them failed on the code before.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from feedsvc import Publisher, load_settings
from feedsvc.build.fingerprints import ParseOptions
from feedsvc.build.scan import FileResult
from feedsvc.errors import MassDeletionError, SeedPathError, SeedsDirError
from feedsvc.seeds import parse_seed
from feedsvc.store import SCHEMA_VERSION
from feedsvc.store import SQLiteStore as Store

from .conftest import Project, parse_feed, seed_text

OLD_MTIME_NS = 1_735_689_600 * 10**9  # 2025-01-01, like every file of the shared corpus


def _hex(n: int) -> str:
    return f"{n:016x}"


def _publisher(project: Project, clock: datetime | None = None, **overrides: Any) -> Publisher:
    settings = load_settings(config=project.config, env={}, overrides=overrides)
    if clock is None:
        return Publisher(settings)
    return Publisher(settings, clock=lambda: clock)


def _seeds(project: Project, count: int, folder: str = "", *, start: int = 0) -> list[Path]:
    prefix = f"{folder}/" if folder else ""
    return [
        project.write_seed(f"{prefix}{n:03d}_{_hex(n)}.txt", seed_text(f"Meldung Nummer {n}."))
        for n in range(start, start + count)
    ]


def _snapshot(feeds: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(feeds)): p.read_bytes() for p in sorted(feeds.rglob("*")) if p.is_file()
    }


def _live(project: Project) -> int:
    with _publisher(project).open_store() as store:
        return store.count_live()


def _scan(publisher: Publisher, paths: list[Path] | None = None) -> dict[str, FileResult]:
    """One scan's results by path, without publishing it."""
    with publisher.open_store() as store:
        return {r.path: r for r in publisher.scan(store, paths).results}


def _unread(publisher: Publisher, name: str) -> bool:
    """Whether a full scan proves seed ``name`` unchanged by its stat alone: then it is not
    even a result, only counted (``ScanResult.unchanged``), and its bytes are not read."""
    with publisher.open_store() as store:
        scan = publisher.scan(store)
        results = {r.path: r for r in scan.results}
    return name not in results and scan.unchanged > 0


# --- item 1: a missing or unreadable folder is an error, never a deletion ---------------------


def test_a_missing_seeds_dir_raises_and_keeps_everything(project: Project) -> None:
    _seeds(project, 3)
    assert _publisher(project).build().total == 3
    before = _snapshot(project.feeds)
    with pytest.raises(SeedsDirError) as caught:
        _publisher(project, seeds_dir=project.root / "seedz").build()
    assert caught.value.path.endswith("seedz")
    assert caught.value.reason == "seeds folder does not exist"
    with pytest.raises(SeedsDirError):
        _publisher(project, seeds_dir=project.root / "seedz").check()
    assert _snapshot(project.feeds) == before
    assert _live(project) == 3


def test_a_missing_seeds_dir_creates_no_state_on_a_first_build(project: Project) -> None:
    with pytest.raises(SeedsDirError):
        _publisher(project, seeds_dir=project.root / "seedz").build()
    assert not project.state.exists()


def test_a_seeds_path_that_is_a_file_is_not_a_folder(project: Project) -> None:
    (project.root / "seeds.txt").write_text("oops")
    with pytest.raises(SeedsDirError, match="not a folder"):
        _publisher(project, seeds_dir=project.root / "seeds.txt").list_seeds()


def _unlistable_folder(parent: Path) -> Path:
    """A real folder that even root cannot list: its path is longer than PATH_MAX (4096)."""
    parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(20):  # 20 x 250 characters
            os.mkdir("d" * 250, dir_fd=fd)
            inner = os.open("d" * 250, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        seed = os.open("001_00000000000000ff.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(seed, seed_text().encode())
        os.close(seed)
    finally:
        os.close(fd)
    return parent


def test_a_folder_that_cannot_be_listed_raises_instead_of_dropping_its_seeds(
    project: Project,
) -> None:
    _seeds(project, 2, "politik")
    _seeds(project, 1, start=2)
    assert _publisher(project).build().total == 3
    before = _snapshot(project.feeds)
    _unlistable_folder(project.seeds / "politik")
    with pytest.raises(SeedsDirError) as caught:
        _publisher(project).build()
    assert "politik/ddd" in caught.value.path
    assert "\n" not in str(caught.value)
    assert _snapshot(project.feeds) == before
    assert _live(project) == 3


def test_an_incremental_build_without_the_seeds_dir_deletes_nothing(project: Project) -> None:
    paths = _seeds(project, 3)
    assert _publisher(project).build().total == 3
    shutil.rmtree(project.seeds)  # what the watcher then reports: every file deleted
    with pytest.raises(SeedsDirError):
        _publisher(project).build(paths)
    assert _live(project) == 3


def test_an_empty_seeds_dir_is_a_mass_deletion_and_stops(project: Project) -> None:
    paths = _seeds(project, 4)
    assert _publisher(project).build().total == 4
    before = _snapshot(project.feeds)
    for path in paths:
        path.unlink()
    with pytest.raises(MassDeletionError) as caught:
        _publisher(project).build()
    assert (caught.value.would_delete, caught.value.published, caught.value.limit) == (4, 4, 2)
    assert "--max-delete all" in str(caught.value)
    assert _snapshot(project.feeds) == before
    assert _live(project) == 4
    # the watcher's way (each deleted path named) is stopped the same
    with pytest.raises(MassDeletionError):
        _publisher(project).build(paths)
    assert _live(project) == 4
    report = _publisher(project).build(max_delete="all")
    assert (report.total, report.deleted) == (0, 4)


@pytest.mark.parametrize(
    ("published", "deleted", "setting", "max_delete", "stops"),
    [
        (1, 1, 0.5, None, False),  # a site's only article may go
        (2, 2, 0.5, None, True),
        (4, 2, 0.5, None, False),  # half is not more than half
        (4, 3, 0.5, None, True),
        (4, 3, 0.5, 3, False),
        (4, 3, 0.5, 2, True),
        (4, 4, 1.0, None, False),  # max_delete_fraction = 1: no limit
        (4, 2, 0.0, None, True),  # 0: one at a time
    ],
)
def test_the_deletion_limit(
    project: Project,
    published: int,
    deleted: int,
    setting: float,
    max_delete: int | None,
    stops: bool,
) -> None:
    paths = _seeds(project, published)
    assert _publisher(project).build().total == published
    for path in paths[:deleted]:
        path.unlink()
    publisher = _publisher(project, max_delete_fraction=setting)
    if stops:
        with pytest.raises(MassDeletionError):
            publisher.build(max_delete=max_delete)
        assert _live(project) == published
    else:
        assert publisher.build(max_delete=max_delete).total == published - deleted


def test_moving_every_seed_to_another_folder_is_not_a_deletion(project: Project) -> None:
    _seeds(project, 3, "a")
    assert _publisher(project).build().total == 3
    ids = sorted(e.id for e in project.atom().entries)
    (project.seeds / "a").rename(project.seeds / "b")
    report = _publisher(project).build()
    assert report.total == 3
    assert sorted(e.id for e in project.atom().entries) == ids


# --- item 3: names that are not UTF-8, or carry control characters ----------------------------


def test_a_name_that_is_not_utf8_is_one_rejected_seed(project: Project) -> None:
    _seeds(project, 1)
    bad = Path(os.fsdecode(os.fsencode(project.seeds) + b"/001_\xff\xfe.txt"))
    bad.write_text(seed_text("Kaputter Name."))
    report = _publisher(project).build()
    assert report.total == 1
    [error] = report.errors
    assert str(error).endswith(
        "/001_\\xff\\xfe.txt:1: file name is not valid UTF-8; rename the file"
    )
    str(error).encode("utf-8")  # printable, storable
    assert len(project.atom().entries) == 1
    assert len(_publisher(project).check()) == 1
    # the daemon names it on its own too, then sees it go
    assert [str(e) for e in _publisher(project).build([bad]).errors] == [str(error)]
    bad.unlink()
    assert _publisher(project).build([bad]).errors == []
    bad.write_text(seed_text("Kaputter Name."))
    assert len(_publisher(project).build().errors) == 1
    bad.unlink()
    assert _publisher(project).build().errors == []


def test_a_folder_name_that_is_not_utf8_rejects_its_seeds(project: Project) -> None:
    folder = Path(os.fsdecode(os.fsencode(project.seeds) + b"/ress\xe9rt"))
    folder.mkdir()
    (folder / f"001_{_hex(1)}.txt").write_text(seed_text())
    _seeds(project, 1)
    report = _publisher(project).build()
    assert report.total == 1
    assert [e.path.rsplit("/", 2)[-2] for e in report.errors] == ["ress\\xe9rt"]


@pytest.mark.parametrize("name", ["001_a\nb.txt", "001_\x1b[31mred.txt", "a\rb/001_x.txt"])
def test_a_control_character_in_a_name_never_splits_the_error_line(
    project: Project, name: str
) -> None:
    _seeds(project, 1)
    project.write_seed(name, seed_text("Zeilenumbruch im Namen."))
    for errors in (_publisher(project).build().errors, _publisher(project).check()):
        [error] = errors
        assert str(error).isprintable(), str(error)
        assert "control character" in error.reason
    assert len(project.atom().entries) == 1


def test_a_symlink_to_an_odd_name_outside_is_reported_printably(project: Project) -> None:
    outside = Path(os.fsdecode(os.fsencode(project.root) + b"/drau\xdfen\n.txt"))
    outside.write_text(seed_text())
    (project.seeds / f"001_{_hex(1)}.txt").symlink_to(outside)
    [error] = _publisher(project).build().errors
    assert "outside" in error.reason
    assert str(error).isprintable()


# --- item 4: change detection that preserved mtimes cannot fool; errors not cached ------------


def _edit_keeping_stat(path: Path, old: str, new: str) -> None:
    """An edit of the same size with the mtime put back (``cp -p``, ``rsync -t``, ``tar``)."""
    st = path.stat()
    text = path.read_text()
    assert len(old) == len(new)
    assert old in text
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_an_edit_with_the_mtime_preserved_is_seen(project: Project) -> None:
    [path] = _seeds(project, 1)
    os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    publisher = _publisher(project)
    publisher.racy_ns = 0  # not racily clean: only size, mtime, ctime and inode decide
    assert publisher.build().total == 1
    assert _unread(publisher, path.name)  # an unchanged file is not read again
    _edit_keeping_stat(path, "Meldung Nummer 0.", "Meldung Nummer X.")
    report = publisher.build()
    assert (report.changed, report.unchanged) == (1, 0)
    assert project.atom().entries[0].title == "Meldung Nummer X. Erster Absatz mit Inhalt"


def test_a_file_swapped_for_a_twin_with_the_same_stat_is_seen(project: Project) -> None:
    [path] = _seeds(project, 1)
    os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    publisher = _publisher(project)
    publisher.racy_ns = 0
    publisher.build()
    twin = path.with_suffix(".new")
    twin.write_text(path.read_text().replace("Nummer 0.", "Nummer Y."))
    os.utime(twin, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    twin.replace(path)  # rsync's way: a new inode under the old name
    assert publisher.build().changed == 1


def test_a_racily_clean_file_is_read_again(project: Project) -> None:
    [path] = _seeds(project, 1)
    publisher = _publisher(project)
    publisher.build()
    # written just now, recorded by a scan that started about now: its stat proves nothing
    assert _scan(publisher)[path.name].hashed
    os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    future = datetime.now(UTC) + timedelta(days=400)  # a wrong clock on a share: mtime ahead
    os.utime(path, ns=(0, int(future.timestamp()) * 10**9))
    publisher.build()
    assert _scan(publisher)[path.name].hashed


def test_a_named_file_is_always_read_again(project: Project) -> None:
    [path, other] = _seeds(project, 2)
    for p in (path, other):
        os.utime(p, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    publisher = _publisher(project)
    publisher.racy_ns = 0
    publisher.build()
    results = _scan(publisher, [path])
    assert list(results) == [path.name]
    assert results[path.name].hashed
    assert results[path.name].unchanged
    assert _unread(publisher, other.name)


def test_a_seed_rejected_by_a_wrong_clock_is_published_once_the_clock_is_right(
    project: Project,
) -> None:
    _seeds(project, 3)
    wrong = datetime(2024, 10, 1, tzinfo=UTC)  # a month before the seeds' date
    report = _publisher(project, clock=wrong).build()
    assert (report.total, len(report.errors)) == (0, 3)
    assert "in the future" in report.errors[0].reason
    report = _publisher(project, clock=datetime(2024, 12, 1, tzinfo=UTC)).build()
    assert (report.total, report.new, report.errors) == (3, 3, [])


def test_raising_max_future_days_re_evaluates_rejected_seeds(project: Project) -> None:
    _seeds(project, 1)
    now = datetime(2024, 10, 28, tzinfo=UTC)  # the seeds' date, 2024-11, is 4 days ahead
    assert len(_publisher(project, clock=now).build().errors) == 1
    assert len(_publisher(project, clock=now, max_future_days=2.0).build().errors) == 1
    report = _publisher(project, clock=now, max_future_days=10.0).build()
    assert (report.total, report.errors) == (1, [])


def test_lowering_max_seed_bytes_re_evaluates_every_seed(project: Project) -> None:
    _seeds(project, 1)
    project.write_seed(f"009_{_hex(9)}.txt", seed_text(body="Lang. " * 200))
    assert _publisher(project).build().total == 2
    report = _publisher(project, max_seed_bytes=512).build()
    assert [e.reason.split(":")[0] for e in report.errors] == ["file too large"]
    report = _publisher(project).build()
    assert (report.total, report.errors) == (2, [])


def _downgrade_to_v1(db: Path) -> None:
    """The store as version 1 left it: no ctime_ns and inode columns."""
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE files DROP COLUMN ctime_ns")
        conn.execute("ALTER TABLE files DROP COLUMN inode")
        conn.execute("UPDATE meta SET value = '1' WHERE name = 'schema'")
    conn.close()


def test_a_version_1_store_is_migrated_and_every_file_read_once(project: Project) -> None:
    [path] = _seeds(project, 1)
    os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    publisher = _publisher(project)
    publisher.racy_ns = 0
    publisher.build()
    db = project.state / "feedsvc.sqlite3"
    _downgrade_to_v1(db)
    with Store(db) as store:
        assert store.get_meta("schema") == SCHEMA_VERSION == "4"
        [state] = store.file_states().values()
        assert (state.ctime_ns, state.inode) == (0, 0)
    assert _scan(publisher)[path.name].hashed
    report = publisher.build()
    assert (report.total, report.unchanged) == (1, 1)
    assert _unread(publisher, path.name)


# --- item 16: paths named for a build that are not seeds --------------------------------------


def test_named_paths_that_are_not_seeds_are_refused(project: Project) -> None:
    [seed] = _seeds(project, 1)
    publisher = _publisher(project)
    publisher.build()
    before = _snapshot(project.feeds)
    outside = project.root / "elsewhere.txt"
    outside.write_text(seed_text())
    wrong = project.write_seed("notes.md", "x")
    missing = project.seeds / f"002_{_hex(2)}.txt"
    with pytest.raises(SeedPathError) as caught:
        publisher.build([seed, outside, wrong, missing, project.seeds], explicit=True)
    reasons = {Path(path).name: reason for path, reason in caught.value.problems}
    assert reasons == {
        "elsewhere.txt": f"not inside the seeds folder {project.seeds}",
        "notes.md": "not a seed file name (seed_pattern '*.txt')",
        missing.name: "no such file",
        "seeds": "a folder, not a seed file",
    }
    assert _snapshot(project.feeds) == before
    # the watcher passes odd paths all the time: ignored there
    assert publisher.build([outside, wrong, missing]).total == 1


def test_a_named_seed_that_was_deleted_is_a_deletion(project: Project) -> None:
    [seed, _other] = _seeds(project, 2)
    publisher = _publisher(project)
    publisher.build()
    seed.unlink()
    report = publisher.build([seed], explicit=True)
    assert (report.total, report.deleted) == (1, 1)
    assert len(parse_feed(project.feeds / "atom.xml").entries) == 1


def test_the_parse_fingerprint_covers_every_setting_parse_seed_takes() -> None:
    """A new parse_seed option must join ParseOptions, or a changed setting is never re-read."""
    taken = set(inspect.signature(parse_seed).parameters) - {"data", "source", "now", "display"}
    assert taken == {f.name for f in dataclasses.fields(ParseOptions)}
