"""Losing the store loses nothing readers know: a new store adopts what feeds/ published (#7).

Real builds through the CLI, a real ``import-ids``, real renames and edits; the store is then
deleted (with its WAL) the way an operator would, and the rebuilt feeds are read back.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from lxml import etree

from feedsvc.cli import main

from .conftest import Project, seed_text

ATOM = "{http://www.w3.org/2005/Atom}"
OLD_ID = "https://old.example.com/?p=7"


def _entries(feeds: Path) -> dict[str, dict[str, str]]:
    """key -> id, published, updated of every entry in every Atom document under feeds/."""
    out: dict[str, dict[str, str]] = {}
    for path in sorted(feeds.rglob("*.xml")):
        root = etree.parse(str(path)).getroot()
        if root.tag != f"{ATOM}feed":
            continue
        for entry in root.iterfind(f"{ATOM}entry"):
            links = [
                a for a in entry.iterfind(f"{ATOM}link") if a.get("rel", "alternate") == "alternate"
            ]
            key = links[0].get("href", "").rsplit("/", 1)[-1].removesuffix(".html")
            seen = {
                "id": entry.findtext(f"{ATOM}id") or "",
                "published": entry.findtext(f"{ATOM}published") or "",
                "updated": entry.findtext(f"{ATOM}updated") or "",
            }
            assert out.setdefault(key, seen) == seen, f"{key} differs between documents"
    return out


def _files(feeds: Path) -> dict[str, bytes]:
    return {
        p.relative_to(feeds).as_posix(): p.read_bytes()
        for p in sorted(feeds.rglob("*"))
        if p.is_file() and ".tmp" not in p.parts
    }


def _lose_store(project: Project) -> None:
    for suffix in ("", "-wal", "-shm"):
        (project.state / f"feedsvc.sqlite3{suffix}").unlink(missing_ok=True)


def _key(n: int) -> str:
    return f"{n:016x}"


@pytest.fixture
def history(project: Project, tmp_path: Path) -> Project:
    """A site with a past: archive pages, category feeds, a rename, an imported id, an edit."""
    with project.config.open("a", encoding="utf-8") as f:
        f.write("max_items = 3\narchive_page_size = 2\ncategory_feeds = true\n")
    for n in range(1, 10):
        folder = "politik/" if n % 2 else ""
        project.write_seed(
            f"{folder}{n:03d}_{_key(n)}.txt",
            seed_text(f"Meldung Nummer {n} aus der Stadt.", date=f"2024-{n:02d}-03"),
        )
    assert project.build().exit_code == 0
    # an id from the site's previous publisher
    old = tmp_path / "old.xml"
    old.write_text(
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>alt</title><id>x</id>'
        "<updated>2024-01-01T00:00:00Z</updated><entry><title>t</title>"
        f"<id>{OLD_ID}</id><link rel='alternate' "
        f"href='https://news.example.org/articles/{_key(7)}.html'/>"
        "<updated>2024-01-01T00:00:00Z</updated></entry></feed>",
        encoding="utf-8",
    )
    imported = CliRunner().invoke(main, ["import-ids", str(old), "--config", str(project.config)])
    assert imported.exit_code == 0, imported.output
    # a renamed file keeps its id, which now differs from the one its new name would get
    os.rename(
        project.seeds / f"politik/003_{_key(3)}.txt",
        project.seeds / f"politik/003_{_key(0x33)}.txt",
    )
    # an edit: `updated` moves to the time of the build that saw it
    project.write_seed(
        f"004_{_key(4)}.txt",
        seed_text("Meldung Nummer 4 aus der Stadt, berichtigt.", date="2024-04-03"),
    )
    assert project.build().exit_code == 0
    return project


def test_a_lost_store_is_rebuilt_with_the_published_ids_and_dates(history: Project) -> None:
    before = _entries(history.feeds)
    files = _files(history.feeds)
    assert before[_key(7)]["id"] == OLD_ID
    assert before[_key(0x33)]["id"].endswith(f":{_key(3)}")  # the id from before the rename
    assert before[_key(4)]["updated"] != before[_key(4)]["published"]

    _lose_store(history)
    result = history.build()

    assert result.exit_code == 0, result.output
    assert f"adopted {len(before)} ids from" in result.output
    assert _entries(history.feeds) == before
    after = _files(history.feeds)  # byte for byte, archive pages and .gz included
    assert [name for name in files if after.get(name) != files[name]] == []
    assert after.keys() == files.keys()
    again = history.build()  # the ledger is whole again: nothing to adopt, nothing to write
    assert "adopted" not in again.output
    assert "(unchanged)" in again.output


def test_an_emptied_store_file_is_a_lost_store_too(history: Project) -> None:
    before = _entries(history.feeds)
    for suffix in ("-wal", "-shm"):
        (history.state / f"feedsvc.sqlite3{suffix}").unlink(missing_ok=True)
    (history.state / "feedsvc.sqlite3").write_bytes(b"")  # `: > feedsvc.sqlite3`
    result = history.build()
    assert result.exit_code == 0, result.output
    assert _entries(history.feeds) == before


def test_what_changed_while_the_store_was_lost_is_published_rightly(history: Project) -> None:
    before = _entries(history.feeds)
    _lose_store(history)
    history.write_seed(
        f"politik/001_{_key(1)}.txt",  # edited meanwhile: same id, a new `updated`
        seed_text("Meldung Nummer 1 aus der Stadt, ergänzt.", date="2024-01-03"),
    )
    history.write_seed(  # new meanwhile: a fresh id, unlike every adopted one
        f"010_{_key(10)}.txt", seed_text("Meldung Nummer 10 aus der Stadt.", date="2024-10-03")
    )
    (history.seeds / f"002_{_key(2)}.txt").unlink()  # deleted meanwhile: gone from the feeds

    result = history.build()

    assert result.exit_code == 0, result.output
    after = _entries(history.feeds)
    assert after[_key(1)]["id"] == before[_key(1)]["id"]
    assert after[_key(1)]["updated"] > before[_key(1)]["updated"]
    assert _key(2) not in after
    ids = [e["id"] for e in after.values()]
    assert len(ids) == len(set(ids))
    for key in set(before) - {_key(1), _key(2)}:
        assert after[key] == before[key], key
    # the deleted article's id stays in the ledger: back again, it is the same entry
    history.write_seed(
        f"002_{_key(2)}.txt", seed_text("Meldung Nummer 2 aus der Stadt.", date="2024-02-03")
    )
    assert history.build().exit_code == 0
    assert _entries(history.feeds)[_key(2)]["id"] == before[_key(2)]["id"]


def test_import_ids_on_a_lost_store_adopts_the_published_ids_first(
    history: Project, tmp_path: Path
) -> None:
    before = _entries(history.feeds)
    _lose_store(history)
    result = CliRunner().invoke(
        main, ["import-ids", str(tmp_path / "old.xml"), "--config", str(history.config)]
    )
    assert result.exit_code == 0, result.output
    assert _entries(history.feeds) == before


# --- I/O failures: real read-only mounts and full disks ------------------------------------
def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


@contextmanager
def _mounted(target: Path, *args: str) -> Iterator[Path]:
    """``mount ARGS target`` for the test's length. Needs root (CI runs as root: fail there)."""
    target.mkdir(parents=True, exist_ok=True)
    done = _mount(*args, str(target)) if os.geteuid() == 0 else None
    if done is None or done.returncode != 0:
        why = "not root" if done is None else done.stderr.strip()
        if os.environ.get("CI") == "true":
            pytest.fail(f"mount is needed for this fault and works on CI: {why}")
        pytest.skip(f"cannot mount here ({why})")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


