"""Pure, deterministic HTML pages: the feeds index and one page per article; no clock, no I/O.

The templates ship in ``feedsvc/render/templates/`` and autoescape everything. The only
markup that is not escaped here is ``feeds.article_html``, which builds its HTML from escaped
text itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict, field_validator

from ..models import MEDIA_TYPES, Article

if TYPE_CHECKING:  # jinja2 and feedgen (``article_html``) load when a page is rendered
    from jinja2 import Environment

_FROZEN = ConfigDict(frozen=True, extra="forbid")

# Feed formats in the order the pages list them: format -> (label, MIME type).
FORMATS: dict[str, tuple[str, str]] = {
    "atom": ("Atom", MEDIA_TYPES["atom"]),
    "rss": ("RSS", MEDIA_TYPES["rss"]),
    "json": ("JSON Feed", MEDIA_TYPES["json"]),
}

# The few words of page chrome, by primary language subtag, for every language the detector
# may give an article (``DEFAULT_LANGUAGES``): a page speaks its article's language, the index
# the site's. Anything else gets English.
_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "feeds": "Feeds",
        "subscribe": "Subscribe",
        "newest": "Newest articles",
        "none": "No articles yet.",
        "published": "Published",
        "updated": "updated",
        "back": "All articles",
        "made_with": "Made with",
        "opml": "Subscribe to all feeds (OPML)",
        "all": "All articles",
        "page": "Page",
        "newer": "Newer",
        "older": "Older",
    },
    "de": {
        "feeds": "Feeds",
        "subscribe": "Abonnieren",
        "newest": "Neueste Artikel",
        "none": "Noch keine Artikel.",
        "published": "Veröffentlicht",
        "updated": "aktualisiert",
        "back": "Alle Artikel",
        "made_with": "Erstellt mit",
        "opml": "Alle Feeds abonnieren (OPML)",
        "all": "Alle Artikel",
        "page": "Seite",
        "newer": "Neuere",
        "older": "Ältere",
    },
    "fr": {
        "feeds": "Flux",
        "subscribe": "S’abonner",
        "newest": "Articles récents",
        "none": "Aucun article pour l’instant.",
        "published": "Publié le",
        "updated": "mis à jour le",
        "back": "Tous les articles",
        "made_with": "Réalisé avec",
        "opml": "S’abonner à tous les flux (OPML)",
        "all": "Tous les articles",
        "page": "Page",
        "newer": "Plus récents",
        "older": "Plus anciens",
    },
    "it": {
        "feeds": "Feed",
        "subscribe": "Abbonati",
        "newest": "Articoli recenti",
        "none": "Ancora nessun articolo.",
        "published": "Pubblicato il",
        "updated": "aggiornato il",
        "back": "Tutti gli articoli",
        "made_with": "Realizzato con",
        "opml": "Abbonati a tutti i feed (OPML)",
        "all": "Tutti gli articoli",
        "page": "Pagina",
        "newer": "Più recenti",
        "older": "Meno recenti",
    },
    "es": {
        "feeds": "Fuentes",
        "subscribe": "Suscribirse",
        "newest": "Artículos recientes",
        "none": "Todavía no hay artículos.",
        "published": "Publicado el",
        "updated": "actualizado el",
        "back": "Todos los artículos",
        "made_with": "Hecho con",
        "opml": "Suscribirse a todas las fuentes (OPML)",
        "all": "Todos los artículos",
        "page": "Página",
        "newer": "Más recientes",
        "older": "Más antiguos",
    },
}


class PageFeed(BaseModel):
    """One feed as the pages link it: ``links`` maps a format in ``FORMATS`` to its URL."""

    model_config = _FROZEN

    name: str
    title: str
    description: str
    links: dict[str, str]

    @field_validator("links")
    @classmethod
    def _known_formats(cls, links: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(links) - set(FORMATS))
        if unknown:
            raise ValueError(f"unknown feed formats {unknown}; known: {sorted(FORMATS)}")
        return links


class Site(BaseModel):
    """Site-wide facts for the pages; ``base_url`` ends with '/' like ``FeedMeta.base_url``.

    ``timezone`` (IANA name): every date a person reads on a page is in it; the feeds keep UTC.
    """

    model_config = _FROZEN

    title: str
    subtitle: str
    base_url: str
    language: str
    generator_version: str
    timezone: str = "UTC"


@cache
def _environment() -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(
        loader=PackageLoader("feedsvc.render", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def article_path(article: Article) -> str:
    """The article page's path relative to the site root (``Article.page``)."""
    return article.page


