"""What must be redone when a setting (or the parser, or the clock) changes.

Three fingerprints, each stored in the store's meta after the build that used it:

- ``parse``: every setting ``parse_seed`` takes (``ParseOptions``, passed *and* hashed, so no
  option can be missed) and the parser's version; a change re-parses every seed.
- ``membership``: what decides which feed an article is in and its archive places; a change
  sorts every article into its feeds afresh.
- ``render``: everything else that shapes the bytes of an output; a change rewrites feeds/.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from datetime import timedelta, tzinfo
from typing import Any

from ..config import Settings
from ..models import FeedMeta, FeedSpec
from ..render.pages import Site

# 2: titles cut at clause boundaries, quotes and brackets closed (#11)
# 3: a short lead's title goes on into the first paragraph (#11)
PARSER_VERSION = "3"


def fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """Every setting ``parse_seed`` uses; its repr is the parse fingerprint, so none is missed."""

    tz: tzinfo
    language: str
    languages: tuple[str, ...]
    language_min_confidence: float
    max_bytes: int
    max_future: timedelta

    @classmethod
    def of(cls, settings: Settings) -> ParseOptions:
        return cls(
            tz=settings.tz,
            language=settings.language,
            languages=settings.languages if settings.detect_language else (),
            language_min_confidence=settings.language_min_confidence,
            max_bytes=settings.max_seed_bytes,
            max_future=timedelta(days=settings.max_future_days),
        )

    def kwargs(self) -> dict[str, Any]:
        """The options as ``parse_seed``'s keyword arguments: exactly what is hashed."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def fingerprint(self) -> str:
        return fingerprint(PARSER_VERSION, repr(self))


def membership(settings: Settings, configured: list[FeedSpec]) -> str:
    """The feeds' definitions and what decides an article's feeds and archive places."""
    return fingerprint(
        json.dumps([s.model_dump(mode="json") for s in configured]),
        str(settings.category_feeds),
        settings.timezone,
        str(settings.archive_page_size),
        # an article's language can change without its content: re-sort when these do
        settings.language,
        str(settings.detect_language),
        ",".join(settings.languages),
        repr(settings.language_min_confidence),
    )


def render(settings: Settings, meta: FeedMeta, site: Site, membership_fp: str, version: str) -> str:
    """Everything else that shapes an output's bytes: a change rewrites every output.

    The parser's version is in it: a new parser may derive other titles from the same content,
    which leaves ``content_hash`` and ``updated`` alone, so only this makes the outputs follow.
    """
    return fingerprint(
        version,
        PARSER_VERSION,
        meta.model_dump_json(),
        site.model_dump_json(),
        str(settings.gzip_feeds),
        str(settings.html_pages),
        json.dumps([c.model_dump(mode="json") for c in settings.categories]),
        membership_fp,
    )
