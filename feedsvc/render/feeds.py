"""Atom 1.0 and RSS 2.0 from articles (feedgen): pure, no clock, no I/O, no state but a cache.

Every date comes from the data, so the same articles always give the same bytes. HTML is built
here, from escaped text, only for the entries being written (the last few kept, by identity,
escaped once for every format). feedgen writes a document's head; its entries are written
here as text, the bytes feedgen and lxml would write (#9: building and serializing an element
tree per entry cost more than the rest of the page).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from html import escape
from typing import Any, Literal

from feedgen.ext.base import BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from ..models import (
    HTML_TYPE,
    MEDIA_TYPES,
    Article,
    Entry,
    FeedMeta,
    FeedSpec,
    Format,
    Paging,
    category_of,
    max_updated,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
GENERATOR_URI = "https://github.com/feedsvc/feedsvc"


@dataclass(frozen=True, slots=True)
class _XmlTexts:
    """An article's texts as the Atom and RSS entry writer writes them (XML text)."""

    content: str  # the HTML: Atom content, RSS content:encoded
    title: str
    summary: str  # the lead: Atom summary
    description: str  # the lead as HTML: RSS description


@dataclass(slots=True)
class _Texts:
    """One article's texts, escaped once for every format (the XML ones when first asked:
    an article page needs the HTML only)."""

    html: str  # ``article_html``: JSON Feed's content_html, the article page's content
    lead: str  # the lead as HTML
    plain: bool  # no CR (lxml writes ``&#13;``), no NUL: the entry writer may write them
    xml: _XmlTexts | None = None
    # The article's entry in each format as written (#9: a budget search sizes a page many
    # times over), by what else it depends on: format, link, the feed's language. None: an
    # entry the entry writer leaves to feedgen.
    entries: dict[tuple[str, ...], bytes | None] = field(default_factory=dict)


# What the entry writer leaves to lxml (feedgen): a character lxml refuses (controls, lone
# surrogates, U+FFFE/U+FFFF) or writes as a character reference (CR, C1 controls; in an
# attribute, tab and newline too). An article's texts are ``XmlText``, which has none of these
# but CR (a 4 KB regex search costs as much as escaping the text: only CR is looked for there);
# ids, links, languages and categories are searched. An entry with one is rendered through
# feedgen instead, which refuses it or writes it as before.
_NOT_PLAIN_ATTR = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_SEP = "\x00"  # joins an article's texts to escape them in one call; never in an XmlText


def _xml(text: str) -> str:
    """``text`` as libxml2 writes a text node (given no CR and no character lxml refuses)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attr(text: str) -> str:
    """``text`` as libxml2 writes an attribute value (no character ``_NOT_PLAIN_ATTR`` finds)."""
    return _xml(text).replace('"', "&quot;")


# The last articles' texts, by identity: one page or feed document renders the same entries in
# several formats (and a budget search renders a page more than once). Identity, not
# equality: an article is frozen, and the entry is held, so its id cannot be reused meanwhile.
# Bounded: an archive page's or a default feed's entries (50) fit, twice over; never the corpus.
# (About 20 KB an article: 128 of them hold what 256 HTML strings held before #9.)
_TEXTS: dict[int, tuple[Article, _Texts]] = {}
_TEXTS_KEPT = 128


def _texts(article: Article) -> _Texts:
    kept = _TEXTS.get(id(article))
    if kept is not None and kept[0] is article:
        return kept[1]
    texts = [article.lead, *(block.text for block in article.body)]
    joined = _SEP.join(texts)
    separated = joined.count(_SEP) == len(texts) - 1
    # html.escape of each text, in one call
    escaped = escape(joined).split(_SEP) if separated else [escape(t) for t in texts]
    parts = [f"<p><strong>{escaped[0]}</strong></p>"]
    for block, text in zip(article.body, escaped[1:], strict=True):
        tag = "h2" if block.kind == "subheading" else "p"
        parts.append(f"<{tag}>{text}</{tag}>")
    html = "\n".join(parts)
    plain = separated and "\r" not in joined and "\r" not in article.title
    done = _Texts(html=html, lead=escaped[0], plain=plain)
    if len(_TEXTS) >= _TEXTS_KEPT:
        _TEXTS.pop(next(iter(_TEXTS)), None)  # the oldest
    _TEXTS[id(article)] = (article, done)
    return done


def _xml_texts(article: Article) -> _XmlTexts | None:
    """The article's texts as XML text; None when the entry writer must not write them."""
    texts = _texts(article)
    if not texts.plain:
        return None
    if texts.xml is None:
        texts.xml = _XmlTexts(
            content=_xml(texts.html),
            title=_xml(article.title),
            summary=_xml(article.lead),
            description=_xml(texts.lead),
        )
    return texts.xml


