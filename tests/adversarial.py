"""Adversarial seeds, one family per trap a parser can fall into, at any size.

Shared by ``tests/test_parsing.py`` (a hang guard at the 1 MiB default ``max_seed_bytes``) and
``bench/parse_bench.py`` (the times and how they grow). Each family makes a whole seed (date
line, lead, body) of at most ``size`` bytes whose cost, in a naive parser, grows faster than
its length: the lead for title extraction, the body for paragraph and subheading rules, the
characters for NFC and forbidden-character stripping.
"""

from __future__ import annotations

from collections.abc import Callable

Family = Callable[[int], bytes]

HEAD = "date 2024-11 "
BODY = "\n\nText."


def _fill(unit: str, size: int, *, before: str = "", after: str = "") -> str:
    """``before`` + ``unit`` repeated + ``after`` in at most ``size`` UTF-8 bytes."""
    room = size - len((before + after).encode())
    return before + unit * max(1, room // len(unit.encode())) + after


def lead(unit: str, *, before: str = "Ein ", after: str = " und weiter") -> Family:
    """A seed whose lead holds ``unit`` many times: the title extractor's input."""

    def make(size: int) -> bytes:
        return _fill(unit, size, before=HEAD + before, after=after + BODY).encode()

    return make


def body(unit: str) -> Family:
    """A seed whose body holds ``unit`` many times: paragraphs, lines, subheadings."""

    def make(size: int) -> bytes:
        return _fill(unit, size, before=HEAD + "Ein Satz.\n\n", after="Ende.").encode()

    return make


def whole(unit: str) -> Family:
    """A seed that is ``unit`` many times after the date line, lead and body alike."""

    def make(size: int) -> bytes:
        return _fill(unit, size, before=HEAD + "A", after=BODY).encode()

    return make


FAMILIES: dict[str, Family] = {
    # runs of sentence ends that are not sentence ends: a lowercase word follows
    "periods": lead("."),
    "mixed_ends": lead(".!?…"),
    "ends_before_lowercase": lead(". x"),
    "ends_and_quotes": lead('."'),
    "closing_quotes": lead('"', before="Ein ."),
    "quoted_ends": lead("„Ja.“ x "),
    # boundaries that are skipped, each asking for the word before it
    "initials": lead("A. "),
    "abbreviations": lead("Dr. Prof. Nr. St. usw. z. B. "),
    "quoted_abbreviations": lead("»Dr.« "),
    "ordinals": lead("20. "),
    "digits_with_dots": lead("50.000."),
    "long_word_then_initial": lead("x", before="Ein", after=" A. b"),
    # one huge token or line
    "no_spaces": lead("a.b"),
    "one_letter": lead("x"),
    "words": lead(" Wort"),
    "unicode_spaces": lead(" \u2003\u00a0\t"),
    "long_date_token": lambda size: _fill(
        "2", size, before="date ", after="\u2003x" + BODY
    ).encode(),
    # body structure
    "paragraphs": body("Wort " * 21 + "\n\n"),  # 9,800 blocks in 1 MiB, just under the limit
    "subheadings": body("Zwischentitel\n\n" + "Text " * 40 + "\n\n"),
    "tiny_paragraphs": body("x\n\n"),  # refused: over 10,000 blocks
    "lines": body("Wort\n"),
    "crlf_lines": body("Wort\r\n"),
    "blank_lines": body("\n \n\t"),
    # characters
    "marks_out_of_order": lead("\u0301\u0316", before="a"),
    "marks_in_order": lead("\u0316\u0301", before="a"),
    "one_mark": lead("\u0301", before="a"),
    "tibetan_vowels": lead("\u0f73", before="\u0f40"),
    "astral_marks": lead("\U0001d16d\U0001d167", before="a"),
    "decomposed_umlauts": whole("u\u0308 "),
    "controls": whole("\x01" + "x" * 40),
    "controls_in_marks": lead("\x01" + "\u0301\u0316" * 15, before="a"),
}