@contextmanager
def _read_only(folder: Path) -> Iterator[Path]:
    with _mounted(folder, "--bind", str(folder)):
        remount = _mount("-o", "remount,ro,bind", str(folder))
        assert remount.returncode == 0, remount.stderr
        yield folder


def _fill(folder: Path, *, leave: int = 0) -> None:
    """Fill the file system holding ``folder`` to the last block, then free ``leave`` bytes."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        with suppress(OSError):
            while os.write(fd, b"\0" * 4096):
                pass
        if leave:
            os.ftruncate(fd, os.fstat(fd).st_size - leave)
    finally:
        os.close(fd)


def _one_line(result: Any, *parts: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    assert result.output.count("\n") == 1, result.output
    for part in parts:
        assert part in result.output, result.output


def test_a_read_only_state_dir_is_one_line_for_build_run_and_backup(
    project: Project, tmp_path: Path
) -> None:
    project.write_seed(f"001_{_key(1)}.txt", seed_text())
    assert project.build().exit_code == 0
    before = _files(project.feeds)
    project.write_seed(f"002_{_key(2)}.txt", seed_text("Neu.", date="2024-12"))
    with _read_only(project.state):
        _one_line(
            project.build(),
            f"{project.state / 'lock'}: cannot take the lock: read-only file system (EROFS)",
            "nothing was published, the previous feeds and store are kept",
        )
        run = CliRunner().invoke(main, ["run", "--no-serve", "--config", str(project.config)])
        _one_line(run, "read-only file system (EROFS)")
        backup = CliRunner().invoke(
            main, ["store", "backup", str(tmp_path / "b"), "--config", str(project.config)]
        )
        assert backup.exit_code == 0, backup.output  # reading a read-only store works
    assert _files(project.feeds) == before
    assert "2 articles (1 new" in project.build().output


def test_a_full_state_disk_says_disk_full_and_nothing_was_published(project: Project) -> None:
    project.write_seed(f"001_{_key(1)}.txt", seed_text())
    with _mounted(project.state, "-t", "tmpfs", "-o", "size=1m", "tmpfs"):
        assert project.build().exit_code == 0
        before = _files(project.feeds)
        project.write_seed(f"002_{_key(2)}.txt", seed_text("Neu.", date="2024-12"))
        _fill(project.state)

        _one_line(
            project.build(),
            f"{project.state / 'feedsvc.sqlite3'}: disk full (SQLITE_",
            "nothing was published, the previous feeds and store are kept",
        )
        assert _files(project.feeds) == before

        (project.state / "filler").unlink()
        assert "2 articles (1 new" in project.build().output


def test_a_commit_that_fails_after_the_feeds_were_written_says_so_and_catches_up(
    project: Project,
) -> None:
    project.write_seed(f"001_{_key(1)}.txt", seed_text())
    with _mounted(project.state, "-t", "tmpfs", "-o", "size=1m", "tmpfs"):
        assert project.build().exit_code == 0
        project.write_seed(f"002_{_key(2)}.txt", seed_text("Neu.", date="2024-12"))
        # room for the WAL index (32 KiB) but not for the pages the commit writes
        _fill(project.state, leave=36 * 1024)

        _one_line(
            project.build(),
            f"{project.state / 'feedsvc.sqlite3'}: disk full (SQLITE_FULL)",
            "were written but the store could not record them; the next build catches up",
        )
        assert len(project.atom().entries) == 2  # true: the new feeds are out
        written = _files(project.feeds)

        (project.state / "filler").unlink()
        caught_up = project.build()
        assert "2 articles (1 new" in caught_up.output  # the store learns the new seed
        assert _files(project.feeds) == written  # under the id the feeds already carry
        assert "(unchanged)" in project.build().output


def test_a_file_size_limit_at_the_commit_is_one_true_line_without_root(
    project: Project,
) -> None:
    """RLIMIT_FSIZE (``ulimit -f``, systemd's LimitFSIZE=) fails the WAL at the commit."""
    project.write_seed(f"001_{_key(1)}.txt", seed_text())
    assert project.build().exit_code == 0
    project.write_seed(f"002_{_key(2)}.txt", seed_text("Neu.", date="2024-12"))

    def limited() -> None:  # the WAL index (32 KiB) fits, the commit's WAL frames do not
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (32 * 1024, 32 * 1024))

    done = subprocess.run(
        [sys.executable, "-c", "from feedsvc.cli import main; main()", "build", "--config",
         str(project.config)],
        capture_output=True, text=True, timeout=60, preexec_fn=limited,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"{project.state / 'feedsvc.sqlite3'}: I/O error (SQLITE_IOERR_WRITE)" in done.stderr
    assert "may write files of 32768 bytes at most" in done.stderr
    assert "were written but the store could not record them" in done.stderr
    written = _files(project.feeds)
    assert "2 articles (1 new" in project.build().output
    assert _files(project.feeds) == written


def test_a_full_feeds_disk_names_the_feeds_and_keeps_the_store(project: Project) -> None:
    project.write_seed(f"001_{_key(1)}.txt", seed_text())
    with _mounted(project.feeds, "-t", "tmpfs", "-o", "size=256k", "tmpfs"):
        assert project.build().exit_code == 0
        project.write_seed(f"002_{_key(2)}.txt", seed_text("Neu.", date="2024-12"))
        _fill(project.feeds)

        _one_line(
            project.build(),
            f"{project.feeds}: disk full (ENOSPC)",
            "nothing was published, the previous feeds and store are kept",
        )

        (project.feeds / "filler").unlink()
        assert "2 articles (1 new" in project.build().output
        assert len(project.atom().entries) == 2
