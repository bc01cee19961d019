"""Where the main process of a cold build spends its CPU (#9): threads, imports, SQL statements.

Runs ``feedsvc build`` of a checkout in this process (no profiler: its cost per call would
swamp the figures), the process pool forced on or off (``--pool``), on fresh state and feeds
dirs, and prints the main process's CPU (``RUSAGE_SELF``: user and system, the workers not
included), the main thread's own CPU beside the pool's hand-over threads (the executor's
result thread unpickles what the workers send), the imports before the build, and the CPU
of each SQL statement on the store's connection (the main thread's clock around each
``execute``/``executemany``), biggest first. Repeats ``--runs`` times (one fresh build each,
in a fresh process: imports count) and prints the median of each figure.

Usage: ``.venv/bin/python bench/cold_mainproc.py SEEDS [--settings lightest|defaults]
[--pool 1|0] [--runs 3] [--checkout DIR]``. Without ``.pyc`` files in the checkout (and with
``PYTHONDONTWRITEBYTECODE=1``, which keeps Python from writing them) every run compiles
feedsvc's modules again, about 0.1 s more in the imports: the output says which.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# One build in a fresh process: the store's connection wrapped so each statement is timed.
CHILD = r"""
import json, os, resource, sys, threading, time
from collections import defaultdict
repo, seeds, settings, pool = sys.argv[1:5]
sys.path.insert(0, repo + "/bench")
sys.path.insert(0, repo)
t0 = time.process_time()
from pathlib import Path
from cold_bench import DEFAULTS, LIGHTEST, feedsvc_config
import feedsvc.cli
from feedsvc.store import sqlite as backend
imports = time.process_time() - t0
os.environ["FEEDSVC_POOL"] = pool
sql = defaultdict(lambda: [0, 0.0])

class Timed:
    def __init__(self, db):
        self._db = db
    def __getattr__(self, name):
        return getattr(self._db, name)
    def _run(self, call, statement, *args):
        start = time.thread_time()
        try:
            return call(statement, *args)
        finally:
            row = sql[" ".join(statement.split())[:60]]
            row[0] += 1
            row[1] += time.thread_time() - start
    def execute(self, statement, *args):
        return self._run(self._db.execute, statement, *args)
    def executemany(self, statement, *args):
        return self._run(self._db.executemany, statement, *args)

opened = backend.SQLiteStore.__init__
def init(self, *args, **kwargs):
    opened(self, *args, **kwargs)
    self._db = Timed(self._db)
backend.SQLiteStore.__init__ = init
import tempfile
with tempfile.TemporaryDirectory(prefix="cold-mainproc-") as tmp:
    work = Path(tmp)
    body = LIGHTEST if settings == "lightest" else DEFAULTS
    config = feedsvc_config(work / "c.toml", body, Path(seeds), work / "feeds", work / "state")
    try:
        feedsvc.cli.main(["build", "--config", str(config), "--quiet"], standalone_mode=False)
    except SystemExit as e:
        if e.code:
            raise
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "user": usage.ru_utime, "sys": usage.ru_stime, "main_thread": time.thread_time(),
        "imports": imports, "sql": {k: v for k, v in sql.items()},
    }))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("seeds", type=Path)
    parser.add_argument("--settings", choices=("lightest", "defaults"), default="lightest")
    parser.add_argument("--pool", choices=("0", "1"), default="1")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--checkout", type=Path, default=REPO, help="the feedsvc to measure")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="cold-mainproc-cwd-") as cwd:
            argv = [str(args.checkout.resolve()), str(args.seeds.resolve()), args.settings]
            out = subprocess.run(
                [sys.executable, "-c", CHILD, *argv, args.pool],
                capture_output=True,
                text=True,
                env=env,
                cwd=cwd,
                check=False,
            )
        if out.returncode != 0:
            raise SystemExit(out.stderr[-2000:])
        runs.append(json.loads(out.stdout.splitlines()[-1]))
    m = statistics.median
    total = [r["user"] + r["sys"] for r in runs]
    thread = [r["main_thread"] for r in runs]
    others = [t - own for t, own in zip(total, thread, strict=True)]
    cached = any((args.checkout / "feedsvc" / "__pycache__").glob("*.pyc"))
    bytecode = "cached" if cached else "compiled each run"
    if not cached and not os.environ.get("PYTHONDONTWRITEBYTECODE"):
        bytecode = "compiled in the first run"
    print(
        f"{args.seeds.name}, {args.settings}, pool={args.pool}, {args.runs} runs (medians),"
        f" feedsvc's bytecode {bytecode}, checkout {args.checkout.resolve()}"
    )
    user, system = m(r["user"] for r in runs), m(r["sys"] for r in runs)
    print(f"main process CPU {m(total):.3f} s (user {user:.3f}, system {system:.3f})")
    print(f"  main thread {m(thread):.3f}; other threads (the pool's hand-over) {m(others):.3f}")
    print(f"  imports before the build {m(r['imports'] for r in runs):.3f}")
    statements = {k for r in runs for k in r["sql"]}
    rows = {k: m(r["sql"].get(k, [0, 0.0])[1] for r in runs) for k in statements}
    calls = {k: max(r["sql"].get(k, [0, 0.0])[0] for r in runs) for k in statements}
    print(f"  SQL on the main thread {m(sum(v[1] for v in r['sql'].values()) for r in runs):.3f}:")
    for k, v in sorted(rows.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"    {v:.3f} s  {calls[k]:>5} x  {k}")


if __name__ == "__main__":
    main()
