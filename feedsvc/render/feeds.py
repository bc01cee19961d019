"""Atom 1.0 and RSS 2.0 from articles (feedgen): pure, no clock, no I/O, no state but a cache.

Every date comes from the data, so the same articles always give the same bytes. HTML is built
here, from escaped text, only for the entries being written (the last few kept, by identity).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

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


_SPECIAL = re.compile("[&<>\"']")  # what ``html.escape`` replaces


def _escape(text: str) -> str:
    """``html.escape(text)``; most paragraphs have nothing to escape, and are returned as is."""
    return escape(text) if _SPECIAL.search(text) else text


# The last articles' HTML, by identity: one page or feed document renders the same entries in
# several formats (and a budget search renders a page more than once). Identity, not
# equality: an article is frozen, and the entry is held, so its id cannot be reused meanwhile.
_HTML: dict[int, tuple[Article, str]] = {}
_HTML_KEPT = 256


def article_html(article: Article) -> str:
    """The entry's full content as HTML: lead, paragraphs and ``<h2>`` subheadings, escaped."""
    kept = _HTML.get(id(article))
    if kept is not None and kept[0] is article:
        return kept[1]
    parts = [f"<p><strong>{_escape(article.lead)}</strong></p>"]
    for block in article.body:
        tag = "h2" if block.kind == "subheading" else "p"
        parts.append(f"<{tag}>{_escape(block.text)}</{tag}>")
    html = "\n".join(parts)
    if len(_HTML) >= _HTML_KEPT:
        _HTML.pop(next(iter(_HTML)), None)  # the oldest
    _HTML[id(article)] = (article, html)
    return html


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
) -> FeedGenerator:
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
    for article in articles:
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
    paging = paging or _current(spec, "atom", None)
    fg = _generator(articles, spec, meta, paging, MEDIA_TYPES["atom"], updated)
    data: bytes = fg.atom_str(pretty=True)
    return data


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
    paging = paging or _current(spec, "rss", None)
    fg = _generator(articles, spec, meta, paging, MEDIA_TYPES["rss"], updated)
    data: bytes = fg.rss_str(pretty=True)
    return data


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
