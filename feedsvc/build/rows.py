"""A new article in the store's row form, made once, where it is parsed (#9).

A cold build loads an empty store in batches (``Ledger._record_new``): every article is new,
its id is the first one ``ledger.mint_id`` would try, and its row (the JSON the store keeps,
the dates as stored, the feeds it is in) follows from the article and the settings alone.
So the process pool's workers make it beside the parse (``scan._scan_chunk``) and the main
process only writes it; a build without the pool makes it in ``_record_new``, with the same
function, so both write the same bytes. A worker that made the row sends only what the row
leaves out of the article (``article_of`` makes it again, should anything ask for it).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from json.encoder import encode_basestring  # the C encoder: a JSON string, quotes included

from ..models import Article, Entry, trusted
from ..store import NewArticle
from .feeds import FeedSet


def first_entry_id(article: Article, *, authority: str, tz: tzinfo) -> str:
    """``mint_id``'s first candidate: a ``tag:`` URI of the article's local day and key."""
    day = article.published.astimezone(tz).date().isoformat()
    return f"tag:{authority},{day}:{article.key}"


def new_article(article: Article, *, authority: str, tz: tzinfo, feeds: FeedSet) -> NewArticle:
    """``article`` as a new ledger entry (its first version: ``updated`` is ``published``).

    No ``Entry`` is made (``entry_json``); the feeds are those of the entry, whose
    ``entry_id`` and ``updated`` no filter looks at.
    """
    fields = article.__dict__
    entry_id = first_entry_id(article, authority=authority, tz=tz)
    return NewArticle(
        fields["key"],
        entry_id,
        fields["content_hash"],
        fields["published"].astimezone(UTC).isoformat(),  # ``store.sql.iso``
        entry_json(article, entry_id),
        tuple(sorted(set(feeds.feeds_for(article)))),
    )


_ARTICLE_JSON = Article.__pydantic_serializer__.to_json
_ENTRY_JSON = Entry.__pydantic_serializer__.to_json
_NO_WARNINGS = {"warnings"}


def entry_json(article: Article, entry_id: str) -> bytes:
    """The row's JSON: ``Entry.of(article, entry_id=entry_id, updated=article.published)``
    without its warnings, byte for byte as pydantic's serializer writes it.

    No ``Entry`` is made for an ``Article`` whose ``updated`` is its ``published`` (every
    parsed one): an ``Entry`` is the article's fields and then ``entry_id``, so its JSON is
    the article's (pydantic's serializer) with the id put in before the closing brace
    (tests/test_rows.py checks it on any article).
    """
    fields = article.__dict__
    published = fields["published"]
    if type(article) is not Article or fields["updated"] is not published:
        entry = Entry.of(article, entry_id=entry_id, updated=published)
        return _ENTRY_JSON(entry, exclude=_NO_WARNINGS)
    head_json = _ARTICLE_JSON(article, exclude=_NO_WARNINGS)
    return b'%s,"entry_id":%s}' % (head_json[:-1], _string(entry_id).encode())


def _string(text: str) -> str:
    """``text`` as a JSON string (quoted), as pydantic_core writes it."""
    if text.isprintable():  # no control character: only these two to escape
        if "\\" in text:
            text = text.replace("\\", "\\\\")
        return '"' + (text.replace('"', '\\"') if '"' in text else text) + '"'
    return encode_basestring(text)


def article_of(row: NewArticle, *, updated: datetime | None, warnings: tuple[str, ...]) -> Article:
    """The article ``new_article`` made ``row`` of, again: the row's JSON is the article with
    its entry id and with ``updated`` set to ``published``; the article's own ``updated``
    (None: ``published``) and its ``warnings`` are given. Validated: the row came from
    another process."""
    fields = dict(Entry.model_validate_json(row.article).__dict__)
    del fields["entry_id"]
    fields.update(updated=fields["published"] if updated is None else updated, warnings=warnings)
    return trusted(Article, fields)
