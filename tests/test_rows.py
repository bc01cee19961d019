"""A new article's store row (``build/rows.py``, #9): written without an ``Entry``, from a
clean seed's UTF-8, byte for byte what pydantic's serializer writes.

``bench/parse_compare.py`` compares whole corpora with the old code; these guard the fast
paths' seams in every run: any text, both paths (the row right after the parse, and later).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pydantic_core
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc import seeds
from feedsvc.build import rows
from feedsvc.build.feeds import FeedSet
from feedsvc.config import Settings
from feedsvc.models import Article, Entry
from feedsvc.seeds import parse_seed
from feedsvc.store import NewArticle

NOW = datetime(2026, 1, 1, tzinfo=UTC)
VIENNA = ZoneInfo("Europe/Vienna")
SETTINGS = Settings(
    timezone="Europe/Vienna",
    category_feeds=True,
    feeds=[{"name": "all"}, {"name": "wien", "keywords": ["Wien"]}],
)
FEEDS = FeedSet(SETTINGS)


def _serialized(article: Article, entry_id: str) -> bytes:
    """The row's JSON as it was made before #9: an ``Entry``, then pydantic's serializer."""
    entry = Entry.of(article, entry_id=entry_id, updated=article.published)
    return Entry.__pydantic_serializer__.to_json(entry, exclude={"warnings"})


def _old_row(article: Article) -> NewArticle:
    """``rows.new_article`` as it was before #9."""
    entry_id = rows.first_entry_id(article, authority="localhost", tz=VIENNA)
    entry = Entry.of(article, entry_id=entry_id, updated=article.published)
    return NewArticle(
        article.key,
        entry_id,
        article.content_hash,
        article.published.astimezone(UTC).isoformat(),
        _serialized(article, entry_id),
        tuple(sorted(set(FEEDS.feeds_for(entry)))),
    )


def _row(article: Article) -> NewArticle:
    return rows.new_article(article, authority="localhost", tz=VIENNA, feeds=FEEDS)


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_a_json_string_is_written_as_pydantic_core_writes_it(text: str) -> None:
    """Quotes, backslashes, C0 controls, DEL, C1 controls, U+2028, astral characters."""
    assert rows._string(text).encode() == pydantic_core.to_json(text)


TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=30,
).filter(lambda t: seeds.find_forbidden(t) == [])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=TEXT,
    lead=TEXT,
    texts=st.lists(st.tuples(st.sampled_from(["paragraph", "subheading"]), TEXT), min_size=1),
    source=TEXT,
    offset=st.sampled_from([0, 60, -330]),
    micro=st.sampled_from([0, 5, 500000]),
)
def test_the_row_of_any_article_is_its_entry_serialized(
    title: str,
    lead: str,
    texts: list[tuple[str, str]],
    source: str,
    offset: int,
    micro: int,
) -> None:
    """Any valid article (not one just parsed): the article's JSON with the id spliced in,
    or the ``Entry``'s when its dates are not UTC."""
    when = datetime(2024, 3, 31, 1, 30, 0, micro, tzinfo=timezone(timedelta(minutes=offset)))
    article = Article(
        key="98f79bfdbc50e318",
        source=source,
        title=title,
        lead=lead,
        body=[{"kind": kind, "text": text} for kind, text in texts],
        published=when,
        updated=when,
        language="de-AT",
        content_hash="0" * 64,
    )
    spliced = article.model_copy(update={"updated": article.published})  # the very object
    for one in (article, spliced):
        assert rows.entry_json(one, 'tag:x"y,2024:1') == _serialized(one, 'tag:x"y,2024:1')
        assert _row(one) == _old_row(one)
    later = article.model_copy(update={"updated": when + timedelta(days=1)})
    assert _row(later) == _old_row(later)  # an Entry's updated is its published: a new row


WORDS = st.lists(
    st.sampled_from(
        ["Wort", "A.", "„Ja“", '"Nein"', "C:\\Pfad", "x\\", "5 %", "Wien", "Ende.", "\u00e4", "€"]
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lead=WORDS,
    paragraphs=st.lists(WORDS, min_size=1, max_size=8),
    when=st.sampled_from(["2024-03", "2024-03-31", "2024-10-27T02:30:00.5+02:00", "1900-01"]),
)
def test_the_row_of_a_clean_seed_just_parsed_is_its_entry_serialized(
    lead: list[str], paragraphs: list[list[str]], when: str
) -> None:
    """Quotes, backslashes, subheadings (short lines) and multi-line paragraphs: the row
    made right after the parse is the serializer's."""
    body = "\n\n".join(
        " ".join(words) if i % 3 else "\n".join(words) for i, words in enumerate(paragraphs)
    )
    data = f"date {when} {' '.join(lead)}\n\n{body}\n".encode()
    article = parse_seed(data, source="cat/017_98f79bfdbc50e318.txt", now=NOW, tz=VIENNA)
    assert _row(article) == _old_row(article)


def test_the_rows_of_the_corpus_are_those_made_before(corpus_dir: Path) -> None:
    """Every real article: its row right after the parse and its row made later."""
    made: list[tuple[Article, Any]] = []
    for path in sorted(corpus_dir.iterdir()):
        article = parse_seed(path.read_bytes(), source=f"Etat/{path.name}", now=NOW, tz=VIENNA)
        made.append((article, _row(article)))
    assert len(made) == 1014
    for article, row in made:
        assert row == _old_row(article), article.source
        assert _row(article) == row
