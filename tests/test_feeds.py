"""Many feeds from one corpus: filters, category feeds, byte budgets, archives, pages, gzip."""

from __future__ import annotations

import gzip
import html
import shutil
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest

from feedsvc import load_settings, parse_seed
from feedsvc.build.plan import Planner as SiteWriter
from feedsvc.render.feeds import render_atom, render_rss

from .conftest import Project, parse_feed, seed_text

ATOM = "{http://www.w3.org/2005/Atom}"
FH = "{http://purl.org/syndication/history/1.0}"


def _configure(project: Project, text: str) -> None:
    with project.config.open("a") as f:
        f.write(text)


def _keys(path: Path) -> list[str]:
    return [e.id.rsplit(":", 1)[1] for e in parse_feed(path).entries]


def _hex(n: int) -> str:
    return f"{n:016x}"


def test_category_feeds_from_sub_folders(project: Project) -> None:
    _configure(project, "category_feeds = true\n")
    project.write_seed(f"politik/001_{_hex(1)}.txt", seed_text("Wahl in Wien."))
    project.write_seed(f"politik/002_{_hex(2)}.txt", seed_text("Budget beschlossen."))
    project.write_seed(f"Sport & Spiel/003_{_hex(3)}.txt", seed_text("Rapid gewinnt."))
    project.write_seed(f"004_{_hex(4)}.txt", seed_text("Ohne Ordner."))
    result = project.build()
    assert result.exit_code == 0, result.output
    feeds = project.feeds
    assert sorted(_keys(feeds / "atom.xml")) == [_hex(n) for n in (1, 2, 3, 4)]
    assert _keys(feeds / "category/politik/atom.xml") == [_hex(2), _hex(1)]
    assert _keys(feeds / "category/sport-spiel/rss.xml") == [_hex(3)]
    entry = parse_feed(feeds / "category/politik/atom.xml").entries[0]
    assert entry.tags[0].term == "politik"
    # the last article of a category leaves: its feed goes too
    (project.seeds / f"Sport & Spiel/003_{_hex(3)}.txt").unlink()
    assert project.build().exit_code == 0
    assert not (feeds / "category/sport-spiel/rss.xml").exists()


def test_configured_feeds_hold_exactly_what_their_filters_say(project: Project) -> None:
    _configure(
        project,
        '\n[[feeds]]\nname = "all"\n'
        '\n[[feeds]]\nname = "ukraine"\ntitle = "Ukraine"\n'
        'keywords = ["Ukraine", "Kiew"]\nformats = ["atom", "json"]\n'
        '\n[[feeds]]\nname = "recent"\nsince = 2024-06-01\nuntil = 2024-06-30\n',
    )
    project.write_seed(
        f"001_{_hex(1)}.txt", seed_text("Angriff auf KIEW gemeldet.", date="2024-06")
    )
    project.write_seed(f"002_{_hex(2)}.txt", seed_text("Die Ukrainehilfe wächst.", date="2024-05"))
    project.write_seed(
        f"003_{_hex(3)}.txt",
        seed_text("Nichts.", date="2024-07", body="Die Ukraine verhandelt.\n\nMehr."),
    )
    result = project.build()
    assert result.exit_code == 0, result.output
    feeds = project.feeds
    assert sorted(_keys(feeds / "atom.xml")) == [_hex(1), _hex(2), _hex(3)]
    # whole words only: "Ukrainehilfe" is not "Ukraine"; any case; the body counts
    assert _keys(feeds / "ukraine/atom.xml") == [_hex(3), _hex(1)]
    assert not (feeds / "ukraine/rss.xml").exists()
    assert (feeds / "ukraine/feed.json").exists()
    assert _keys(feeds / "recent/rss.xml") == [_hex(1)]
    main = {e.id for e in parse_feed(feeds / "atom.xml").entries}
    assert {e.id for e in parse_feed(feeds / "ukraine/atom.xml").entries} <= main
    index = (feeds / "index.html").read_text(encoding="utf-8")
    assert 'href="https://news.example.org/ukraine/atom.xml"' in index


def test_byte_budget_drops_the_oldest_first(project: Project) -> None:
    body = "\n\n".join(["Ein langer Absatz mit vielen Wörtern, der Platz braucht. " * 20] * 3)
    for n in range(30):
        project.write_seed(f"{n:03d}_{_hex(n)}.txt", seed_text(f"Meldung {n}.", body=body))
    _configure(project, "max_feed_bytes = 60000\n")
    assert project.build().exit_code == 0
    for name in ("atom.xml", "rss.xml", "feed.json"):
        assert (project.feeds / name).stat().st_size <= 60000
    keys = _keys(project.feeds / "atom.xml")
    assert 1 < len(keys) < 30
    assert keys == [_hex(n) for n in range(29, 29 - len(keys), -1)]  # the newest kept


