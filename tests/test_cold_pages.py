"""A cold build stages its article pages and swaps them in whole (#9): same bytes as pages
written one by one into an existing tree, and a kill leaves no half-written articles/."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Project
from .harness import wait_for

pytestmark = pytest.mark.slow

FEEDSVC = [sys.executable, "-c", "from feedsvc.cli import main; main()"]


def _tree(feeds: Path) -> dict[str, bytes]:
    """Every output file's bytes by path relative to feeds/ (temp files left out)."""
    return {
        p.relative_to(feeds).as_posix(): p.read_bytes()
        for p in sorted(feeds.rglob("*"))
        if p.is_file() and ".tmp" not in p.relative_to(feeds).parts
    }


def _copy_site(project: Project, name: str) -> Project:
    other = Project(project.root.parent / name)
    shutil.copytree(project.root, other.root)
    return other


def _build(project: Project) -> None:
    subprocess.run(
        [*FEEDSVC, "build", "--config", str(project.config), "-q"], check=True, capture_output=True
    )


def test_cold_build_writes_the_same_bytes_as_pages_replaced_in_place(
    project: Project, corpus_dir: Path
) -> None:
    files = sorted(corpus_dir.iterdir())[:120]
    for f in files[:-1]:
        shutil.copy(f, project.seeds)
    in_place = _copy_site(project, "in-place")
    growing = _copy_site(project, "growing")
    for site in (project, in_place, growing):
        shutil.copy(files[-1], site.seeds)
    # an existing articles/ (a stray page of ours in it): every page is replaced one by one
    (in_place.feeds / "articles").mkdir()
    (in_place.feeds / "articles" / "stray.html").write_bytes(b"old")
    # and the same content reached by a rebuild after a first build without the last seed
    os.unlink(growing.seeds / files[-1].name)
    _build(growing)
    shutil.copy(files[-1], growing.seeds)

    for site in (project, in_place, growing):
        _build(site)
    cold = _tree(project.feeds)
    assert sum(rel.startswith("articles/") for rel in cold) == len(files)
    assert _tree(in_place.feeds) == cold  # the stray page swept, every byte alike
    grown = _tree(growing.feeds)
    pages = {rel: data for rel, data in cold.items() if rel.endswith(".html")}
    assert {rel: data for rel, data in grown.items() if rel.endswith(".html")} == pages
    assert not list((project.feeds / ".tmp").iterdir())
    modes = {(p.stat().st_mode & 0o777) for p in (project.feeds / "articles").iterdir()}
    assert modes == {0o644}