def article_html(article: Article) -> str:
    """The entry's full content as HTML: lead, paragraphs and ``<h2>`` subheadings, escaped."""
    return _texts(article).html


def entry_text(
    article: Article, key: tuple[str, ...], make: Callable[[], bytes | None]
) -> bytes | None:
    """The article's entry as ``make`` writes it, kept with its texts under ``key`` (all
    ``make`` depends on besides the article), so that rendering the same entry again is free."""
    entries = _texts(article).entries
    if key in entries:
        return entries[key]
    done = entries[key] = make()
    return done


def article_link(article: Article, meta: FeedMeta) -> str:
    """The entry's permanent link (an HTML page per article, keyed like the id)."""
    return f"{meta.base_url}{article.page}"


XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
HISTORY_NS = "http://purl.org/syndication/history/1.0"
ATOM_NS = "http://www.w3.org/2005/Atom"


class _ArchiveMark(BaseExtension):  # type: ignore[misc]
    """Adds RFC 5005 ``<fh:archive/>`` to an archive document."""

    def extend_ns(self) -> dict[str, str]:
        return {"fh": HISTORY_NS}

    def extend_atom(self, feed: Any) -> Any:
        feed.append(etree.Element(f"{{{HISTORY_NS}}}archive"))
        return feed


class _EntryLanguage(BaseExtension):  # type: ignore[misc]
    """``xml:lang`` on an Atom entry whose detected language differs from the feed's."""

    language: str = ""

    def extend_atom(self, entry: Any) -> Any:
        entry.set(XML_LANG, self.language)
        return entry


class _RssHub(BaseExtension):  # type: ignore[misc]
    """feedgen writes only the self link into RSS; WebSub wants ``atom:link rel="hub"`` too."""

    hub: str = ""

    def extend_rss(self, feed: Any) -> Any:
        channel = feed.find("channel")
        link = etree.SubElement(channel, f"{{{ATOM_NS}}}link", href=self.hub, rel="hub")
        channel.remove(link)
        channel.insert(4, link)  # beside atom:link rel="self"
        return feed


class _RssPaging(BaseExtension):  # type: ignore[misc]
    """RFC 5005 in RSS (#11): ``atom:link`` prev-archive / current, ``fh:archive`` on a page.

    feedgen writes only the self link into RSS; the archive chain of an RSS feed is RSS
    (``archive/<n>.rss``), as RFC 5005 asks of a feed's archives.
    """

    links: tuple[tuple[str, str], ...] = ()  # (rel, href)
    archive: bool = False

    def extend_ns(self) -> dict[str, str]:
        return {"fh": HISTORY_NS}

    def extend_rss(self, feed: Any) -> Any:
        channel = feed.find("channel")
        at = 4  # beside atom:link rel="self"
        for rel, href in self.links:
            link = etree.Element(f"{{{ATOM_NS}}}link", href=href, rel=rel, type=MEDIA_TYPES["rss"])
            channel.insert(at, link)
            at += 1
        if self.archive:
            channel.insert(at, etree.Element(f"{{{HISTORY_NS}}}archive"))
        return feed


