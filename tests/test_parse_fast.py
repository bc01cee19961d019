"""The parser's fast paths (#9) give what the general ones give, and their caches are bounded.

``bench/parse_compare.py`` compares whole corpora with the old code; these guard the seams
between the fast and the general path here, in every run.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc import _text, seeds
from feedsvc.errors import SeedParseError
from feedsvc.models import Block, blocks, pack_article
from feedsvc.seeds import parse_seed

NOW = datetime(2026, 1, 1, tzinfo=UTC)
VIENNA = ZoneInfo("Europe/Vienna")
# ``_BOUNDARY`` as it was before #9: a look-behind first, so it was tried at every position.
OLD_BOUNDARY = re.compile(
    r"""(?<![.!?…])(?P<end>[.!?…]++)(?P<close>["'”“’‘»«)\]]*+)\s++"""
    r"""(?=["'„“‚‘»«(\[]?[A-ZÄÖÜ0-9])"""
)


def _clean(data: bytes) -> bool:
    return seeds._clean_chars(data) is not None


def _unclean(data: bytes) -> bytes:
    """The same seed with whitespace that only squashing removes: the general path."""
    head, _, body = data.partition(b"\n")
    return head + b"\n" + body.replace(b". ", b".\t ", 3).replace(b"\n\n", b"\n \n\n", 2)


def test_clean_and_unclean_seeds_of_the_corpus_parse_alike(corpus_dir: Path) -> None:
    """Every real article parses the same through the clean path and the general one."""
    paths = sorted(corpus_dir.iterdir())
    assert len(paths) == 1014
    for path in paths:
        data = path.read_bytes()
        assert _clean(data), path.name
        assert not _clean(_unclean(data))
        fast = parse_seed(data, source=path.name, now=NOW, tz=VIENNA)
        general = parse_seed(_unclean(data), source=path.name, now=NOW, tz=VIENNA)
        assert pack_article(fast) == pack_article(general), path.name


WORDS = st.lists(
    st.sampled_from(["Wort", "A.", "Dr.", "„Ja“", "5 %", "x", "Ende.", "Schluss!", "-", "\u00a0"]),
    min_size=1,
    max_size=12,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lead=WORDS, paragraphs=st.lists(WORDS, min_size=1, max_size=6), tab=st.integers(0, 5))
def test_a_clean_seed_and_its_tabbed_twin_parse_alike(
    lead: list[str], paragraphs: list[list[str]], tab: int
) -> None:
    """Short paragraphs (subheadings), no-break spaces and quotes: tabs change nothing."""
    body = "\n\n".join(" ".join(words) for words in paragraphs)
    text = f"date 2024-03 {' '.join(lead)}\n\n{body}\n"
    tabbed = text.replace(" ", "\t", tab).replace("date\t", "date ")
    assert not _clean(tabbed.encode()) or tabbed == text
    assert _outcome(text.encode()) == _outcome(tabbed.encode())


def _outcome(data: bytes) -> object:
    """What ``parse_seed`` makes of a seed: the article's values, or the error's message."""
    try:
        return pack_article(parse_seed(data, source="000_98f79bfdbc50e318.txt", now=NOW))
    except SeedParseError as e:
        return str(e)


def test_clean_means_printable_with_single_spaces_and_line_ends_only() -> None:
    assert seeds._clean_chars("date 2024-03 „Ein“ Satz.\n\nÄrger – 5 €.\n".encode()) == "„“Ä–€"
    for odd in ("\t", "\r", "  ", "\u00a0", "\u2028", "\u3000", "\x85", "\x01", "\ufeff", "\ufffe"):
        assert not _clean(f"date 2024-03 Ein{odd}Satz.\n\nText.\n".encode()), repr(odd)


def test_month_and_day_spans_are_computed_once_and_the_cache_is_bounded() -> None:
    """The date arithmetic of a month or day is done once per time zone, not per seed."""
    seeds._slot_span.cache_clear()
    for nnn in range(3):
        for when in ("2024-03", "2024-03-31"):
            parse_seed(
                f"date {when} Ein Satz.\n\nText.\n".encode(),
                source=f"{nnn:03d}_98f79bfdbc50e318.txt",
                now=NOW,
                tz=VIENNA,
            )
    info = seeds._slot_span.cache_info()
    assert (info.misses, info.hits) == (2, 4)
    assert info.maxsize is not None
    assert info.maxsize <= 4096
    # date-times and long tokens are not kept (a hostile seed's 1 MiB token would stay)
    timed = parse_seed(b"date 2024-03-31T12:00+01:00 Ein Satz.\n\nText.\n", source="x", now=NOW)
    assert timed.published == datetime(2024, 3, 31, 11, tzinfo=UTC)
    assert "impossible date" in str(
        _outcome(f"date 2024-03-{'0' * 100_000} Satz.\n\nText.\n".encode())
    )
    assert seeds._slot_span.cache_info().currsize == 2


def test_a_day_span_caps_the_slots_before_the_next_local_midnight() -> None:
    """2024-03-31 has 23 hours in Vienna: slot 1439 is capped at 23:59 local time."""
    late = parse_seed(
        b"date 2024-03-31 Ein Satz.\n\nText.\n",
        source="1439_98f79bfdbc50e318.txt",
        now=NOW,
        tz=VIENNA,
    )
    assert late.published == datetime(2024, 3, 31, 21, 59, tzinfo=UTC)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=".!?…\"'»«) \n\tAaÄ0„(", max_size=40), st.integers(0, 40))
