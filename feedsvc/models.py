"""Frozen pydantic models: what a seed becomes, and what the store and renderer pass on."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, tzinfo
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_M = TypeVar("_M", bound=BaseModel)
_setattr = object.__setattr__


def trusted(cls: type[_M], fields: dict[str, Any]) -> _M:
    """A ``cls`` made of ``fields`` known valid: ``model_construct`` without its per-field
    default handling (every field must be given), for the hot paths.

    Only for values validated already or valid by construction (``seeds.parse_seed`` checks
    what is not); ``fields`` becomes the model's ``__dict__``.
    """
    obj = cls.__new__(cls)
    _setattr(obj, "__dict__", fields)
    _setattr(obj, "__pydantic_fields_set__", set(fields))
    _setattr(obj, "__pydantic_extra__", None)
    _setattr(obj, "__pydantic_private__", None)
    return obj


# Non-empty text without the characters XML 1.0 forbids (nor C1 controls); checked in Rust.
XmlText = Annotated[
    str, Field(min_length=1, pattern=r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\x{FFFE}\x{FFFF}]*$")
]


class Block(BaseModel):
    """One body block: a paragraph or a subheading, as plain (unescaped) text."""

    model_config = _FROZEN

    kind: Literal["paragraph", "subheading"]
    text: XmlText


class Article(BaseModel):
    """A validated seed, as the parser makes it: no id yet (see ``Entry``)."""

    model_config = _FROZEN

    key: str = Field(pattern=r"^[0-9a-f]{16}$")
    source: str = Field(min_length=1, description="path relative to seeds/, '/'-separated")
    title: XmlText
    lead: XmlText
    body: tuple[Block, ...] = Field(min_length=1)
    published: AwareDatetime
    updated: AwareDatetime
    language: str = Field(min_length=2)
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    warnings: tuple[str, ...] = ()

    @property
    def page(self) -> str:
        """The article page's path relative to feeds/: the entry's permanent link, by key."""
        return f"{ARTICLES_DIR}/{self.key}.html"

    @model_validator(mode="after")
    def _updated_not_before_published(self) -> Article:
        if self.updated < self.published:
            raise ValueError("updated is before published")
        return self


_ARTICLE_FIELDS = tuple(Article.model_fields)


def pack_article(article: Article) -> tuple[Any, ...]:
    """An ``Article`` as plain values (cheap to pickle), for ``unpack_article`` elsewhere."""
    d = article.__dict__
    body = tuple((b.kind, b.text) for b in d["body"])
    return tuple(body if name == "body" else d[name] for name in _ARTICLE_FIELDS)


def unpack_article(values: tuple[Any, ...]) -> Article:
    """The ``Article`` that ``pack_article`` packed (it was validated where it was made)."""
    fields = dict(zip(_ARTICLE_FIELDS, values, strict=True))
    fields["body"] = blocks(fields["body"])
    return trusted(Article, fields)


def blocks(pairs: Iterable[tuple[str, str]]) -> tuple[Block, ...]:
    """``Block``s of (kind, text) pairs known valid: ``trusted`` inlined (14 per article).

    The slots are set through their descriptors, a third faster than ``object.__setattr__``
    by name (blocks were 14 % of a parse).
    """
    new, fields_set = object.__new__, _BLOCK_FIELDS
    set_dict, set_fields, set_extra, set_private = _SLOT_SETTERS
    out = []
    for kind, text in pairs:
        block = new(Block)
        set_dict(block, {"kind": kind, "text": text})
        set_fields(block, set(fields_set))
        set_extra(block, None)
        set_private(block, None)
        out.append(block)
    return tuple(out)


_BLOCK_FIELDS = frozenset(Block.model_fields)
# What ``trusted`` sets, as the slot descriptors' setters of ``BaseModel``.
_SLOTS = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
_SLOT_SETTERS = tuple(vars(BaseModel)[name].__set__ for name in _SLOTS)


class Entry(Article):
    """An article the id ledger took in: it always has its ``entry_id`` (and ``updated``).

    What the store hands out and the renderers take. Stored JSON of older versions may carry
    fields since retired (``word_count`` before #8): they are ignored, not an error.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    entry_id: str = Field(min_length=1)

    @classmethod
    def of(cls, article: Article, *, entry_id: str, updated: datetime) -> Entry:
        """``article`` with its ledger id and its last content change (never before published)."""
        fields = dict(article.__dict__)
        fields.update(entry_id=entry_id, updated=max(updated, article.published))
        return trusted(cls, fields)  # ``article`` is validated; this only adds the id


Format = Literal["atom", "rss", "json"]
FORMATS: tuple[Format, ...] = ("atom", "rss", "json")
# The one table of media types (RFC 4287, the RSS Advisory Board's, JSON Feed 1.1): the
# renderers write them into links, the pages into <link rel="alternate">, and
# ``build.outputs`` serves files with them (plus a charset).
MEDIA_TYPES: dict[Format, str] = {
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "json": "application/feed+json",
}
HTML_TYPE = "text/html"
ARTICLES_DIR = "articles"  # feeds/articles/<key>.html: every entry's permanent link


def category_of(source: str) -> str | None:
    """An article's category: the first sub-folder of seeds/ it lives in (None at the top)."""
    head, sep, _ = source.partition("/")
    return head if sep else None


class FeedFilter(BaseModel):
    """Which articles a feed holds; every part given must match (an empty filter takes all)."""

    model_config = _FROZEN

    categories: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None

    def matches(self, article: Article, tz: tzinfo) -> bool:
        """Categories and languages: any of them; keywords: any, as whole words, any case."""
        if self.categories and category_of(article.source) not in self.categories:
            return False
        if self.languages and not any(
            article.language == lang or article.language.startswith(lang + "-")
            for lang in self.languages
        ):
            return False
        day = article.published.astimezone(tz).date()
        if (self.since and day < self.since) or (self.until and day > self.until):
            return False
        if self.keywords:
            text = " ".join([article.title, article.lead, *(b.text for b in article.body)])
            return _keyword_pattern(self.keywords).search(text) is not None
        return True


@functools.lru_cache(maxsize=64)
def _keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern[str]:
    words = "|".join(re.escape(k) for k in sorted(keywords, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{words})(?!\w)", re.IGNORECASE)


# The archive page suffix of each format: archive/<n>.xml, archive/<n>.rss, archive/<n>.json.
ARCHIVE_SUFFIXES: dict[Format, str] = {"atom": "xml", "rss": "rss", "json": "json"}


class FeedSpec(BaseModel):
    """One feed to write: which articles (the newest ``max_items``), where, in which formats."""

    model_config = _FROZEN

    name: str = Field(default="all", pattern=r"^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)?$")
    title: str = Field(min_length=1)
    subtitle: str = ""
    max_items: int = Field(default=50, ge=1, le=10_000)
    formats: tuple[Format, ...] = FORMATS
    directory: str = Field(default="", pattern=r"^([a-z0-9][a-z0-9_-]*/)*$")
    atom_file: str = "atom.xml"
    rss_file: str = "rss.xml"
    json_file: str = "feed.json"
    filter: FeedFilter = FeedFilter()
    language: str | None = None  # the feed's xml:lang / <language>; None: the site's

    def file(self, fmt: Format) -> str:
        """The feed document's path relative to feeds/ ('/'-separated)."""
        names = {"atom": self.atom_file, "rss": self.rss_file, "json": self.json_file}
        return self.directory + names[fmt]

    def archive_file(self, page: int, fmt: Format = "atom") -> str:
        """An archive page's path relative to feeds/: ``archive/<page>.xml`` (Atom), ``.rss``,
        ``.json``; each format's chain stays in its format (RFC 5005 section 4)."""
        return f"{self.directory}archive/{page}.{ARCHIVE_SUFFIXES[fmt]}"


class FeedMeta(BaseModel):
    """Site-wide facts the renderer needs besides the articles; no clock, no I/O."""

    model_config = _FROZEN

    base_url: str
    author_name: str
    author_email: str | None = None
    language: str
    generator_version: str
    hub_url: str | None = None
    icon: str | None = None
    logo: str | None = None
    favicon: str | None = None
    ttl_minutes: int | None = None
    max_bytes: int | None = None


class Paging(BaseModel):
    """Where an Atom document sits in its feed's RFC 5005 archive chain."""

    model_config = _FROZEN

    self_file: str
    prev_archive: str | None = None
    current: str | None = None
    archive: bool = False


def max_updated(articles: Sequence[Article], default: datetime) -> datetime:
    """The newest content change, from the data only (never the clock)."""
    return max((a.updated for a in articles), default=default)
