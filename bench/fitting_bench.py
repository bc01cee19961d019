"""The archive pages of a built site, fitted and written again (#9): CPU per page, no I/O.

Builds SEEDS once with the default settings into ``--state`` (kept: reused by later runs,
also by another checkout's run of this script), then, for every archive page of the main
feed, reads its entries from the store (not timed) and times what a cold build's plan does
with them: ``Planner._fitting`` (the byte-budget search) and ``_page_bytes`` (the page in
every format). Prints the median CPU seconds (``time.process_time``) of ``--runs`` passes.
Run it with each checkout's Python for a before/after in one session, e.g.
``/tmp/old/.venv/bin/python bench/fitting_bench.py /tmp/big/s10k --state /tmp/fit-state``
(the script puts its own checkout's ``feedsvc`` first on ``sys.path``).

Usage: ``.venv/bin/python bench/fitting_bench.py SEEDS --state DIR [--runs 3]
[--budget BYTES]`` (``--budget``: ``max_feed_bytes`` for the timed search, default 512 KiB:
pages fill by count; a small one makes the search probe).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from feedsvc.build.plan import Planner  # noqa: E402
from feedsvc.build.publisher import Publisher  # noqa: E402
from feedsvc.config import Settings  # noqa: E402
from feedsvc.store import open_store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seeds", type=Path)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--budget", type=int, default=512 * 1024)
    args = parser.parse_args()
    built = Settings(
        seeds_dir=args.seeds,
        feeds_dir=args.state / "feeds",
        state_dir=args.state / "state",
        base_url="https://example.org/",
    )
    if not (args.state / "feeds").exists():
        report = Publisher(built).build()
        if not report.ok:
            raise SystemExit(f"build failed: {report.errors}")
    settings = built.model_copy(update={"max_feed_bytes": args.budget})
    planner = Planner(settings)
    spec = planner.feeds.main
    size = settings.archive_page_size
    store = open_store(settings)
    pages = store.next_seq(spec.name) // size
    times = []
    written = 0
    for _ in range(args.runs):
        spent = 0.0
        written = 0
        for page in range(pages):
            entries = store.archived(spec.name, page * size, (page + 1) * size)
            new = sorted(entries, key=lambda e: (e.published, e.key))  # oldest first
            gc.collect()
            start = time.process_time()
            found = planner._fitting(spec, page, [], new, size)
            if isinstance(found, tuple):  # before #9's sizing: (count, the pages if written)
                take, data = found
                data = data or planner._page_bytes(spec, page, [], new[:take])
            else:
                data = planner._page_bytes(spec, page, [], new[:found])
            spent += time.process_time() - start
            written += sum(map(len, data.values()))
        times.append(spent)
    store.close()
    median = statistics.median(times)
    print(
        f"{REPO.name}: {pages} archive pages of {size}, budget {args.budget:,} B: "
        f"median {median:.3f} s CPU ({1000 * median / max(pages, 1):.2f} ms a page; "
        f"runs {', '.join(f'{t:.3f}' for t in times)}), {written:,} bytes a pass"
    )


if __name__ == "__main__":
    main()
