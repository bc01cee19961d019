"""Where a ``feedsvc build`` with nothing changed spends its time (#9, target 3).

``profile_cold.py``'s profile (cProfile on the CPU clock, imports included, grouped by kind)
of a rebuild of an existing state: one untimed build first (so nothing is left to do), one
whole process timed without the profiler, then the profiled build in this process.

Usage: ``.venv/bin/python bench/profile_nochange.py --config STATE.toml [--top 25]
[--save FILE.prof]``; the state comes from one cold build with that config.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cold_bench import FEEDSVC, run
from nochange_bench import seeds_of, settle
from profile_cold import profile_build, report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--save", type=Path, help="write the raw profile here (pstats format)")
    args = parser.parse_args(argv)
    config = args.config.resolve()
    files = sum(1 for e in os.scandir(seeds_of(config)) if e.is_file())
    settle(FEEDSVC, config, config.parent)
    plain = run([FEEDSVC, "build", "--config", config], cwd=config.parent)
    if "(0 new, 0 changed, 0 deleted" not in plain.said:
        raise SystemExit(f"not a no-change build: {plain.said}")
    stats, seconds = profile_build(config)
    if args.save:
        stats.dump_stats(args.save)
    print(report(stats, seconds, plain, files, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
