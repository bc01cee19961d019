"""The cheap check of the archive folders (#9, target 3): a folder stamp and a rotating sample.

While the stamp of ``archive/`` (a category's ``<name>/archive/``, the HTML archive's
``pages/``) is as the last write left it, no file in it was created, removed or renamed: a
full build stats ``FOLDER_SAMPLE`` of their files, the next ones each build, instead of every
one (about 14,000 at 100,000 articles). Anything else is checked as before.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest

from feedsvc.build import plan
from feedsvc.store import SQLiteStore as Store

from .conftest import Project, seed_text

FOLDERS = ("archive/", "category/sport/archive/", "pages/")
Snapshot = dict[str, bytes]


def _snapshot(feeds: Path) -> Snapshot:
    return {
        p.relative_to(feeds).as_posix(): p.read_bytes()
        for p in sorted(feeds.rglob("*"))
        if p.is_file() and ".tmp" not in p.relative_to(feeds).parts
    }


def _in_folders(feeds: Snapshot) -> list[str]:
    return sorted(rel for rel in feeds if rel.startswith(FOLDERS) and rel.count("/") >= 1)


@pytest.fixture
def built(project: Project) -> tuple[Project, Snapshot]:
    """A site with archives, a category feed's archive, HTML archive pages and .gz files."""
    with project.config.open("a") as f:
        f.write("max_items = 3\narchive_page_size = 2\ncategory_feeds = true\n")
    for n in range(12):
        folder = "sport/" if n % 3 == 0 else ""
        project.write_seed(
            f"{folder}{n:03d}_{n:016x}.txt",
            seed_text(f"Meldung {n}.", date=f"2024-{n % 12 + 1:02d}"),
        )
    result = project.build()
    assert result.exit_code == 0, result.output
    snapshot = _snapshot(project.feeds)
    assert {"archive/4.xml", "category/sport/archive/0.xml", "pages/1.html"} <= set(snapshot)
    return project, snapshot


