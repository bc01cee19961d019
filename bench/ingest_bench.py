"""Benchmark: a seed written on an ingest host, published by a builder elsewhere (#10 part 3).

Run on demand, not as a test: figures depend on the machine and its load, so they are printed,
never asserted. On a throwaway PostgreSQL cluster, two real daemons: an ingest host
(``--roles ingest``, its own seeds folder) and a builder (``--roles build,serve``, no seeds of
its own), the builder's periodic rescan set to an hour so only ``NOTIFY`` wakes it. Prints:

- the cold start: ``--seeds`` seeds on the ingest host, until the builder has published all
  (and a one-machine daemon's start to all published, beside it);
- ``--edits`` edits of one seed on the ingest host: from the write to the builder's article
  page holding the new text (debounce included), median and range; the same edits on a
  one-machine daemon (all three roles, the seeds local, same store kind) beside it;
- the CPU seconds (user + sys, from /proc) each daemon spent on the edits.

Usage: ``.venv/bin/python bench/ingest_bench.py [--seeds 500] [--edits 10] [--debounce 0.1]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import seed_text  # noqa: E402
from tests.harness import Daemon, key_of, make_site, seed_name, write  # noqa: E402
from tests.pg import PgServer, find_postgres  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu(pid: int) -> float:
    """User + sys CPU seconds of a running process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def seed(seeds: Path, n: int, marker: str) -> None:
    write(seeds / seed_name(n), seed_text(f"Stand {marker}.", body=f"Meldung {n}. " * 30))


def wait_page(feeds: Path, n: int, marker: str, deadline: float = 60.0) -> float:
    """Seconds until ``feeds/articles/<key>.html`` holds ``marker`` (polled every 2 ms)."""
    page = feeds / "articles" / f"{key_of(n)}.html"
    start = time.perf_counter()
    while time.perf_counter() - start < deadline:
        try:
            if marker in page.read_text(encoding="utf-8"):
                return time.perf_counter() - start
        except OSError:
            pass
        time.sleep(0.002)
    raise RuntimeError(f"{page} never showed {marker!r}")


def edits(seeds: Path, feeds: Path, count: int, tag: str) -> list[float]:
    times = []
    for i in range(count):
        marker = f"{tag}{i}x"
        seed(seeds, 1, marker)
        times.append(wait_page(feeds, 1, marker))
    return times


def line(name: str, times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    return (
        f"{name}: median {statistics.median(ms):.0f} ms ({ms[0]:.0f}-{ms[-1]:.0f} ms,"
        f" {len(ms)} edits)"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=500)
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--debounce", type=float, default=0.1)
    args = parser.parse_args()
    bindir = find_postgres()
    if bindir is None:
        print("no PostgreSQL found", file=sys.stderr)
        return 1
    server = PgServer(bindir)
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as name:
        tmp = Path(name)
        server.start()
        try:
            common = {"debounce_seconds": args.debounce, "rescan_interval": 3600}
            url = server.create_database().url
            a = make_site(tmp / "a", store_url=url, site_id="b", node_name="ingest-a", **common)
            b = make_site(tmp / "b", store_url=url, site_id="b", node_name="builder-b", **common)
            for n in range(1, args.seeds + 1):
                seed(a / "seeds", n, "cold")
            builder = Daemon(b, "--roles", "build,serve")
            t0 = time.perf_counter()
            ingest = Daemon(a, "--roles", "ingest", serve=False)
            wait_page(b / "feeds", args.seeds, "cold")
            cold = time.perf_counter() - t0
            ca, cb = cpu(ingest.proc.pid), cpu(builder.proc.pid)
            apart = edits(a / "seeds", b / "feeds", args.edits, "apart")
            da, db = cpu(ingest.proc.pid) - ca, cpu(builder.proc.pid) - cb
            ingest.stop()
            builder.stop()

            url = server.create_database().url
            one = make_site(tmp / "one", store_url=url, site_id="one", **common)
            for n in range(1, args.seeds + 1):
                seed(one / "seeds", n, "cold")
            t0 = time.perf_counter()
            single = Daemon(one)
            wait_page(one / "feeds", args.seeds, "cold")
            cold_one = time.perf_counter() - t0
            c1 = cpu(single.proc.pid)
            local = edits(one / "seeds", one / "feeds", args.edits, "one")
            d1 = cpu(single.proc.pid) - c1
            single.stop()
        finally:
            server.destroy()
    print(f"{args.seeds} seeds, debounce {args.debounce:g} s, PostgreSQL, load as it was")
    print(f"cold: ingest host start to all {args.seeds} published by the builder: {cold:.2f} s")
    print(f"cold: one machine (all three roles), start to all published: {cold_one:.2f} s")
    print(line("edit on the ingest host -> builder's page", apart))
    print(line("edit on one machine (all three roles)   ", local))
    print(
        f"CPU over the edits: ingest host {da:.2f} s + builder {db:.2f} s = {da + db:.2f} s;"
        f" one machine {d1:.2f} s (ratio {(da + db) / d1 if d1 else float('nan'):.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
