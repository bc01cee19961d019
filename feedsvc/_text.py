"""Pure text helpers: XML-safe characters, whitespace, sentence boundaries and titles."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain

# XML 1.0 allows TAB, LF, CR, U+0020-U+D7FF, U+E000-U+FFFD, U+10000-U+10FFFF. C1 controls are
# legal XML but never intended text, so they go too. Surrogates cannot survive strict UTF-8.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")

TITLE_MAX = 110

# Unicode's Stream-Safe Text Format (UAX #15, section 13): at most 30 non-starters (combining
# marks) in a row, broken by U+034F COMBINING GRAPHEME JOINER, which is invisible and inert.
# No real text comes near it, and CPython's normalization sorts a run of marks by insertion:
# 500,000 marks would take minutes.
MAX_MARKS = 30
CGJ = "\u034f"

# Words that end with a period without ending the sentence (German news usage, lower-cased).
_ABBREVIATIONS = """
    abs abg bd bzw ca chr co dipl dr dt ebd etc evtl exkl fa fr frl gegr geb gest ggf hg hl hr hrsg
    inkl ing jh jhd jhdt jr kap kfz lt mag max min mio mr mrd mrs ms nr od pkw prof rd rer sen sog
    sr st std str tel tsd univ usw vgl vs zt zb bzgl ggü ua uä dh sa so mi do ff ggfs nat med phil
    wr
"""
ABBREVIATIONS = frozenset(_ABBREVIATIONS.split())
# Those that always lead into more (a name, a place, a number), unlike "usw." or "& Co.": a lead
# that ends with one goes on in the first paragraph ("Coach von Wr." "Neustadt will …").
LEADING_ABBREVIATIONS = frozenset(
    {"dr", "prof", "dipl", "mag", "ing", "hr", "fr", "frl", "st", "wr", "nr", "ca", "vgl", "sog"}
)

# Every regex here is linear on any input: ``(?<!…)`` lets a run of terminators or a word be
# tried once, from its start (not again from each character inside it), and the possessive
# ``++``/``*+`` never give back what they took. Without them a run of n periods before a
# lowercase word cost n²/2 steps, and the abbreviation check re-scanned the text before each
# period (20,000 initials: 20 s). ``_BOUNDARY`` starts with a terminator and only then looks
# behind it (the one before is no terminator): a pattern that starts with a character set is
# searched for at C speed, one that starts with a look-behind is tried at every position
# (3 times slower, most of a title's time).
_BOUNDARY = re.compile(
    r"""(?P<end>[.!?…](?<![.!?…][.!?…])[.!?…]*+)(?P<close>["'”“’‘»«)\]]*+)\s++"""
    r"""(?=["'„“‚‘»«(\[]?[A-ZÄÖÜ0-9])"""
)
_LAST_WORD = re.compile(r"(?<!\S)(\S++)$")


def find_forbidden(text: str) -> list[int]:
    """Offsets of characters that XML 1.0 forbids (or that are C1 controls)."""
    return [m.start() for m in _FORBIDDEN.finditer(text)]


def strip_forbidden(text: str) -> str:
    """Remove characters that must never reach the XML writer."""
    return _FORBIDDEN.sub("", text)


@dataclass(frozen=True, slots=True)
class _Marks:
    """Runs of characters that decompose into non-starters, and each one's count of them."""

    bmp: re.Pattern[str]  # marks up to U+FFFF: a bitmap test per character, 10x faster
    full: re.Pattern[str]  # all marks, for text with characters beyond U+FFFF
    weights: dict[str, int]  # U+0F73 decomposes into two non-starters
    heavy: re.Pattern[str]  # the characters that weigh more than one

    def pattern(self, text: str) -> re.Pattern[str]:
        return self.full if _ASTRAL.search(text) else self.bmp


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


@functools.cache
def _marks() -> _Marks:
    """Built once, on first use (about 20 ms).

    Marks live in planes 0, 1 and 14 (planes 2-13 hold ideographs or nothing; 15-16 are
    private use).
    """
    weights: dict[str, int] = {}
    for cp in (*range(0x20000), *range(0xE0000, 0xE1000)):
        ch = chr(cp)
        if unicodedata.combining(ch) or unicodedata.decomposition(ch)[:1] not in ("", "<"):
            nfd = unicodedata.normalize("NFD", ch)
            if unicodedata.combining(nfd[0]):
                weights[ch] = sum(1 for c in nfd if unicodedata.combining(c))
    shortest = MAX_MARKS // max(weights.values()) + 1  # any shorter run is within the limit

    def runs(cps: list[int]) -> re.Pattern[str]:
        ranges: list[list[int]] = []
        for cp in cps:
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])
        cls = "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)
        return re.compile(f"[{cls}]{{{shortest},}}")

    cps = sorted(map(ord, weights))
    heavy = re.compile("[" + "".join(sorted(ch for ch, w in weights.items() if w > 1)) + "]")
    return _Marks(
        bmp=runs([cp for cp in cps if cp <= 0xFFFF]), full=runs(cps), weights=weights, heavy=heavy
    )


