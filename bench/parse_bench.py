"""Benchmark for ``parse_seed`` on adversarial seeds: is every step linear in the input?

Run on demand, not as a test: timings depend on the machine and its load, so they are
printed, never asserted (``tests/test_parsing.py`` only guards against a hang). For each
family of ``tests/adversarial.py`` it parses a seed of 64 KiB, 256 KiB and 1 MiB (the default
``max_seed_bytes``) and prints the best of a few runs and the growth from 256 KiB to 1 MiB:
about 4 when linear, about 16 when quadratic. Language detection is on (three candidates), so
its cost is in the figures; a last line times it alone on a 1 MiB text.

With ``--corpus DIR`` it times the ordinary case instead: every seed of a folder, read into
memory first, parsed as a cold build parses them (Europe/Vienna, no language detection), and
then parsed with each article's store row made right after, as a pool worker of a cold build
does (``rows.new_article``); it prints the CPU µs per article of each, the median of
``--runs`` passes (#9). With ``--old CHECKOUT`` too, another checkout's ``feedsvc`` (copied
into a temporary folder as ``feedsvc_old``) is timed in the same process, pass for pass
interleaved with this one: before and after in one run, on the same load.

Usage: ``.venv/bin/python bench/parse_bench.py [--runs 3] [--only periods,initials] [--json]``
or ``.venv/bin/python bench/parse_bench.py --corpus /tmp/big/s10k [--runs 5] [--old CHECKOUT]``
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from feedsvc._lang import detect_language  # noqa: E402
from feedsvc.config import DEFAULT_MAX_SEED_BYTES  # noqa: E402
from feedsvc.errors import SeedError  # noqa: E402
from feedsvc.seeds import parse_seed  # noqa: E402
from tests.adversarial import FAMILIES  # noqa: E402

KIB = 1024
SIZES = (64 * KIB, 256 * KIB, DEFAULT_MAX_SEED_BYTES)
NOW = datetime(2025, 1, 1, tzinfo=UTC)
LANGUAGES = ("de", "en", "fr")


def parse_once(data: bytes) -> tuple[float, str]:
    """Seconds for one parse, and what came out (the title's length, or the error)."""
    start = time.perf_counter()
    try:
        article = parse_seed(
            data,
            source="000_98f79bfdbc50e318.txt",
            now=NOW,
            languages=LANGUAGES,
            max_bytes=DEFAULT_MAX_SEED_BYTES,
        )
        outcome = f"title {len(article.title)} chars, {len(article.body)} blocks"
    except SeedError as e:
        outcome = f"rejected: {e.reason[:40]}"
    return time.perf_counter() - start, outcome


def best(data: bytes, runs: int) -> tuple[float, str]:
    times, outcome = [], ""
    for _ in range(runs):
        seconds, outcome = parse_once(data)
        times.append(seconds)
    return min(times), outcome


Pass = Callable[[bool], float]


def passes(package: str, seeds: list[tuple[str, bytes]]) -> Pass:
    """One timed pass of ``package``'s ``parse_seed`` (and ``new_article`` when asked) over
    every seed: CPU µs per article."""
    parse = importlib.import_module(f"{package}.seeds").parse_seed
    row = importlib.import_module(f"{package}.build.rows").new_article
    settings = importlib.import_module(f"{package}.config").Settings(timezone="Europe/Vienna")
    feeds = importlib.import_module(f"{package}.build.feeds").FeedSet(settings)
    tz = ZoneInfo("Europe/Vienna")

    def one_pass(rows: bool) -> float:
        start = time.process_time()
        for name, data in seeds:
            article = parse(data, source=name, now=NOW, tz=tz, display=f"seeds/{name}")
            if rows:
                row(article, authority="localhost", tz=tz, feeds=feeds)
        return (time.process_time() - start) / len(seeds) * 1e6

    return one_pass


def per_article(corpus: Path, runs: int, old: Path | None) -> None:
    """CPU µs per article of ``parse_seed`` (+ ``new_article``) over a corpus in memory."""
    seeds = [(name, (corpus / name).read_bytes()) for name in sorted(os.listdir(corpus))]
    sides = {"": passes("feedsvc", seeds)}
    if old is not None:
        copy = Path(tempfile.mkdtemp(prefix="parse-old-"))
        shutil.copytree(old / "feedsvc", copy / "feedsvc_old")  # relative imports only
        sys.path.insert(0, str(copy))
        sides = {"old ": passes("feedsvc_old", seeds), "new ": sides[""]}
    for one_pass in sides.values():
        one_pass(True)  # warm up: caches, the first allocations
    for rows, what in ((False, "parse_seed"), (True, "parse_seed + new_article")):
        times: dict[str, list[float]] = {side: [] for side in sides}
        for _ in range(runs):
            for side, one_pass in sides.items():
                times[side].append(one_pass(rows))
        for side, figures in times.items():
            print(
                f"{side}{what} over {len(seeds)} seeds of {corpus}: "
                f"{statistics.median(figures):.1f} µs per article "
                f"(CPU, median of {runs}; best {min(figures):.1f})"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="best of this many parses per size")
    ap.add_argument("--only", default="", help="comma-separated family names")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    ap.add_argument("--corpus", type=Path, help="time every seed of this folder instead")
    ap.add_argument("--old", type=Path, help="with --corpus: a checkout to time beside this one")
    args = ap.parse_args()
    if args.corpus:
        per_article(args.corpus, args.runs, args.old)
        return
    names = [n for n in args.only.split(",") if n] or list(FAMILIES)
    parse_once(FAMILIES["periods"](KIB))  # warm up: lingua's models, the marks table
    print(f"python {platform.python_version()} on {platform.machine()}, best of {args.runs}")
    head = "".join(f"{s // KIB:>9} KiB" for s in SIZES)
    print(f"{'family':<24}{head}   1M/256K  outcome at 1 MiB")
    rows = []
    for name in names:
        times = []
        outcome = ""
        for size in SIZES:
            data = FAMILIES[name](size)
            assert len(data) <= size, (name, size, len(data))
            seconds, outcome = best(data, args.runs)
            times.append(seconds)
        growth = times[-1] / times[-2] if times[-2] > 0 else float("nan")
        cells = "".join(f"{t * 1000:>10.1f} ms" for t in times)
        print(f"{name:<24}{cells}   {growth:>6.1f}   {outcome}")
        rows.append({"family": name, "seconds": times, "growth": growth, "outcome": outcome})
    worst = max(rows, key=lambda r: r["seconds"][-1])
    print(f"worst at 1 MiB: {worst['family']} {worst['seconds'][-1] * 1000:.0f} ms")
    text = "Der Bundeskanzler sagte am Mittwoch in Wien, man werde beraten. " * 16500
    start = time.perf_counter()
    detect_language(text, default="de", candidates=LANGUAGES, min_confidence=0.5)
    lang_ms = (time.perf_counter() - start) * 1000
    print(f"detect_language on {len(text) // KIB} KiB of text: {lang_ms:.1f} ms")
    if args.json:
        print(json.dumps({"families": rows, "detect_language_ms": lang_ms}, indent=2))


if __name__ == "__main__":
    main()
