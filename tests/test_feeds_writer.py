"""The entry writer (#9): Atom and RSS entries written as text, the same bytes as feedgen's.

``render_atom`` / ``render_rss`` take a document's head from feedgen and write its entries
themselves; feedgen writing the whole document (``_generator(..., entries=True)``) is the
reference, byte for byte. An article's texts are escaped once for every format.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from feedgen.feed import FeedGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc.models import MEDIA_TYPES, Block, Entry, FeedMeta, FeedSpec, Paging
from feedsvc.render import feeds
from feedsvc.render.feeds import render_atom, render_rss
from feedsvc.render.jsonfeed import render_json

from .conftest import Project, seed_text

SPEC = FeedSpec(title="Testfeed & <Co>", subtitle="Nachrichten")
META = FeedMeta(
    base_url="http://localhost:8080/",
    author_name="Redaktion",
    author_email="red@example.org",
    language="de-AT",
    generator_version="0.1.0",
    hub_url="https://hub.example.org/",
    ttl_minutes=15,
)
ARCHIVE = Paging(
    self_file="archive/3.xml", prev_archive="archive/2.xml", current="atom.xml", archive=True
)
WHEN = datetime(2024, 3, 1, 8, 30, tzinfo=UTC)

# What an XmlText may hold (no C0 but tab, LF and CR; no C1), with what needs escaping often
TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from("&<>\"'\r\n\t …äöüß€ ]]> &amp; x"),
        st.characters(
            blacklist_categories=("Cs",),
            blacklist_characters="\ufffe\uffff",
            min_codepoint=0x20,
            max_codepoint=0x2FFF,
        ),
    ),
    min_size=1,
    max_size=40,
).filter(lambda t: not any(0x7F <= ord(c) <= 0x9F for c in t))


def entry(
    n: int,
    *,
    title: str = "Titel",
    lead: str = "Der Vorspann.",
    body: tuple[tuple[str, str], ...] = (("paragraph", "Ein Absatz."),),
    source: str = "top.txt",
    language: str = "de-AT",
    entry_id: str | None = None,
    offset: timedelta = timedelta(0),
) -> Entry:
    key = f"{n:016x}"
    published = (WHEN - timedelta(hours=n)).astimezone(
        datetime.now(UTC).astimezone().tzinfo if offset else UTC
    )
    return Entry.model_validate(
        {
            "key": key,
            "source": source,
            "title": title,
            "lead": lead,
            "body": [Block(kind=k, text=t) for k, t in body],  # type: ignore[arg-type]
            "published": published + offset,
            "updated": published + offset + timedelta(minutes=n),
            "language": language,
            "content_hash": "0" * 64,
            "entry_id": entry_id or f"tag:localhost,2024-03-01:{key}",
        }
    )


def feedgen_bytes(fmt: str, articles: list[Entry], paging: Paging | None = None) -> bytes:
    """The reference: feedgen builds every entry and lxml writes the whole tree."""
    self_file = "atom.xml" if fmt == "atom" else "rss.xml"
    page = paging or Paging(self_file=self_file)
    fg = feeds._generator(articles, SPEC, META, page, MEDIA_TYPES[fmt], None, entries=True)  # type: ignore[index]
    data: bytes = fg.atom_str(pretty=True) if fmt == "atom" else fg.rss_str(pretty=True)
    return data


@pytest.fixture
def feedgen_entries(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many entries feedgen was asked to build (it is not ours: a spy, not a mock)."""
    calls: list[int] = []
    add_entry = FeedGenerator.add_entry

    def counted(self: FeedGenerator, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return add_entry(self, *args, **kwargs)

    monkeypatch.setattr(FeedGenerator, "add_entry", counted)
    return calls


def varied() -> list[Entry]:
    return [
        entry(
            n,
            title=f"Titel {n} & <b>fett</b> \"zitiert\" 'so' …",
            lead=f"Vorspann {n}: a > b & c < d, «ä»",
            body=(("paragraph", "Absatz <i>eins</i> & zwei"), ("subheading", 'Zwischen "titel"')),
            source="sport/x.txt" if n % 2 else "top.txt",
            language="en" if n % 3 == 0 else "de-AT",
            entry_id=f'https://example.org/a/{n}?a=1&b="2"' if n % 4 == 0 else None,
        )
        for n in range(12)
    ]


@pytest.mark.parametrize("paging", [None, ARCHIVE], ids=["current", "archive"])
@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_entries_written_without_feedgen_match_feedgen_bytes(
    fmt: str, paging: Paging | None, feedgen_entries: list[int]
) -> None:
    articles = varied()
    render = render_atom if fmt == "atom" else render_rss
    if paging is not None and fmt == "rss":
        paging = paging.model_copy(update={"self_file": "archive/3.rss"})
    data = render(articles, SPEC, META, paging=paging)
    assert feedgen_entries == []  # no FeedEntry built, no element tree per entry
    assert data == feedgen_bytes(fmt, articles, paging)


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_entry_feedgen_would_write_otherwise_goes_through_feedgen(
    fmt: str, feedgen_entries: list[int]
) -> None:
    """A CR (lxml writes ``&#13;``) or a tab in a link sends the document through feedgen."""
    render = render_atom if fmt == "atom" else render_rss
    for odd in (
        entry(1, lead="Zeile\r\nzwei"),
        entry(2, source="sp\tort/x.txt"),
        entry(3, entry_id="https://example.org/a\nb"),
    ):
        feedgen_entries.clear()
        data = render([entry(0), odd], SPEC, META)
        assert feedgen_entries == [1, 1]
        assert data == feedgen_bytes(fmt, [entry(0), odd])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=TEXT,
    lead=TEXT,
    paragraphs=st.lists(st.tuples(st.sampled_from(["paragraph", "subheading"]), TEXT), min_size=1),
    category=st.sampled_from(["", "sport/", "a&b <c>/"]),
    language=st.sampled_from(["de-AT", "en", 'x"y']),
    offset=st.sampled_from([timedelta(0), timedelta(hours=2)]),
)
def test_any_text_gives_feedgen_bytes(
    title: str,
    lead: str,
    paragraphs: list[tuple[str, str]],
    category: str,
    language: str,
    offset: timedelta,
) -> None:
    article = entry(
        7,
        title=title,
        lead=lead,
        body=tuple(paragraphs),
        source=f"{category}x.txt",
        language=language,
        offset=offset,
    )
    for fmt, render in (("atom", render_atom), ("rss", render_rss)):
        assert render([article, entry(8)], SPEC, META) == feedgen_bytes(fmt, [article, entry(8)])


