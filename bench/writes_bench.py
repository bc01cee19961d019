"""What writing a cold build's files costs (#9): the feeds, archive pages, ``.gz`` siblings and
HTML archive of a built feeds/ folder, written again through ``Writer`` into a fresh folder.

Every file under FEEDS but the article pages (``articles/``: staged by their own path) is read
into memory once, then written ``--runs`` times into a new folder each, as a cold build writes
them (feed and archive documents durable, with their ``.gz`` where the name says so). Prints
the CPU (user + sys of this process) and wall seconds of each run and their medians. To
compare two versions of the code, run it with each tree's venv in turn, in the same minute
(the machine is shared: only figures from one sitting compare).

Usage: ``.venv/bin/python bench/writes_bench.py FEEDS [--runs 5]``; FEEDS e.g. the feeds/
folder a ``bench/cold_bench.py`` or ``feedsvc build`` of 10,000 seeds left.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

from feedsvc.build.outputs import GZIP_SUFFIX, TMP_DIR, Document, Writer


def documents(feeds: Path) -> list[Document]:
    """The files of ``feeds`` but article pages, ``.gz`` and temp files, as documents."""
    docs: list[Document] = []
    for path in sorted(feeds.rglob("*")):
        rel = path.relative_to(feeds).as_posix()
        if not path.is_file() or rel.startswith(("articles/", TMP_DIR)) or rel.endswith(".gz"):
            continue
        data = path.read_bytes()
        gz = path.with_name(path.name + GZIP_SUFFIX).exists()
        docs.append(Document(rel, partial(bytes, data), "archive", compress=gz))
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("feeds", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    docs = documents(args.feeds)
    print(f"{len(docs)} documents, {sum(len(d.render()) for d in docs) / 1e6:.1f} MB")
    cpu: list[float] = []
    wall: list[float] = []
    for n in range(args.runs):
        with tempfile.TemporaryDirectory(dir=args.feeds.parent) as tmp:
            root = Path(tmp) / "feeds"
            before, started = os.times(), time.perf_counter()
            Writer(root, gzip_feeds=True).write(docs)
            after = os.times()
            wall.append(time.perf_counter() - started)
            cpu.append(after.user + after.system - before.user - before.system)
            shutil.rmtree(root)
        print(f"run {n + 1}: CPU {cpu[-1]:.2f} s, wall {wall[-1]:.2f} s")
    print(f"median: CPU {statistics.median(cpu):.2f} s, wall {statistics.median(wall):.2f} s")


if __name__ == "__main__":
    main()