def _too_long(run: str) -> bool:
    """Whether ``run`` (a run of marks) decomposes into more than ``MAX_MARKS`` non-starters."""
    if len(run) > MAX_MARKS:
        return True
    marks = _marks()
    return len(run) + sum(marks.weights[ch] - 1 for ch in marks.heavy.findall(run)) > MAX_MARKS


def _split_marks(m: re.Match[str]) -> str:
    """A CGJ after every 30 marks of the run (every 15 if some decompose into two)."""
    run = m.group()
    if not _too_long(run):
        return run
    marks = _marks()
    size = MAX_MARKS // max(marks.weights.values()) if marks.heavy.search(run) else MAX_MARKS
    return CGJ.join(run[i : i + size] for i in range(0, len(run), size))


def find_mark_run(text: str) -> int:
    """Offset of the first run of more than ``MAX_MARKS`` combining marks, or -1."""
    if text.isascii():
        return -1
    for m in _marks().pattern(text).finditer(text):
        if _too_long(m.group()):
            return m.start()
    return -1


def stream_safe(text: str) -> str:
    """``text`` with a CGJ after every ``MAX_MARKS`` combining marks in a row (UAX #15).

    Normalizing the result costs time linear in its length; text without such runs (all real
    text) comes back unchanged.
    """
    if text.isascii():
        return text
    return _marks().pattern(text).sub(_split_marks, text)


# Characters that are NFC whatever surrounds them (NFC quick check Yes and combining class 0):
# Latin-1, Latin Extended-A and -B, IPA, spacing modifiers, general punctuation (but for the
# spaces and controls U+2000-U+200F and U+2028-U+202F) and currency signs. Checked against the
# Unicode database by tests/test_parse_fast.py.
_NOT_ALWAYS_NFC = re.compile("[^\u00a0-\u02ff\u2010-\u2027\u2030-\u205e\u20a0-\u20bf]")


def always_nfc(chars: str) -> bool:
    """Whether any text of ASCII and ``chars`` is in NFC, whatever their order.

    True when each of ``chars`` is NFC in any context: a German seed's umlauts, quotes and
    dashes are, so it skips ``unicodedata.is_normalized`` over its whole text (5 % of a parse).
    """
    return _NOT_ALWAYS_NFC.search(chars) is None


def nfc(text: str) -> tuple[str, int]:
    """``text`` in Unicode NFC, and the offset of a run of marks that was broken up (or -1).

    Linear on any input: text already in NFC (all real text) is only checked, and CPython's
    check rejects marks out of order at once; text that needs normalizing is made stream-safe
    first, since sorting one long run of marks is what costs quadratic time.
    """
    if unicodedata.is_normalized("NFC", text):
        return text, -1
    run = find_mark_run(text)
    if run >= 0:
        text = stream_safe(text)
    return unicodedata.normalize("NFC", text), run


def squash(text: str) -> str:
    """Collapse every whitespace run to one space and trim the ends."""
    return " ".join(text.split())


def _is_abbreviation(text: str, start: int, end: int) -> bool:
    """Whether the word just before ``text[end]`` (a period) is an abbreviation, initial or number.

    The word is looked for in ``text[start:end]`` only, without copying it: ``start`` is just
    after whitespace, so callers pass the end of the previous boundary and each character is
    looked at once per title.
    """
    m = _LAST_WORD.search(text, start, end)
    if not m:
        return False
    word = m.group(1).lstrip("\"'„“‚‘»«([")
    if not word:
        return False
    if word[-1].isdigit():
        return True  # "am 20. Jänner", "50.000"
    bare = word.replace(".", "").lower()
    if len(bare) <= 1:
        return bare.isalpha()  # initials and "z. B.", but not "5 %." or "5 €."
    return bare in ABBREVIATIONS


def _sentence_end(text: str, start: int, *, within: int | None = None) -> int:
    """Where the sentence that starts at ``text[start]`` ends (after its closing quotes).

    ``len(text)`` when no boundary is found, or when the search passes a skipped period more
    than ``within`` characters into ``text`` (every sentence from there on is longer).
    Linear in the part of ``text`` it looks at.
    """
    after = start  # where the text after the last skipped boundary starts
    for m in _BOUNDARY.finditer(text, start):
        if m.group("end") == "." and _is_abbreviation(text, after, m.start()):
            if within is not None and m.start() > within + 2:
                break
            after = m.end()
            continue
        return m.end("close")
    return len(text)