def test_sentence_boundaries_are_those_of_the_look_behind_pattern(text: str, pos: int) -> None:
    """``_BOUNDARY`` looks behind after its first terminator now: the same matches."""
    old = [(m.span(), m.span("end"), m.span("close")) for m in OLD_BOUNDARY.finditer(text, pos)]
    new = [(m.span(), m.span("end"), m.span("close")) for m in _text._BOUNDARY.finditer(text, pos)]
    assert new == old


def test_blocks_are_the_blocks_validation_makes() -> None:
    made = blocks([("paragraph", "Ein Absatz."), ("subheading", "Titel")])
    valid = (Block(kind="paragraph", text="Ein Absatz."), Block(kind="subheading", text="Titel"))
    assert made == valid
    assert [b.model_fields_set for b in made] == [b.model_fields_set for b in valid]
    assert made[0].model_fields_set is not made[1].model_fields_set
    assert [b.model_dump() for b in made] == [b.model_dump() for b in valid]


def test_always_nfc_characters_are_nfc_next_to_anything() -> None:
    """What ``always_nfc`` lets skip the NFC check: no combining mark, nothing NFC changes, and
    no character that composes with the one before it (the second of a canonical pair)."""
    ranges = [(0xA0, 0x2FF), (0x2010, 0x2027), (0x2030, 0x205E), (0x20A0, 0x20BF)]
    always = [chr(c) for c in range(0x10000) if _text.always_nfc(chr(c))]
    assert always == [chr(c) for a, b in ranges for c in range(a, b + 1)]
    assert _text.always_nfc("")
    assert not _text.always_nfc("ä\u0308")
    seconds = set()
    for cp in range(0x30000):
        parts = unicodedata.decomposition(chr(cp)).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            seconds.add(chr(int(parts[1], 16)))
    for ch in always:
        assert unicodedata.combining(ch) == 0, ch
        assert unicodedata.is_normalized("NFC", ch), ch
        assert ch not in seconds, ch
        for before in "aAeEoOuUzZ\u00e4\u00e9":
            assert unicodedata.is_normalized("NFC", before + ch + "a"), (before, ch)


def test_a_seed_with_other_characters_is_still_normalized() -> None:
    """Clean seeds with characters outside ``always_nfc`` go through the NFC check."""
    decomposed = "date 2024-03 Ein Satz u\u0308ber A\u030a.\n\nText mit \u2126hm.\n".encode()
    assert _clean(decomposed)
    article = parse_seed(decomposed, source="000_98f79bfdbc50e318.txt", now=NOW)
    assert article.lead == "Ein Satz über Å."
    assert article.body[0].text == "Text mit \u03a9hm."


PIECES = st.sampled_from(
    [
        b"Wort",
        b" ",
        b"\n",
        b"\n\n",
        b"\n \n",
        b"Ende.",
        "„Zitat“".encode(),
        b'"',
        b"\\",
        "Ärger".encode(),
        b"\xc3",  # a UTF-8 sequence cut short: not UTF-8 once alone
        b"\xa4",
        b"date 2024-05 ",
        "\u00a0".encode(),
        b"\t",
    ]
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(head=st.lists(PIECES, max_size=6), rest=st.lists(PIECES, max_size=30))
def test_a_clean_seed_split_as_bytes_parses_as_split_as_text(
    head: list[bytes], rest: list[bytes]
) -> None:
    """``_clean_split`` against the str path it stands in for (``_chunks`` + ``_squashed``):
    the same article, or the same error at the same line; broken UTF-8 included."""
    data = b"".join([b"date 2024-05 Ein Satz.", *head, *rest])
    fast = _outcome(data)
    try:
        seeds._clean_split, saved = (lambda data: None), seeds._clean_split
        assert _outcome(data) == fast
    finally:
        seeds._clean_split = saved


def test_the_corpus_takes_the_bytes_path(corpus_dir: Path) -> None:
    """Every real article is clean and well-formed; all but one (a Greek μ: the NFC check
    and the general path) hold only characters that are always NFC: split as bytes."""
    split = 0
    for path in sorted(corpus_dir.iterdir()):
        data = path.read_bytes()
        odd = seeds._clean_chars(data)
        assert odd is not None, path.name
        assert seeds._clean_split(data) is not None, path.name
        split += _text.always_nfc(odd)
    assert split == 1013
