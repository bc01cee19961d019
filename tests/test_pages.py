"""render_index / render_article: strict HTML5, escaped, linked right, deterministic, and
looked at in a real headless Chromium on a phone-sized and a desktop window.

``FEEDSVC_WRITE_DOCS_SCREENSHOT=1 .venv/bin/pytest tests/test_pages.py -k desktop`` also
writes the desktop screenshots of the index and of an article page to ``docs/index.png`` and
``docs/article.png`` (the README's pictures).
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import struct
import subprocess
import tomllib
import zlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from xml.etree.ElementTree import Element

import html5lib
import pytest
from html5lib.html5parser import ParseError

from feedsvc.models import Article, FeedMeta
from feedsvc.render.feeds import article_link
from feedsvc.render.pages import PageFeed, Site, render_article, render_index
from feedsvc.seeds import parse_seed

from .conftest import serve_directory

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "seeds" / "000_98f79bfdbc50e318.txt"
NOW = datetime(2025, 1, 1, tzinfo=UTC)
SITE = Site(
    title="Nachrichten",
    subtitle="Meldungen aus aller Welt",
    base_url="http://localhost:8080/",
    language="de-AT",
    generator_version="0.1.0",
)
META = FeedMeta(
    base_url=SITE.base_url, author_name="Redaktion", language="de-AT", generator_version="0.1.0"
)
FEEDS = (
    PageFeed(
        name="all",
        title="Alle Meldungen",
        description="Jede Meldung, die neueste zuerst.",
        links={
            # Deliberately not in page order: the pages list Atom, RSS, JSON Feed.
            "json": "http://localhost:8080/feed.json",
            "atom": "http://localhost:8080/atom.xml",
            "rss": "http://localhost:8080/rss.xml",
        },
    ),
    PageFeed(
        name="kurz",
        title="Kurz & knapp",
        description="",
        links={"rss": "http://localhost:8080/kurz/rss.xml"},
    ),
)
TYPES = {
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "json": "application/feed+json",
}
LABELS = {"atom": "Atom", "rss": "RSS", "json": "JSON Feed"}
SCRIPT = "<script>alert(1)</script>"

# Invented German items (written for these tests) to sit beside the real sample seed.
EXTRA_SEEDS = {
    "001_4f1c2a9e7b3d5061.txt": (
        " date 2024-12 Die Wiener Linien verlängern die U2 bis zum Wienerberg. Fünf neue "
        "Stationen sollen den Süden der Stadt besser anbinden.\n\n"
        "Der Ausbau soll 2030 fertig sein, teilte der Verkehrsstadtrat am Montag mit. "
        "Die Kosten werden auf rund 1,2 Milliarden Euro geschätzt.\n\n"
        "Was sich für Fahrgäste ändert\n\n"
        "Während der Bauarbeiten fährt zwischen Karlsplatz und Rathaus ein Ersatzbus. "
        "„Wir wissen, dass das eine Zumutung ist“, sagte eine Sprecherin.\n"
    ),
    "002_a07e55c3910bd2f8.txt": (
        " date 2024-12 In Tirol hat es bis in tiefe Lagen geschneit. Auf mehreren Pässen "
        "herrscht Kettenpflicht.\n\n"
        "Auf der Brennerautobahn kam es am Dienstagmorgen zu stundenlangen Staus. "
        "Lkw über 7,5 Tonnen durften zeitweise nicht weiterfahren.\n\n"
        "Die Lawinenwarnstufe liegt oberhalb von 2.000 Metern bei drei von fünf.\n"
    ),
    "003_c3d2e1f0a9b8c7d6.txt": (
        " date 2024-10 Das Burgtheater eröffnet die Saison mit einer Uraufführung.\n\n"
        "Das Stück über drei Generationen einer Grazer Familie dauert knapp vier Stunden. "
        "Die Premiere war bereits Wochen im Voraus ausverkauft.\n"
    ),
}


def article(text: str, source: str, now: datetime = NOW) -> Article:
    """Parse a seed and give it the entry id the store would."""
    parsed = parse_seed(text.encode("utf-8"), source=source, now=now)
    return parsed.model_copy(update={"entry_id": "tag:example.org,2024-01-01:" + parsed.key})


def newest_first(articles: Sequence[Article]) -> list[Article]:
    return sorted(articles, key=lambda a: (a.published, a.key), reverse=True)


def realistic_articles(now: datetime = NOW) -> list[Article]:
    """The real sample seed plus the invented items, newest first as the store gives them."""
    items = [article(SAMPLE.read_text(encoding="utf-8"), SAMPLE.name, now)]
    items += [article(text, name, now) for name, text in EXTRA_SEEDS.items()]
    return newest_first(items)


HOSTILE = article(
    f" date 2024-11 Titel {SCRIPT} & Co. sind da. Zweiter Satz {SCRIPT} & mehr.\n\n"
    f"Absatz {SCRIPT} & mehr.\n\n"
    f"Zwischentitel {SCRIPT}\n\nLetzter Absatz & Schluss.\n",
    "004_0123456789abcdef.txt",
)


def strict(data: bytes) -> Element:
    """Parse with html5lib in strict mode: any HTML5 parse error raises ``ParseError``."""
    parser = html5lib.HTMLParser(
        strict=True, tree=html5lib.getTreeBuilder("etree"), namespaceHTMLElements=False
    )
    root: Element = parser.parse(data, transport_encoding="utf-8")
    return root


def text_of(element: Element) -> str:
    return "".join(element.itertext())


def alternates(root: Element) -> list[tuple[str, str, str]]:
    return [
        (link.get("type", ""), link.get("title", ""), link.get("href", ""))
        for link in root.iterfind("./head/link[@rel='alternate']")
    ]


def expected_alternates(feeds: Sequence[PageFeed]) -> list[tuple[str, str, str]]:
    return [
        (TYPES[fmt], f"{feed.title} ({LABELS[fmt]})", feed.links[fmt])
        for feed in feeds
        for fmt in ("atom", "rss", "json")
        if fmt in feed.links
    ]


# --- the strict parser is strict ----------------------------------------------------------


@pytest.mark.parametrize(
    "broken",
    [
        "<!DOCTYPE html><html><head><title>x</title></head><body><p><b>x</p></b></body></html>",
        "<!DOCTYPE html><html><head><title>x</title></head><body></div></body></html>",
        "<html><head><title>x</title></head><body><p>no doctype</p></body></html>",
        '<!DOCTYPE html><html><head><title>x</title></head><body><a href="x" href="y">'
        "</a></body></html>",
        "<!DOCTYPE html><html><head><title>x</title></head><body><span/></body></html>",
    ],
)
def test_strict_parser_rejects_broken_markup(broken: str) -> None:
    with pytest.raises(ParseError):
        strict(broken.encode())


def test_strict_parser_accepts_a_minimal_page() -> None:
    page = b"<!DOCTYPE html><html lang=de><head><title>x</title></head><body><p>a</p></body></html>"
    assert strict(page).get("lang") == "de"


# --- well-formed ----------------------------------------------------------------------------


def test_every_page_is_well_formed_html5() -> None:
    articles = [*realistic_articles(), HOSTILE]
    pages = [
        render_index(SITE, FEEDS, articles),
        render_index(SITE, FEEDS, []),
        render_index(SITE, [], articles),
        *(render_article(SITE, a, FEEDS) for a in articles),
        render_article(SITE, articles[0], []),
    ]
    for page in pages:
        root = strict(page)
        assert root.tag == "html"
        assert page.startswith(b"<!DOCTYPE html>\n")
        assert root.find("./head/meta[@charset='utf-8']") is not None
        assert root.find("./head/meta[@name='viewport']") is not None
        assert root.find("./head/style") is not None


def test_no_external_assets_and_no_scripts() -> None:
    articles = realistic_articles()
    for page in [render_index(SITE, FEEDS, articles), render_article(SITE, articles[0], FEEDS)]:
        root = strict(page)
        assert root.find(".//script") is None
        assert root.find(".//img") is None
        assert root.find(".//link[@rel='stylesheet']") is None
        assert b"@import" not in page
        assert b"url(" not in page


# --- escaping -------------------------------------------------------------------------------


def test_index_escapes_untrusted_text() -> None:
    site = SITE.model_copy(update={"title": f'Site {SCRIPT} & "Zitat"', "subtitle": SCRIPT})
    feeds = [FEEDS[0].model_copy(update={"title": f'Feed {SCRIPT} & "x"'})]
    page = render_index(site, feeds, [HOSTILE])
    assert b"<script" not in page.lower()
    root = strict(page)
    text = text_of(root.find("./body"))  # type: ignore[arg-type]
    assert f'Site {SCRIPT} & "Zitat"' in text
    assert HOSTILE.title == f"Titel {SCRIPT} & Co. sind da"
    assert HOSTILE.title in text
    assert HOSTILE.lead in text
    # Attribute values come back intact too.
    assert (TYPES["atom"], f'Feed {SCRIPT} & "x" (Atom)', feeds[0].links["atom"]) in alternates(
        root
    )


def test_article_page_escapes_untrusted_text() -> None:
    page = render_article(SITE, HOSTILE, FEEDS)
    assert b"<script" not in page.lower()
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in page
    root = strict(page)
    body = text_of(root.find("./body"))  # type: ignore[arg-type]
    for block in HOSTILE.body:
        assert block.text in body
    assert HOSTILE.lead in body
    assert text_of(root.find(".//h1")) == HOSTILE.title  # type: ignore[arg-type]
    assert text_of(root.find("./head/title")).startswith(HOSTILE.title)  # type: ignore[arg-type]
    description = root.find("./head/meta[@name='description']")
    assert description is not None
    assert description.get("content") == HOSTILE.lead


# --- links ----------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["index", "article"])
def test_autodiscovery_for_every_feed_and_format(page: str) -> None:
    articles = realistic_articles()
    data = (
        render_index(SITE, FEEDS, articles)
        if page == "index"
        else render_article(SITE, articles[0], FEEDS)
    )
    assert alternates(strict(data)) == expected_alternates(FEEDS)
    assert len(expected_alternates(FEEDS)) == 4


def test_index_subscribe_links_per_feed_and_format() -> None:
    root = strict(render_index(SITE, FEEDS, realistic_articles()))
    feed_items = root.findall(".//section[@aria-labelledby='feeds']/ul/li")
    assert len(feed_items) == len(FEEDS)
    for item, feed in zip(feed_items, FEEDS, strict=True):
        assert text_of(item.find("h3")) == feed.title  # type: ignore[arg-type]
        links = [(a.get("type"), a.get("href"), text_of(a)) for a in item.iter("a")]
        assert links == [
            (TYPES[fmt], feed.links[fmt], LABELS[fmt])
            for fmt in ("atom", "rss", "json")
            if fmt in feed.links
        ]


def test_index_lists_articles_in_order_with_permanent_links() -> None:
    articles = realistic_articles()
    root = strict(render_index(SITE, FEEDS, articles))
    items = root.findall(".//section[@aria-labelledby='newest']/ol/li")
    assert len(items) == len(articles)
    # Both kinds are here: one-sentence leads (no teaser) and longer ones.
    assert {a.lead.removesuffix(".") == a.title for a in articles} == {True, False}
    for item, a in zip(items, articles, strict=True):
        link = item.find("h3/a")
        assert link is not None
        href = link.get("href", "")
        assert href == f"articles/{a.key}.html"
        assert SITE.base_url + href == article_link(a, META)
        assert text_of(link) == a.title
        time = item.find("time")
        assert time is not None
        assert time.get("datetime") == a.published.isoformat()
        assert time.text == a.published.date().isoformat()
        # The lead is the teaser, unless the title already says all of it.
        teasers = [text_of(p) for p in item.findall("p")]
        one_sentence = a.lead.removesuffix(".") == a.title
        assert teasers == ([] if one_sentence else [a.lead])


def test_article_page_canonical_back_link_dates_and_content() -> None:
    a = realistic_articles()[0]
    later = a.model_copy(update={"updated": datetime(2025, 2, 3, 4, 5, tzinfo=UTC)})
    root = strict(render_article(SITE, later, FEEDS))
    assert root.get("lang") == a.language
    canonical = root.findall("./head/link[@rel='canonical']")
    assert [c.get("href") for c in canonical] == [article_link(a, META)]
    back = root.find(".//header/p/a")
    assert back is not None
    assert back.get("href") == "../index.html"
    times = [(t.get("datetime"), t.text) for t in root.iter("time")]
    assert times == [
        (a.published.isoformat(), a.published.date().isoformat()),
        ("2025-02-03T04:05:00+00:00", "2025-02-03"),
    ]
    blocks = [(el.tag, text_of(el)) for el in root.find(".//article") or [] if el.tag != "h1"]
    assert blocks[0] == ("p", text_of(root.find(".//p[@class='meta']")))  # type: ignore[arg-type]
    assert blocks[1:] == [
        ("p", a.lead),
        *(("h2" if b.kind == "subheading" else "p", b.text) for b in a.body),
    ]


def test_unchanged_article_shows_one_date() -> None:
    a = realistic_articles()[0]
    assert a.updated == a.published
    assert len(list(strict(render_article(SITE, a, FEEDS)).iter("time"))) == 1


def test_index_without_articles_says_so() -> None:
    root = strict(render_index(SITE, FEEDS, []))
    assert root.find(".//ol") is None
    assert "Noch keine Artikel." in text_of(root)


def test_page_chrome_follows_the_site_language() -> None:
    english = SITE.model_copy(update={"language": "en"})
    assert "Newest articles" in text_of(strict(render_index(english, FEEDS, [])))
    assert strict(render_index(english, FEEDS, [])).get("lang") == "en"
    assert "Neueste Artikel" in text_of(strict(render_index(SITE, FEEDS, [])))
    assert strict(render_index(SITE, FEEDS, [])).get("lang") == "de-AT"


def test_page_feed_rejects_unknown_formats() -> None:
    with pytest.raises(ValueError, match="unknown feed formats"):
        PageFeed(name="x", title="x", description="", links={"html": "http://x/"})


# --- deterministic --------------------------------------------------------------------------


def test_pages_are_deterministic() -> None:
    first = realistic_articles()
    second = realistic_articles()
    site = Site(**SITE.model_dump())
    assert render_index(SITE, FEEDS, first) == render_index(site, list(FEEDS), second)
    for a, b in zip(first, second, strict=True):
        assert render_article(SITE, a, FEEDS) == render_article(site, b, list(FEEDS))


# --- packaging ------------------------------------------------------------------------------


def test_package_data_covers_every_template() -> None:
    """A non-editable install has the templates: pyproject's package-data matches each one.

    (Building a wheel here would need a newer setuptools from the network; the globs are
    what setuptools reads, so checking them against the folder is the offline equivalent.)
    """
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["feedsvc"]
    package = REPO / "feedsvc"
    templates = sorted((package / "render" / "templates").iterdir())
    assert {t.name for t in templates} >= {"base.html", "index.html", "article.html"}
    for template in templates:
        relative = template.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative


# --- screenshots in headless Chromium -------------------------------------------------------

CHROMIUM = shutil.which("chromium")
# Read at import: conftest's autouse fixture hides FEEDSVC_* variables from the tests.
WRITE_DOCS_SCREENSHOT = os.environ.get("FEEDSVC_WRITE_DOCS_SCREENSHOT") == "1"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes) to pixel rows."""
    width, height = png_size(data)
    depth, colour, _, _, interlace = struct.unpack(">BBBBB", data[24:29])
    assert (depth, interlace) == (8, 0)
    bpp = {2: 3, 6: 4}[colour]
    pos, idat = 8, bytearray()
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    assert len(raw) == height * (stride + 1)
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if ftype == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif ftype == 2:
            line = bytearray((x + p) & 0xFF for x, p in zip(line, prev, strict=True))
        elif ftype == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        else:
            assert ftype == 0, f"bad PNG filter {ftype}"
        rows.append(bytes(line))
        prev = line
    return width, bpp, rows