def test_kill_during_a_cold_build_leaves_no_pages_and_the_next_build_finishes(
    project: Project, corpus_dir: Path
) -> None:
    for f in sorted(corpus_dir.iterdir()):
        shutil.copy(f, project.seeds)
    reference = _copy_site(project, "reference")
    _build(reference)
    staged = project.feeds / ".tmp" / "articles"

    proc = subprocess.Popen(
        [*FEEDSVC, "build", "--config", str(project.config), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: staged.is_dir() and any(staged.iterdir()),
            timeout=60,
            what="pages staged in feeds/.tmp/articles",
        )
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # the kill came while pages were staged: readers see no articles/ at all, not a part
    assert not (project.feeds / "articles").exists()

    _build(project)
    assert _tree(project.feeds) == _tree(reference.feeds)
    assert not staged.exists()


def test_the_writer_stages_pages_only_into_an_empty_tree(tmp_path: Path) -> None:
    from feedsvc.build.outputs import Document, Writer, stat_stamp

    root = tmp_path / "feeds"
    seen: list[bool] = []

    def page(n: int) -> Document:
        def render() -> bytes:
            seen.append((root / "articles").exists())  # in place already, or staged?
            return f"<p>{n}</p>".encode()

        return Document(f"articles/{n:016x}.html", render, "article", durable=False)

    feed = Document("atom.xml", lambda: b"<feed/>\n", "feed", "all", "atom")
    written = Writer(root, gzip_feeds=False).write([feed], pages=[page(1), page(2)])
    assert seen == [False, False], "pages were staged, not written into articles/"
    assert [f.path for f in written.files] == [
        "atom.xml",
        "articles/0000000000000001.html",
        "articles/0000000000000002.html",
    ]
    for rel in ("articles/0000000000000001.html", "articles/0000000000000002.html"):
        assert written.stamps[rel] == stat_stamp(str(root / rel))
    assert not list((root / ".tmp").iterdir())

    # an existing tree: each page replaced in place, an unchanged one left alone
    seen.clear()
    again = Writer(root, gzip_feeds=False).write([], pages=[page(1), page(3)])
    assert seen == [True, True]
    assert [f.path for f in again.files] == ["articles/0000000000000003.html"]


def test_a_cold_build_writes_every_file_as_the_sequential_path_does(
    project: Project, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Archive pages kept from their fitting (``Planner.render_once``), article pages and the
    HTML archive's pages from the template cut once (``ArticlePages.precompiled``,
    ``ArchivePages.precompiled``), the HTML archive from a listing: every file under feeds/
    as rendering each one through feedgen and Jinja when it is written."""
    from feedsvc.build.plan import Planner
    from feedsvc.render.pages import ArchivePages, ArticlePages

    with project.config.open("a") as f:  # small pages: many are cut by bytes, not by count
        f.write("max_feed_bytes = 60000\narchive_page_size = 20\ncategory_feeds = true\n")
    for f in sorted(corpus_dir.rglob("*.txt")):
        target = project.seeds / f.relative_to(corpus_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, target)
    sequential = _copy_site(project, "sequential")
    result = project.build()
    assert result.exit_code == 0, result.output
    monkeypatch.setattr(Planner, "render_once", False)
    monkeypatch.setattr(ArticlePages, "precompiled", False)
    monkeypatch.setattr(ArchivePages, "precompiled", False)
    again = sequential.build()
    assert again.exit_code == 0, again.output
    cold, old = _tree(project.feeds), _tree(sequential.feeds)
    assert sorted(cold) == sorted(old)
    differ = [rel for rel in cold if cold[rel] != old[rel]]
    assert differ == []
    archives = [rel for rel in cold if "/archive/" in f"/{rel}"]
    assert len(archives) > 100
    assert not list((project.feeds / ".tmp").iterdir())
    assert [p.name for p in project.state.iterdir() if "spool" in p.name] == []


def test_article_pages_cut_from_the_template_once_equal_the_template_page_by_page() -> None:
    """Every shape a page can take: languages (labels), feeds linked or none, updated or not,
    and text that must be escaped in the title, the description and the body."""
    from datetime import UTC, datetime

    from feedsvc.render.pages import ArticlePages, PageFeed, Site
    from feedsvc.seeds import parse_seed

    site = Site(
        title='Nachrichten & "Meldungen"',
        subtitle="",
        base_url="https://news.example.org/",
        language="de-AT",
        generator_version="0.1.0",
        timezone="Europe/Vienna",
    )
    feeds = [
        PageFeed(name="all", title="Alle <b>", description="", links={"atom": "a.xml"}),
        PageFeed(name="k", title="Kurz & 'knapp'", description="x", links={"rss": "k.rss"}),
    ]
    texts = [
        " date 2024-11 <script>alert(\"x\")</script> & Co. sagen 'nein'.\n\nEin Absatz & mehr.",
        " date 2024-05-06 The council voted on Tuesday to close the bridge.\n\nIt reopens soon.",
        " date 2023-01 Le conseil a voté mardi la fermeture du pont.\n\n## Suite\n\nDétails.",
    ]
    now = datetime(2025, 1, 1, tzinfo=UTC)
    articles = []
    for n, text in enumerate(texts):
        a = parse_seed(text.encode(), source=f"{n:03d}_{n:016x}.txt", now=now, language="de-AT")
        for lang in ("de-AT", "en", "fr", "xx"):
            articles.append(a.model_copy(update={"language": lang}))
            later = datetime(2025, 2, 3, 4, 5, tzinfo=UTC)
            articles.append(a.model_copy(update={"language": lang, "updated": later}))
    pages = ArticlePages(site)
    for article in articles:
        for linked in (feeds, feeds[:1], []):
            assert pages.render(article, linked) == pages.render_template(article, linked)


def test_html_archive_pages_cut_from_the_template_once_equal_the_template_page_by_page() -> None:
    """Every shape an HTML archive page can take (the only page, the oldest, a middle one,
    the newest; full, partial, empty), with text to escape in the titles and the site, dates
    in a zone that moves the day, and feeds linked or none."""
    from datetime import UTC, datetime, timedelta

    from feedsvc.render.pages import (
        HTML_PAGE_SIZE,
        ArchivePages,
        Listed,
        PageFeed,
        Site,
        render_archive,
    )

    site = Site(
        title='Nachrichten & "Meldungen" <i>',
        subtitle="",
        base_url="https://news.example.org/",
        language="de-AT",
        generator_version="0.1.0",
        timezone="Europe/Vienna",
    )
    feeds = [PageFeed(name="all", title="Alle & 'jede'", description="", links={"atom": "a.xml"})]
    start = datetime(2024, 10, 31, 22, 30, tzinfo=UTC)
    listed = [
        Listed(
            f"Meldung {n} <b>&</b> \"{n}\" 'x'",
            f"articles/{n:016x}.html",
            start + timedelta(hours=7 * n),
        )
        for n in range(HTML_PAGE_SIZE * 3)
    ]
    cases = [(listed[:1], 1, 1), (listed[:0], 1, 1), (listed[:HTML_PAGE_SIZE], 1, 1)]
    for pages in (2, 3):
        for page in range(1, pages + 1):
            chunk = listed[(page - 1) * HTML_PAGE_SIZE : page * HTML_PAGE_SIZE]
            cases += [(chunk, page, pages), (chunk[:7], page, pages)]
    for linked in (feeds, []):
        archive = ArchivePages(site, linked)
        for chunk, page, pages in cases:
            want = render_archive(site, linked, chunk, page, pages)
            assert archive.render(chunk, page, pages) == want, (page, pages, len(chunk))
        assert len(archive._shapes) == 4, "newer and older link, each there or not"
        assert None not in archive._shapes.values(), "every shape cut, none via the template"
