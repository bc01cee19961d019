"""Operator mistakes and hostile names through the CLI and the daemon (#7: 1, 3, 4, 16).

Every fault must give exit status 1, one line per problem that names it, no traceback, and leave
the feeds and the store exactly as they were (the feeds read back with feedparser).
"""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import subprocess
import tarfile
from pathlib import Path

import pytest

from .conftest import Project, parse_feed, seed_text
from .harness import FEEDSVC, Daemon, key_of, make_site, seed_name, wait_for, write

OLD_MTIME = 1_735_689_600  # 2025-01-01, every file's mtime in the shared corpus
DROP_DAC = ["setpriv", "--inh-caps=-dac_override,-dac_read_search"]
DROP_DAC += ["--bounding-set=-dac_override,-dac_read_search", "--"]


def _run(project: Project, *args: str | bytes, unprivileged: bool = False) -> Result:
    """``feedsvc`` in a subprocess (argv may carry raw bytes); with ``unprivileged``, root's
    power to ignore file permissions is dropped (setpriv), so chmod 000 means what it says."""
    command, *rest = args
    cmd: list[str | bytes] = [*FEEDSVC, command, "--config", str(project.config), *rest]
    if unprivileged and os.geteuid() == 0:
        cmd = [*DROP_DAC, *cmd]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    done = subprocess.run(cmd, cwd=project.root, capture_output=True, timeout=60, env=env)
    return Result(done.returncode, done.stdout.decode(), done.stderr.decode())


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err
        self.err_lines = err.splitlines()

    def __repr__(self) -> str:
        return f"exit {self.code}\nstdout: {self.out}\nstderr: {self.err}"


def _state(project: Project) -> tuple[dict[str, bytes], list[str]]:
    """Every file in feeds/ and every row of the store."""
    feeds = {
        str(p.relative_to(project.feeds)): p.read_bytes()
        for p in sorted(project.feeds.rglob("*"))
        if p.is_file()
    }
    conn = sqlite3.connect(project.state / "feedsvc.sqlite3")
    try:
        rows = list(conn.iterdump())
    finally:
        conn.close()
    return feeds, rows


def _published(project: Project, count: int) -> list[Path]:
    paths = [
        project.write_seed(f"politik/{n:03d}_{n:016x}.txt", seed_text(f"Meldung {n}."))
        for n in range(count)
    ]
    done = _run(project, "build")
    assert done.code == 0, done
    assert len(project.atom().entries) == count
    return paths


def _refused(done: Result, *needles: str) -> None:
    """Exit 1, exactly one stderr line per problem, each naming its path, and no traceback."""
    assert done.code == 1, done
    assert len(done.err_lines) == len(needles), done
    for line, needle in zip(done.err_lines, needles, strict=True):
        assert line.startswith("Error: "), done
        assert needle in line, done
    assert "Traceback" not in done.err


# --- item 1 ---------------------------------------------------------------------------------


def test_a_mistyped_seeds_dir_changes_nothing(project: Project) -> None:
    _published(project, 3)
    before = _state(project)
    for command in ("build", "check"):
        done = _run(project, command, "--seeds", str(project.root / "seedz"))
        _refused(done, "seedz: seeds folder does not exist")
        assert done.out == ""
    assert _state(project) == before
    assert len(parse_feed(project.feeds / "atom.xml").entries) == 3


def test_an_unreadable_folder_stops_build_and_check(project: Project) -> None:
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("needs setpriv to test file permissions as root")
    _published(project, 3)
    project.write_seed(f"003_{3:016x}.txt", seed_text("Oben."))
    assert _run(project, "build").code == 0
    before = _state(project)
    folder = project.seeds / "politik"
    folder.chmod(0)
    try:
        if os.geteuid() == 0:
            probe = subprocess.run([*DROP_DAC, "ls", folder], capture_output=True, check=False)
            if b"Permission denied" not in probe.stderr:
                pytest.skip(f"cannot drop root's file permission override here: {probe.stderr!r}")
        for command in ("build", "check"):
            _refused(_run(project, command, unprivileged=True), "politik: permission denied")
    finally:
        folder.chmod(0o755)
    assert _state(project) == before
    assert len(parse_feed(project.feeds / "atom.xml").entries) == 4


def test_an_emptied_seeds_dir_stops_unless_allowed(project: Project) -> None:
    paths = _published(project, 3)
    before = _state(project)
    for path in paths:
        path.unlink()
    _refused(_run(project, "build"), "would unpublish 3 of 3 published articles (limit 1)")
    _refused(_run(project, "build", "--max-delete", "2"), "would unpublish 3 of 3")
    assert _state(project) == before
    usage = _run(project, "build", "--max-delete", "most")
    assert usage.code == 2
    assert "neither a number of articles nor 'all'" in usage.err
    done = _run(project, "build", "--max-delete", "all")
    assert done.code == 0, done
    assert done.out.startswith("0 articles (0 new, 0 changed, 3 deleted, 0 errors)")
    assert parse_feed(project.feeds / "atom.xml").entries == []