def _labels(language: str) -> dict[str, str]:
    return _LABELS.get(language.split("-")[0].lower(), _LABELS["en"])


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _date(value: datetime, timezone: str) -> dict[str, str]:
    """A ``<time>`` element's parts: the timestamp and the day (``YYYY-MM-DD``), both local.

    A seed dated ``2024-11`` in Vienna is published at 2024-10-31T23:00Z: its page says
    2024-11-01, the day its readers know it by.
    """
    local = value.astimezone(_zone(timezone))
    return {"datetime": local.isoformat(), "text": local.date().isoformat()}


def teaser(article: Article) -> str | None:
    """The lead, unless the title already says all of it (a one-sentence lead is the title)."""
    return None if article.lead.rstrip(".!? ") == article.title.rstrip(".!? ") else article.lead


def _feeds(feeds: Sequence[PageFeed]) -> list[dict[str, Any]]:
    """Each feed with its links in ``FORMATS`` order, whatever order the dict came in."""
    return [
        {
            "title": feed.title,
            "description": feed.description,
            "links": [
                {"label": label, "type": mime, "href": feed.links[fmt]}
                for fmt, (label, mime) in FORMATS.items()
                if fmt in feed.links
            ],
        }
        for feed in feeds
    ]


def _render(template: str, **context: Any) -> bytes:
    return _environment().get_template(template).render(**context).encode("utf-8")


def _common(site: Site, feeds: Sequence[PageFeed], language: str) -> Mapping[str, Any]:
    return {
        "site": site,
        "feeds": _feeds(feeds),
        "labels": _labels(language),
    }


# The HTML archive (#11): every live article at ``pages/<n>.html``, ``HTML_PAGE_SIZE`` a page,
# numbered from the oldest (issue #9): page n holds articles (n-1)*50+1 .. n*50 counted from
# the oldest, so a new article changes only the newest page, which may be partial and is the
# one the index links. Each page lists its articles newest first.
HTML_PAGES_DIR = "pages"
HTML_PAGE_SIZE = 50


def html_page_path(page: int) -> str:
    """Page ``page`` (from 1, the oldest) of the HTML archive, relative to the site root."""
    return f"{HTML_PAGES_DIR}/{page}.html"


