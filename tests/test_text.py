"""Pure text helpers: sentence boundaries, titles, XML-forbidden characters."""

from __future__ import annotations

import pytest

from feedsvc._text import (
    TITLE_MAX,
    find_forbidden,
    first_sentence,
    has_forbidden,
    make_title,
    squash,
    strip_forbidden,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Erster Satz. Zweiter Satz.", "Erster Satz."),
        ("Frage? Antwort.", "Frage?"),
        ("Achtung! Rakete.", "Achtung!"),
        ("Nur ein Satz ohne Punkt", "Nur ein Satz ohne Punkt"),
        # numbers: thousands separators and German ordinals are not sentence ends
        (
            "Mehr als 50.000 Soldaten sind dort. Zweiter Satz.",
            "Mehr als 50.000 Soldaten sind dort.",
        ),
        ("Bis zum 20. Jänner wird beraten. Danach nicht.", "Bis zum 20. Jänner wird beraten."),
        # abbreviations and initials
        ("Das betrifft z. B. Wien. Zweiter Satz.", "Das betrifft z. B. Wien."),
        ("Das betrifft z.B. Wien. Zweiter Satz.", "Das betrifft z.B. Wien."),
        ("Laut Dr. Müller geht es. Zweiter Satz.", "Laut Dr. Müller geht es."),
        ("Prof. Dr. Huber sprach. Zweiter Satz.", "Prof. Dr. Huber sprach."),
        ("Es kamen u. a. Gäste. Zweiter Satz.", "Es kamen u. a. Gäste."),
        (
            "Die Firma J. R. Ewing & Co. KG lud. Zweiter Satz.",
            "Die Firma J. R. Ewing & Co. KG lud.",
        ),
        ("Sie wohnt in St. Pölten. Zweiter Satz.", "Sie wohnt in St. Pölten."),
        # quotes: closing quotes belong to the sentence, quoted full stops inside do not end it
        ('Er sagte: "Wir gehen." Dann ging er.', 'Er sagte: "Wir gehen."'),
        ("Er sagte: „Wir gehen.“ Dann ging er.", "Er sagte: „Wir gehen.“"),
        ('"Nein!", sagte er. Dann ging er.', '"Nein!", sagte er.'),
        ('Er rief "Halt." und lief. Dann nichts.', 'Er rief "Halt." und lief.'),
        ("Er sagte es. „Wir gehen“, so er.", "Er sagte es."),
        # a symbol before the period is no initial (was: "5 %." never ended a sentence)
        ("Die Inflation stieg um 5 %. Danach sank sie.", "Die Inflation stieg um 5 %."),
        ("Das kostet 5 €. Viel Geld.", "Das kostet 5 €."),
        ("Ende mit Auslassung… Weiter geht es.", "Ende mit Auslassung…"),
        ("Lowercase next. aber kein Satzende.", "Lowercase next. aber kein Satzende."),
    ],
)
def test_first_sentence(text: str, expected: str) -> None:
    assert first_sentence(text) == expected


def test_title_is_the_first_sentence_without_its_period() -> None:
    assert make_title("Blinken droht Nordkorea. Mehr dazu später.") == "Blinken droht Nordkorea"
    assert make_title("Droht Krieg? Nein.") == "Droht Krieg?"
    assert make_title("Es geht weiter...") == "Es geht weiter..."


def test_title_keeps_numbers_and_abbreviations() -> None:
    lead = "Laut Dr. Huber sind z. B. 50.000 Soldaten seit 20. Jänner im Einsatz. Mehr folgt."
    assert (
        make_title(lead) == "Laut Dr. Huber sind z. B. 50.000 Soldaten seit 20. Jänner im Einsatz"
    )


def test_long_title_is_cut_at_a_word_boundary_with_an_ellipsis() -> None:
    sentence = " ".join(f"Wort{i:02d}" for i in range(40)) + "."
    title = make_title(sentence + " Zweiter Satz.")
    assert len(title) <= TITLE_MAX
    assert title.endswith("…")
    stem = title[:-1]
    assert sentence.startswith(stem)
    assert sentence[len(stem)] == " ", "cut inside a word"
    assert len(stem) > TITLE_MAX // 2


def test_long_title_does_not_end_with_a_dangling_comma() -> None:
    words = ["Wort,"] * 40
    title = make_title(" ".join(words) + ".")
    assert title.endswith("Wort…")


def test_title_of_exactly_the_limit_is_not_cut() -> None:
    sentence = "A" + "b" * (TITLE_MAX - 1)
    assert make_title(sentence + ".") == sentence
    assert make_title(sentence + "c.").endswith("…")


def test_title_without_spaces_is_cut_hard() -> None:
    title = make_title("x" * 500)
    assert title == "x" * (TITLE_MAX - 1) + "…"


@pytest.mark.parametrize("lead", [".", "...", "…", "-" * 300, "!", ". Danach."])
def test_title_is_never_empty(lead: str) -> None:
    title = make_title(lead)
    assert title.strip()
    assert len(title) <= TITLE_MAX


def test_forbidden_characters_are_found_and_stripped() -> None:
    text = "a\x00b\x08c\x0bd\x0ce\x1ff\x7fg\x85h\x9fi\ufffej\uffffk"
    assert find_forbidden(text) == [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]
    assert strip_forbidden(text) == "abcdefghijk"
    assert has_forbidden(text)
    assert not has_forbidden(strip_forbidden(text))


def test_allowed_characters_are_kept() -> None:
    text = "tab\there\nlf\rcr ä € \ud7ff \ue000 \ufffd \U0001f600 \xa0"
    assert find_forbidden(text) == []
    assert strip_forbidden(text) == text
    assert not has_forbidden(text)


def test_squash() -> None:
    assert squash("  a \t b\n\nc \u00a0 d  ") == "a b c d"
    assert squash(" \n\t ") == ""