def _generator(
    articles: Sequence[Entry],
    spec: FeedSpec,
    meta: FeedMeta,
    paging: Paging,
    self_type: str,
    updated: datetime | None,
    *,
    entries: bool = True,
) -> FeedGenerator:
    """The document through feedgen; ``entries=False``: its head only (``_write`` adds them)."""
    fg = FeedGenerator()
    fg.id(f"{meta.base_url}{spec.file('atom')}")
    fg.title(spec.title)
    fg.subtitle(spec.subtitle or spec.title)
    fg.description(spec.subtitle or spec.title)
    author = {"name": meta.author_name}
    if meta.author_email:
        author["email"] = meta.author_email
    fg.author(author)
    # feedgen uses the last link as RSS <link>, so the page (alternate) goes after self.
    fg.link(href=f"{meta.base_url}{paging.self_file}", rel="self", type=self_type)
    if meta.hub_url and not paging.archive:
        fg.link(href=meta.hub_url, rel="hub")
        if self_type == MEDIA_TYPES["rss"]:
            fg.register_extension("feedsvc_hub", _RssHub, atom=False, rss=True)
            fg.feedsvc_hub.hub = meta.hub_url
    if paging.prev_archive:
        fg.link(
            href=f"{meta.base_url}{paging.prev_archive}",
            rel="prev-archive",
            type=MEDIA_TYPES["atom"],
        )
    if paging.current:
        fg.link(href=f"{meta.base_url}{paging.current}", rel="current", type=MEDIA_TYPES["atom"])
    if paging.archive:
        fg.register_extension("feedsvc_archive", _ArchiveMark, atom=True, rss=False)
    if self_type == MEDIA_TYPES["rss"] and (paging.prev_archive or paging.archive):
        fg.register_extension("feedsvc_paging", _RssPaging, atom=False, rss=True)
        fg.feedsvc_paging.links = tuple(
            (rel, f"{meta.base_url}{href}")
            for rel, href in (("prev-archive", paging.prev_archive), ("current", paging.current))
            if href
        )
        fg.feedsvc_paging.archive = paging.archive
    fg.link(href=meta.base_url, rel="alternate", type=HTML_TYPE)
    language = spec.language or meta.language
    fg.language(language)
    fg.generator("feedsvc", version=meta.generator_version, uri=GENERATOR_URI)
    if meta.icon:
        fg.icon(meta.icon)
    if meta.logo:
        fg.logo(meta.logo)
    if meta.ttl_minutes:
        fg.ttl(meta.ttl_minutes)
    # An empty feed still needs atom:updated (RFC 4287): the caller's date from the store,
    # never the clock; the epoch only when nobody knows better.
    newest = max_updated(articles, default=updated or EPOCH)
    fg.updated(newest)
    fg.lastBuildDate(newest)
    for article in articles if entries else ():
        fe = fg.add_entry(order="append")
        fe.id(article.entry_id)
        if article.language != language:
            fe.register_extension("feedsvc_lang", _EntryLanguage, atom=True, rss=False)
            fe.feedsvc_lang.language = article.language
        fe.guid(article.entry_id, permalink=article.entry_id.startswith(("http://", "https://")))
        fe.title(article.title)
        fe.link(href=article_link(article, meta), rel="alternate", type=HTML_TYPE)
        fe.published(article.published)
        fe.updated(article.updated)
        category = category_of(article.source)
        if category:
            fe.category(term=category)
        fe.summary(article.lead)
        # RSS readers treat <description> as HTML, so the plain-text lead goes in escaped.
        fe.description(escape(article.lead))
        fe.content(article_html(article), type="html")
    return fg


def _current(spec: FeedSpec, fmt: Format, prev_archive: str | None) -> Paging:
    return Paging(self_file=spec.file(fmt), prev_archive=prev_archive)


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _rfc2822(value: datetime) -> str:
    """feedgen's ``formatRFC2822`` (``strftime`` in the C locale), without the locale calls."""
    return f"{_DAYS[value.weekday()]}, {value:%d} {_MONTHS[value.month - 1]} {value:%Y %H:%M:%S %z}"


