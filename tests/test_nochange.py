"""A build with nothing changed stays light at any corpus size (#9, target 3).

The scan lists and stats every seed in one pass and compares the stats with the stored stamps
in bulk: a file so proven unchanged is counted, never a result, and nothing is read for it.
The listing's rules are checked against explicit expectations; what a no-change build imports is
checked in a fresh process (``sys.modules``), not timed: the figures are in
``bench/nochange_bench.py`` and ``bench/profile_nochange.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from feedsvc import Publisher, load_settings
from feedsvc._lang import KNOWN_CODES
from feedsvc.seeds import list_seeds, walk_seeds

from .conftest import Project, seed_text
from .test_faults_scan import DROP_DAC

OLD_MTIME_NS = 1_735_689_600 * 10**9  # 2025-01-01: older than any racy window

# What a build with nothing to write has no use for (each loads on its first use).
NOT_FOR_A_NO_CHANGE_BUILD = (
    "jinja2",
    "feedgen",
    "lxml",
    "dateutil",
    "lingua",
    "concurrent.futures.process",
    "feedsvc.build.adopt",
    "feedsvc.render.feeds",
)


def _publisher(project: Project, **overrides: Any) -> Publisher:
    publisher = Publisher(load_settings(config=project.config, env={}, overrides=overrides))
    publisher.racy_ns = 0  # the stamps are old; the racy rule is test_scan's
    return publisher


def _old_seeds(project: Project, count: int) -> list[Path]:
    paths = []
    for n in range(count):
        path = project.write_seed(f"{n:03d}_{n:016x}.txt", seed_text(f"Meldung Nummer {n}."))
        os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
        paths.append(path)
    return paths


def test_a_full_scan_with_nothing_changed_counts_every_file_and_yields_none(
    project: Project,
) -> None:
    _old_seeds(project, 5)
    publisher = _publisher(project)
    assert publisher.build().new == 5
    with publisher.open_store() as store:
        scan = publisher.scan(store)
        assert list(scan.results) == []  # no per-file work: no result, no store lookup
        assert scan.unchanged == 5
    report = publisher.build()
    assert (report.total, report.unchanged, report.new, report.changed) == (5, 5, 0, 0)
    assert report.written == []


def test_a_full_scan_still_sees_every_kind_of_change_among_unchanged_files(
    project: Project,
) -> None:
    paths = _old_seeds(project, 6)
    publisher = _publisher(project)
    publisher.build()
    paths[0].unlink()  # deleted
    added = project.write_seed("999_ffffffffffffffff.txt", seed_text("Ganz neu hier."))
    os.utime(added, ns=(OLD_MTIME_NS, OLD_MTIME_NS))  # added, with an old mtime
    paths[1].write_text(seed_text("Meldung Nummer 1, berichtigt."), encoding="utf-8")
    os.utime(paths[1], ns=(OLD_MTIME_NS, OLD_MTIME_NS))  # edited, mtime kept: ctime shows it
    os.utime(paths[2], ns=(OLD_MTIME_NS, OLD_MTIME_NS + 1))  # touched only: read, same bytes
    with publisher.open_store() as store:
        scan = publisher.scan(store)
        results = {r.path: r for r in scan.results}
    assert scan.unchanged == 3  # 003 to 005; 002 was touched (its ctime moved)
    assert results[paths[0].name].gone
    assert results["999_ffffffffffffffff.txt"].article is not None
    assert results[paths[1].name].article is not None
    touched = results[paths[2].name]
    assert touched.unchanged
    assert touched.hashed
    report = publisher.build()
    assert (report.new, report.changed, report.deleted) == (1, 1, 1)


def _tree(root: Path) -> None:
    """Every case the listing decides: nesting, hidden and symlinked folders, ignored
    suffixes, a folder named like a seed, a symlinked seed, a dangling one, odd names."""
    for rel in (
        "a.txt",
        "b.md",
        ".hidden.txt",
        "edit.txt.swp",
        "partial.txt.part",
        "backup.txt~",
        "upload.tmp",
        "sub/c.txt",
        "sub/deeper/d.txt",
        "sub/.e.txt",
        ".git/f.txt",
        "news-1.txt",
        "news-2.md",
        "with space.txt",
        "line\nbreak.txt",
    ):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x", encoding="utf-8")
    (root / os.fsdecode(b"caf\xe9.txt")).write_text("x", encoding="utf-8")  # not UTF-8
    (root / "folder.txt").mkdir()
    (root / "folder.txt" / "g.txt").write_text("x", encoding="utf-8")
    outside = root.parent / "outside"
    outside.mkdir()
    (outside / "h.txt").write_text("x", encoding="utf-8")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "link.txt").symlink_to(root / "a.txt")
    (root / "dangling.txt").symlink_to(root / "nowhere.txt")


ODD = ["caf\udce9.txt", "line\nbreak.txt", "with space.txt"]
LISTED = {
    "*.txt": [
        "a.txt",
        "dangling.txt",
        "folder.txt/g.txt",
        "link.txt",
        "news-1.txt",
        "sub/c.txt",
        "sub/deeper/d.txt",
        *ODD,
    ],
    "*.md": ["b.md", "news-2.md"],
    "news-*.txt": ["news-1.txt"],
    "*": [
        "a.txt",
        "b.md",
        "dangling.txt",
        "folder.txt/g.txt",
        "link.txt",
        "news-1.txt",
        "news-2.md",
        "sub/c.txt",
        "sub/deeper/d.txt",
        *ODD,
    ],
    "[ab].*": ["a.txt", "b.md"],
}


@pytest.mark.parametrize("pattern", sorted(LISTED))
def test_the_listing_takes_exactly_the_seeds(tmp_path: Path, pattern: str) -> None:
    root = tmp_path / "seeds"
    root.mkdir()
    _tree(root)
    assert list_seeds(root, pattern) == sorted(LISTED[pattern])
    found = walk_seeds(root, pattern, stats=True)
    assert sorted(found.seeds) == sorted(LISTED[pattern])
    stats = {s[0]: s[1:] for s in found.stamped}
    assert "dangling.txt" not in stats  # no stat: ``scan_one`` looks at it properly
    for rel in set(found.seeds) - {"dangling.txt"}:
        st = os.stat(root / rel)
        assert stats[rel] == (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def test_a_folder_that_cannot_be_listed_stops_the_listing(tmp_path: Path) -> None:
    """An unreadable sub-folder: ``SeedsDirError`` naming it (checked in a process without
    root's power to ignore permissions, as ``test_faults_scan`` does)."""
    root = tmp_path / "seeds"
    (root / "locked").mkdir(parents=True)
    (root / "a.txt").write_text("x", encoding="utf-8")
    probe = (
        "import sys\nfrom pathlib import Path\nfrom feedsvc.seeds import list_seeds, walk_seeds\n"
        "from feedsvc.errors import SeedsDirError\n"
        "walk = lambda r: walk_seeds(r, '*.txt', stats=True)\n"
        "for lister in (walk, lambda r: list_seeds(r, '*.txt')):\n"
        "    try:\n        lister(Path(sys.argv[1]))\n    except SeedsDirError as e:\n"
        "        print(e.path, e.reason, sep='|')\n"
    )
    command = [sys.executable, "-c", probe, str(root)]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv to test file permissions as root")
        command = [*DROP_DAC, *command]
    (root / "locked").chmod(0)
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    finally:
        (root / "locked").chmod(0o755)
    if not out.stdout:
        pytest.skip(f"cannot drop root's file permission override here: {out.stderr!r}")
    walked, listed = out.stdout.splitlines()
    assert walked == listed == f"{root / 'locked'}|permission denied"


def test_a_no_change_build_loads_no_renderer_detector_or_pool(project: Project) -> None:
    _old_seeds(project, 3)
    assert project.build().exit_code == 0
    probe = (
        "import sys\nfrom feedsvc.cli import main\n"
        f"try:\n    main(['build', '--config', {str(project.config)!r}])\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        f"print('loaded:', *(m for m in {NOT_FOR_A_NO_CHANGE_BUILD!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    said, last = out.stdout.splitlines()[-2:]
    assert "(0 new, 0 changed, 0 deleted" in said
    assert last.split()[1:] == []


def test_the_language_codes_config_checks_are_linguas() -> None:
    from lingua import Language

    assert frozenset(lang.iso_code_639_1.name.lower() for lang in Language.all()) == KNOWN_CODES
