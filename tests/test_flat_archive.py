"""The HTML archive numbered from the oldest (#9, issue 9 target 3): a one-file build renders
and writes only the archive pages whose content changed, so it costs the same at any size.

Page n holds articles (n-1)*50+1 .. n*50 counted from the oldest; a new article changes only
the newest page, a title edit only its own page, a deletion the pages from its place on; a
page lost or damaged is written again by the next build, alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

import feedsvc.build.plan as plan_module
from feedsvc.build.publisher import BuildReport, Publisher
from feedsvc.config import load_settings
from feedsvc.render.pages import ArchivePages, Listed

from .conftest import seed_text
from .harness import key_of, make_site, seed_name, write
from .test_readers_history import strict, walk_html

NOW = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
COUNT = 610  # 13 pages: 12 full, the newest holds 601..610


class Site:
    """A site built in this process; which archive pages each build rendered."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = make_site(root)
        self.seeds = root / "seeds"
        self.pages = root / "feeds" / "pages"
        self.rendered: list[int] = []
        render = plan_module.ArchivePages.render

        def spy(pages: ArchivePages, articles: Sequence[Listed], page: int, count: int) -> bytes:
            self.rendered.append(page)
            return render(pages, articles, page, count)

        monkeypatch.setattr(plan_module.ArchivePages, "render", spy)

    def build(self, *paths: Path) -> BuildReport:
        """A build (of ``paths`` only when given); resets ``rendered`` first."""
        self.rendered.clear()
        settings = load_settings(config=self.root / "feedsvc.toml", env={})
        publisher = Publisher(settings, clock=lambda: NOW)
        return publisher.build(list(paths) if paths else None)

    def written(self, report: BuildReport) -> list[int]:
        """The archive pages ``report`` says were written (bytes changed), by number."""
        return sorted(int(p.stem) for p in report.written if p.parent == self.pages)

    def seed(self, n: int, lead: str | None = None, date: str = "2024-11") -> Path:
        path = self.seeds / seed_name(n)
        write(path, seed_text(lead or f"Meldung {n}.", date=date))
        return path

    def order(self) -> list[str]:
        """The article keys of the whole HTML archive as a reader walks it from the index."""
        return walk_html(self.root / "feeds")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    site = Site(tmp_path / "site", monkeypatch)
    for n in range(1, COUNT + 1):  # one date: ordered by first seen (one build), then key
        site.seed(n)
    site.build()
    assert sorted(site.rendered) == list(range(1, 14))
    return site


def test_one_new_article_renders_and_writes_only_the_newest_page(site: Site) -> None:
    keys = [key_of(n) for n in range(COUNT, 0, -1)]
    assert site.order() == keys  # newest first, from pages/13.html down to pages/1.html
    first = strict((site.pages / "1.html").read_bytes())
    assert [a.get("href") for a in first.iterfind(".//ol/li/h3/a")][-1] == (
        f"../articles/{key_of(1)}.html"
    )
    report = site.build(site.seed(COUNT + 1, date="2024-12"))
    assert site.rendered == [13]
    assert site.written(report) == [13]
    assert site.order() == [key_of(COUNT + 1), *keys]


def test_a_title_edit_renders_only_its_page(site: Site) -> None:
    report = site.build(site.seed(100, "Eine neue Überschrift."))
    assert site.rendered == [2]  # articles 51..100
    assert site.written(report) == [2]
    page = (site.pages / "2.html").read_text(encoding="utf-8")
    assert "Eine neue Überschrift." in page


def test_a_deletion_renders_the_pages_from_its_place_on(site: Site) -> None:
    gone = site.seeds / seed_name(275)
    gone.unlink()
    report = site.build(gone)
    assert site.rendered == list(range(6, 14))  # 275 is on page 6 (251..300)
    assert site.written(report) == list(range(6, 14))
    assert site.order() == [key_of(n) for n in range(COUNT, 0, -1) if n != 275]
    # 602..610 go: 600 articles left, 12 full pages; the 13th is removed
    for n in range(1, 10):
        (site.seeds / seed_name(COUNT + 1 - n)).unlink()
    site.build()
    assert sorted(p.name for p in site.pages.iterdir()) == sorted(f"{n}.html" for n in range(1, 13))
    assert site.order() == [key_of(n) for n in range(COUNT - 9, 0, -1) if n != 275]
    index = strict((site.root / "feeds" / "index.html").read_bytes())
    assert [a.get("href") for a in index.iter("a") if "pages/" in a.get("href", "")] == [
        "pages/12.html"
    ]


def test_a_lost_or_damaged_page_is_written_again_alone(site: Site) -> None:
    before = {p.name: p.read_bytes() for p in site.pages.iterdir()}
    (site.pages / "3.html").unlink()
    (site.pages / "7.html").write_bytes(b"<p>damaged</p>")
    report = site.build()
    assert sorted(site.rendered) == [3, 7]
    assert site.written(report) == [3, 7]
    assert {p.name: p.read_bytes() for p in site.pages.iterdir()} == before
    # and in a one-file build
    (site.pages / "5.html").unlink()
    report = site.build(site.seed(COUNT + 1, date="2024-12"))
    assert sorted(site.rendered) == [5, 13]
    assert site.written(report) == [5, 13]
    assert (site.pages / "5.html").read_bytes() == before["5.html"]
