"""Pure text helpers: XML-safe characters, whitespace, sentence boundaries and titles."""

from __future__ import annotations

import re

# XML 1.0 allows TAB, LF, CR, U+0020-U+D7FF, U+E000-U+FFFD, U+10000-U+10FFFF. C1 controls are
# legal XML but never intended text, so they go too. Surrogates cannot survive strict UTF-8.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")

TITLE_MAX = 110

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


def has_forbidden(text: str) -> bool:
    """Whether ``text`` holds any character that XML 1.0 forbids (or a C1 control)."""
    return _FORBIDDEN.search(text) is not None


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


def first_sentence(text: str) -> str:
    """The first sentence of ``text``; the whole text when no boundary is found.

    Linear in ``len(text)``: one pass of ``_BOUNDARY`` and, for the periods it skips, one look
    at the word before each.
    """
    after = 0  # where the text after the last skipped boundary starts
    for m in _BOUNDARY.finditer(text):
        if m.group("end") == "." and _is_abbreviation(text, after, m.start()):
            after = m.end()
            continue
        return text[: m.end("close")].strip()
    return text.strip()


def make_title(lead: str, *, limit: int = TITLE_MAX) -> str:
    """A headline from the lead: its first sentence without the final period, cut at a word."""
    sentence = first_sentence(lead)
    if sentence.endswith(".") and not sentence.endswith(".."):
        sentence = sentence[:-1].rstrip()
    if len(sentence) <= limit:
        return sentence or lead.strip()[:limit]
    cut = sentence[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-–—") + "…"