def first_sentence(text: str, *, within: int | None = None) -> str:
    """The first sentence of ``text``; the whole text when no boundary is found.

    Linear in ``len(text)``: one pass of ``_BOUNDARY`` and, for each period it skips, one look
    at the word before it. With ``within``, the search stops at the first skipped period past
    ``within`` characters (leading whitespace aside) and gives the whole text: every sentence
    from there on is longer than ``within``, so a caller cutting at ``within`` cuts the same
    prefix either way (350,000 initials then cost nothing).
    """
    indent = len(text) - len(text.lstrip()) if within is not None else 0
    limit = None if within is None else within + indent
    return text[: _sentence_end(text, 0, within=limit)].strip()


# --- titles --------------------------------------------------------------------------------

# A title shorter than this many words does not stand alone ("Rund zehn Prozent"): the next
# sentence is taken too, from the lead and then from the first paragraph.
MIN_WORDS = 4

# Each opening quote or bracket and the characters that close it (the first is the one added
# when a title must close it). „…“ and ‚…‘ German, “…” and ‘…’ English, »…« German and
# «…» French, straight quotes, brackets. Straight ' and ’ double as apostrophes (wie's, Hebb'sch).
_PAIRS: dict[str, str] = {
    "„": '“”"',
    "‚": "‘’",
    "“": '”"',
    "‘": "’",
    "»": "«",
    "«": "»",
    "›": "‹",
    "‹": "›",
    '"': '"',
    "'": "'",
    "(": ")",
    "[": "]",
    "{": "}",
}
_QUOTES = frozenset("".join(_PAIRS) + "".join(_PAIRS.values()))
_CLOSING = frozenset("".join(_PAIRS.values()))
_QUOTE = re.compile("[" + re.escape("".join(sorted(_QUOTES))) + "]")
_STRAIGHT = "\"'’"  # these close only where a word ends, not before a letter: wie’s, "ja"

# Clause boundaries, where a cut title ends best: ", " "; " ": " and a spaced dash.
_CLAUSE = re.compile(r"[,;:](?= )| [–—-](?= )")
# A dateline opening a paragraph: "Wien – ", "Salzburg/Linz – ", "St. Pölten – ", "Rio de
# Janeiro – ". Up to five capitalised words (or short lowercase links: am, de, im), no verbs.
_DATELINE = re.compile(
    r"(?:St\.|\(?[A-ZÄÖÜ][\w-]*+\)?)"
    r"(?:(?: ?/ ?| )(?:St\.|\(?[A-ZÄÖÜ][\w-]*+\)?|[a-zäöü]{1,3}))"
    r"{0,4} [–—-] (?=\S)"
)
_DATELINE_MAX = 45


def open_quotes(text: str) -> list[tuple[int, str]]:
    """The quotes and brackets ``text`` leaves open: each one's offset and its closer.

    One left-to-right pass with a stack: a character closes the innermost open pair if it
    can, else opens a new one if it can (``“`` closes ``„`` in German and opens in English);
    a stray closer is ignored. Straight quotes and ``’`` close only where a word ends (``"``
    before a letter opens a quote inside ``„…"``); ``'`` and ``‘`` after a letter, and ``'``
    not before one, are apostrophes (``Hebb'schem``, ``wie’s``; ``Rock 'n' Roll`` is a pair).
    """
    if _QUOTES.isdisjoint(text):  # most titles: nothing to pair, decided at C speed
        return []
    stack: list[tuple[int, str]] = []
    n = len(text)
    for m in _QUOTE.finditer(text):  # the quotes only, not every character in Python
        i, ch = m.start(), m.group()
        before = text[i - 1] if i else " "
        following = text[i + 1] if i + 1 < n else " "
        if stack and ch in stack[-1][1] and not (ch in _STRAIGHT and following.isalnum()):
            stack.pop()
            continue
        if ch in _PAIRS:
            if ch in "'‘" and before.isalnum():
                continue  # an apostrophe: Hebb'schem
            if ch == "'" and not following.isalnum():
                continue
            stack.append((i, _PAIRS[ch]))
    return stack


def without_dateline(text: str) -> str:
    """``text`` without a leading dateline ("Wien – "), which is no part of a title."""
    m = _DATELINE.match(text)
    return text[m.end() :] if m and m.end() <= _DATELINE_MAX else text


def _unfinished(title: str) -> bool:
    """Whether ``title`` ends on an abbreviation no sentence ends with ("… von Wr.")."""
    if not title.endswith("."):
        return False
    word = title.rsplit(None, 1)[-1].lstrip("\"'„“‚‘»«([").replace(".", "").lower()
    return word in LEADING_ABBREVIATIONS


def _stands_alone(title: str) -> bool:
    """At least ``MIN_WORDS`` words, no quote or bracket left open, no ``Dr.`` at the end."""
    return len(title.split()) >= MIN_WORDS and not open_quotes(title) and not _unfinished(title)


