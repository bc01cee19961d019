"""Per-article language detection: a pure function of the text, offline and deterministic.

Uses lingua (models are compiled into its wheel, nothing is downloaded) restricted to the
configured candidates, in low-accuracy mode (trigrams only: small in memory and, for texts of
a sentence or more, as accurate as the full models).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # lingua loads on the first detection: a build that parses nothing skips it
    from lingua import LanguageDetector

# ISO 639-1 codes lingua knows (``Language.all()``; a test keeps them equal); config
# validates ``languages`` against these without importing lingua.
# fmt: off
KNOWN_CODES = frozenset({
    "af", "ar", "az", "be", "bg", "bn", "bs", "ca", "cs", "cy", "da", "de", "el", "en", "eo", "es",
    "et", "eu", "fa", "fi", "fr", "ga", "gu", "he", "hi", "hr", "hu", "hy", "id", "is", "it", "ja",
    "ka", "kk", "ko", "la", "lg", "lt", "lv", "mi", "mk", "mn", "mr", "ms", "nb", "nl", "nn", "pa",
    "pl", "pt", "ro", "ru", "sk", "sl", "sn", "so", "sq", "sr", "st", "sv", "sw", "ta", "te", "th",
    "tl", "tn", "tr", "ts", "uk", "ur", "vi", "xh", "yo", "zh", "zu",
})
# fmt: on
MAX_CHARS = 120  # cost is linear in length; a sentence is enough among a few candidates
MIN_WORDS = 3  # shorter texts are ambiguous ("OK.") and keep the default


def detect_language(
    text: str, *, default: str, candidates: Iterable[str], min_confidence: float
) -> str:
    """The BCP 47 tag of ``text``'s language, or ``default`` when unsure.

    A detected language equal to the default's primary subtag keeps the full default
    ("de" with default "de-AT" → "de-AT"); any other is its bare ISO 639-1 code ("en").
    Fewer than two candidates means nothing to choose between: always ``default``.
    """
    codes = tuple(sorted({c.lower() for c in candidates}))
    if len(codes) < 2 or len(text.split(None, MIN_WORDS)) < MIN_WORDS:
        return default
    if len(text) > MAX_CHARS:
        cut = text.rfind(" ", 0, MAX_CHARS)
        text = text[: cut if cut > 0 else MAX_CHARS]
    values = _detector(codes).compute_language_confidence_values(text)
    if not values or values[0].value < min_confidence or values[0].value == 0:
        return default
    code = values[0].language.iso_code_639_1.name.lower()
    return default if code == default.split("-", 1)[0].lower() else code


@functools.lru_cache(maxsize=8)
def _detector(codes: tuple[str, ...]) -> LanguageDetector:
    """One detector per candidate set; its models load lazily, on first use."""
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    unknown = sorted(set(codes) - KNOWN_CODES)
    if unknown:
        raise ValueError(f"unknown language code(s): {', '.join(unknown)}")
    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in codes]
    return LanguageDetectorBuilder.from_languages(*languages).with_low_accuracy_mode().build()
