"""Titles on the real corpus, before and after the title rules of issue #11 (item 1).

Not a timing: it prints what a reader sees. For each of the 1,014 articles of the shared
de-news corpus it derives the title twice: with the rule before #11 (the lead's first sentence
cut at a word, kept here as ``old_title``) and with ``make_title(lead, more=first paragraph)``
(what ``parse_seed`` passes once it hands over the first paragraph). It prints, for both: the
share cut, the longest, shortest and mean length, the titles leaving a quote or bracket open,
the fragments (under ``MIN_WORDS`` words), the cuts inside a word, then examples before -> after.

Usage: ``.venv/bin/python bench/title_bench.py [--corpus PATH] [--examples 20] [--json]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from feedsvc._text import (  # noqa: E402
    TITLE_MAX,
    first_sentence,
    is_fragment,
    make_title,
    open_quotes,
    title_stem,
    without_dateline,
)
from feedsvc.seeds import parse_seed  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "de-news.tar.gz"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def old_title(lead: str, limit: int = TITLE_MAX) -> str:
    """The rule before #11: the first sentence without its period, cut at a word with ``…``."""
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


@dataclass(frozen=True)
class Article:
    name: str
    lead: str
    more: str  # the first paragraph

    @property
    def source(self) -> str:
        """The text a title is a prefix of: the lead, then the paragraph without its dateline."""
        return f"{self.lead} {without_dateline(self.more)}"


def is_cut(title: str, source: str) -> bool:
    """Whether ``title`` ends with an ellipsis that the text does not have there."""
    stem = title_stem(title)
    return title.rstrip('"“”’«»)]').endswith("…") and not source.startswith(stem + "…")


def mid_word(title: str, source: str) -> bool:
    """Whether a cut ``title`` ends inside a word of ``source`` (or is not a prefix of it)."""
    stem = title_stem(title)
    if not source.startswith(stem):
        return True
    rest = source[len(stem) :]
    return bool(stem and rest and stem[-1].isalnum() and rest[0].isalnum())


@dataclass
class Figures:
    titles: int
    cut: int
    cut_share: float
    longest: int
    shortest: int
    mean: float
    open_quotes: int
    fragments: int
    mid_word: int
    over_limit: int
    closed: int  # quotes closed after the title (by make_title, or the text's own)


def measure(titles: list[str], articles: list[Article]) -> Figures:
    lengths = [len(t) for t in titles]
    cut = sum(is_cut(t, a.source) for t, a in zip(titles, articles, strict=True))
    return Figures(
        titles=len(titles),
        cut=cut,
        cut_share=round(cut / len(titles), 3),
        longest=max(lengths),
        shortest=min(lengths),
        mean=round(statistics.mean(lengths), 1),
        open_quotes=sum(bool(open_quotes(t)) for t in titles),
        fragments=sum(is_fragment(t) for t in titles),
        mid_word=sum(
            is_cut(t, a.source) and mid_word(t, a.source)
            for t, a in zip(titles, articles, strict=True)
        ),
        over_limit=sum(n > TITLE_MAX for n in lengths),
        closed=sum(
            not a.source.startswith(t.removesuffix("…"))
            for t, a in zip(titles, articles, strict=True)
        ),
    )


def load(corpus: Path) -> list[Article]:
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(corpus) as tar:
            tar.extractall(tmp, filter="data")
        articles = []
        for path in sorted(Path(tmp).rglob("*.txt")):
            a = parse_seed(path.read_bytes(), source=path.name, now=NOW)
            articles.append(Article(path.name, a.lead, a.body[0].text))
    return articles


def examples(before: list[str], after: list[str], articles: list[Article], n: int) -> list[int]:
    """About ``n`` articles: half whose title changed (cut ones first), half unchanged."""
    changed = [i for i, (b, a) in enumerate(zip(before, after, strict=True)) if b != a]
    fragments = [i for i in changed if is_fragment(before[i])]
    quotes = [i for i in changed if open_quotes(before[i]) and i not in fragments]
    rest = [i for i in changed if i not in fragments and i not in quotes]
    same = [i for i, (b, a) in enumerate(zip(before, after, strict=True)) if b == a]
    picked = fragments[:4] + quotes[:4]
    k = max(0, n * 3 // 4 - len(picked))
    picked += rest[:: max(1, len(rest) // k)][:k] if k else []
    k = n - len(picked)
    picked += same[:: max(1, len(same) // k)][:k] if k > 0 else []
    return sorted(picked)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--examples", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    articles = load(args.corpus)
    rules: dict[str, Callable[[Article], str]] = {
        "before": lambda a: old_title(a.lead),
        "lead only": lambda a: make_title(a.lead),  # parse_seed until it passes the paragraph
        "after": lambda a: make_title(a.lead, more=a.more),
    }
    titles = {name: [rule(a) for a in articles] for name, rule in rules.items()}
    figures = {name: measure(t, articles) for name, t in titles.items()}
    picked = examples(titles["before"], titles["after"], articles, args.examples)
    if args.json:
        out = {name: asdict(f) for name, f in figures.items()}
        out["examples"] = [
            {"file": articles[i].name, "before": titles["before"][i], "after": titles["after"][i]}
            for i in picked
        ]
        print(json.dumps(out, ensure_ascii=False, indent=1))
        return 0
    print(f"{len(articles)} articles from {args.corpus}, limit {TITLE_MAX} characters\n")
    print(f"{'':14}" + "".join(f"{name:>11}" for name in figures))
    for field in Figures.__dataclass_fields__:
        print(f"{field:14}" + "".join(f"{getattr(f, field):>11}" for f in figures.values()))
    print()
    for i in picked:
        print(f"{articles[i].name}\n  {titles['before'][i]}\n  -> {titles['after'][i]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
