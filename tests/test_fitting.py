"""Archive fitting without writing pages, and the JSON Feed's own indenter (#9).

- ``jsonfeed.indented`` writes what ``json.dumps(..., ensure_ascii=False, indent=2)`` writes
  for any document of the shapes a feed can hold (any text, numbers, nested containers, empty
  ones), and ``render_json`` is that of its feed object.
- ``document_size`` (Atom/RSS head + entries, JSON head + items) is exactly the length of the
  page ``render_*`` writes, for random pages (dates of every length, odd entries feedgen
  writes, no entries).
- A budget search sizes pages: it writes each archive page's head in a format about once per
  date length, not once per probe, and it writes no JSON through the pure-Python encoder.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from feedgen.feed import FeedGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc.build.publisher import Publisher
from feedsvc.config import Settings
from feedsvc.models import Entry
from feedsvc.render import feeds, jsonfeed
from feedsvc.render.feeds import render_atom, render_rss
from feedsvc.render.jsonfeed import indented, render_json

from .conftest import seed_text
from .test_feeds_writer import ARCHIVE, META, SPEC, TEXT, entry

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
DOCS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(doc=DOCS)
def test_indented_is_the_pure_python_encoders_text(doc: Any) -> None:
    assert indented(doc) == json.dumps(doc, ensure_ascii=False, indent=2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=TEXT,
    lead=TEXT,
    paragraphs=st.lists(st.tuples(st.sampled_from(["paragraph", "subheading"]), TEXT), min_size=1),
    category=st.sampled_from(["", "sport/", "a&b <c>/"]),
    count=st.integers(min_value=0, max_value=3),
)
def test_json_feed_is_json_dumps_of_its_feed_object(
    title: str, lead: str, paragraphs: list[tuple[str, str]], category: str, count: int
) -> None:
    odd = entry(7, title=title, lead=lead, body=tuple(paragraphs), source=f"{category}x.txt")
    articles = [odd, *(entry(n) for n in range(8, 8 + count))]
    for paging in (None, ARCHIVE.model_copy(update={"self_file": "archive/3.json"})):
        data = render_json(articles, SPEC, META, paging=paging)
        expect = json.dumps(json.loads(data), ensure_ascii=False, indent=2) + "\n"
        assert data == expect.encode("utf-8")
    empty = render_json([], SPEC, META)
    assert empty == (json.dumps(json.loads(empty), ensure_ascii=False, indent=2) + "\n").encode()


def _pool() -> list[Entry]:
    """Entries with dates of different lengths (microseconds, offsets), texts to escape, and
    a few the entry writer leaves to feedgen (a CR, a tab in a category)."""
    pool = []
    for n in range(40):
        pool.append(
            entry(
                n,
                title=f"Titel {n} & <b>{'ä' * (n % 5)}</b>",
                lead=f"Vorspann {n}: a > b" + " x" * (n * 7 % 31),
                body=(("paragraph", "Absatz " * (n % 9 + 1)), ("subheading", f"Z {n}")),
                source="sport/x.txt" if n % 2 else "top.txt",
                language="en" if n % 3 == 0 else "de-AT",
                offset=timedelta(microseconds=n * 1013) if n % 4 == 1 else timedelta(0),
            )
        )
    pool.append(entry(50, lead="Zeile\r\nzwei"))
    pool.append(entry(51, source="sp\tort/x.txt"))
    return pool


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_document_size_is_the_length_of_the_page_written(
    fmt: Literal["atom", "rss", "json"],
) -> None:
    pool = _pool()
    rng = random.Random(9)
    paging = ARCHIVE.model_copy(update={"self_file": f"archive/3.{fmt}"})
    heads: dict[tuple[int, int], int] = {}
    json_head = jsonfeed.json_head_size(SPEC, META, paging)
    for trial in range(120):
        items = rng.sample(pool, rng.randint(0, 12))
        if trial % 3:  # mostly the writer's own entries; now and then an odd one among them
            items = [a for a in items if a.key not in {f"{50:016x}", f"{51:016x}"}]
        items.sort(key=lambda e: (e.published, e.key), reverse=True)
        if fmt == "json":
            size = jsonfeed.document_size(items, SPEC, META, paging, json_head)
            written = render_json(items, SPEC, META, paging=paging)
        else:
            size = feeds.document_size(fmt, items, SPEC, META, paging, heads)
            render = render_atom if fmt == "atom" else render_rss
            written = render(items, SPEC, META, paging=paging)
        assert size == len(written), (trial, [a.key for a in items])
    if fmt != "json":
        assert 1 <= len(heads) <= 2  # with and without microseconds


def test_a_budget_search_sizes_pages_instead_of_writing_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A byte budget that fills pages before their count: the search probes each page several
    times, and writes its head once a date length and the page once, in each format."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for n in range(60):
        lead = f"Meldung {n}." + " Mehr Text." * (n * 37 % 90)
        (seeds / f"m{n:03d}.txt").write_text(
            seed_text(lead, date=f"2024-03-{n % 28 + 1:02d}"), encoding="utf-8"
        )
    config = Settings(
        base_url="http://localhost:8080/",
        seeds_dir=seeds,
        feeds_dir=tmp_path / "feeds",
        state_dir=tmp_path / "state",
        detect_language=False,
        max_items=5,
        archive_page_size=20,
        max_feed_bytes=9000,
    )
    heads: list[int] = []  # every feedgen document written (a head, or a whole document)
    atom_str, rss_str = FeedGenerator.atom_str, FeedGenerator.rss_str
    indents: list[int] = []  # JSON written by the pure-Python encoder
    dumps = json.dumps

    def atom(self: FeedGenerator, *args: Any, **kwargs: Any) -> Any:
        heads.append(1)
        return atom_str(self, *args, **kwargs)

    def rss(self: FeedGenerator, *args: Any, **kwargs: Any) -> Any:
        heads.append(1)
        return rss_str(self, *args, **kwargs)

    def counted_dumps(*args: Any, **kwargs: Any) -> str:
        if kwargs.get("indent") is not None:
            indents.append(1)
        return dumps(*args, **kwargs)

    monkeypatch.setattr(FeedGenerator, "atom_str", atom)
    monkeypatch.setattr(FeedGenerator, "rss_str", rss)
    monkeypatch.setattr(jsonfeed.json, "dumps", counted_dumps)
    report = Publisher(config).build()
    assert report.ok, report.errors
    archive = sorted((tmp_path / "feeds" / "archive").glob("*.xml"))
    pages = len(archive)
    assert pages >= 6  # full by bytes long before 20 entries
    for page in archive:
        assert len(page.read_bytes()) <= 9000 or page.read_bytes().count(b"<entry") == 1
    assert indents == []
    # each archive page: one head to size it (its dates have one length) and the page
    # written, in Atom and RSS; the current feed's budget search (``fit``) writes a few more.
    # (Before #9's sizing: a page written in every format for every probe, 96 here.)
    assert len(heads) <= 4 * pages + 12, (len(heads), pages)
