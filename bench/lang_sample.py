"""How often language detection on a bounded sample agrees with detection on the full text (#9).

A build detects each article's language on the lead + first paragraphs, cut at
``_lang.MAX_CHARS`` characters (``seeds._article_language``). This prints, for a corpus, how
often that sample's answer equals the answer on the whole text (lead + every block, no cut),
with the default settings' candidates (de, en, fr, it, es), default language and minimum
confidence, and what each costs per article. Other sample lengths are shown for comparison.

    .venv/bin/python bench/lang_sample.py [../shared/corpus/de-news.tar.gz | SEEDS_DIR]
"""

from __future__ import annotations

import argparse
import tarfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from feedsvc import _lang
from feedsvc.config import (
    DEFAULT_LANGUAGE,
    DEFAULT_LANGUAGE_MIN_CONFIDENCE,
    DEFAULT_LANGUAGES,
)
from feedsvc.errors import SeedParseError
from feedsvc.models import Article
from feedsvc.seeds import parse_seed

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus" / "de-news.tar.gz"
CODES = tuple(sorted(DEFAULT_LANGUAGES))


def seeds(source: Path) -> Iterator[tuple[str, bytes]]:
    if source.is_dir():
        for path in sorted(source.rglob("*.txt")):
            yield path.name, path.read_bytes()
        return
    with tarfile.open(source) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            f = tar.extractfile(member) if member.isfile() else None
            if f is not None and member.name.endswith(".txt"):
                yield member.name, f.read()


def decide(text: str) -> str:
    """``detect_language``'s answer for ``text`` as given, without its cut."""
    if len(text.split(None, _lang.MIN_WORDS)) < _lang.MIN_WORDS:
        return DEFAULT_LANGUAGE
    values = _lang._detector(CODES).compute_language_confidence_values(text)
    if not values or values[0].value < DEFAULT_LANGUAGE_MIN_CONFIDENCE or values[0].value == 0:
        return DEFAULT_LANGUAGE
    code: str = values[0].language.iso_code_639_1.name.lower()
    return DEFAULT_LANGUAGE if code == DEFAULT_LANGUAGE.split("-")[0] else code


def sample(article: Article, limit: int) -> str:
    """The lead + first blocks up to ``limit`` characters, cut at a space (as a build does)."""
    parts, size = [article.lead], len(article.lead)
    for block in article.body:
        if size >= limit:
            break
        parts.append(block.text)
        size += len(block.text) + 1
    text = " ".join(parts)
    if len(text) > limit:
        cut = text.rfind(" ", 0, limit)
        text = text[: cut if cut > 0 else limit]
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, default=CORPUS)
    args = parser.parse_args()
    now = datetime.now(UTC)
    articles: list[Article] = []
    for name, data in seeds(args.source):
        try:
            articles.append(parse_seed(data, source=name, now=now, language=DEFAULT_LANGUAGE))
        except SeedParseError:
            continue
    fulls = [" ".join([a.lead, *(b.text for b in a.body)]) for a in articles]
    decide("warm up the models of every candidate language")
    started = time.process_time()
    truth = [decide(t) for t in fulls]
    full_us = (time.process_time() - started) / len(articles) * 1e6
    print(f"{len(articles)} articles from {args.source}; candidates {','.join(CODES)}")
    print(f"full text: {full_us:.0f} µs/article, answers {dict(Counter(truth))}")
    for limit in sorted({_lang.MAX_CHARS, 300, 600}):
        texts = [sample(a, limit) for a in articles]
        started = time.process_time()
        got = [decide(t) for t in texts]
        us = (time.process_time() - started) / len(articles) * 1e6
        same = sum(g == t for g, t in zip(got, truth, strict=True))
        mark = " (what a build uses)" if limit == _lang.MAX_CHARS else ""
        print(
            f"sample ≤ {limit} chars{mark}: agrees with full text on {same}/{len(articles)} "
            f"= {same / len(articles):.1%}; {us:.0f} µs/article; answers {dict(Counter(got))}"
        )


if __name__ == "__main__":
    main()
