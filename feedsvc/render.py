"""Pure, deterministic Atom 1.0 and RSS 2.0 from articles: no clock, no I/O, no globals.

Every date comes from the data, so the same articles always give the same bytes. HTML is built
here, from escaped text, only for the entries being written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from feedgen.feed import FeedGenerator

from .models import Article, FeedMeta, FeedSpec, max_updated

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ATOM_TYPE = "application/atom+xml"
RSS_TYPE = "application/rss+xml"
JSON_FEED_TYPE = "application/feed+json"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
GENERATOR_URI = "https://github.com/feedsvc/feedsvc"


def article_html(article: Article) -> str:
    """The entry's full content as HTML: lead, paragraphs and ``<h2>`` subheadings, escaped."""
    parts = [f"<p><strong>{escape(article.lead)}</strong></p>"]
    for block in article.body:
        tag = "h2" if block.kind == "subheading" else "p"
        parts.append(f"<{tag}>{escape(block.text)}</{tag}>")
    return "\n".join(parts)


def article_link(article: Article, meta: FeedMeta) -> str:
    """The entry's permanent link (an HTML page per article, keyed like the id)."""
    return f"{meta.base_url}articles/{article.key}.html"


def _generator(
    articles: Sequence[Article], spec: FeedSpec, meta: FeedMeta, self_file: str, self_type: str
) -> FeedGenerator:
    fg = FeedGenerator()
    fg.id(f"{meta.base_url}{spec.atom_file}")
    fg.title(spec.title)
    fg.subtitle(spec.subtitle or spec.title)
    fg.description(spec.subtitle or spec.title)
    author = {"name": meta.author_name}
    if meta.author_email:
        author["email"] = meta.author_email
    fg.author(author)
    # feedgen uses the last link as RSS <link>, so the page (alternate) goes after self.
    fg.link(href=f"{meta.base_url}{self_file}", rel="self", type=self_type)
    fg.link(href=meta.base_url, rel="alternate", type="text/html")
    fg.language(meta.language)
    fg.generator("feedsvc", version=meta.generator_version, uri=GENERATOR_URI)
    newest = max_updated(list(articles), default=EPOCH)
    fg.updated(newest)
    fg.lastBuildDate(newest)
    for article in articles:
        assert article.entry_id, "articles reach the renderer through the store's id ledger"
        fe = fg.add_entry(order="append")
        fe.id(article.entry_id)
        fe.guid(article.entry_id, permalink=article.entry_id.startswith(("http://", "https://")))
        fe.title(article.title)
        fe.link(href=article_link(article, meta), rel="alternate", type="text/html")
        fe.published(article.published)
        fe.updated(article.updated)
        fe.summary(article.lead)
        # RSS readers treat <description> as HTML, so the plain-text lead goes in escaped.
        fe.description(escape(article.lead))
        fe.content(article_html(article), type="html")
    return fg


def render_atom(articles: Sequence[Article], spec: FeedSpec, meta: FeedMeta) -> bytes:
    """Atom 1.0 (RFC 4287) for ``articles`` as given (callers pass them newest first)."""
    data: bytes = _generator(articles, spec, meta, spec.atom_file, ATOM_TYPE).atom_str(pretty=True)
    return data


def render_rss(articles: Sequence[Article], spec: FeedSpec, meta: FeedMeta) -> bytes:
    """RSS 2.0 with ``atom:link rel=self``, ``guid`` and ``content:encoded``."""
    data: bytes = _generator(articles, spec, meta, spec.rss_file, RSS_TYPE).rss_str(pretty=True)
    return data


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def render_json(articles: Sequence[Article], spec: FeedSpec, meta: FeedMeta) -> bytes:
    """JSON Feed 1.1 with the same ids, dates and content as the Atom and RSS feeds."""
    author: dict[str, str] = {"name": meta.author_name}
    if meta.author_email:
        author["url"] = f"mailto:{meta.author_email}"
    items = []
    for article in articles:
        assert article.entry_id, "articles reach the renderer through the store's id ledger"
        items.append(
            {
                "id": article.entry_id,
                "url": article_link(article, meta),
                "title": article.title,
                "summary": article.lead,
                "content_html": article_html(article),
                "date_published": _rfc3339(article.published),
                "date_modified": _rfc3339(article.updated),
                "language": article.language,
            }
        )
    feed = {
        "version": JSON_FEED_VERSION,
        "title": spec.title,
        "home_page_url": meta.base_url,
        "feed_url": f"{meta.base_url}{spec.json_file}",
        "description": spec.subtitle or spec.title,
        "authors": [author],
        "language": meta.language,
        "items": items,
    }
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
