"""Frozen pydantic models: what a seed becomes, and what the store and renderer pass on."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

_FROZEN = ConfigDict(frozen=True, extra="forbid")

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
    """A validated seed. ``entry_id`` and ``updated`` come from the store (the id ledger)."""

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
    word_count: int = Field(ge=1)
    entry_id: str | None = None
    warnings: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _updated_not_before_published(self) -> Article:
        if self.updated < self.published:
            raise ValueError("updated is before published")
        return self


class FeedSpec(BaseModel):
    """One feed to write: which articles (the newest ``max_items``) in which formats."""

    model_config = _FROZEN

    name: str = Field(default="all", pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str = Field(min_length=1)
    subtitle: str = ""
    max_items: int = Field(default=50, ge=1, le=10_000)
    atom_file: str = "atom.xml"
    rss_file: str = "rss.xml"
    json_file: str = "feed.json"


class FeedMeta(BaseModel):
    """Site-wide facts the renderer needs besides the articles; no clock, no I/O."""

    model_config = _FROZEN

    base_url: str
    author_name: str
    author_email: str | None = None
    language: str
    generator_version: str


def max_updated(articles: list[Article], default: datetime) -> datetime:
    """The newest content change, from the data only (never the clock)."""
    return max((a.updated for a in articles), default=default)