# --- item 3 ---------------------------------------------------------------------------------


def test_a_name_that_is_not_utf8_is_one_rejected_seed(project: Project) -> None:
    project.write_seed(f"001_{1:016x}.txt", seed_text("Gut."))
    bad = os.fsencode(project.seeds) + b"/002_\xff.txt"
    with open(bad, "wb") as f:
        f.write(seed_text("Kaputt.").encode())
    line = f"{project.seeds}/002_\\xff.txt:1: file name is not valid UTF-8; rename the file"
    done = _run(project, "build")
    assert done.code == 1, done
    assert done.err_lines == [line]
    assert done.out.startswith("1 article (1 new, 0 changed, 0 deleted, 1 errors)")
    [entry] = parse_feed(project.feeds / "atom.xml").entries
    assert entry.title == "Gut. Erster Absatz mit Inhalt"
    named = _run(project, "build", bad)
    assert (named.code, named.err_lines) == (1, [line]), named
    checked = _run(project, "check")
    assert (checked.code, checked.err_lines) == (1, [line]), checked
    assert checked.out == "2 seeds checked, 1 errors\n"
    os.unlink(bad)
    done = _run(project, "build", bad)  # the watcher's way: a deleted path, named
    assert (done.code, done.err) == (0, ""), done


def test_a_newline_in_a_name_stays_on_one_line(project: Project) -> None:
    project.write_seed(f"001_{1:016x}.txt", seed_text("Gut."))
    project.write_seed("002_zwei\nzeilen.txt", seed_text("Zwei Zeilen."))
    for command in ("build", "check"):
        done = _run(project, command)
        assert done.code == 1, done
        assert done.err_lines == [
            f"{project.seeds}/002_zwei\\nzeilen.txt:1: file name contains a control character;"
            " rename the file"
        ]
    assert len(parse_feed(project.feeds / "atom.xml").entries) == 1


def test_the_daemon_rejects_a_name_that_is_not_utf8_and_carries_on(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site")
    daemon = Daemon(site)
    try:
        seeds = os.fsencode(daemon.seeds)
        with open(seeds + b"/" + seed_name(1).encode().replace(b".txt", b"\xfe.txt"), "wb") as f:
            f.write(seed_text("Kaputt.").encode())
        write(daemon.seeds / seed_name(2), seed_text("Danach."))
        wait_for(lambda: key_of(2) in daemon.entries(), what="the seed written after it")
        errors = wait_for(lambda: daemon.status()["errors"], what="the rejected name")
        assert [e["reason"] for e in errors] == ["file name is not valid UTF-8; rename the file"]
        assert errors[0]["path"].endswith("\\xfe.txt")
        assert daemon.get("/healthz")[0] == 200
    finally:
        assert daemon.stop() == 0


# --- item 4 ---------------------------------------------------------------------------------


def test_a_same_size_edit_with_the_mtime_kept_is_published(project: Project) -> None:
    [first, second] = _published(project, 2)
    for path in (first, second):
        os.utime(path, (OLD_MTIME, OLD_MTIME))
    assert _run(project, "build").code == 0
    # cp -p: the same size and mtime, new bytes
    first.write_text(first.read_text().replace("Meldung 0.", "Meldung X."))
    os.utime(first, (OLD_MTIME, OLD_MTIME))
    done = _run(project, "build", str(first))
    assert done.code == 0, done
    assert "(0 new, 1 changed" in done.out
    # tar: an archive of an edited copy, unpacked over the seed with its mtime
    edited = second.read_text().replace("Meldung 1.", "Meldung Y.").encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo(second.name)
        info.size, info.mtime = len(edited), OLD_MTIME
        tar.addfile(info, io.BytesIO(edited))
    archive.seek(0)
    with tarfile.open(fileobj=archive) as tar:
        tar.extractall(second.parent, filter="data")
    assert second.stat().st_mtime == OLD_MTIME
    done = _run(project, "build")
    assert done.code == 0, done
    assert "(0 new, 1 changed" in done.out
    titles = sorted(e.title for e in parse_feed(project.feeds / "atom.xml").entries)
    assert titles == [f"Meldung {c}. Erster Absatz mit Inhalt" for c in "XY"]


# --- item 16 --------------------------------------------------------------------------------


def test_build_of_paths_that_are_not_seeds_says_so(project: Project) -> None:
    _published(project, 1)
    before = _state(project)
    (project.root / "elsewhere.txt").write_text(seed_text())
    (project.seeds / "notes.md").write_text("x")
    done = _run(project, "build", "elsewhere.txt", "seeds/notes.md", "seeds/999_tippfehler.txt")
    _refused(
        done,
        "elsewhere.txt: not inside the seeds folder",
        "seeds/notes.md: not a seed file name (seed_pattern '*.txt')",
        "seeds/999_tippfehler.txt: no such file",
    )
    assert done.out == ""
    assert _state(project) == before