def _atom_entry(article: Entry, texts: _XmlTexts, link: str, language: str) -> str:
    """One ``<entry>`` as feedgen builds it and lxml pretty-prints it (feedgen writes the
    entry's link without its rel and type)."""
    lang = f' xml:lang="{_attr(article.language)}"' if article.language != language else ""
    category = category_of(article.source)
    term = f'    <category term="{_attr(category)}"/>\n' if category else ""
    return (
        f"  <entry{lang}>\n"
        f"    <id>{_xml(article.entry_id)}</id>\n"
        f"    <title>{texts.title}</title>\n"
        f"    <updated>{article.updated.isoformat()}</updated>\n"
        f'    <content type="html">{texts.content}</content>\n'
        f'    <link href="{_attr(link)}"/>\n'
        f"    <summary>{texts.summary}</summary>\n"
        f"{term}"
        f"    <published>{article.published.isoformat()}</published>\n"
        "  </entry>\n"
    )


def _rss_item(article: Entry, texts: _XmlTexts, link: str) -> str:
    """One ``<item>`` as feedgen builds it and lxml pretty-prints it."""
    permalink = "true" if article.entry_id.startswith(("http://", "https://")) else "false"
    category = category_of(article.source)
    term = f"      <category>{_xml(category)}</category>\n" if category else ""
    return (
        "    <item>\n"
        f"      <title>{texts.title}</title>\n"
        f"      <link>{_xml(link)}</link>\n"
        f"      <description>{texts.description}</description>\n"
        f"      <content:encoded>{texts.content}</content:encoded>\n"
        f'      <guid isPermaLink="{permalink}">{_xml(article.entry_id)}</guid>\n'
        f"{term}"
        f"      <pubDate>{_rfc2822(article.published)}</pubDate>\n"
        "    </item>\n"
    )


_CLOSE = {"atom": b"</feed>\n", "rss": b"  </channel>\n</rss>\n"}


def _write(
    fmt: Literal["atom", "rss"],
    articles: Sequence[Entry],
    spec: FeedSpec,
    meta: FeedMeta,
    paging: Paging,
    updated: datetime | None,
) -> bytes:
    """The document's head through feedgen, its entries written here: the same bytes as
    feedgen's, without building and serializing an element tree per entry.

    An entry with a character lxml would refuse or write as a character reference
    (``_NOT_PLAIN_ATTR``, ``_Texts.plain``) sends the whole document through feedgen, which
    decides as before.
    """
    entries = _entries(fmt, articles, meta, spec.language or meta.language)
    whole = entries is None  # feedgen writes the entries too
    head = _head(fmt, articles, spec, meta, paging, updated, entries=whole)
    if entries is None or not entries:
        return head
    close = _CLOSE[fmt]
    return b"".join((head[: -len(close)], *entries, close))


def _entry(
    fmt: Literal["atom", "rss"], article: Entry, meta: FeedMeta, language: str
) -> bytes | None:
    """One entry as the entry writer writes it; None when it leaves the entry to feedgen."""
    texts = _xml_texts(article)
    link = article_link(article, meta)
    category = category_of(article.source) or ""
    if texts is None or _NOT_PLAIN_ATTR.search(
        f"{article.entry_id}{link}{article.language}{category}"
    ):
        return None
    if fmt == "atom":
        return _atom_entry(article, texts, link, language).encode("utf-8")
    return _rss_item(article, texts, link).encode("utf-8")


def _entries(
    fmt: Literal["atom", "rss"], articles: Sequence[Entry], meta: FeedMeta, language: str
) -> list[bytes] | None:
    """Every entry as written (kept with the article's texts); None when one is feedgen's."""
    key = (fmt, meta.base_url, language)
    entries: list[bytes] = []
    for article in articles:
        data = entry_text(article, key, partial(_entry, fmt, article, meta, language))
        if data is None:
            return None
        entries.append(data)
    return entries