def _walk_archives(feeds: Path, base: str) -> tuple[list[str], list[list[str]]]:
    """Follow prev-archive from the current feed; return current ids and each page's ids."""
    current = ET.parse(feeds / "atom.xml").getroot()
    ids = [e.findtext(f"{ATOM}id") or "" for e in current.iter(f"{ATOM}entry")]
    pages: list[list[str]] = []
    doc = current
    while True:
        prev = [link for link in doc.iter(f"{ATOM}link") if link.get("rel") == "prev-archive"]
        if not prev:
            return ids, pages
        path = feeds / prev[0].get("href", "").removeprefix(base)
        parse_feed(path)
        doc = ET.parse(path).getroot()
        assert doc.find(f"{FH}archive") is not None
        current_link = [link for link in doc.iter(f"{ATOM}link") if link.get("rel") == "current"]
        assert current_link[0].get("href") == base + "atom.xml"
        pages.append([e.findtext(f"{ATOM}id") or "" for e in doc.iter(f"{ATOM}entry")])


@pytest.mark.slow
def test_archives_give_every_article_exactly_once(project: Project, corpus_dir: Path) -> None:
    files = sorted(corpus_dir.iterdir())  # the whole shared corpus: 1014 articles
    for f in files[:300]:
        shutil.copy(f, project.seeds)
    _configure(project, "max_items = 20\narchive_page_size = 40\nmax_feed_bytes = 0\n")
    assert project.build().exit_code == 0
    base = "https://news.example.org/"
    current, pages = _walk_archives(project.feeds, base)
    archived = [i for page in pages for i in page]
    assert len(archived) == len(set(archived)) == 280
    assert set(current).isdisjoint(archived)
    assert len(set(current) | set(archived)) == 300
    assert [len(p) for p in pages] == [40] * 7
    full_pages = {p: p.read_bytes() for p in (project.feeds / "archive").glob("*.xml")}
    # new articles push old ones out: they go onto new pages, full pages stay byte for byte
    for f in files[300:]:
        shutil.copy(f, project.seeds)
    assert project.build().exit_code == 0
    current, pages = _walk_archives(project.feeds, base)
    archived = [i for page in pages for i in page]
    assert len(set(current) | set(archived)) == len(files) == 1014
    assert set(current).isdisjoint(archived)
    assert len(archived) == len(set(archived))
    for path, data in full_pages.items():
        if len(ET.fromstring(data).findall(f"{ATOM}entry")) == 40:
            assert path.read_bytes() == data, path.name


def test_feed_extras_gzip_ttl_hub_icon_and_pages(project: Project) -> None:
    _configure(
        project,
        'icon = "icon.png"\nlogo = "https://cdn.example.org/logo.png"\ncache_max_age = 300\n',
    )
    shutil.copy(Path(__file__).parent.parent / "seeds" / "000_98f79bfdbc50e318.txt", project.seeds)
    assert project.build().exit_code == 0
    feeds = project.feeds
    for name in ("atom.xml", "rss.xml", "feed.json"):
        assert gzip.decompress((feeds / f"{name}.gz").read_bytes()) == (feeds / name).read_bytes()
    atom, rss = parse_feed(feeds / "atom.xml"), parse_feed(feeds / "rss.xml")
    assert atom.feed.icon == "https://news.example.org/icon.png"
    assert rss.feed.ttl == "15"  # the poll hint (feed_ttl_minutes), not max-age (#11)
    # every entry's link resolves to a page in feeds/
    for entry in atom.entries:
        page = feeds / entry.link.removeprefix("https://news.example.org/")
        assert page.is_file()
        assert entry.title in html.unescape(page.read_text(encoding="utf-8"))
    assert (feeds / "index.html").is_file()
    (project.seeds / "000_98f79bfdbc50e318.txt").unlink()
    assert project.build().exit_code == 0
    assert not list((feeds / "articles").glob("*.html"))


def test_removing_a_feed_from_the_config_removes_its_files(project: Project) -> None:
    project.write_seed(f"001_{_hex(1)}.txt", seed_text("Etwas."))
    original = project.config.read_text(encoding="utf-8")
    _configure(project, '\n[[feeds]]\nname = "all"\n\n[[feeds]]\nname = "extra"\n')
    assert project.build().exit_code == 0
    assert (project.feeds / "extra/atom.xml").exists()
    project.config.write_text(original, encoding="utf-8")
    assert project.build().exit_code == 0
    assert not (project.feeds / "extra/atom.xml").exists()
    assert not (project.feeds / "extra/atom.xml.gz").exists()
    assert _keys(project.feeds / "atom.xml") == [_hex(1)]


def test_hub_links_in_atom_and_rss(project: Project) -> None:
    settings = load_settings(config=project.config, env={})
    settings = settings.model_copy(update={"websub_hub": "https://hub.example.org/"})
    writer = SiteWriter(settings)
    [spec] = writer.configured
    article = parse_seed(
        seed_text().encode(), source=f"001_{_hex(1)}.txt", now=datetime.now(UTC)
    ).model_copy(update={"entry_id": "tag:x,2024:1"})
    atom = feedparser.parse(render_atom([article], spec, writer.meta))
    assert {link.rel: link.href for link in atom.feed.links}["hub"] == "https://hub.example.org/"
    rss = ET.fromstring(render_rss([article], spec, writer.meta))
    hubs = [link.get("href") for link in rss.iter(f"{ATOM}link") if link.get("rel") == "hub"]
    assert hubs == ["https://hub.example.org/"]
    assert feedparser.parse(render_rss([article], spec, writer.meta)).bozo == 0
