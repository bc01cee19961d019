"""render_atom / render_rss: escaped, valid, deterministic feeds read back with feedparser."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from html.parser import HTMLParser

import feedparser
import pytest

from feedsvc.models import Article, FeedMeta, FeedSpec
from feedsvc.render.feeds import render_atom, render_rss
from feedsvc.seeds import parse_seed

NOW = datetime(2025, 1, 1, tzinfo=UTC)
SPEC = FeedSpec(title="Testfeed", subtitle="Nachrichten")
META = FeedMeta(
    base_url="http://localhost:8080/",
    author_name="Redaktion",
    language="de-AT",
    generator_version="0.1.0",
)
ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
SCRIPT = "<script>alert(1)</script>"
Render = Callable[..., bytes]


def article(text: str, source: str = "000_98f79bfdbc50e318.txt") -> Article:
    """Parse a seed and give it the entry id the store would."""
    parsed = parse_seed(text.encode("utf-8"), source=source, now=NOW)
    return parsed.model_copy(update={"entry_id": "tag:example.org,2024-01-01:" + parsed.key})


class _Blocks(HTMLParser):
    """Top-level blocks of entry HTML as (tag, text), and every tag seen."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, str]] = []
        self.tags: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in ("p", "h2") and self._open is None:
            self._open = tag
            self.blocks.append((tag, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == self._open:
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            tag, text = self.blocks[-1]
            self.blocks[-1] = (tag, text + data)


def html_blocks(html: str) -> _Blocks:
    parser = _Blocks()
    parser.feed(html)
    parser.close()
    return parser


def html_text(html: str) -> str:
    """All text of an HTML fragment, entities resolved."""
    parser = _Blocks()
    parser.feed(f"<p>{html}</p>")
    parser.close()
    return "".join(text for _, text in parser.blocks)


def expected_blocks(a: Article) -> list[tuple[str, str]]:
    kinds = {"paragraph": "p", "subheading": "h2"}
    return [("p", a.lead)] + [(kinds[b.kind], b.text) for b in a.body]


def parsed(data: bytes, *, sanitize: bool = True) -> feedparser.FeedParserDict:
    feed = feedparser.parse(data, sanitize_html=sanitize)
    assert feed.bozo == 0, feed.get("bozo_exception")
    return feed


HOSTILE = article(
    f"date 2024-11 Lead {SCRIPT} & <b>fett</b> &amp; 'x' \"y\".\n\n"
    f"Zwischentitel {SCRIPT}\n\n"
    f'Absatz <img src=x onerror="alert(2)"> {SCRIPT} &lt;script&gt; ]]> <!-- c -->.\n'
)


def entry_html(xml: bytes, kind: str) -> str:
    """The entry's HTML as the XML parser sees it (no feedparser, no sanitizer)."""
    root = ET.fromstring(xml)
    if kind == "atom":
        node = root.find(f"{ATOM}entry/{ATOM}content")
    else:
        node = root.find(f"channel/item/{CONTENT}")
    assert node is not None
    return node.text or ""


@pytest.mark.parametrize(("kind", "render"), [("atom", render_atom), ("rss", render_rss)])
def test_script_is_escaped_in_the_raw_xml(kind: str, render: Render) -> None:
    xml = render([HOSTILE], SPEC, META)
    assert b"<script" not in xml
    assert b"<img" not in xml
    html = entry_html(xml, kind)
    # The HTML itself carries the text escaped: no live tag ever reaches a reader.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html
    assert "<img" not in html
    assert "<b>" not in html
    assert html_blocks(html).tags == ["p", "strong", "h2", "p"]
    assert html_blocks(html).blocks == expected_blocks(HOSTILE)


@pytest.mark.parametrize("render", [render_atom, render_rss])
@pytest.mark.parametrize("sanitize", [True, False])
def test_script_comes_back_as_text_from_feedparser(render: Render, sanitize: bool) -> None:
    """Also with feedparser's sanitizer off: it is not what keeps the script dead."""
    feed = parsed(render([HOSTILE], SPEC, META), sanitize=sanitize)
    [entry] = feed.entries
    assert entry.title == HOSTILE.title
    assert SCRIPT in entry.title
    html = entry.content[0].value
    assert "<script" not in html
    blocks = html_blocks(html)
    assert blocks.tags == ["p", "strong", "h2", "p"]
    assert blocks.blocks == expected_blocks(HOSTILE)
    assert SCRIPT in blocks.blocks[0][1]


def test_atom_summary_is_plain_text() -> None:
    [entry] = parsed(render_atom([HOSTILE], SPEC, META)).entries
    assert entry.summary_detail.type == "text/plain"
    assert entry.summary == HOSTILE.lead


def test_rss_description_keeps_markup_as_text() -> None:
    xml = render_rss([HOSTILE], SPEC, META)
    node = ET.fromstring(xml).find("channel/item/description")
    assert node is not None
    assert "<script" not in (node.text or "")
    [entry] = parsed(xml).entries
    assert html_text(entry.summary) == HOSTILE.lead


def test_rss_description_round_trips_plain_text() -> None:
    plain = article("date 2024-11 Ein ganz normaler Satz, mit „Zitat“ und Ümläuten.\n\nText.\n")
    [entry] = parsed(render_rss([plain], SPEC, META)).entries
    assert html_text(entry.summary) == plain.lead


def test_forbidden_characters_never_reach_the_xml_writer() -> None:
    dirty = article("date 2024-11 Ein\x0b Satz\x1b.\n\nText \x7f\x85 mit \ufffe Müll\x01.\n")
    assert dirty.warnings
    for render in (render_atom, render_rss):
        xml = render([dirty], SPEC, META)
        for bad in (b"\x0b", b"\x1b", b"\x7f", b"\x01", "\x85".encode(), "\ufffe".encode()):
            assert bad not in xml
        [entry] = parsed(xml).entries
        assert entry.title == "Ein Satz. Text mit Müll"


def test_subheadings_render_as_h2() -> None:
    a = article("date 2024-11 Satz.\n\nEins.\n\n50.000 Soldaten\n\nZwei.\n")
    for render in (render_atom, render_rss):
        [entry] = parsed(render([a], SPEC, META)).entries
        assert html_blocks(entry.content[0].value).blocks == [
            ("p", "Satz."),
            ("p", "Eins."),
            ("h2", "50.000 Soldaten"),
            ("p", "Zwei."),
        ]


def test_entries_keep_their_order_ids_links_and_dates() -> None:
    older = article("date 2024-10 Alt.\n\nText.\n", source="000_0000000000000001.txt")
    newer = article("date 2024-11-05T10:00:00+01:00 Neu.\n\nText.\n", "001_0000000000000002.txt")
    for render in (render_atom, render_rss):
        feed = parsed(render([newer, older], SPEC, META))
        assert [e.id for e in feed.entries] == [newer.entry_id, older.entry_id]
        assert feed.entries[0].link == "http://localhost:8080/articles/0000000000000002.html"
        assert feed.entries[0].published_parsed[:5] == (2024, 11, 5, 9, 0)
        assert feed.feed.title == "Testfeed"
    atom = parsed(render_atom([newer, older], SPEC, META))
    assert atom.feed.updated_parsed[:5] == (2024, 11, 5, 9, 0)


def test_rendering_is_deterministic() -> None:
    a = article("date 2024-11 Satz.\n\nText.\n")
    for render in (render_atom, render_rss):
        assert render([a], SPEC, META) == render([a], SPEC, META)
        assert render([], SPEC, META) == render([], SPEC, META)


def test_empty_feed_is_valid() -> None:
    for render in (render_atom, render_rss):
        assert parsed(render([], SPEC, META)).entries == []
