"""Compare ``parse_seed`` of another checkout (the old code) with this one's, seed by seed.

A speed-up of the parser must not change a single result. This parses every seed of the given
corpora (folders of seeds, or ``.tar.gz`` files of them) with both versions, each in its own
process, and compares what came out: ``pack_article`` (every field, warnings included) and
the article's store row as a cold build makes it (``rows.new_article``: the JSON bytes, the
dates, the feeds; made right after the parse, as a pool worker does, and again after the
next seed's parse, as the main process of a sequential build does), or the error's class
and message. Each seed is also parsed in a few variants that take the slow paths
(CRLF line ends, blank lines of spaces, tabs and no-break spaces, a NUL, a control character,
decomposed umlauts, a lead too short for a title), plus the adversarial families of
``tests/adversarial.py`` at small sizes. Prints the counts; exits 1 on any difference.

Usage: ``.venv/bin/python bench/parse_compare.py OLD_CHECKOUT CORPUS... [--languages de,en,fr]``
(``git worktree add --detach /tmp/parse-old b88a7cf`` makes an old checkout).
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 1, 1, tzinfo=UTC)
Seed = tuple[str, bytes]

VARIANTS: dict[str, Callable[[bytes], bytes]] = {
    "crlf": lambda d: d.replace(b"\n", b"\r\n"),
    "cr": lambda d: d.replace(b"\n", b"\r"),
    "spaced_blanks": lambda d: d.replace(b"\n\n", b"\n \t\n\n", 3),
    "tabs_nbsp": lambda d: d.replace(b" ", b"\t", 5).replace(b" ", "\u00a0".encode(), 7),
    "split_lines": lambda d: d.replace(b". ", b".\n", 9),
    "nul": lambda d: d[: len(d) // 2] + b"\x00" + d[len(d) // 2 :],
    "control": lambda d: d.replace(b" ", b" \x07", 2),
    "decomposed": lambda d: d.replace("ä".encode(), "a\u0308".encode()),
    "short_lead": lambda d: b"date 2024-05-07 Kurz.\n" + d.split(b"\n", 1)[1],
    "iso_time": lambda d: d.replace(b"date ", b"date 2024-03-31T01:30:00 X", 1),
    "no_body": lambda d: d.split(b"\n", 1)[0] + b"\n",
}


# Date tokens put on every 50th seed: impossible, out of range, edge of DST and of time.
DATES = [
    "2024-11-00",
    "2024-13",
    "2024-02-30",
    "0001-01",
    "1899-12-31",
    "9001-01",
    "9999-12",
    "9999-12-31",
    "2024-3",
    "2024-03-31",
    "2024-10-27",
    "2024-03",
    "2024-1-5",
    "2024-03-31T02:30",
    "2024-03-31T02:30+05:00",
    "2024-03-31T25:00",
    "24-03",
    "2024-W13",
    "20240331",
    "2030-01",
    "2026-01-03",
    "2026-01-04",
    "garbage",
    "2024-02-29",
]


def load(corpus: str) -> Iterator[Seed]:
    """(name, bytes) of every seed in a folder or a ``.tar.gz``, sorted by name."""
    if os.path.isdir(corpus):
        for name in sorted(os.listdir(corpus)):
            with open(os.path.join(corpus, name), "rb") as f:
                yield name, f.read()
        return
    with tarfile.open(corpus) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            data = tar.extractfile(member) if member.isfile() else None
            if data is not None:
                yield member.name.rsplit("/", 1)[-1], data.read()


def seeds(corpora: list[str], variants: bool) -> list[Seed]:
    sys.path.insert(0, str(REPO))
    from tests.adversarial import FAMILIES

    out: list[Seed] = []
    for corpus in corpora:
        for number, (name, data) in enumerate(load(corpus)):
            out.append((name, data))
            if not variants:
                continue
            out.extend((f"{name}.{v}", make(data)) for v, make in VARIANTS.items())
            if number % 50 == 0:
                body = data.split(b"\n", 1)[-1]
                out.extend((f"{name}.{d}", f"date {d} Ein Satz.\n".encode() + body) for d in DATES)
    for family, make in FAMILIES.items():
        for size in (300, 4096, 65536):
            out.append((f"{size:06d}_98f79bfdbc50e318.{family}", make(size)))
    return out


def outcomes(items: list[Seed], languages: tuple[str, ...]) -> list[Any]:
    """What ``parse_seed`` of the checkout first on ``sys.path`` makes of each seed."""
    from zoneinfo import ZoneInfo

    from feedsvc.build.feeds import FeedSet
    from feedsvc.build.rows import new_article
    from feedsvc.config import Settings
    from feedsvc.errors import SeedError
    from feedsvc.models import pack_article
    from feedsvc.seeds import parse_seed

    tz = ZoneInfo("Europe/Vienna")
    # a keyword feed and category feeds: the rows' feeds depend on the text and the folder
    settings = Settings(
        timezone="Europe/Vienna",
        base_url="https://news.example.org/",
        category_feeds=True,
        feeds=[{"name": "all"}, {"name": "wien", "keywords": ["Wien", "Ukraine"]}],
    )
    feeds = FeedSet(settings)
    authority = settings.id_authority

    def row(article: Any) -> Any:
        return new_article(article, authority=authority, tz=tz, feeds=feeds)

    out: list[Any] = []
    previous: Any = None
    for number, (name, data) in enumerate(items):
        source = f"cat{number % 3}/{name}" if number % 2 else name
        try:
            article = parse_seed(
                data, source=source, now=NOW, tz=tz, languages=languages, display=f"seeds/{name}"
            )
            out.append((pack_article(article), row(article)))
        except SeedError as e:
            out.append((type(e).__name__, str(e)))
            article = None
        if previous is not None:  # its row again, another seed parsed in between
            out.append(row(previous))
        previous = article
    return out


def run(checkout: str, items: list[Seed], languages: tuple[str, ...]) -> list[Any]:
    """``outcomes`` in a fresh process that imports ``feedsvc`` from ``checkout``."""
    code = (
        "import pickle, sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(1, sys.argv[2]);"
        "import parse_compare as p; items, langs = pickle.load(sys.stdin.buffer);"
        "sys.stdout.buffer.write(pickle.dumps(p.outcomes(items, langs)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, checkout, str(REPO / "bench")],
        input=pickle.dumps((items, languages)),
        capture_output=True,
        check=True,
    )
    result: list[Any] = pickle.loads(done.stdout)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", help="checkout of the old code (a git worktree)")
    ap.add_argument("corpora", nargs="+", help="folders of seeds or .tar.gz files")
    ap.add_argument("--languages", default="", help="detection candidates, e.g. de,en,fr")
    ap.add_argument("--no-variants", action="store_true", help="the seeds as they are only")
    args = ap.parse_args()
    languages = tuple(x for x in args.languages.split(",") if x)
    items = seeds(args.corpora, variants=not args.no_variants)
    old = run(args.old, items, languages)
    new = run(str(REPO), items, languages)
    differ = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    errors = sum(1 for o in new if isinstance(o[0], str) and o[0].endswith("Error"))
    rows = sum(1 for o in new if len(o) == 2 and isinstance(o[1], tuple)) * 2
    print(
        f"compared {len(items)} seeds ({errors} rejected alike or not) and {rows} rows: "
        f"{len(differ)} differ"
    )
    for i in differ[:10]:
        print(f"  outcome {i}:\n    old {old[i]!r:.300}\n    new {new[i]!r:.300}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
