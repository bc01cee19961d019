"""parse_seed (pure) and read_seed (the only seed I/O), rule by rule, plus golden pairs."""

from __future__ import annotations

import json
import os
import stat
import threading
import unicodedata
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from feedsvc._text import CGJ, TITLE_MAX, squash, title_stem, without_dateline
from feedsvc.errors import FeedsvcError, SeedError, SeedParseError, SeedReadError
from feedsvc.models import Article
from feedsvc.seeds import MAX_BLOCKS, RawSeed, parse_seed, read_seed, seed_key

from .adversarial import FAMILIES

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "seeds" / "000_98f79bfdbc50e318.txt"
DATA = Path(__file__).resolve().parent / "data"
NOW = datetime(2025, 1, 1, tzinfo=UTC)
VIENNA = ZoneInfo("Europe/Vienna")
NAME = "000_98f79bfdbc50e318.txt"


def parse(data: bytes | str, *, source: str = NAME, **kwargs: Any) -> Article:
    """parse_seed with the fixed clock; str is UTF-8 encoded."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return parse_seed(raw, source=source, **{"now": NOW, **kwargs})


def parse_error(data: bytes | str, **kwargs: Any) -> SeedParseError:
    with pytest.raises(SeedParseError) as info:
        parse(data, **kwargs)
    return info.value


def seed(when: str = "2024-11", lead: str = "Ein Satz als Aufmacher.", body: str = "Text.") -> str:
    return f"date {when} {lead}\n\n{body}\n"


def title_source(article: Article) -> str:
    """The text a title is taken from: the lead, then (for a short lead) the first paragraph."""
    first = article.body[0]
    more = first.text if first.kind == "paragraph" else ""
    rest = without_dateline(squash(more[: 4 * TITLE_MAX]))
    return f"{article.lead.strip()} {rest}"


def local(article: Article, tz: ZoneInfo = VIENNA) -> datetime:
    return article.published.astimezone(tz)


def texts(article: Article) -> list[tuple[str, str]]:
    return [(b.kind, b.text) for b in article.body]


# --- golden pairs -------------------------------------------------------------------------


GOLDEN = sorted(DATA.glob("*.txt"))


def test_every_golden_seed_has_its_expectation() -> None:
    assert len(GOLDEN) >= 10
    expected = {p.name.removesuffix(".expected.json") for p in DATA.glob("*.expected.json")}
    assert expected == {p.stem for p in GOLDEN}


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden(path: Path) -> None:
    expected = json.loads(path.with_name(path.stem + ".expected.json").read_text("utf-8"))
    data = path.read_bytes()
    if "error" in expected:
        with pytest.raises(SeedParseError) as info:
            parse(data, source=path.name, tz=VIENNA)
        assert str(info.value) == expected["error"]
        return
    article = parse(data, source=path.name, tz=VIENNA)
    assert article.published == datetime.fromisoformat(expected["published"])
    assert article.title == expected["title"]
    assert article.lead == expected["lead"]
    assert texts(article) == [tuple(b) for b in expected["body"]]
    assert list(article.warnings) == expected["warnings"]
    assert article.key == seed_key(path.name)


# --- the real sample ------------------------------------------------------------------------


def test_real_sample() -> None:
    raw = read_seed(SAMPLE, root=SAMPLE.parent, max_bytes=1024 * 1024)
    article = parse_seed(raw.data, source=SAMPLE.name, now=NOW, tz=VIENNA)
    assert article.key == "98f79bfdbc50e318"
    assert local(article) == datetime(2024, 11, 1, tzinfo=VIENNA)
    assert article.published == datetime(2024, 10, 31, 23, tzinfo=UTC)
    assert article.lead == (
        'US-Außenminister Antony Blinken hat eine "harte Antwort" auf die militärische '
        "Unterstützung Nordkoreas für Russland im Ukraine-Krieg angekündigt."
    )
    assert article.title == (  # the lead is 139 characters: cut at a word (not "für"), ≤ 110
        'US-Außenminister Antony Blinken hat eine "harte Antwort" auf die militärische '
        "Unterstützung Nordkoreas…"
    )
    assert len(article.body) == 7
    kinds = [b.kind for b in article.body]
    assert kinds == ["paragraph"] * 3 + ["subheading"] + ["paragraph"] * 3
    assert article.body[3].text == "50.000 Soldaten"
    assert article.body[0].text.startswith("Blinken sagte am Mittwoch")
    assert '"eine harte Antwort erhalten"' in article.body[0].text
    assert "bis zum Amtsantritt Trumps am 20. Jänner beraten." in article.body[1].text
    assert article.body[-1].text.endswith("an Drohen auf das jeweils andere Land ab.")
    everything = article.lead + "".join(b.text for b in article.body)
    assert unicodedata.is_normalized("NFC", everything)
    assert "\n" not in everything
    assert article.warnings == ()
    assert len(" ".join([article.lead, *(b.text for b in article.body)]).split()) > 300


# --- line 1: the date line ------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", " ", "   ", "\t", " \t "])
def test_date_line_may_be_indented(prefix: str) -> None:
    article = parse(prefix + seed())
    assert article.lead == "Ein Satz als Aufmacher."


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2024-11", datetime(2024, 11, 1, tzinfo=UTC)),
        ("2024-11-05", datetime(2024, 11, 5, tzinfo=UTC)),
        ("2024-11-05T10:30:00+01:00", datetime(2024, 11, 5, 9, 30, tzinfo=UTC)),
        ("2024-11-05T10:30:00-05:30", datetime(2024, 11, 5, 16, 0, tzinfo=UTC)),
        ("2024-11-05T10:30:00Z", datetime(2024, 11, 5, 10, 30, tzinfo=UTC)),
        ("2024-11-05T10:30+00:00", datetime(2024, 11, 5, 10, 30, tzinfo=UTC)),
        ("2024-02-29", datetime(2024, 2, 29, tzinfo=UTC)),
    ],
)
def test_date_formats(when: str, expected: datetime) -> None:
    article = parse(seed(when), source="x.txt")
    assert article.published == expected
    assert article.published.utcoffset() == timedelta(0)


def test_offset_wins_over_tz_and_naive_datetime_gets_tz() -> None:
    with_offset = parse(seed("2024-07-01T12:00:00+00:00"), tz=VIENNA)
    assert with_offset.published == datetime(2024, 7, 1, 12, tzinfo=UTC)
    naive = parse(seed("2024-07-01T12:00:00"), tz=VIENNA)
    assert naive.published == datetime(2024, 7, 1, 10, tzinfo=UTC)  # CEST
    winter = parse(seed("2024-01-15T12:00"), tz=VIENNA)
    assert winter.published == datetime(2024, 1, 15, 11, tzinfo=UTC)  # CET
    assert parse(seed("2024-07-01T12:00:00")).published == datetime(2024, 7, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "Ein Satz.\n\nText.\n",
        "Datum 2024-11 Satz.\n\nText.\n",
        "date\n\nText.\n",
        "dated 2024-11 Satz.\n\nText.\n",
        "Text vorher.\ndate 2024-11 Satz.\n\nText.\n",
    ],
)
def test_missing_date_line(text: str) -> None:
    error = parse_error(text, display="seeds/x.txt")
    assert str(error).startswith("seeds/x.txt:1: no date line")
    assert (error.path, error.line) == ("seeds/x.txt", 1)


def test_date_line_must_be_line_one() -> None:
    error = parse_error("\n" + seed())
    assert "no date line" in error.reason


@pytest.mark.parametrize(
    "when", ["2024/11", "11-2024", "yesterday", "Nov", "05.11.2024", "2024-11-05T"]
)
def test_invalid_date(when: str) -> None:
    error = parse_error(f"date {when} Ein Satz.\n\nText.\n", display="seeds/x.txt")
    assert error.line == 1
    assert str(error).startswith("seeds/x.txt:1: ")
    assert "date" in error.reason


@pytest.mark.parametrize(
    "when",
    [
        "2024-13",
        "2024-00",
        "2024-02-30",
        "2023-02-29",
        "2024-04-31",
        "2024-11-00",
        "2024-11-05T25:00:00+01:00",
        "1899-12",
        "9999-12",
        "9999-12-31",
    ],
)
def test_impossible_date(when: str) -> None:
    error = parse_error(seed(when), display="seeds/x.txt")
    assert str(error).startswith(f"seeds/x.txt:1: impossible date '{when}'")


def test_future_dates_are_limited_by_a_configurable_margin() -> None:
    now = datetime(2024, 11, 5, 12, tzinfo=UTC)
    assert parse(seed("2024-11-07"), now=now).published == datetime(2024, 11, 7, tzinfo=UTC)
    error = parse_error(seed("2024-11-08"), now=now, display="seeds/x.txt")
    assert str(error).startswith("seeds/x.txt:1: date '2024-11-08' is 2.5 days in the future")
    assert "max_future_days = 2" in error.reason
    later = parse(seed("2024-11-08"), now=now, max_future=timedelta(days=3))
    assert later.published == datetime(2024, 11, 8, tzinfo=UTC)
    assert parse_error(seed("2024-11-05T13:00Z"), now=now, max_future=timedelta(0)).line == 1
    past = parse(seed("2001-01"), now=now, max_future=timedelta(0))
    assert past.published.year == 2001


# --- lead, paragraphs, subheadings ----------------------------------------------------------


@pytest.mark.parametrize("line", ["date 2024-11", "date 2024-11   ", "date 2024-11 \t "])
def test_empty_lead(line: str) -> None:
    error = parse_error(f"{line}\n\nText.\n", display="seeds/x.txt")
    assert str(error).startswith("seeds/x.txt:1: empty lead")


@pytest.mark.parametrize(
    "text", [seed().split("\n\n")[0], seed().split("\n\n")[0] + "\n\n  \n\t\n\n"]
)
def test_empty_body(text: str) -> None:
    error = parse_error(text)
    assert "no body" in error.reason


@pytest.mark.parametrize(
    "data", [b"", b" ", b"\n\n\n", b" \t\r\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n"]
)
def test_empty_file(data: bytes) -> None:
    error = parse_error(data, display="seeds/x.txt")
    assert str(error) == "seeds/x.txt:1: empty file"


def test_paragraphs_split_on_blank_lines_and_join_lines_with_a_space() -> None:
    body = "Eins a\nEins b\n  Eins c  \n\n\n\n Zwei.\n \t \nDrei a.\nDrei b."
    article = parse(seed(body=body))
    assert texts(article) == [
        ("paragraph", "Eins a Eins b Eins c"),
        ("paragraph", "Zwei."),
        ("paragraph", "Drei a. Drei b."),
    ]


def test_lead_may_continue_on_the_next_lines_of_its_paragraph() -> None:
    article = parse("date 2024-11 Erster Teil\nzweiter Teil.\n\nText.\n")
    assert article.lead == "Erster Teil zweiter Teil."


def test_whitespace_inside_lines_is_squashed() -> None:
    article = parse(seed(lead="Ein   Satz\tmit  Lücken.", body="Ein\t\tAbsatz  mit   Lücken."))
    assert article.lead == "Ein Satz mit Lücken."
    assert article.body[0].text == "Ein Absatz mit Lücken."


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("50.000 Soldaten", "subheading"),
        ("Die Lage in Kursk", "subheading"),
        ("„Wir gehen“", "subheading"),
        ('"Harte Antwort"', "subheading"),
        ("Die Lage in Kursk.", "paragraph"),
        ("Die Lage in Kursk?", "paragraph"),
        ("Die Lage in Kursk!", "paragraph"),
        ("Die Lage in Kursk:", "paragraph"),
        ('"Wir gehen."', "paragraph"),
        (
            "Ein Satz ohne Punkt, der aber viel zu lang für einen Zwischentitel ist, weil er",
            "paragraph",
        ),
        (" ".join(["Wort"] * 11), "paragraph"),
    ],
)
def test_subheading(line: str, kind: str) -> None:
    article = parse(seed(body=f"Erster Absatz.\n\n{line}\n\nLetzter Absatz."))
    assert article.body[1].kind == kind
    assert [b.kind for b in article.body][::2] == ["paragraph", "paragraph"]


def test_two_short_lines_are_a_paragraph_not_a_subheading() -> None:
    article = parse(seed(body="Erster Absatz.\n\nKurz\nund knapp\n\nLetzter Absatz."))
    assert article.body[1].kind == "paragraph"
    assert article.body[1].text == "Kurz und knapp"


def test_title_comes_from_the_lead() -> None:
    article = parse(seed(lead="Laut Dr. Huber kamen z. B. 50.000 Menschen. Danach nicht."))
    assert article.title == "Laut Dr. Huber kamen z. B. 50.000 Menschen"
    long = parse(seed(lead=" ".join(["Regierung"] * 30) + "."))
    assert long.title.endswith("…")
    assert len(long.title) <= 110
    tiny = parse(seed(lead="."))  # no sentence at all: the first paragraph's goes on
    assert tiny.title == ". Text"
    short = parse(seed(lead="Rund zehn Prozent.", body="Wien – So viele sind es. Mehr."))
    assert short.title == "Rund zehn Prozent. So viele sind es"  # no fragment, no dateline


# --- encodings, line ends, normalization ----------------------------------------------------


def test_crlf_cr_bom_and_trailing_spaces_change_nothing() -> None:
    plain = seed(lead="Grüße.", body="Eins a\nEins b\n\nZwei.")
    reference = parse(plain)
    variants = [
        plain.replace("\n", "\r\n"),
        plain.replace("\n", "\r"),
        "\ufeff" + plain,
        "\ufeff" + plain.replace("\n", "\r\n"),
        plain.replace("\n", "   \n"),
        plain.replace("\n", " \t\r\n"),
    ]
    for text in variants:
        article = parse(text)
        assert article == reference, repr(text)


def test_decomposed_umlauts_become_composed() -> None:
    decomposed = "Mu\u0308ller gru\u0308ßt O\u0308sterreich."
    assert not unicodedata.is_normalized("NFC", decomposed)
    article = parse(seed(lead=decomposed, body="Ko\u0308ln."))
    assert article.lead == "M\u00fcller gr\u00fc\u00dft \u00d6sterreich."
    assert article.title == "M\u00fcller gr\u00fc\u00dft \u00d6sterreich. K\u00f6ln"
    assert article.body[0].text == "K\u00f6ln."


def test_same_text_in_nfc_and_nfd_is_the_same_article() -> None:
    text = seed(lead="Grüße aus Österreich.", body="Straße in Köln.")
    assert parse(unicodedata.normalize("NFD", text)) == parse(text)


@pytest.mark.parametrize(
    ("data", "line", "offset"),
    [
        (b"date 2024-11 Satz.\n\nText \xff.\n", 3, 25),
        (b"date 2024-11 Satz.\r\n\r\nText \xff.\r\n", 3, 27),
        (b"date 2024-11 Satz.\r\rText \xff.\r", 3, 25),
        (b"\xef\xbb\xbfdate 2024-11 Satz.\n\nText \xff.\n", 3, 28),
        (b"date 2024-11 Satz \xc3\x28.\n\nText.\n", 1, 18),
        (b"date 2024-11 Satz.\n\nEins.\n\nZwei \xed\xa0\x80.\n", 5, 32),
        (b"date 2024-11 Satz.\n\nText.\n\n\xe2\x82", 5, 27),
    ],
)
def test_invalid_utf8_names_line_and_byte_offset(data: bytes, line: int, offset: int) -> None:
    error = parse_error(data, display="seeds/x.txt")
    assert error.line == line
    assert str(error).startswith(f"seeds/x.txt:{line}: invalid UTF-8 at byte offset {offset} ")
    assert f"(byte 0x{data[offset]:02x})" in error.reason


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"date 2024-11 Satz.\n\nText\x00.\n", 3),
        (b"date 2024-11 Satz.\r\n\r\nText\x00.\r\n", 3),
        (b"date 2024-11 Satz.\r\rText\x00.\r", 3),
        (b"\x00\x01\x02binary", 1),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 3),
    ],
)
def test_nul_bytes_mean_binary(data: bytes, line: int) -> None:
    error = parse_error(data, display="seeds/x.txt")
    assert str(error).startswith(f"seeds/x.txt:{line}: binary file (NUL byte at byte offset ")


def test_mostly_control_characters_mean_binary() -> None:
    junk = bytes(range(1, 9)) * 20
    error = parse_error(b"date 2024-11 Satz.\n\n" + junk + b"\n")
    assert error.reason.startswith("binary file (160 control characters)")


def test_too_large_for_parse_seed() -> None:
    data = seed(body="x" * 200).encode()
    assert parse(data, max_bytes=len(data)).body[0].text == "x" * 200
    error = parse_error(data, max_bytes=len(data) - 1)
    assert error.reason.startswith("file too large")


def test_forbidden_characters_are_removed_with_a_warning() -> None:
    text = (
        "date 2024-11 Ein\x0b Satz.\n\nSauber.\n\n"
        "Mit \x1b[1mEscape\x1b[0m, \x7fDEL, \u0085NEL, \ufffe und \uffff.\n"
    )
    article = parse(text, display="seeds/x.txt")
    assert article.lead == "Ein Satz."
    assert article.body[1].text == "Mit [1mEscape[0m, DEL, NEL, und ."
    assert article.warnings == (
        "seeds/x.txt:1: removed 7 character(s) that XML forbids (first U+000B)",
    )


def test_forbidden_character_warning_names_its_line() -> None:
    article = parse("date 2024-11 Satz.\r\n\r\nEins.\r\n\r\nZw\x0cei.\r\n", display="s/x.txt")
    assert article.body[1].text == "Zwei."
    assert article.warnings == (
        "s/x.txt:5: removed 1 character(s) that XML forbids (first U+000C)",
    )


def test_clean_text_has_no_warnings() -> None:
    article = parse(seed(lead="Tab\tund Umlaut ä, Euro €, Emoji \U0001f600."))
    assert article.warnings == ()
    assert article.lead == "Tab und Umlaut ä, Euro €, Emoji \U0001f600."


def test_a_block_of_only_forbidden_characters_is_dropped_not_empty() -> None:
    article = parse("date 2024-11 Satz.\n\n\x01\x02\n\nText.\n")
    assert texts(article) == [("paragraph", "Text.")]
    assert len(article.warnings) == 1


# --- hostile input: every step linear (#7) --------------------------------------------------

MIB = 1024 * 1024
REFUSED = {"tiny_paragraphs": "too many paragraphs", "long_date_token": "no date line"}


@pytest.mark.slow
@pytest.mark.timeout(20)  # a hang guard, not a timing (bench/parse_bench.py has the figures)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_adversarial_seeds_of_1_mib_parse(family: str) -> None:
    """Each trap at the default max_seed_bytes: was minutes to hours (quadratic), now ms."""
    data = FAMILIES[family](MIB)
    assert MIB - 64 < len(data) <= MIB
    if family in REFUSED:
        with pytest.raises(SeedParseError, match=REFUSED[family]):
            parse(data, languages=("de", "en"))
        return
    article = parse(data, languages=("de", "en"))
    assert 0 < len(article.title) <= TITLE_MAX
    assert title_source(article).startswith(title_stem(article.title))
    assert unicodedata.is_normalized("NFC", article.lead)


@pytest.mark.timeout(20)  # a hang guard: 50,000 initials took minutes before #7
def test_initials_and_ordinals_do_not_end_the_title_however_many() -> None:
    article = parse(seed(lead="Laut " + "A. 20. " * 50_000 + "Ende.", body="Text."))
    assert article.title == "Laut " + "A. 20. " * 14 + "A.…"  # cut at 110, at a word


def test_more_than_10000_blocks_are_refused_at_the_first_one_too_many() -> None:
    ok = parse(seed(body="\n\n".join(["Absatz."] * MAX_BLOCKS)))
    assert len(ok.body) == MAX_BLOCKS
    body = "\n\n".join(f"Absatz {i}." for i in range(MAX_BLOCKS + 5))
    error = parse_error(seed(body=body), display="seeds/x.txt")
    assert str(error) == (
        f"seeds/x.txt:{3 + 2 * MAX_BLOCKS}: too many paragraphs: more than {MAX_BLOCKS} "
        "(a seed is one article)"
    )


def test_a_long_run_of_combining_marks_is_made_stream_safe_with_a_warning() -> None:
    zalgo = "Z" + "\u0301\u0316" * 40  # 80 marks out of canonical order
    article = parse(seed(body=f"Text.\n\n{zalgo}."), display="seeds/x.txt")
    text = article.body[1].text
    assert unicodedata.is_normalized("NFC", text)
    assert text.count(CGJ) == 2  # after the 30th and the 60th mark
    assert sorted(text.replace(CGJ, "")) == sorted(unicodedata.normalize("NFC", zalgo + "."))
    assert article.warnings == (
        "seeds/x.txt:5: more than 30 combining marks in a row; "
        "U+034F inserted after every 30 (Unicode stream-safe text)",
    )


def test_thirty_combining_marks_are_left_alone() -> None:
    text = "Z" + "\u0301\u0316" * 15
    article = parse(seed(body=f"{text}."))
    assert article.body[0].text == unicodedata.normalize("NFC", text + ".")
    assert article.warnings == ()


def test_forbidden_characters_between_marks_cannot_hide_a_long_run() -> None:
    run = ("\u0301\u0316" * 15 + "\x01") * 4  # runs of 30, joined once \x01 is removed
    article = parse(seed(body=f"Text a{run}."), display="x.txt")
    text = article.body[0].text
    assert unicodedata.is_normalized("NFC", text)
    assert CGJ in text
    assert [w.split(": ")[1].split(" ")[0] for w in article.warnings] == ["removed", "more"]


# --- published: deterministic slots ordered by NNN ------------------------------------------


def test_month_only_date_is_local_midnight_plus_nnn_minutes() -> None:
    base = "_98f79bfdbc50e318.txt"
    first = parse(seed("2024-11"), source="000" + base, tz=VIENNA)
    second = parse(seed("2024-11"), source="001" + base, tz=VIENNA)
    last = parse(seed("2024-11"), source="999" + base, tz=VIENNA)
    assert local(first) == datetime(2024, 11, 1, 0, 0, tzinfo=VIENNA)
    assert first.published == datetime(2024, 10, 31, 23, 0, tzinfo=UTC)
    assert second.published - first.published == timedelta(minutes=1)
    assert last.published - first.published == timedelta(minutes=999)
    assert first.published < second.published < last.published


def test_nnn_order_holds_for_a_whole_folder() -> None:
    published = [
        parse(seed("2024-11"), source=f"{n:03d}_{n:016x}.txt", tz=VIENNA).published
        for n in range(0, 1000, 37)
    ]
    assert published == sorted(published)
    assert len(set(published)) == len(published)


def test_name_without_nnn_gets_slot_zero() -> None:
    article = parse(seed("2024-11"), source="notes.txt", tz=VIENNA)
    assert local(article) == datetime(2024, 11, 1, tzinfo=VIENNA)


def test_month_slot_follows_the_tz_and_its_dst() -> None:
    march = parse(seed("2024-03"), source=NAME, tz=VIENNA)
    april = parse(seed("2024-04"), source=NAME, tz=VIENNA)
    assert march.published == datetime(2024, 2, 29, 23, tzinfo=UTC)  # CET, UTC+1
    assert april.published == datetime(2024, 3, 31, 22, tzinfo=UTC)  # CEST, UTC+2
    assert parse(seed("2024-04"), source=NAME).published == datetime(2024, 4, 1, tzinfo=UTC)


@pytest.mark.parametrize("month", ["2024-02", "2023-02", "2024-03", "2024-10", "2024-12"])
@pytest.mark.parametrize("nnn", ["40319", "40320", "99999", "123456789012345678901234567890"])
def test_huge_nnn_stays_inside_the_month(month: str, nnn: str) -> None:
    article = parse(seed(month), source=f"{nnn}_98f79bfdbc50e318.txt", tz=VIENNA)
    year, number = map(int, month.split("-"))
    inside = local(article)
    assert (inside.year, inside.month) == (year, number)
    smaller = parse(seed(month), source="999_98f79bfdbc50e318.txt", tz=VIENNA)
    assert smaller.published < article.published


def test_day_date_is_local_midnight_plus_nnn_minutes() -> None:
    first = parse(seed("2024-11-05"), source=NAME, tz=VIENNA)
    assert first.published == datetime(2024, 11, 4, 23, tzinfo=UTC)
    later = parse(seed("2024-11-05"), source="059_98f79bfdbc50e318.txt", tz=VIENNA)
    assert later.published - first.published == timedelta(minutes=59)


@pytest.mark.parametrize("day", ["2024-03-31", "2024-10-27", "2024-11-05", "2024-12-31"])
@pytest.mark.parametrize("nnn", ["999", "1439", "1440", "99999"])
def test_huge_nnn_stays_inside_the_day_even_across_dst(day: str, nnn: str) -> None:
    """2024-03-31 has 23 hours in Vienna: 1439 minutes after midnight is already April 1st."""
    article = parse(seed(day), source=f"{nnn}_98f79bfdbc50e318.txt", tz=VIENNA)
    assert local(article).date() == date.fromisoformat(day)
    first = parse(seed(day), source=NAME, tz=VIENNA)
    assert first.published < article.published


def test_published_is_deterministic() -> None:
    text = seed("2024-11")
    assert parse(text, tz=VIENNA) == parse(text, tz=VIENNA)


# --- key ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "key"),
    [
        ("000_98f79bfdbc50e318.txt", "98f79bfdbc50e318"),
        ("123_98F79BFDBC50E318.txt", "98f79bfdbc50e318"),
        ("sub/dir/7_0123456789abcdef.txt", "0123456789abcdef"),
    ],
)
def test_key_from_the_file_name(source: str, key: str) -> None:
    assert seed_key(source) == key
    assert parse(seed(), source=source).key == key


@pytest.mark.parametrize(
    "source",
    [
        "notes.txt",
        "000_98f79bfdbc50e31.txt",  # 15 hex
        "000_98f79bfdbc50e3189.txt",  # 17 hex
        "000_98f79bfdbc50e31g.txt",  # not hex
        "abc_98f79bfdbc50e318.txt",  # no NNN
        "000-98f79bfdbc50e318.txt",
    ],
)
def test_other_names_get_a_stable_hash_of_the_path(source: str) -> None:
    key = seed_key(source)
    assert len(key) == 16
    assert int(key, 16) >= 0
    assert key != "98f79bfdbc50e318"
    assert seed_key(source) == key
    assert seed_key("sub/" + source) != key
    assert parse(seed(), source=source).key == key


def test_hash_key_is_stable_across_versions() -> None:
    """Pinned: changing the hash would give every such article a new id."""
    assert seed_key("notes.txt") == "e39538e7f27a7bf5"
    assert seed_key("sub/notes.txt") == "fcde8567b4a4b2fb"


# --- errors ---------------------------------------------------------------------------------


def test_seed_errors_share_the_tree_and_carry_facts() -> None:
    error = parse_error("kein datum\n\ntext\n", display="seeds/x.txt")
    assert isinstance(error, SeedError)
    assert isinstance(error, FeedsvcError)
    assert (error.path, error.line) == ("seeds/x.txt", 1)
    assert str(error) == f"seeds/x.txt:1: {error.reason}"
    assert parse_error("kein datum\n\ntext\n", source="a/b.txt").path == "a/b.txt"


# --- read_seed: real files in tmp_path ------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    return seeds


def read(path: Path, root: Path, max_bytes: int = 1024) -> RawSeed:
    return read_seed(path, root=root, max_bytes=max_bytes, display=f"seeds/{path.name}")


def read_error(path: Path, root: Path, max_bytes: int = 1024) -> SeedReadError:
    with pytest.raises(SeedReadError) as info:
        read(path, root, max_bytes)
    assert info.value.path == f"seeds/{path.name}"
    assert info.value.line == 1
    return info.value


def test_read_a_regular_file(root: Path) -> None:
    path = root / NAME
    path.write_bytes(seed().encode())
    raw = read(path, root)
    assert raw.data == seed().encode()
    assert raw.size == len(raw.data)
    assert raw.mtime_ns == path.stat().st_mtime_ns
    assert parse(raw.data).lead == "Ein Satz als Aufmacher."


def test_read_without_display_names_the_path(root: Path) -> None:
    with pytest.raises(SeedReadError) as info:
        read_seed(root / "gone.txt", root=root, max_bytes=10)
    assert str(info.value).startswith(f"{root / 'gone.txt'}:1: ")


def test_read_in_a_sub_folder(root: Path) -> None:
    (root / "2024").mkdir()
    path = root / "2024" / NAME
    path.write_bytes(b"abc")
    assert read(path, root).data == b"abc"


def test_empty_file_reads_then_fails_to_parse(root: Path) -> None:
    path = root / "empty.txt"
    path.write_bytes(b"")
    raw = read(path, root)
    assert raw.data == b""
    assert "empty file" in parse_error(raw.data).reason


def test_binary_file_reads_then_fails_to_parse(root: Path) -> None:
    path = root / "image.txt"
    path.write_bytes(bytes(range(256)))
    assert "binary file" in parse_error(read(path, root).data).reason


def test_huge_file(root: Path) -> None:
    path = root / "huge.txt"
    path.write_bytes(b"x" * 1024)
    assert read(path, root, max_bytes=1024).size == 1024
    path.write_bytes(b"x" * 1025)
    error = read_error(path, root, max_bytes=1024)
    assert error.reason == "file too large: 1025 bytes (limit 1024)"


def test_symlink_outside_the_root_is_rejected(root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(seed().encode())
    link = root / "link.txt"
    link.symlink_to(secret)
    assert "outside" in read_error(link, root).reason
    relative = root / "relative.txt"
    relative.symlink_to(Path("..") / "secret.txt")
    assert "outside" in read_error(relative, root).reason


def test_symlink_to_a_sibling_with_a_common_prefix_is_rejected(root: Path, tmp_path: Path) -> None:
    """``seeds-evil/`` starts with ``seeds`` but is not inside ``seeds/``."""
    evil = tmp_path / "seeds-evil"
    evil.mkdir()
    (evil / "x.txt").write_bytes(b"x")
    (root / "link.txt").symlink_to(evil / "x.txt")
    assert "outside" in read_error(root / "link.txt", root).reason


def test_symlinked_folder_outside_the_root_is_rejected(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.txt").write_bytes(b"x")
    (root / "sub").symlink_to(outside, target_is_directory=True)
    assert "outside" in read_error(root / "sub" / "x.txt", root).reason


def test_symlink_inside_the_root_is_accepted(root: Path) -> None:
    (root / "real").mkdir()
    target = root / "real" / "a.txt"
    target.write_bytes(b"inside")
    link = root / "link.txt"
    link.symlink_to(Path("real") / "a.txt")
    assert read(link, root).data == b"inside"


def test_root_reached_through_a_symlink_is_fine(tmp_path: Path, root: Path) -> None:
    (root / "a.txt").write_bytes(b"ok")
    alias = tmp_path / "alias"
    alias.symlink_to(root, target_is_directory=True)
    assert read(alias / "a.txt", alias).data == b"ok"


def test_symlink_to_a_directory_is_rejected(root: Path) -> None:
    (root / "dir").mkdir()
    (root / "link.txt").symlink_to(root / "dir", target_is_directory=True)
    assert read_error(root / "link.txt", root).reason == "not a regular file"


def test_directory_is_rejected(root: Path) -> None:
    (root / "dir.txt").mkdir()
    assert read_error(root / "dir.txt", root).reason == "not a regular file"


def test_dangling_symlink_is_rejected(root: Path) -> None:
    (root / "dangling.txt").symlink_to(root / "nowhere.txt")
    read_error(root / "dangling.txt", root)


def test_symlink_loop_is_rejected(root: Path) -> None:
    (root / "a.txt").symlink_to(root / "b.txt")
    (root / "b.txt").symlink_to(root / "a.txt")
    read_error(root / "a.txt", root)


def test_vanished_file(root: Path) -> None:
    path = root / "gone.txt"
    path.write_bytes(b"x")
    path.unlink()
    assert "vanished" in read_error(path, root).reason


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root bypasses file permissions"
)
def test_permission_denied(root: Path) -> None:
    path = root / "locked.txt"
    path.write_bytes(b"x")
    path.chmod(0)
    try:
        assert read_error(path, root).reason == "permission denied"
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_rejected_without_blocking(root: Path) -> None:
    fifo = root / "pipe.txt"
    os.mkfifo(fifo)
    outcome: list[BaseException | RawSeed] = []

    def attempt() -> None:
        try:
            outcome.append(read(fifo, root))
        except BaseException as e:
            outcome.append(e)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=5)
    if worker.is_alive():  # unblock the reader so the test run can go on
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        worker.join(timeout=5)
        pytest.fail("read_seed blocked on a FIFO")
    [result] = outcome
    assert isinstance(result, SeedReadError)
    assert result.reason == "not a regular file"


def test_device_outside_the_root_is_rejected(root: Path) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    (root / "zero.txt").symlink_to("/dev/zero")
    assert "outside" in read_error(root / "zero.txt", root).reason