def is_fragment(title: str) -> bool:
    """Whether a title is too short to stand alone: fewer than ``MIN_WORDS`` words."""
    return len(title.removesuffix("…").split()) < MIN_WORDS


def _dangles(stem: str) -> bool:
    """Whether a cut ``stem`` ends on a short lowercase word (der, und, von, ist)."""
    last = stem.rsplit(None, 1)[-1] if stem.strip() else ""
    return len(last) <= 3 and last.isalpha() and last.islower()


def _ellipsized(stems: Iterable[str], limit: int, seen: list[str]) -> str | None:
    """The first stem that leaves no quote open, with ``…``; else the first that fits with
    its open quotes closed after the ``…``; None when neither does.

    ``stems`` is taken lazily (most titles take the first); ``seen`` collects what was taken.
    """
    for stem in stems:
        seen.append(stem)
        if not open_quotes(stem):
            return stem + "…"
    for stem in seen:
        closers = _closers(stem)
        if len(stem) + 1 + len(closers) <= limit:
            return stem + "…" + closers
    return None


def _cut(text: str, limit: int) -> str:
    """``text`` (longer than ``limit``) cut to a title of at most ``limit`` characters.

    In order: the last clause boundary in the second half of the title, else its last word
    boundary, where no quote or bracket is open; else the same boundaries inside a quote that
    opened in the first half, closed after the ellipsis (``Leitl: "Wer … ein Tag…"``); else the
    last word boundary anywhere, the same way; else a hard cut (one word longer than the
    limit). A clause
    cut never ends on a one-word piece (``… – Merkel:``), no cut on a short lowercase word
    (der, und, ist). Only the first ``limit`` characters are looked at.
    """
    window = text[: limit - 1]
    half = limit // 2
    clauses: list[int] = []  # those in the second half, the only ones tried
    previous = 0
    for m in _CLAUSE.finditer(window):
        start = m.start()
        if start >= half and len(window[previous:start].strip(" –—-").split()) >= 2:
            clauses.append(start)
        previous = m.end()
    candidates = chain(reversed(clauses), _spaces_before(window, max(half, 1)))
    stems = (text[:p].rstrip(" ,;:-–—") for p in candidates)
    found = _ellipsized((s for s in stems if s and not _dangles(s)), limit, [])
    if found is not None:
        return found
    stems = (text[:p].rstrip(" ,;:-–—") for p in _spaces_before(window, 1))
    found = _ellipsized((s for s in stems if s), limit, [])
    if found is not None:
        return found
    stem = window
    while len(stem) + 1 + len(_closers(stem)) > limit:  # at most ``limit`` short steps
        stem = stem[:-1]
    return stem + "…" + _closers(stem)


def _spaces_before(text: str, stop: int) -> Iterator[int]:
    """Offsets of the spaces in ``text[stop:]``, last first: found one at a time with
    ``rfind``, as most cuts take the first."""
    p = text.rfind(" ", stop)
    while p >= 0:
        yield p
        p = text.rfind(" ", stop, p)


def _closers(stem: str) -> str:
    """What closes the quotes and brackets ``stem`` leaves open, innermost first."""
    return "".join(closer[0] for _, closer in reversed(open_quotes(stem)))


def make_title(lead: str, *, more: str = "", limit: int = TITLE_MAX) -> str:
    """A headline from the lead (and ``more``, the text after it, when the lead is too short).

    1. The lead's first sentence, without its final period.
    2. While that is a fragment (under ``MIN_WORDS`` words, or ending on an abbreviation) or
       leaves a quote open, and fits, the next sentence is added: from the lead, then from
       ``more`` without its dateline ("Wien – ").
    3. Over ``limit`` characters it is cut (see ``_cut``) and ends with ``…``. No quote or
       bracket is ever left open (one the text never closes is closed), and no word is cut
       unless it alone is longer than the limit.
    Linear in the input: sentence search stops ``limit`` characters in.
    """
    text = lead.strip()
    end = _sentence_end(text, 0, within=limit)
    joined = False
    while end <= limit and not _stands_alone(text[:end]):
        if end >= len(text):
            rest = squash(more[: 4 * limit])
            if joined or not rest:
                break
            text = f"{text} {without_dateline(rest)}"
            joined = True
        end = _sentence_end(text, end, within=limit)
    title = text[:end]
    if title.endswith(".") and not title.endswith(".."):
        title = title[:-1].rstrip() or title
    if len(title) <= limit:
        closers = _closers(title)  # the text never closes them: '"Was wir brauchen, ist …'
        if len(title) + len(closers) <= limit:
            return title + closers
    return _cut(title, limit)


def title_stem(title: str) -> str:
    """The part of ``title`` taken from the text: without the ``…`` and the closers added."""
    return title.rstrip("".join(_CLOSING)).removesuffix("…")