def assert_not_blank(data: bytes) -> None:
    """Real content: many colours (anti-aliased text), and ink on a good share of the rows."""
    width, bpp, rows = png_pixels(data)
    background = rows[-1][:bpp]
    colours: set[bytes] = set()
    inked_rows = 0
    for row in rows[::3]:
        pixels = {row[i : i + bpp] for i in range(0, width * bpp, bpp)}
        colours |= pixels
        inked_rows += pixels != {background}
    assert len(colours) > 50, f"only {len(colours)} colours: blank or nearly so"
    assert inked_rows > len(rows[::3]) * 0.1, "too few rows with anything on them"


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """The index and every article page, as a build would lay them out."""
    articles = realistic_articles(datetime.now(UTC))
    root = tmp_path / "site"
    (root / "articles").mkdir(parents=True)
    (root / "index.html").write_bytes(render_index(SITE, FEEDS, articles))
    for a in articles:
        (root / "articles" / f"{a.key}.html").write_bytes(render_article(SITE, a, FEEDS))
    return root


@pytest.fixture
def served(site_dir: Path) -> Iterator[str]:
    with serve_directory(site_dir) as url:
        yield url


def screenshot(url: str, out: Path, width: int, height: int, profile: Path) -> bytes:
    assert CHROMIUM is not None
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={out}",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=90,
    )
    return out.read_bytes()


@pytest.mark.slow
@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="needs Debian's chromium (apt-get install chromium; `make test` does it as root)",
)
@pytest.mark.parametrize(
    ("window", "width", "height"), [("phone", 412, 915), ("desktop", 1280, 900)]
)
def test_screenshots_in_headless_chromium(
    served: str, tmp_path: Path, window: str, width: int, height: int
) -> None:
    sample = article(SAMPLE.read_text(encoding="utf-8"), SAMPLE.name)
    shots = {}
    for page, path in [("index", "index.html"), ("article", f"articles/{sample.key}.html")]:
        out = tmp_path / f"{page}-{window}.png"
        data = screenshot(served + path, out, width, height, tmp_path / f"profile-{page}")
        assert png_size(data) == (width, height)
        assert_not_blank(data)
        shots[page] = out
    if window == "desktop" and WRITE_DOCS_SCREENSHOT:
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shots["index"], REPO / "docs" / "index.png")
        shutil.copyfile(shots["article"], REPO / "docs" / "article.png")
    # Keep them where a person can look: pytest's tmp_path survives the run.
    print(f"screenshots: {sorted(str(p) for p in shots.values())}")