def test_an_articles_text_is_escaped_once_for_every_format(monkeypatch: pytest.MonkeyPatch) -> None:
    """A page in Atom, RSS and JSON Feed escapes each article's texts once, in one call."""
    calls: list[int] = []
    escape: Callable[..., str] = feeds.escape

    def counted(text: str, quote: bool = True) -> str:
        calls.append(1)
        return escape(text, quote)

    monkeypatch.setattr(feeds, "escape", counted)
    articles = [
        entry(n + 100, body=(("paragraph", "a & b"), ("paragraph", '"c"'), ("subheading", "<d>")))
        for n in range(20)
    ]
    render_atom(articles, SPEC, META)
    render_rss(articles, SPEC, META)
    items = json.loads(render_json(articles, SPEC, META))["items"]
    assert len(calls) == len(articles)
    assert items[0]["content_html"] == (
        "<p><strong>Der Vorspann.</strong></p>\n<p>a &amp; b</p>\n"
        "<p>&quot;c&quot;</p>\n<h2>&lt;d&gt;</h2>"
    )


def test_archive_pages_gzip_fast_and_the_feeds_as_before(project: Project) -> None:
    """Archive pages' ``.gz`` siblings at ``ARCHIVE_GZIP_LEVEL`` (3), the feeds' at 6."""
    from feedsvc.build.outputs import ARCHIVE_GZIP_LEVEL, GZIP_LEVEL

    assert (ARCHIVE_GZIP_LEVEL, GZIP_LEVEL) == (3, 6)
    project.config.write_text(
        project.config.read_text(encoding="utf-8") + "max_items = 3\narchive_page_size = 2\n",
        encoding="utf-8",
    )
    for n in range(8):
        project.write_seed(
            f"{n:03d}_{n:016x}.txt",
            seed_text(
                f"Meldung {n} mit Text.",
                date=f"2024-{n + 1:02d}",
                body="Ein Absatz, der sich wiederholt. " * 40,
            ),
        )
    result = project.build()
    assert result.exit_code == 0, result.output
    pages = sorted((project.feeds / "archive").glob("*.xml"))
    assert pages
    for page in pages:
        for suffix in (".xml", ".rss", ".json"):
            data = page.with_suffix(suffix).read_bytes()
            packed = page.with_suffix(suffix + ".gz").read_bytes()
            assert packed == gzip.compress(data, compresslevel=3, mtime=0)
    for name in ("atom.xml", "rss.xml", "feed.json"):
        data = (project.feeds / name).read_bytes()
        packed = (project.feeds / (name + ".gz")).read_bytes()
        assert packed == gzip.compress(data, compresslevel=6, mtime=0)
