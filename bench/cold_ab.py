"""Cold builds of two checkouts side by side (#9): before/after in one run, main process apart.

Runs ``feedsvc build`` of checkout A (``--old``, e.g. a worktree of main) and of this checkout,
interleaved round after round, for the lightest and the default settings, sequential
(``FEEDSVC_POOL=0``) and with the process pool (``FEEDSVC_POOL=1``). Each build is a whole
process started through a small wrapper that runs the CLI in process and, at exit, reports
the main process's own CPU time and peak RSS (``RUSAGE_SELF``) beside the total (``wait4``:
the workers included). Prints medians of wall, total CPU and main-process CPU per job (and
the main process's highest peak RSS), and checks that
the two checkouts wrote the same bytes (``diff -r`` of the feeds dirs of the first round).

Usage: ``.venv/bin/python bench/cold_ab.py SEEDS --old /tmp/cold-old [--runs 3]
[--jobs lightest,defaults] [--pool 0,1]``. ``--old`` needs its own ``.venv`` (or give
``--old-python``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cold_bench import DEFAULTS, LIGHTEST, feedsvc_config

REPO = Path(__file__).resolve().parent.parent
SETTINGS = {"lightest": LIGHTEST, "defaults": DEFAULTS}
# Run the CLI in this process; at exit (in this process only, not in forked workers) say
# how much CPU the main process spent itself.
WRAPPER = """\
import atexit, os, resource, sys
pid = os.getpid()
def said():
    if os.getpid() == pid:
        r = resource.getrusage(resource.RUSAGE_SELF)
        print(f"MAINCPU {r.ru_utime + r.ru_stime:.3f} {r.ru_maxrss}", file=sys.stderr)
atexit.register(said)
sys.path.insert(0, sys.argv.pop(1))
from feedsvc.cli import main
sys.argv[0] = "feedsvc"
sys.exit(main())
"""


@dataclass
class Row:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    main: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)  # the main process's peak, KiB


def build(python: Path, repo: Path, config: Path, pool: str) -> tuple[float, float, float, int]:
    """One cold build: (wall s, CPU s of the process tree, CPU s and peak RSS (KiB) of the
    main process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env["FEEDSVC_POOL"] = pool
    with tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [str(python), "-c", WRAPPER, str(repo), "build", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            cwd=repo,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        err.seek(0)
        text = err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{repo}: build failed: {text[-2000:]}")
    said = next(line.split() for line in text.splitlines() if line.startswith("MAINCPU"))
    return wall, usage.ru_utime + usage.ru_stime, float(said[1]), int(said[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seeds", type=Path)
    parser.add_argument("--old", type=Path, required=True, help="the checkout to compare with")
    parser.add_argument("--old-python", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", default="lightest,defaults")
    parser.add_argument("--pool", default="0,1")
    args = parser.parse_args()
    seeds = args.seeds.resolve()
    sides = {
        "old": (
            (args.old_python or args.old / ".venv" / "bin" / "python").absolute(),
            args.old.resolve(),
        ),
        "new": (Path(sys.executable).absolute(), REPO),
    }
    jobs = [(job, pool) for job in args.jobs.split(",") for pool in args.pool.split(",")]
    rows: dict[tuple[str, str, str], Row] = {}
    with tempfile.TemporaryDirectory(prefix="cold-ab-") as tmp:
        root = Path(tmp)
        for n in range(args.runs):
            for job, pool in jobs:
                for side, (python, repo) in sides.items():
                    work = root / f"{side}-{job}-{pool}"
                    shutil.rmtree(work, ignore_errors=True)
                    work.mkdir()
                    config = feedsvc_config(
                        work / "feedsvc.toml", SETTINGS[job], seeds, work / "feeds", work / "state"
                    )
                    wall, cpu, main_cpu, rss = build(python, repo, config, pool)
                    row = rows.setdefault((job, pool, side), Row())
                    row.wall.append(wall)
                    row.cpu.append(cpu)
                    row.main.append(main_cpu)
                    row.rss.append(rss)
                    print(
                        f"round {n + 1} {job} pool={pool} {side}: wall {wall:.2f} s, CPU"
                        f" {cpu:.2f} s, main {main_cpu:.2f} s",
                        file=sys.stderr,
                        flush=True,
                    )
                if n == 0:
                    old, new = root / f"old-{job}-{pool}", root / f"new-{job}-{pool}"
                    same = subprocess.run(
                        ["diff", "-r", "-q", old / "feeds", new / "feeds"],
                        capture_output=True,
                        text=True,
                    )
                    verdict = "identical" if same.returncode == 0 else same.stdout[:500]
                    print(f"{job} pool={pool}: feeds {verdict}", file=sys.stderr, flush=True)
    print(f"{seeds.name}, {args.runs} rounds, medians; load now {os.getloadavg()[0]:.2f}")
    print("| job | pool | side | wall s | CPU s | main-process CPU s | main peak RSS MiB |")
    print("|---|---|---|---:|---:|---:|---:|")
    for (job, pool, side), row in rows.items():
        m = statistics.median
        print(
            f"| {job} | {pool} | {side} | {m(row.wall):.2f} | {m(row.cpu):.2f}"
            f" | {m(row.main):.2f} | {max(row.rss) / 1024:.0f} |"
        )


if __name__ == "__main__":
    main()
