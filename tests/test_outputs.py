"""Lost or damaged outputs are repaired by the next build, and only they are rewritten.

Each build stats every file it owns in feeds/ against the manifest the store recorded when it
wrote them (size, mtime, inode); what is missing or not as it was left is written again.
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import Project, parse_feed, seed_text

Snapshot = dict[str, tuple[bytes, int, int]]  # rel -> (bytes, mtime_ns, inode)


def _snapshot(feeds: Path) -> Snapshot:
    out: Snapshot = {}
    for path in sorted(feeds.rglob("*")):
        if path.is_file() and ".tmp" not in path.relative_to(feeds).parts:
            st = path.stat()
            out[path.relative_to(feeds).as_posix()] = (path.read_bytes(), st.st_mtime_ns, st.st_ino)
    return out


@pytest.fixture
def built(project: Project) -> tuple[Project, Snapshot]:
    """A site with archives, a category feed, pages and .gz files, built once."""
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
    assert {"archive/4.xml", "category/sport/archive/0.xml", "atom.xml.gz"} <= set(snapshot)
    return project, snapshot


def _garbage(path: Path) -> None:
    path.write_bytes(b"<feed>oops</feed>\n")


DAMAGE: dict[str, tuple[Callable[[Path], None], set[str]]] = {
    "rm -rf archive": (
        lambda f: shutil.rmtree(f / "archive"),
        {
            f"archive/{n}.{ext}{gz}"
            for n in range(5)
            for ext in ("xml", "rss", "json")
            for gz in ("", ".gz")
        },
    ),
    "rm one archive page": (lambda f: (f / "archive/3.xml").unlink(), {"archive/3.xml"}),
    "garbage in an archive page": (lambda f: _garbage(f / "archive/1.xml"), {"archive/1.xml"}),
    "same-size garbage": (
        lambda f: (f / "archive/2.xml").write_bytes(b"x" * (f / "archive/2.xml").stat().st_size),
        {"archive/2.xml"},
    ),
    "rm -rf articles": (
        lambda f: shutil.rmtree(f / "articles"),
        {f"articles/{n:016x}.html" for n in range(12)},
    ),
    "rm one .gz": (lambda f: (f / "rss.xml.gz").unlink(), {"rss.xml.gz"}),
    "garbage .gz": (lambda f: _garbage(f / "atom.xml.gz"), {"atom.xml.gz"}),
    "rm the main feed": (lambda f: (f / "atom.xml").unlink(), {"atom.xml"}),
    "rm index.html": (lambda f: (f / "index.html").unlink(), {"index.html"}),
    "rm a category feed": (
        lambda f: shutil.rmtree(f / "category"),
        {
            "category/sport/atom.xml",
            "category/sport/atom.xml.gz",
            "category/sport/rss.xml",
            "category/sport/rss.xml.gz",
            "category/sport/feed.json",
            "category/sport/feed.json.gz",
            *(
                f"category/sport/archive/0.{ext}{gz}"
                for ext in ("xml", "rss", "json")
                for gz in ("", ".gz")
            ),
        },
    ),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_the_next_build_repairs_exactly_what_was_lost_or_damaged(
    built: tuple[Project, Snapshot], damage: str
) -> None:
    project, before = built
    hurt, expected = DAMAGE[damage]
    hurt(project.feeds)
    result = project.build()
    assert result.exit_code == 0, result.output
    assert f"(repaired {len(expected)} missing or damaged outputs)" in result.output
    assert "(unchanged)" not in result.output
    after = _snapshot(project.feeds)
    assert set(after) == set(before)
    for rel, (data, mtime, inode) in before.items():
        assert after[rel][0] == data, rel  # every byte as a clean build wrote it
        if rel not in expected:  # and nothing else was rewritten
            assert after[rel][1:] == (mtime, inode), rel
    for rel in expected:
        if rel.endswith(".gz"):
            gzip.decompress(after[rel][0])
        elif rel.endswith(".xml"):
            parse_feed(project.feeds / rel)
    again = project.build()  # and the repair sticks: the next build has nothing to do
    assert "(unchanged)" in again.output
    assert "repaired" not in again.output


def test_a_touched_output_with_its_bytes_intact_is_not_rewritten(
    built: tuple[Project, Snapshot],
) -> None:
    project, _ = built
    page = project.feeds / "archive" / "0.xml"
    os.utime(page, ns=(1, 1))
    result = project.build()
    assert result.exit_code == 0, result.output
    assert "repaired" not in result.output
    assert page.stat().st_mtime_ns == 1  # same bytes: left alone, the new stamp recorded
    assert "(unchanged)" in project.build().output


def test_an_output_of_a_vanished_feed_is_removed_even_after_damage(
    built: tuple[Project, Snapshot],
) -> None:
    project, _ = built
    for seed in (project.seeds / "sport").iterdir():
        seed.rename(project.seeds / seed.name)  # the category empties: its feed goes away
    (project.feeds / "category" / "sport" / "rss.xml").unlink()
    result = project.build()
    assert result.exit_code == 0, result.output
    left = [p for p in (project.feeds / "category").rglob("*") if p.is_file()]
    assert left == []


# --- the write stage on its own (#8) ------------------------------------------------------------
def test_the_writer_writes_files_only_and_returns_their_stamps(tmp_path: Path) -> None:
    from feedsvc.build.outputs import Document, Writer

    root = tmp_path / "feeds"
    writer = Writer(root, gzip_feeds=True)
    docs = [
        Document("atom.xml", lambda: b"<feed/>\n", "feed", "all", "atom", compress=True),
        Document("archive/0.xml", lambda: b"<feed/>\n", "archive", "all", "atom"),
        Document("articles/0123456789abcdef.html", lambda: b"<p/>", "article", durable=False),
    ]
    written = writer.write(docs)
    assert gzip.decompress((root / "atom.xml.gz").read_bytes()) == b"<feed/>\n"
    assert not (root / "archive/0.xml.gz").exists(), "only feed documents get a .gz"
    assert [(f.path, f.kind, f.feed) for f in written.files] == [
        ("atom.xml", "feed", "all"),
        ("atom.xml.gz", "gzip", "all"),
        ("archive/0.xml", "archive", "all"),
        ("articles/0123456789abcdef.html", "article", None),
    ]
    st = (root / "atom.xml").stat()
    assert written.stamps["atom.xml"] == (st.st_size, st.st_mtime_ns, st.st_ino)
    again = writer.write(docs, remove=["archive/0.xml"])
    assert again.files == [], "equal bytes are not written again"
    assert again.stamps["archive/0.xml"] is None
    assert not (root / "archive/0.xml").exists()


def test_new_files_fsync_their_folders_once_and_a_replaced_file_is_fsynced_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold build writes only new files: no old bytes to keep, so no fsync per file (#9);
    each folder that got one is fsynced once. A file replaced keeps its fsync."""
    from feedsvc.build.outputs import Document, Writer

    synced: list[str] = []
    fsync = os.fsync

    def recording(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    root = tmp_path / "feeds"
    writer = Writer(root, gzip_feeds=True)

    def feed(rel: str, data: bytes) -> Document:
        return Document(rel, lambda: data, "archive", "all", "atom", compress=True)

    docs = [feed(f"archive/{n}.xml", b"<feed>%d</feed>\n" % n) for n in range(20)]
    docs.append(feed("atom.xml", b"<feed/>\n"))
    writer.write(docs)
    assert sorted(synced) == sorted({str(root), str(root / "archive")}), synced
    assert (root / "archive/7.xml").read_bytes() == b"<feed>7</feed>\n"
    assert gzip.decompress((root / "archive/7.xml.gz").read_bytes()) == b"<feed>7</feed>\n"
    assert {oct(p.stat().st_mode & 0o777) for p in root.rglob("*.xml*")} == {"0o644"}
    assert list((root / ".tmp").iterdir()) == []

    synced.clear()
    written = writer.write([feed("atom.xml", b"<feed>new</feed>\n")])
    assert [f.path for f in written.files] == ["atom.xml", "atom.xml.gz"]
    assert (root / "atom.xml").read_bytes() == b"<feed>new</feed>\n"
    # each replaced file (and its .gz): its temp file, then its folder, as ``write_atomic`` does
    assert [Path(p).parent for p in synced[::2]] == [root / ".tmp"] * 2
    assert synced[1::2] == [str(root)] * 2


def test_served_types_come_from_the_one_table() -> None:
    from feedsvc.build.outputs import ATOM_TYPE, JSON_FEED_TYPE, served_type
    from feedsvc.models import MEDIA_TYPES

    names = {"atom.xml": ATOM_TYPE, "feed.json": JSON_FEED_TYPE}
    assert MEDIA_TYPES["atom"] + "; charset=utf-8" == ATOM_TYPE
    assert served_type("category/sport/atom.xml", names) == ATOM_TYPE
    assert served_type("archive/3.xml", names) == ATOM_TYPE, "archive pages are Atom"
    assert served_type("category/sport/archive/0.xml", names) == ATOM_TYPE
    assert served_type("index.html", names) == "text/html; charset=utf-8"
    assert served_type("x.bin", names) == "application/octet-stream"


def test_the_summary_names_each_feed_and_counts_the_rest() -> None:
    from feedsvc.build.outputs import WrittenFile, summarize

    files = [
        WrittenFile("atom.xml", "feed", "all"),
        WrittenFile("atom.xml.gz", "gzip", "all"),
        WrittenFile("archive/4.xml", "archive", "all"),
        WrittenFile("category/sport/rss.xml", "feed", "category/sport"),
        WrittenFile("index.html", "index"),
        WrittenFile("articles/0123456789abcdef.html", "article"),
    ]
    assert summarize(files) == (
        "feed all: atom.xml, 1 archive page; feed category/sport: rss.xml; 2 HTML pages; 1 .gz file"
    )
    assert summarize([]) == ""


# --- the cheap check of the page tree (#9) -------------------------------------------------------
def _stats_of_pages(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The article pages ``os.stat`` is called on from now on (the real stat still answers)."""
    seen: list[str] = []
    real = os.stat

    def counting(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        name = os.fspath(path)
        if isinstance(name, str) and "/articles/" in name and name.endswith(".html"):
            seen.append(name.rpartition("/")[2])
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting)
    return seen


def test_a_no_change_build_stats_a_rotating_sample_of_the_pages_not_all(
    built: tuple[Project, Snapshot], monkeypatch: pytest.MonkeyPatch
) -> None:
    from feedsvc.build import plan

    project, before = built
    monkeypatch.setattr(plan, "PAGE_SAMPLE", 5)
    stats = _stats_of_pages(monkeypatch)
    pages = sorted(rel.rpartition("/")[2] for rel in before if rel.startswith("articles/"))
    samples: list[list[str]] = []
    for _ in range(3):
        stats.clear()
        result = project.build()
        assert "(unchanged)" in result.output, result.output
        samples.append(sorted(set(stats)))
    assert [len(s) for s in samples] == [5, 5, 5], "a sample a build, not every page"
    assert samples[0] == pages[:5]
    assert samples[1] == pages[5:10]
    assert samples[2] == sorted(pages[10:] + pages[:3]), "the sample wraps around"
    assert _snapshot(project.feeds) == before


def test_a_page_damaged_in_place_is_repaired_when_the_sample_reaches_it(
    built: tuple[Project, Snapshot], monkeypatch: pytest.MonkeyPatch
) -> None:
    from feedsvc.build import plan

    project, before = built
    monkeypatch.setattr(plan, "PAGE_SAMPLE", 5)
    pages = sorted(rel for rel in before if rel.startswith("articles/"))
    victim = project.feeds / pages[-1]
    with victim.open("r+b") as f:  # in place: the folder's stamp stays as it was
        f.write(b"garbage")
    outputs = []
    for _ in range(3):  # 12 pages, 5 a build: every page is stat'ed within 3 builds
        outputs.append(project.build().output)
    assert [("repaired 1 missing" in out) for out in outputs] == [False, False, True], outputs
    assert _snapshot(project.feeds)[pages[-1]][0] == before[pages[-1]][0]


@pytest.mark.parametrize("how", ["rm", "mv", "stray"])
def test_a_page_removed_renamed_or_added_is_seen_by_the_next_build(
    built: tuple[Project, Snapshot], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Names coming and going in articles/ change the folder's stamp: every page is checked."""
    from feedsvc.build import plan

    project, before = built
    monkeypatch.setattr(plan, "PAGE_SAMPLE", 2)
    pages = sorted(rel for rel in before if rel.startswith("articles/"))
    victim = project.feeds / pages[7]
    if how == "rm":
        victim.unlink()
    elif how == "mv":
        victim.rename(victim.with_suffix(".old"))
    else:
        (project.feeds / "articles" / "stray.html").write_bytes(b"not ours")
    stats = _stats_of_pages(monkeypatch)
    result = project.build()
    assert result.exit_code == 0, result.output
    assert len(set(stats)) >= len(pages), "every page checked"
    if how != "stray":
        assert "(repaired 1 missing or damaged outputs)" in result.output
    after = _snapshot(project.feeds)
    for rel in pages:
        assert after[rel] == before[rel] or rel == pages[7], rel
    assert after[pages[7]][0] == before[pages[7]][0]
    stats.clear()
    again = project.build()  # the folder's new stamp taken: back to a sample
    assert "(unchanged)" in again.output
    assert len(set(stats)) == 2
