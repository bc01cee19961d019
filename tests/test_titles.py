"""Titles a reader can read (#11, item 1): each rule, any input, and the 1,014 real articles."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc import _text
from feedsvc._text import TITLE_MAX
from feedsvc.seeds import parse_seed

NOW = datetime(2030, 1, 1, tzinfo=UTC)
CI = bool(os.environ.get("CI"))


def title(lead: str, more: str = "") -> str:
    return _text.make_title(lead, more=more)


def balanced(text: str) -> bool:
    """A check of its own, for text whose only quotes are straight ones, „“, »« and brackets."""
    return (
        text.count('"') % 2 == 0
        and text.count("„") == text.count("“")
        and text.count("»") == text.count("«")
        and text.count("(") == text.count(")")
        and text.count("[") == text.count("]")
    )


# --- 1. a fragment takes the next sentence ------------------------------------------------


def test_a_short_first_sentence_takes_the_next_one_from_the_lead() -> None:
    assert title("Rund zehn Prozent. Indien verkauft Anteile an Indian Oil.") == (
        "Rund zehn Prozent. Indien verkauft Anteile an Indian Oil"
    )
    assert title("Blinken droht Nordkorea mit Konsequenzen. Mehr dazu.") == (
        "Blinken droht Nordkorea mit Konsequenzen"  # four words stand alone
    )


def test_a_one_sentence_fragment_takes_the_first_paragraph_without_its_dateline() -> None:
    more = "Dresden – Sachsen ist Spitzenreiter bei Übergriffen. Das geht aus Zahlen hervor."
    assert title("Insgesamt 459 Angriffe.", more) == (
        "Insgesamt 459 Angriffe. Sachsen ist Spitzenreiter bei Übergriffen"
    )
    assert title("Insgesamt 459 Angriffe.") == "Insgesamt 459 Angriffe"  # nothing more to take


def test_a_lead_ending_on_an_abbreviation_goes_on_into_the_paragraph() -> None:
    lead, more = "Aktueller Assistenz-Coach von Wr.", "Neustadt will wieder kicken. Er sagt."
    assert title(lead, more) == "Aktueller Assistenz-Coach von Wr. Neustadt will wieder kicken"
    assert title("Neue Produkte von Apple, Google & Co.", more) == (
        "Neue Produkte von Apple, Google & Co"  # a sentence can end with "Co."
    )


def test_a_fragment_whose_next_sentence_is_long_is_cut_like_any_title() -> None:
    more = (
        "Berlin – Bei einem Angriff mit Messern und mindestens einer Schusswaffe auf vier "
        "Männer ist in Berlin ein 31-Jähriger getötet worden."
    )
    got = title("Unbekannte eröffneten Feuer.", more)
    assert got == (
        "Unbekannte eröffneten Feuer. Bei einem Angriff mit Messern und mindestens einer "
        "Schusswaffe auf vier Männer…"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Wien – Die Regierung tagt.", "Die Regierung tagt."),
        ("Salzburg/Linz – Es schneit.", "Es schneit."),
        ("St. Pölten – Es schneit.", "Es schneit."),
        ("Rio de Janeiro – Es regnet.", "Es regnet."),
        ("Spielfeld / Bad Radkersburg – Es regnet.", "Es regnet."),
        ("Salt Lake City (Utah) – Es regnet.", "Es regnet."),
        # not a dateline: a verb, a sentence, a number, no dash
        ("Es bringen Erfolge – mehr nicht.", "Es bringen Erfolge – mehr nicht."),
        ("Das strotzt vor Fehlern. Wien – Ja.", "Das strotzt vor Fehlern. Wien – Ja."),
        ("1865 – Ein Jahr.", "1865 – Ein Jahr."),
        ("Wien war schön.", "Wien war schön."),
    ],
)
def test_datelines(text: str, expected: str) -> None:
    assert _text.without_dateline(text) == expected


# --- 2. a cut at a clause boundary, never inside a word --------------------------------------

LONG = "Die Regierung hat sich nach langen Verhandlungen auf ein neues Budget geeinigt"  # 78


def test_a_long_title_is_cut_at_its_last_clause_boundary_in_the_second_half() -> None:
    for mark in (",", ";", ":", " –", " —", " -"):
        lead = f"{LONG}{mark} die Opposition kritisiert die Einigung als viel zu spät und zu teuer."
        assert title(lead) == LONG + "…", mark


def test_a_clause_boundary_in_the_first_half_is_passed_over_for_a_word() -> None:
    lead = "Wien, " + "Budget " * 30 + "Ende."
    got = title(lead)
    assert got.startswith("Wien, Budget")
    assert got.endswith("Budget…")


def test_a_clause_cut_does_not_end_on_a_one_word_piece() -> None:
    lead = (
        "Griechenland beantragt überraschend neues Hilfspaket beim Euro-Hilfsfonds ESM "
        "– Merkel: Über Antrag kann erst nach Gesprächen entschieden werden."
    )
    assert title(lead) == (
        "Griechenland beantragt überraschend neues Hilfspaket beim Euro-Hilfsfonds ESM…"
    )


def test_a_cut_does_not_end_on_a_short_lowercase_word() -> None:
    lead = (
        "US-Außenminister Antony Blinken hat eine harte Antwort auf die militärische "
        "Unterstützung Nordkoreas für Russland im Krieg angekündigt."
    )
    assert title(lead).endswith(" Nordkoreas…")


@given(
    st.lists(
        st.sampled_from(["Wort", "ab", "Übergröße", "x", "und", "„de", "ab“", "(x"]), max_size=60
    )
)
def test_a_cut_never_ends_inside_a_word(words: list[str]) -> None:
    lead = " ".join(words) + "."
    stem = _text.title_stem(title(lead))
    assert lead.startswith(stem)
    assert not (stem and stem[-1].isalnum() and lead[len(stem)].isalnum())


# --- 3. no quote or bracket left open -----------------------------------------------------


def test_a_cut_falls_before_a_quote_it_would_leave_open() -> None:
    lead = (
        "Stadtoberhaupt Marino will trotz Festnahmewelle im Gemeinderat nicht das Handtuch "
        'werfen – "Werde bis 2023 im Amt bleiben".'
    )
    assert title(lead) == (
        "Stadtoberhaupt Marino will trotz Festnahmewelle im Gemeinderat nicht das Handtuch werfen…"
    )
    lead = "Die Slowakei übernimmt am 1. Juli die EU-Präsidentschaft und sagt (was kaum " + (
        "jemand glauben wollte) dann noch viel mehr, als man denkt."
    )
    assert balanced(title(lead))


def test_a_quote_opened_in_the_first_half_is_closed_after_the_ellipsis() -> None:
    lead = (
        'Leitl: "Wer eine Arbeitszeitverkürzung will, riskiert, dass aus dem Tag der Arbeit '
        'ein Tag der Arbeitslosigkeit wird".'
    )
    assert title(lead) == (
        'Leitl: "Wer eine Arbeitszeitverkürzung will, riskiert, dass aus dem Tag der Arbeit '
        'ein Tag…"'
    )
    lead = "Er sagte: „" + "Wir gehen heute nicht mehr nach Hause, " * 4 + "nie.“"
    got = title(lead)
    assert got.endswith("…“")
    assert len(got) <= TITLE_MAX


def test_a_quote_the_text_never_closes_is_closed() -> None:
    lead = '"Was wir brauchen, ist kein Begrüßungskomitee mit Gulaschkanonen.'
    assert title(lead) == '"Was wir brauchen, ist kein Begrüßungskomitee mit Gulaschkanonen"'


def test_a_sentence_end_inside_quotes_does_not_end_the_title() -> None:
    lead = 'Er sagte: "Wir gehen. Dann kommen wir wieder." Mehr nicht.'
    assert title(lead) == 'Er sagte: "Wir gehen. Dann kommen wir wieder."'


@pytest.mark.parametrize(
    ("text", "still_open"),
    [
        ("„Ja“, sagte er", ""),
        ("„Ja”, sagte er", ""),
        ('„Ja", sagte er', ""),
        ('„Er sagte "ja" dazu“', ""),
        ("“Yes,” he said", ""),
        ("‘Yes,’ he said", ""),
        ("»Ja«, «oui», ‚ja‘", ""),
        ("Wien (Österreich) [1]", ""),
        ("wie’s geht, Hebb'schem, Andreas' Auto, Rock 'n' Roll", ""),
        ("'Fels in der Brandung'", ""),
        ('Er sagte "ja', '"'),
        ("Er sagte „ja", "„"),
        ("(Wien „und", "(„"),
        ("»Ja", "»"),
        ("‘Yes", "‘"),
        ("Stray ) and ” closers", ""),
    ],
)
def test_open_quotes(text: str, still_open: str) -> None:
    assert "".join(text[i] for i, _ in _text.open_quotes(text)) == still_open


# --- any input ------------------------------------------------------------------------------

HOSTILE = settings(
    max_examples=300, deadline=None, derandomize=CI, suppress_health_check=[HealthCheck.too_slow]
)
QUOTES = "\"'„“”‚‘’»«›‹()[]{}"
PIECES = st.sampled_from(
    [
        *QUOTES,
        *(". ", "! ", "? ", "…", ", ", ": ", "; ", " – ", " - ", "Wien – ", "Dr. ", "Wr. "),
        *("Wort ", "ab ", "x", "Ä", "0", " ", "\n", "Übergrößenwörter"),
    ]
)
TEXT = st.lists(PIECES, max_size=80).map("".join)


@HOSTILE
@given(TEXT, TEXT)
def test_any_title_fits_and_leaves_nothing_open(lead: str, more: str) -> None:
    got = title(lead, more)
    assert len(got) <= TITLE_MAX
    assert not _text.open_quotes(got)
    assert got.strip() or not (lead + more).strip()
    source = f"{lead.strip()} {_text.without_dateline(_text.squash(more[: 4 * TITLE_MAX]))}"
    assert source.startswith(_text.title_stem(got))


@HOSTILE
@given(st.lists(st.sampled_from(['"', "(", ")", "Wort ", "Satz. ", ", ", "x"]), max_size=90))
def test_titles_balance_straight_quotes_and_brackets(pieces: list[str]) -> None:
    """Checked without ``open_quotes``: an even count of quotes, every "(" closed later."""
    got = title("".join(pieces))
    assert got.count('"') % 2 == 0
    depth = 0
    for ch in got:
        depth = depth + 1 if ch == "(" else max(0, depth - 1) if ch == ")" else depth
    assert depth == 0


# --- the real corpus --------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    name: str
    lead: str
    more: str  # the first paragraph
    title: str  # what parse_seed made

    @property
    def source(self) -> str:
        return f"{self.lead} {_text.without_dateline(self.more)}"


@pytest.fixture(scope="module")
def corpus(corpus_dir: Path) -> list[Seed]:
    seeds = []
    for path in sorted(corpus_dir.iterdir()):
        a = parse_seed(path.read_bytes(), source=path.name, now=NOW)
        seeds.append(Seed(path.name, a.lead, a.body[0].text, a.title))
    assert len(seeds) == 1014
    return seeds


@pytest.mark.slow
def test_corpus_titles(corpus: list[Seed]) -> None:
    """Every title fits, leaves no quote open, ends at a word and stands alone."""
    titles = {s.name: title(s.lead, s.more) for s in corpus}
    assert [n for n, t in titles.items() if len(t) > TITLE_MAX] == []
    assert [t for t in titles.values() if not balanced(t)] == []
    assert [t for t in titles.values() if len(t.removesuffix("…").split()) < 4] == []
    for s in corpus:
        stem = _text.title_stem(titles[s.name])
        assert s.source.startswith(stem), s.name
        rest = s.source[len(stem) :]
        assert not (rest and stem[-1].isalnum() and rest[0].isalnum()), titles[s.name]


@pytest.mark.slow
def test_parse_seed_titles_take_the_first_paragraph(corpus: list[Seed]) -> None:
    """Remove the marker when parse_seed calls ``make_title(lead, more=first paragraph)``."""
    assert [s.title for s in corpus] == [title(s.lead, s.more) for s in corpus]
