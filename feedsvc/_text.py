"""Pure text helpers: XML-safe characters, whitespace, sentence boundaries and titles."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

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
"""
ABBREVIATIONS = frozenset(_ABBREVIATIONS.split())

# Every regex here is linear on any input: ``(?<!…)`` lets a run of terminators or a word be
# tried once, from its start (not again from each character inside it), and the possessive
# ``++``/``*+`` never give back what they took. Without them a run of n periods before a
# lowercase word cost n²/2 steps, and the abbreviation check re-scanned the text before each
# period (20,000 initials: 20 s).
_BOUNDARY = re.compile(
    r"""(?<![.!?…])(?P<end>[.!?…]++)(?P<close>["'”“’‘»«)\]]*+)\s++"""
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


def first_sentence(text: str, *, within: int | None = None) -> str:
    """The first sentence of ``text``; the whole text when no boundary is found.

    Linear in ``len(text)``: one pass of ``_BOUNDARY`` and, for each period it skips, one look
    at the word before it. With ``within``, the search stops at the first skipped period past
    ``within`` characters (leading whitespace aside) and gives the whole text: every sentence
    from there on is longer than ``within``, so a caller cutting at ``within`` cuts the same
    prefix either way (``make_title``; 350,000 initials then cost nothing).
    """
    indent = len(text) - len(text.lstrip()) if within is not None else 0
    after = 0  # where the text after the last skipped boundary starts
    for m in _BOUNDARY.finditer(text):
        if m.group("end") == "." and _is_abbreviation(text, after, m.start()):
            if within is not None and m.start() - indent > within + 2:
                break
            after = m.end()
            continue
        return text[: m.end("close")].strip()
    return text.strip()


def make_title(lead: str, *, limit: int = TITLE_MAX) -> str:
    """A headline from the lead: its first sentence without the final period, cut at a word."""
    sentence = first_sentence(lead, within=limit)
    if sentence.endswith(".") and not sentence.endswith(".."):
        sentence = sentence[:-1].rstrip()
    if len(sentence) <= limit:
        return sentence or lead.strip()[:limit]
    cut = sentence[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-–—") + "…"
