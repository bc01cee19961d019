"""What the store's safety costs: the checks at open, ``store check``, backup, and adoption.

Run on demand, not as a test: timings are printed, never asserted. A synthetic site of N
articles (``/work/shared/peers/make_synthetic.py``, deterministic) is built once into a temp
dir; then each step is timed with a warm page cache (best of 3), and ``quick_check`` also
after dropping the page cache when run as root (the first open after a reboot).

These figures decide where ``PRAGMA quick_check`` runs: every full build (a full build stats
every seed anyway) and ``feedsvc store check``; an incremental build (the daemon's per-change
builds, ``feedsvc build FILE``) checks the header and schema only.

Usage: ``.venv/bin/python bench/store_bench.py [--articles 10000]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from feedsvc.build.adopt import read_published
from feedsvc.build.publisher import Publisher
from feedsvc.config import load_settings
from feedsvc.store import SQLiteStore as Store
from feedsvc.store import backup_store, check_store, store_path

REPO = Path(__file__).resolve().parent.parent
GENERATOR = REPO.parent / "shared" / "peers" / "make_synthetic.py"
RUNS = 3


def best(step: Callable[[], object], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return min(times)


def drop_caches() -> bool:
    if os.geteuid() != 0:
        return False
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000)
    args = parser.parse_args()
    if not GENERATOR.is_file():
        sys.exit(f"the synthetic corpus generator is missing: {GENERATOR}")
    with tempfile.TemporaryDirectory(prefix="feedsvc-store-bench-") as tmp:
        site = Path(tmp)
        subprocess.run(
            [sys.executable, str(GENERATOR), str(args.articles), str(site / "seeds")],
            check=True,
            capture_output=True,
        )
        (site / "feedsvc.toml").write_text(
            'title = "Bench"\nbase_url = "https://news.example.org/"\nseeds_dir = "seeds"\n'
            'feeds_dir = "feeds"\nstate_dir = "state"\n',
            encoding="utf-8",
        )
        settings = load_settings(config=site / "feedsvc.toml")
        db = store_path(settings.state_dir)
        started = time.perf_counter()
        Publisher(settings).build()
        cold = time.perf_counter() - started
        size = db.stat().st_size

        def open_cheap() -> None:
            Store(db).close()

        def open_verified() -> None:
            Store(db, verify=True).close()

        rows = [
            ("cold build (a new store, empty feeds/)", cold),
            ("open: header and schema checks", best(open_cheap)),
            ("open + PRAGMA quick_check, warm cache", best(open_verified)),
        ]
        if drop_caches():
            started = time.perf_counter()
            open_verified()
            rows.append(("open + PRAGMA quick_check, cold cache", time.perf_counter() - started))
        rows.append(
            ("no-change full build (includes quick_check)", best(Publisher(settings).build))
        )
        rows.append(("store check (quick_check + every article)", best(lambda: check_store(db))))
        rows.append(("store backup", best(lambda: backup_store(settings.state_dir, site / "b"))))
        rows.append(("read feeds/ for adoption", best(lambda: read_published(settings.feeds_dir))))
        for suffix in ("", "-wal", "-shm"):
            db.with_name(db.name + suffix).unlink(missing_ok=True)
        started = time.perf_counter()
        report = Publisher(settings).build()
        rows.append(
            (
                f"build after losing the store ({report.adopted} adopted)",
                time.perf_counter() - started,
            )
        )
        shutil.rmtree(site / "feeds")
        print(f"{args.articles} articles, store {size / 2**20:.1f} MiB, {os.cpu_count()} CPUs")
        for name, seconds in rows:
            print(f"  {name:<52} {seconds * 1000:9.1f} ms")


if __name__ == "__main__":
    main()
