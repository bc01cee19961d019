"""JSON Feed 1.1 from articles: the same ids, dates and content as the Atom and RSS feeds."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ..models import Entry, FeedMeta, FeedSpec, Paging, category_of
from .feeds import article_html, article_link

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def render_json(
    articles: Sequence[Entry], spec: FeedSpec, meta: FeedMeta, *, paging: Paging | None = None
) -> bytes:
    """JSON Feed 1.1 with the same ids, dates and content as the Atom and RSS feeds.

    ``paging`` (#11): ``next_url``, the spec's own paging, names the next older page
    (``archive/<n>.json``); an archive page's ``feed_url`` is its own URL, and it has no hubs.
    """
    self_file = paging.self_file if paging else spec.file("json")
    archive = bool(paging and paging.archive)
    author: dict[str, str] = {"name": meta.author_name}
    if meta.author_email:
        author["url"] = f"mailto:{meta.author_email}"
    items: list[dict[str, Any]] = []
    for article in articles:
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
        category = category_of(article.source)
        if category:
            items[-1]["tags"] = [category]
    feed: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": spec.title,
        "home_page_url": meta.base_url,
        "feed_url": f"{meta.base_url}{self_file}",
        "description": spec.subtitle or spec.title,
        "authors": [author],
        "language": spec.language or meta.language,
    }
    if meta.icon:
        feed["icon"] = meta.icon
    if meta.favicon:
        feed["favicon"] = meta.favicon
    if paging and paging.prev_archive:
        feed["next_url"] = f"{meta.base_url}{paging.prev_archive}"
    if meta.hub_url and not archive:
        feed["hubs"] = [{"type": "WebSub", "url": meta.hub_url}]
    feed["items"] = items
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