def _stats_in_folders(project: Project, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files of the sampled folders ``os.stat`` is called on from now on (the real stat
    still answers)."""
    seen: list[str] = []
    real = os.stat
    root = os.fspath(project.feeds) + "/"

    def counting(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        name = os.fspath(path)
        if isinstance(name, str) and name.startswith(root):
            rel = name[len(root) :]
            if rel.startswith(FOLDERS) and not rel.endswith("/"):
                seen.append(rel)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting)
    return seen


def test_a_no_change_build_stats_a_rotating_sample_of_the_archive_files(
    built: tuple[Project, Snapshot], monkeypatch: pytest.MonkeyPatch
) -> None:
    project, before = built
    monkeypatch.setattr(plan, "FOLDER_SAMPLE", 5)
    files = _in_folders(before)
    assert len(files) > 15
    stats = _stats_in_folders(project, monkeypatch)
    samples: list[list[str]] = []
    for _ in range(3):
        stats.clear()
        result = project.build()
        assert "(unchanged)" in result.output, result.output
        samples.append(sorted(set(stats)))
    assert samples == [files[0:5], files[5:10], files[10:15]], "a sample a build, in path order"
    assert _snapshot(project.feeds) == before


def test_an_archive_page_damaged_in_place_is_repaired_when_the_sample_reaches_it(
    built: tuple[Project, Snapshot], monkeypatch: pytest.MonkeyPatch
) -> None:
    project, before = built
    monkeypatch.setattr(plan, "FOLDER_SAMPLE", 5)
    files = _in_folders(before)
    victim = "archive/1.xml"
    with (project.feeds / victim).open("r+b") as f:  # in place: the folder's stamp holds
        f.write(b"garbage")
    builds = math.ceil(len(files) / 5)
    outputs = [project.build().output for _ in range(builds)]
    repaired = [n for n, out in enumerate(outputs) if "repaired" in out]
    assert repaired == [files.index(victim) // 5], outputs
    assert _snapshot(project.feeds) == before


@pytest.mark.parametrize("how", ["rm", "mv", "stray"])
@pytest.mark.parametrize("folder", ["archive", "category/sport/archive", "pages"])
def test_a_file_removed_renamed_or_added_in_a_folder_is_seen_by_the_next_build(
    built: tuple[Project, Snapshot], monkeypatch: pytest.MonkeyPatch, how: str, folder: str
) -> None:
    """Names coming and going change the folder's stamp: each of its files is checked."""
    project, before = built
    monkeypatch.setattr(plan, "FOLDER_SAMPLE", 2)
    inside = [rel for rel in _in_folders(before) if rel.rpartition("/")[0] == folder]
    victim = project.feeds / inside[-1]
    if how == "rm":
        victim.unlink()
    elif how == "mv":
        victim.rename(victim.with_suffix(".old"))
    else:
        (victim.parent / "stray.txt").write_bytes(b"not ours")
    stats = _stats_in_folders(project, monkeypatch)
    result = project.build()
    assert result.exit_code == 0, result.output
    assert set(inside) <= set(stats), "every file of the folder checked"
    if how != "stray":
        assert "(repaired 1 missing or damaged outputs)" in result.output
    after = _snapshot(project.feeds)
    assert {rel: after[rel] for rel in before} == before
    stats.clear()
    again = project.build()  # the folder's new stamp taken: back to a sample
    assert "(unchanged)" in again.output
    assert len(set(stats)) == 2


def test_a_named_build_after_a_change_it_does_not_check_leaves_it_to_the_next_full_build(
    built: tuple[Project, Snapshot], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``build SEED`` checks only what it touches; a folder changed behind its back loses its
    stamp (it is not taken as the write left it), so the next full build checks it whole."""
    project, before = built
    monkeypatch.setattr(plan, "FOLDER_SAMPLE", 2)
    (project.feeds / "archive" / "0.rss").unlink()
    seed = project.seeds / "010_000000000000000a.txt"  # among the newest: in no archive page
    seed.write_text(seed_text("Meldung 10, berichtigt.", date="2024-11"), encoding="utf-8")
    named = project.build(str(seed))
    assert named.exit_code == 0
    assert "repaired" not in named.output  # an archive page it does not touch: not checked
    result = project.build()
    assert "repaired" in result.output, result.output
    assert (project.feeds / "archive" / "0.rss").read_bytes() == before["archive/0.rss"]


def test_the_stamp_of_a_folder_no_feed_writes_any_more_is_forgotten(
    built: tuple[Project, Snapshot],
) -> None:
    project, _ = built
    with Store(project.state / "feedsvc.sqlite3") as store:
        assert set(FOLDERS) <= set(store.output_stamps())
    text = project.config.read_text().replace("category_feeds = true", "category_feeds = false")
    project.config.write_text(text)
    assert project.build().exit_code == 0
    with Store(project.state / "feedsvc.sqlite3") as store:
        folders = {rel for rel in store.output_stamps() if rel.endswith("/")}
    assert folders == {"archive/", "articles/", "pages/"}


def test_a_file_the_manifest_does_not_know_is_written_whatever_the_folder_stamp(
    built: tuple[Project, Snapshot], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store whose manifest lost a file's row while holding the folder's stamp as it is
    now (the file gone with it): the file is written by the next build, sampled or not."""
    project, before = built
    monkeypatch.setattr(plan, "FOLDER_SAMPLE", 2)
    victim = project.feeds / "archive" / "1.xml"
    victim.unlink()
    st = victim.parent.stat()
    with Store(project.state / "feedsvc.sqlite3") as store, store.transaction():
        store.record_outputs(
            {"archive/1.xml": None, "archive/": (st.st_size, st.st_mtime_ns, st.st_ino)}
        )
    assert project.build().exit_code == 0
    assert victim.read_bytes() == before["archive/1.xml"]
