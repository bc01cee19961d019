"""What rendering the archive pages costs (#9): every page of a built store, per format.

Opens the store a defaults build left (``--config``: its ``feedsvc.toml``; the store is only
read), renders each archive page of the main feed in Atom, RSS and JSON Feed as a cold build
does (``Planner._page_bytes``), and gzips the bytes at ``ARCHIVE_GZIP_LEVEL`` (what a build
writes) and at ``GZIP_LEVEL`` (the feeds', and the archive pages' before #9). Prints CPU
seconds per format (``time.process_time``, medians of ``--runs``), the bytes written, and the
.gz sizes. Timings are printed, never asserted.

Usage: ``.venv/bin/python bench/archive_bench.py --config STATE/feedsvc.toml [--runs 3]``
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import time
from pathlib import Path

from feedsvc import load_settings
from feedsvc.build.outputs import ARCHIVE_GZIP_LEVEL, GZIP_LEVEL
from feedsvc.build.plan import Planner
from feedsvc.models import Entry
from feedsvc.store import open_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    settings = load_settings(config=args.config)
    planner = Planner(settings)
    store = open_store(settings)
    spec = planner.feeds.main
    size = settings.archive_page_size
    last = planner._last_page(store, spec)
    pages: list[list[Entry]] = [
        store.archived(spec.name, p * size, (p + 1) * size)
        for p in range(0 if last is None else last + 1)
    ]
    store.close()
    print(f"{len(pages)} archive pages, {sum(map(len, pages))} entries; formats {spec.formats}")
    times: dict[str, list[float]] = {fmt: [] for fmt in spec.formats}
    times["all formats"] = []
    levels = (ARCHIVE_GZIP_LEVEL, GZIP_LEVEL)
    for level in levels:
        times[f"gzip -{level}"] = []
    sizes: dict[str, int] = {}
    for _ in range(args.runs):
        for fmt in spec.formats:
            start = time.process_time()
            out = [
                planner._render(fmt, spec, planner._paging(spec, p, fmt), None, e)
                for p, e in enumerate(pages)
            ]
            times[fmt].append(time.process_time() - start)
            sizes[fmt] = sum(map(len, out))
        start = time.process_time()
        rendered = [planner._page_bytes(spec, p, [], e) for p, e in enumerate(pages)]
        times["all formats"].append(time.process_time() - start)
        for level in levels:
            start = time.process_time()
            packed = [
                gzip.compress(d, compresslevel=level, mtime=0) for r in rendered for d in r.values()
            ]
            times[f"gzip -{level}"].append(time.process_time() - start)
            sizes[f"gz -{level}"] = sum(map(len, packed))
    for what, seconds in times.items():
        print(f"{what:>12}: {statistics.median(seconds):6.3f} s CPU (median of {args.runs})")
    for what, n in sizes.items():
        print(f"{what:>12}: {n / 1e6:8.2f} MB")


if __name__ == "__main__":
    main()