def _head(
    fmt: Literal["atom", "rss"],
    articles: Sequence[Entry],
    spec: FeedSpec,
    meta: FeedMeta,
    paging: Paging,
    updated: datetime | None,
    *,
    entries: bool = False,
) -> bytes:
    """The document through feedgen: its head, or with ``entries`` the whole of it."""
    fg = _generator(articles, spec, meta, paging, MEDIA_TYPES[fmt], updated, entries=entries)
    head: bytes = fg.atom_str(pretty=True) if fmt == "atom" else fg.rss_str(pretty=True)
    if not entries and not head.endswith(_CLOSE[fmt]):  # pragma: no cover - lxml ends so
        raise AssertionError(f"feedgen's {fmt} head ends in {head[-40:]!r}")
    return head


def document_size(
    fmt: Literal["atom", "rss"],
    articles: Sequence[Entry],
    spec: FeedSpec,
    meta: FeedMeta,
    paging: Paging,
    heads: dict[tuple[int, int], int],
) -> int:
    """``len(render_atom/render_rss(articles, ..., paging=paging))`` without writing the
    document (#9: the budget search of an archive page sizes it many times over).

    A document is its head, then its entries: its head depends on the entries only through
    the newest entry's date, in one text node (``<updated>``, ``<lastBuildDate>``), so its
    length depends on that date's length only. ``heads``: the head lengths found so far for
    this ``paging``, by those lengths (the caller's, for one page); ``updated`` is None.
    """
    entries = _entries(fmt, articles, meta, spec.language or meta.language)
    if entries is None:
        return len(_write(fmt, articles, spec, meta, paging, None))
    newest = max_updated(articles, default=EPOCH)
    key = (len(newest.isoformat()), len(_rfc2822(newest)))
    if key not in heads:
        heads[key] = len(_head(fmt, articles, spec, meta, paging, None))
    return heads[key] + sum(map(len, entries))


def render_atom(
    articles: Sequence[Entry],
    spec: FeedSpec,
    meta: FeedMeta,
    *,
    paging: Paging | None = None,
    updated: datetime | None = None,
) -> bytes:
    """Atom 1.0 (RFC 4287) for ``articles`` as given (callers pass them newest first).

    ``updated``: the feed's date when it has no entries (else its newest entry's).
    """
    return _write("atom", articles, spec, meta, paging or _current(spec, "atom", None), updated)


def render_rss(
    articles: Sequence[Entry],
    spec: FeedSpec,
    meta: FeedMeta,
    *,
    paging: Paging | None = None,
    updated: datetime | None = None,
) -> bytes:
    """RSS 2.0 with ``atom:link rel=self``, ``guid`` and ``content:encoded``.

    ``paging``: its RFC 5005 place (``atom:link rel="prev-archive"`` to ``archive/<n>.rss``).
    """
    return _write("rss", articles, spec, meta, paging or _current(spec, "rss", None), updated)


def fit(
    render: Callable[[Sequence[Entry]], bytes], articles: Sequence[Entry], budget: int | None
) -> tuple[bytes, int]:
    """Render as many of the newest ``articles`` as fit in ``budget`` bytes (at least one).

    Returns the bytes and how many entries they hold; the oldest entries are dropped first.
    """
    data = render(articles)
    if budget is None or len(data) <= budget or len(articles) <= 1:
        return data, len(articles)
    # binary search for the largest count that fits: entries differ in size, so no guessing
    fits, fitting = 1, render(articles[:1])
    too_big = len(articles)
    while too_big - fits > 1:
        middle = (fits + too_big) // 2
        attempt = render(articles[:middle])
        if len(attempt) <= budget:
            fits, fitting = middle, attempt
        else:
            too_big = middle
    data, count = fitting, fits
    return data, count