def html_page_count(articles: int) -> int:
    """How many HTML archive pages ``articles`` live articles take (one, even when none)."""
    return max(1, -(-articles // HTML_PAGE_SIZE))


class Listed(NamedTuple):
    """What an HTML archive page shows of an article (an ``Article`` has the same fields)."""

    title: str
    page: str  # ``Article.page``
    published: datetime


def render_archive(
    site: Site,
    feeds: Sequence[PageFeed],
    articles: Sequence[Article] | Sequence[Listed],
    page: int,
    pages: int,
) -> bytes:
    """``pages/<page>.html``: ``articles`` (this page's, newest first), linked newer (``page``
    + 1, while ``page < pages``) and older (``page`` - 1).

    Nothing on a page but whether a newer page exists depends on ``pages``: a page changes
    only when its own articles do, or when it stops being the newest.
    """
    items = [
        {
            "title": a.title,
            "href": f"../{a.page}",
            "published": _date(a.published, site.timezone),
        }
        for a in articles
    ]
    first = (page - 1) * HTML_PAGE_SIZE + 1  # numbered from the oldest article
    return _render(
        "archive.html",
        lang=site.language,
        articles=items,
        page=page,
        first=first,
        last=first + len(items) - 1,
        newer=f"{page + 1}.html" if page < pages else None,
        older=f"{page - 1}.html" if page > 1 else None,
        **_common(site, feeds, site.language),
    )


class ArchivePages:
    """Renders the HTML archive's pages (``render_archive``) for one site and its feeds, many
    pages in a row.

    As ``ArticlePages`` does for article pages: the template is rendered once per page shape
    (whether a newer and an older page exist) with markers for the page's own values and for
    a listed article's, and cut there; a page's list is the article's pieces repeated, the
    static text between two articles taken from a rendering with two. The pieces are checked
    against the template's own output for one and two articles when the shape is made (if
    they do not add up, that shape goes through the template), and a test compares the bytes.
    """

    precompiled: bool = True  # False: every page through the template (a test compares)

    def __init__(self, site: Site, feeds: Sequence[PageFeed]) -> None:
        self._site = site
        self._feeds = feeds
        self._shapes: dict[tuple[bool, bool], _ListShape | None] = {}

    def render(
        self, articles: Sequence[Article] | Sequence[Listed], page: int, pages: int
    ) -> bytes:
        """``render_archive(site, feeds, articles, page, pages)``, byte for byte."""
        newer, older = page < pages, page > 1
        shape = self._shapes.get((newer, older), ...) if self.precompiled and articles else None
        if shape is ...:
            shape = self._shapes[newer, older] = self._shape(newer=newer, older=older)
        if shape is None:
            return render_archive(self._site, self._feeds, articles, page, pages)
        first = (page - 1) * HTML_PAGE_SIZE + 1
        values = {
            "page": str(page),
            "first": str(first),
            "last": str(first + len(articles) - 1),
            "newer": f"{page + 1}.html",
            "older": f"{page - 1}.html",
        }
        tz = self._site.timezone
        out: list[str] = []
        _join(shape.head, values, out)
        listed: Sequence[Article | Listed] = articles
        for n, a in enumerate(listed):
            if n:
                out.append(shape.between)
            when = _date(a.published, tz)  # digits, '-', ':', '+' and 'T': nothing to escape
            item = {
                "item_href": str(escape(f"../{a.page}")),
                "item_title": str(escape(a.title)),
                "item_datetime": when["datetime"],
                "item_text": when["text"],
            }
            _join(shape.item, item, out)
        _join(shape.tail, values, out)
        return "".join(out).encode("utf-8")

    def _marked(self, items: int, *, newer: bool, older: bool) -> str:
        listed = {
            "title": _slot("item_title"),
            "href": _slot("item_href"),
            "published": {"datetime": _slot("item_datetime"), "text": _slot("item_text")},
        }
        return (
            _environment()
            .get_template("archive.html")
            .render(
                lang=self._site.language,
                articles=[listed] * items,
                page=_slot("page"),
                first=_slot("first"),
                last=_slot("last"),
                newer=_slot("newer") if newer else None,
                older=_slot("older") if older else None,
                **_common(self._site, self._feeds, self._site.language),
            )
        )

    def _shape(self, *, newer: bool, older: bool) -> _ListShape | None:
        """The pieces of a page with or without ``newer`` / ``older`` links; None when they
        do not give back the template's pages with one and with two articles."""
        from jinja2 import UndefinedError  # here, not at import: jinja2 loads with a page

        try:
            one, two = (self._marked(n, newer=newer, older=older) for n in (1, 2))
        except (UndefinedError, TypeError):  # the template wants more than the markers hold
            return None
        parts = _SLOT.split(one)
        at = [i for i in range(1, len(parts), 2) if parts[i].startswith("item_")]
        if not at or at != list(range(at[0], at[-1] + 1, 2)):
            return None  # no article, or its values not together
        start, stop = at[0], at[-1]
        twice = _SLOT.split(two)
        if len(twice) != len(parts) + stop - start + 2:
            return None
        shape = _ListShape(
            head=parts[:start],
            item=["", *parts[start : stop + 1], ""],
            tail=parts[stop + 1 :],
            between=twice[stop + 1],
        )
        mark = {name: _slot(name) for name in parts[1::2]}
        for count, text in ((1, one), (2, two)):
            out: list[str] = []
            _join(shape.head, mark, out)
            for n in range(count):
                if n:
                    out.append(shape.between)
                _join(shape.item, mark, out)
            _join(shape.tail, mark, out)
            if "".join(out) != text:
                return None
        return shape


class _ListShape(NamedTuple):
    """An archive page cut at its markers, each piece static, name, static, ..., static:
    up to the first article, one article, after the last; and the static text between two
    articles."""

    head: list[str]
    item: list[str]
    tail: list[str]
    between: str


def _join(parts: list[str], values: Mapping[str, str], out: list[str]) -> None:
    """Append ``parts`` (static, name, static, ..., static) with each name's value."""
    out.append(parts[0])
    for i in range(1, len(parts), 2):
        out.append(values[parts[i]])
        out.append(parts[i + 1])


def render_index(
    site: Site,
    feeds: Sequence[PageFeed],
    articles: Sequence[Article],
    *,
    opml: str | None = None,
    archive_page: int = 1,
) -> bytes:
    """``index.html``: the feeds with subscribe links, then ``articles`` in the order given,
    then the link to the HTML archive of every article (its newest page, ``archive_page``).

    ``opml``: the URL of ``feeds.opml``, linked in the head (``rel="outline"``) and below the
    feeds.
    """
    items = [
        {
            "title": a.title,
            "href": article_path(a),
            "published": _date(a.published, site.timezone),
            "teaser": teaser(a),
        }
        for a in articles
    ]
    return _render(
        "index.html",
        lang=site.language,
        articles=items,
        opml=opml,
        archive=html_page_path(archive_page),
        **_common(site, feeds, site.language),
    )


_SLOT = re.compile("\x00([a-z_]+)\x00")


def _slot(name: str) -> str:
    return f"\x00{name}\x00"


class _Shape:
    """The article template rendered once with markers, cut into static text and slots."""

    __slots__ = ("feeds", "parts")

    def __init__(self, parts: list[str], feeds: Sequence[PageFeed]) -> None:
        self.parts = parts  # static, slot name, static, slot name, ..., static
        self.feeds = feeds  # held: the shape is found by their ids


class ArticlePages:
    """Renders ``articles/<key>.html`` for one site, many pages in a row.

    The template is rendered once per page shape (the article's language, the feeds it
    links, whether it was updated) with markers where each article's own values go, and cut
    there; a page is then the static pieces joined with its values, escaped exactly as the
    template's autoescape does (``markupsafe.escape``). Same bytes as rendering the template
    for every page (``render_template``; a test compares them on the whole corpus), without
    its per-page cost. ``render_article`` is the one-page form.
    """

    precompiled: bool = True  # False: every page through the template (a test compares)

    def __init__(self, site: Site) -> None:
        from .feeds import article_html  # feedgen and lxml: only where pages are rendered

        self._article_html = article_html
        self._template = _environment().get_template("article.html")
        self._site = site
        self._base = str(escape(site.base_url))
        self._shapes: dict[tuple[Any, ...], _Shape | None] = {}

    def render(self, article: Article, feeds: Sequence[PageFeed]) -> bytes:
        """``articles/<key>.html``, the entry's permanent link: the full text, canonical URL."""
        if not self.precompiled:
            return self.render_template(article, feeds)
        site = self._site
        tz = site.timezone
        updated = article.updated != article.published
        key = (article.language, updated, *map(id, feeds))
        shape = self._shapes.get(key, ...)
        if shape is ...:
            shape = self._shapes[key] = self._shape(article.language, feeds, updated=updated)
        if shape is None:  # the template wants more of the article than the slots hold
            return self.render_template(article, feeds)
        published = _date(article.published, tz)
        values = {  # the dates are digits, '-', ':', '+' and 'T', the page path a hex key and
            # '/', '.': nothing in them to escape
            "title": str(escape(article.title)),
            "lead": str(escape(article.lead)),
            "canonical": self._base + article.page,
            "published_datetime": published["datetime"],
            "published_text": published["text"],
            "content": self._article_html(article),  # safe: built from escaped text
        }
        if updated:
            later = _date(article.updated, tz)
            values["updated_datetime"] = later["datetime"]
            values["updated_text"] = later["text"]
        parts = shape.parts
        out = [parts[0]]
        for i in range(1, len(parts), 2):
            out.append(values[parts[i]])
            out.append(parts[i + 1])
        return "".join(out).encode("utf-8")

    def _shape(self, language: str, feeds: Sequence[PageFeed], *, updated: bool) -> _Shape | None:
        """The page of this shape with markers for the article's values, cut at them."""

        class Marked:  # only what the template may read of an article
            title = _slot("title")
            lead = _slot("lead")

        from jinja2 import UndefinedError

        try:
            text = self._template.render(
                _common(self._site, feeds, language),
                lang=language,
                article=Marked,
                canonical=_slot("canonical"),
                published={
                    "datetime": _slot("published_datetime"),
                    "text": _slot("published_text"),
                },
                updated={"datetime": _slot("updated_datetime"), "text": _slot("updated_text")}
                if updated
                else None,
                content=Markup(_slot("content")),
            )
        except UndefinedError:
            return None
        return _Shape(_SLOT.split(text), list(feeds))

    def render_template(self, article: Article, feeds: Sequence[PageFeed]) -> bytes:
        """The same page through the template alone (the reference ``render`` must equal)."""
        site = self._site
        tz = site.timezone
        updated = _date(article.updated, tz) if article.updated != article.published else None
        return self._template.render(
            _common(site, feeds, article.language),
            lang=article.language,
            article=article,
            canonical=f"{site.base_url}{article_path(article)}",
            published=_date(article.published, tz),
            updated=updated,
            content=Markup(self._article_html(article)),  # safe: built from escaped text
        ).encode("utf-8")


def render_article(site: Site, article: Article, feeds: Sequence[PageFeed]) -> bytes:
    """``articles/<key>.html``, the entry's permanent link: the full text, canonical URL."""
    return ArticlePages(site).render(article, feeds)
