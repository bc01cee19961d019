"""JSON Feed 1.1 from articles: the same ids, dates and content as the Atom and RSS feeds."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from json.encoder import encode_basestring
from typing import Any

from ..models import Entry, FeedMeta, FeedSpec, Paging, category_of
from .feeds import article_html, article_link, entry_text

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def indented(value: Any, level: int = 0) -> str:
    """``json.dumps(value, ensure_ascii=False, indent=2)`` for a value at nesting depth ``level``
    (keys are strings), written here (#9).

    With an indent, CPython's ``json`` runs its pure-Python encoder; this writes the same text
    with the C encoder's strings and numbers (``json.dumps`` of a scalar) and joins the
    containers as the pure-Python encoder does: ``{`` or ``[``, each member on its own line
    indented one more level, ``,`` between them, the closing bracket on a line of its own
    indented as the container; an empty container is ``{}`` or ``[]``.
    """
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = "\n" + _INDENT * (level + 1)
        members = (f"{_dumps(key)}: {indented(v, level + 1)}" for key, v in value.items())
        return "{" + inner + ("," + inner).join(members) + "\n" + _INDENT * level + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        inner = "\n" + _INDENT * (level + 1)
        members = (indented(v, level + 1) for v in value)
        return "[" + inner + ("," + inner).join(members) + "\n" + _INDENT * level + "]"
    return _dumps(value)


_INDENT = "  "
_ITEM_LEVEL = 2  # the feed object, its "items" list, an item
# how the item texts are joined into the feed's "items" list
_ITEMS_OPEN = b"[\n" + _INDENT.encode() * _ITEM_LEVEL
_ITEMS_SEP = b",\n" + _INDENT.encode() * _ITEM_LEVEL
_ITEMS_CLOSE = b"\n" + _INDENT.encode() + b"]"
_DOC_CLOSE = b"\n}\n"


def _dumps(value: Any) -> str:
    """A scalar as the encoder writes it (a string: its C ``encode_basestring``, as there)."""
    if type(value) is str:
        return encode_basestring(value)
    return json.dumps(value, ensure_ascii=False)


_ITEM_KEYS = tuple(
    f"{encode_basestring(key)}: "
    for key in (
        "id",
        "url",
        "title",
        "summary",
        "content_html",
        "date_published",
        "date_modified",
        "language",
    )
)
_MEMBER = "\n" + _INDENT * (_ITEM_LEVEL + 1)  # an item's member starts a line so indented


def _item(article: Entry, meta: FeedMeta) -> bytes:
    """One entry of the ``items`` list, as ``json.dumps(feed, indent=2)`` writes it there:
    ``indented(item, 2)`` of the item object, written straight (its values are strings)."""
    values = (
        article.entry_id,
        article_link(article, meta),
        article.title,
        article.lead,
        article_html(article),
        _rfc3339(article.published),
        _rfc3339(article.updated),
        article.language,
    )
    members = [
        key + encode_basestring(value) for key, value in zip(_ITEM_KEYS, values, strict=True)
    ]
    category = category_of(article.source)
    if category:  # "tags": [category]
        tag = encode_basestring(category)
        members.append(f'"tags": [{_MEMBER}{_INDENT}{tag}{_MEMBER}]')
    text = "{" + _MEMBER + ("," + _MEMBER).join(members) + "\n" + _INDENT * _ITEM_LEVEL + "}"
    return text.encode("utf-8")


def _items(articles: Sequence[Entry], meta: FeedMeta) -> list[bytes]:
    """Every item's text, kept with the article's texts (a budget search renders them again)."""
    key = ("json", meta.base_url)
    return [entry_text(a, key, partial(_item, a, meta)) or b"" for a in articles]


def _head(spec: FeedSpec, meta: FeedMeta, paging: Paging | None) -> bytes:
    """The document up to its ``items`` list's value (``"items": ``), which comes last."""
    self_file = paging.self_file if paging else spec.file("json")
    archive = bool(paging and paging.archive)
    author: dict[str, str] = {"name": meta.author_name}
    if meta.author_email:
        author["url"] = f"mailto:{meta.author_email}"
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
    members = "".join(f"\n{_INDENT}{_dumps(k)}: {indented(v, 1)}," for k, v in feed.items())
    return f'{{{members}\n{_INDENT}"items": '.encode()


def render_json(
    articles: Sequence[Entry], spec: FeedSpec, meta: FeedMeta, *, paging: Paging | None = None
) -> bytes:
    """JSON Feed 1.1 with the same ids, dates and content as the Atom and RSS feeds.

    ``paging`` (#11): ``next_url``, the spec's own paging, names the next older page
    (``archive/<n>.json``); an archive page's ``feed_url`` is its own URL, and it has no hubs.
    The text is ``json.dumps(feed, ensure_ascii=False, indent=2)`` and a newline, with the
    items written once each (``indented``, kept with the article) and joined.
    """
    items = _items(articles, meta)
    if not items:
        return _head(spec, meta, paging) + b"[]" + _DOC_CLOSE
    return b"".join(
        (_head(spec, meta, paging), _ITEMS_OPEN, _ITEMS_SEP.join(items), _ITEMS_CLOSE, _DOC_CLOSE)
    )


def document_size(
    articles: Sequence[Entry], spec: FeedSpec, meta: FeedMeta, paging: Paging, head: int
) -> int:
    """``len(render_json(articles, spec, meta, paging=paging))`` without writing it; ``head``:
    ``json_head_size(spec, meta, paging)`` (the head does not depend on the items)."""
    if not articles:
        return head + 2 + len(_DOC_CLOSE)
    items = _items(articles, meta)
    fixed = len(_ITEMS_OPEN) + len(_ITEMS_CLOSE) + len(_DOC_CLOSE)
    return head + fixed + sum(map(len, items)) + len(_ITEMS_SEP) * (len(items) - 1)


def json_head_size(spec: FeedSpec, meta: FeedMeta, paging: Paging) -> int:
    """The length of the document's head for ``paging`` (see ``document_size``)."""
    return len(_head(spec, meta, paging))
