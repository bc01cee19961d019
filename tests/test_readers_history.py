"""What readers see (issue #11, items 2, 4 and 8), on the real corpus as a 41-feed site.

- 2: an article page links the main feed and the feeds the article is in, nothing else; the
  index lists every feed once.
- 4: every format has a way back: Atom and RSS follow RFC 5005 ``prev-archive`` (RSS through
  ``atom:link``), JSON Feed follows ``next_url``, and the HTML archive (``pages/<n>.html``)
  follows ``rel="next"`` from the index. Each walk meets every live article exactly once.
- 8: every archive page has its ``.gz`` sibling and stays within ``max_feed_bytes``; a page
  full by bytes stays byte-identical when newer entries are archived.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import Element

import html5lib
import pytest

from feedsvc.build.publisher import Publisher
from feedsvc.config import load_settings

from .conftest import Project, parse_feed, seed_text
from .readers_site import BASE_URL, make_corpus_site

BUDGET = 60 * 1024
FEEDS_WALKED = ("", "category/panorama/", "category/etat/", "2024/", "m2023-03/", "wien/")


def strict(data: bytes) -> Element:
    """html5lib in strict mode: any HTML5 parse error raises."""
    parser = html5lib.HTMLParser(
        strict=True, tree=html5lib.getTreeBuilder("etree"), namespaceHTMLElements=False
    )
    root: Element = parser.parse(data, transport_encoding="utf-8")
    return root


def _key(entry_id: str) -> str:
    return entry_id.rsplit(":", 1)[1]


def _local(url: str) -> str:
    assert url.startswith(BASE_URL), url
    return url.removeprefix(BASE_URL)


def walk_xml(feeds: Path, directory: str, fmt: str) -> list[list[str]]:
    """Atom (``atom.xml``) or RSS (``rss.xml``) and its prev-archive chain: keys per document."""
    name, suffix = {"atom": ("atom.xml", ".xml"), "rss": ("rss.xml", ".rss")}[fmt]
    doc = parse_feed(feeds / directory / name)
    docs = [[_key(e.id) for e in doc.entries]]
    seen: set[str] = set()
    while True:
        prev = [link.href for link in doc.feed.get("links", []) if link.rel == "prev-archive"]
        if not prev:
            return docs
        rel = _local(prev[0])
        assert rel.startswith(directory + "archive/"), rel
        assert rel.endswith(suffix), rel
        assert rel not in seen, f"{fmt} chain loops at {rel}"
        seen.add(rel)
        doc = parse_feed(feeds / rel)
        current = [link.href for link in doc.feed.links if link.rel == "current"]
        assert current == [BASE_URL + directory + name], rel
        docs.append([_key(e.id) for e in doc.entries])


def walk_json(feeds: Path, directory: str) -> list[list[str]]:
    """``feed.json`` and its ``next_url`` chain (JSON Feed 1.1's own paging)."""
    rel = directory + "feed.json"
    docs: list[list[str]] = []
    seen: set[str] = set()
    while True:
        data = json.loads((feeds / rel).read_text(encoding="utf-8"))
        assert data["version"] == "https://jsonfeed.org/version/1.1"
        assert data["feed_url"] == BASE_URL + rel
        docs.append([_key(item["id"]) for item in data["items"]])
        if "next_url" not in data:
            return docs
        rel = _local(data["next_url"])
        assert rel.startswith(directory + "archive/"), rel
        assert rel.endswith(".json"), rel
        assert rel not in seen, f"JSON chain loops at {rel}"
        seen.add(rel)


def walk_html(feeds: Path) -> list[str]:
    """From index.html's "all articles" link along ``rel="next"``: the article keys met."""
    index = strict((feeds / "index.html").read_bytes())
    start = [a.get("href", "") for a in index.iter("a") if a.get("href", "").startswith("pages/")]
    # numbered from the oldest (#9): the index links the newest page, the highest number
    newest = max(int(p.stem) for p in (feeds / "pages").glob("*.html"))
    assert start == [f"pages/{newest}.html"], start
    rel: str | None = start[0]
    keys: list[str] = []
    seen: set[str] = set()
    while rel is not None:
        assert rel not in seen, f"HTML archive loops at {rel}"
        seen.add(rel)
        root = strict((feeds / rel).read_bytes())
        for a in root.iterfind(".//ol/li/h3/a"):
            href = a.get("href", "")
            assert (feeds / "pages" / href).is_file(), href  # the link works
            keys.append(Path(href).stem)
        nexts = [link.get("href", "") for link in root.iterfind("./head/link[@rel='next']")]
        rel = f"pages/{nexts[0]}" if nexts else None
    assert "pages/1.html" in seen  # the walk ends at the oldest page
    assert len(seen) == newest
    return keys


def once(docs: list[list[str]]) -> set[str]:
    keys = [k for doc in docs for k in doc]
    twice = sorted(k for k, n in Counter(keys).items() if n > 1)
    assert not twice, f"{twice[:5]} more than once"
    return set(keys)


def check_chains(feeds: Path, directory: str, live: set[str]) -> None:
    """Every format of one feed: exactly ``live``, each once, and the same pages' entries."""
    atom = walk_xml(feeds, directory, "atom")
    rss = walk_xml(feeds, directory, "rss")
    feed_json = walk_json(feeds, directory)
    assert once(atom) == live, f"{directory or 'main'} atom"
    assert once(rss) == live, f"{directory or 'main'} rss"
    assert once(feed_json) == live, f"{directory or 'main'} json"
    # the same entries on the same pages in every format
    assert [set(d) for d in rss] == [set(d) for d in atom] == [set(d) for d in feed_json]


# --- the corpus as a 41-feed site, built once --------------------------------------------------
@pytest.fixture(scope="module")
def site(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("readers") / "site"
    make_corpus_site(root, corpus_dir, max_feed_bytes=BUDGET)
    Publisher(load_settings(config=root / "feedsvc.toml", env={})).build()
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _alternate_feeds(page: Path) -> tuple[set[str], Element]:
    root = strict(page.read_bytes())
    hrefs = [link.get("href", "") for link in root.iterfind("./head/link[@rel='alternate']")]
    return {_local(h).rpartition("/")[0] for h in hrefs}, root


def test_article_pages_link_the_main_feed_and_their_own_feeds_only(site: Path) -> None:
    feeds = site / "feeds"
    pages = sorted((feeds / "articles").glob("*.html"))
    assert len(pages) == 1014
    folder_of = {p.stem.split("_")[1]: p.parent.name.lower() for p in site.glob("seeds/*/*.txt")}
    linked: Counter[int] = Counter()
    for page in pages:
        dirs, root = _alternate_feeds(page)
        year = root.find(".//p[@class='meta']/time")
        assert year is not None
        published = year.get("datetime", "")[:7]
        assert "" in dirs, page.name  # the main feed, always
        assert {d for d in dirs if d.startswith("category/")} == {
            f"category/{folder_of[page.stem]}"
        }, page.name
        assert {d for d in dirs if d in ("2023", "2024")} == {published[:4]}, page.name
        assert {d for d in dirs if d.startswith("m20")} == {f"m{published}"}, page.name
        lang = root.get("lang", "")
        assert ("english" in dirs) == lang.startswith("en"), page.name
        # the body's subscribe links are the same feeds
        body = {
            _local(a.get("href", "")).rpartition("/")[0]
            for a in root.iterfind(".//section[@class='follow']/p/a")
        }
        assert body == dirs, page.name
        linked[len(dirs)] += 1
    assert max(linked) <= 8, linked  # was 41 on every page


def test_the_index_lists_every_feed_once(site: Path) -> None:
    feeds = site / "feeds"
    root = strict((feeds / "index.html").read_bytes())
    atom = [
        _local(a.get("href", ""))
        for a in root.iterfind(".//p[@class='subscribe']/a")
        if a.get("href", "").endswith("atom.xml")
    ]
    on_disk = sorted(p.relative_to(feeds).as_posix() for p in feeds.rglob("atom.xml"))
    assert len(on_disk) == 41
    assert sorted(atom) == on_disk  # each once


def test_every_format_walks_back_to_every_article_once(site: Path) -> None:
    feeds = site / "feeds"
    linked = {p.stem: _alternate_feeds(p)[0] for p in (feeds / "articles").glob("*.html")}
    every = set(linked)
    check_chains(feeds, "", every)
    for directory in FEEDS_WALKED[1:]:
        # a feed holds the articles whose pages link it (item 2 checked those links)
        live = {key for key, dirs in linked.items() if directory.rstrip("/") in dirs}
        assert live, directory
        check_chains(feeds, directory, live)
    keys = walk_html(feeds)
    assert len(keys) == len(set(keys))
    assert set(keys) == every


def test_archive_pages_have_gz_and_fit_the_budget(site: Path) -> None:
    feeds = site / "feeds"
    pages = [p for ext in ("xml", "rss", "json") for p in feeds.rglob(f"archive/*.{ext}")]
    assert len(pages) > 3 * 95  # the byte budget makes more, smaller pages than 95 Atom ones
    for page in pages:
        data = page.read_bytes()
        gz = page.with_name(page.name + ".gz")
        assert gzip.decompress(gz.read_bytes()) == data, gz
        if len(data) > BUDGET:  # allowed only for a page of one (huge) entry
            entries = data.count(b"<entry>") + data.count(b"<item>") + data.count(b'"id": ')
            assert entries <= 2, (page, len(data))  # JSON: the item's id and nothing else


# --- small sites: deletions, stability, stale files ----------------------------------------
def _configure(project: Project, extra: str) -> None:
    with project.config.open("a", encoding="utf-8") as handle:
        handle.write(extra)


def _seed(project: Project, n: int, month: int) -> Path:
    body = "\n\n".join(f"Absatz {n}.{i} " + "mit etwas Text " * 20 for i in range(3))
    return project.write_seed(
        f"{n:03d}_{n:016x}.txt",
        seed_text(
            f"Meldung {n} ist da.", date=f"20{20 + month // 12}-{month % 12 + 1:02d}", body=body
        ),
    )


def test_a_page_full_by_bytes_stays_byte_identical(project: Project) -> None:
    _configure(project, "max_items = 2\narchive_page_size = 50\nmax_feed_bytes = 12000\n")
    for n in range(20):
        _seed(project, n, n)
    assert project.build().exit_code == 0
    archive = project.feeds / "archive"
    first = {p.name: p.read_bytes() for p in sorted(archive.glob("*")) if "." in p.name}
    numbers = sorted({int(p.split(".")[0]) for p in first})
    assert len(numbers) >= 3  # 18 entries of ~2 KB do not fit in one 12 KB page of 50
    for n in range(20, 30):  # newer articles: older ones go to the archive
        _seed(project, n, n)
    assert project.build().exit_code == 0
    for name, data in first.items():
        if int(name.split(".")[0]) < numbers[-1]:  # every page but the newest was full
            assert (archive / name).read_bytes() == data, name
    for path in archive.glob("*"):
        if path.suffix in (".xml", ".rss", ".json"):
            assert path.stat().st_size <= 12000, path
    live = {f"{n:016x}" for n in range(30)}
    check_chains(project.feeds, "", live)


def test_deleted_articles_leave_every_chain(project: Project) -> None:
    _configure(project, "max_items = 3\narchive_page_size = 4\n")
    seeds = [_seed(project, n, n) for n in range(60)]
    assert project.build().exit_code == 0
    pages_before = sorted(p.name for p in (project.feeds / "pages").glob("*.html"))
    assert pages_before == ["1.html", "2.html"]
    for n in (0, 5, 6, 7, 30, 59, *range(40, 50)):
        seeds[n].unlink()
    assert project.build().exit_code == 0
    live = {f"{n:016x}" for n in range(60)} - {f"{n:016x}" for n in (0, 5, 6, 7, 30, 59)}
    live -= {f"{n:016x}" for n in range(40, 50)}
    check_chains(project.feeds, "", live)
    keys = walk_html(project.feeds)
    assert len(keys) == len(live)
    assert set(keys) == live
    assert not (project.feeds / "pages" / "2.html").exists()  # 44 articles: one page
