"""The rebuilds of an existing state (#9, target 3): nothing changed, one file changed, start-up.

``cold_bench.py`` makes a fresh defaults state every round (a 100,000-seed cold build takes
minutes); this script times the rebuilds alone on a state made once, and can put two
``feedsvc`` executables side by side (``--other``, e.g. the venv of a worktree of the old
code), interleaved round after round, so "before" and "after" share the machine's noise.
Every run is a whole process; CPU seconds (user + sys) come from ``os.wait4``.

Jobs, per executable and round: ``python -c pass`` and the floor, listing and stat'ing every
seed in a bare Python (once per round), ``feedsvc --version``,
``feedsvc build --config CONFIG`` with nothing changed, and ``feedsvc build --config CONFIG
SEED`` after appending a sentence to SEED (its bytes and times are restored afterwards, also
when the run is interrupted; the store then sees one more change, which the next no-change
build takes in like any edit, untimed). The state must exist (one cold build first); the
seeds folder must be writable (a copy: the edit is undone, but it is an edit).

Usage: ``.venv/bin/python bench/nochange_bench.py --config STATE.toml [--other BIN
[--other-config STATE2.toml]] [--runs 5] [--seed NAME]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path

from cold_bench import FEEDSVC, Sample, run

# The least a full scan must do: list the folder and stat every file, in a bare Python.
FLOOR = "import os, sys\nwith os.scandir(sys.argv[1]) as it:\n    [e.stat() for e in it]"


def seeds_of(config: Path) -> Path:
    with config.open("rb") as f:
        seeds = Path(tomllib.load(f).get("seeds_dir", "seeds"))
    return seeds if seeds.is_absolute() else config.parent / seeds


def settle(binary: Path, config: Path, cwd: Path) -> None:
    """An untimed build, so the timed no-change build finds nothing to do."""
    sample = run([binary, "build", "--config", config], cwd=cwd)
    if not sample.ok:
        raise SystemExit(f"{binary}: {sample.said}")


def median(samples: list[Sample]) -> str:
    cpu = statistics.median(s.cpu for s in samples)
    wall = statistics.median(s.seconds for s in samples)
    rss = max(s.peak_rss for s in samples) / 1_048_576
    return f"CPU {cpu:.3f} s, wall {wall:.3f} s, peak RSS {rss:.0f} MiB"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--other", type=Path, help="another feedsvc executable to compare")
    parser.add_argument(
        "--other-config",
        type=Path,
        help="the other executable's own state (same seeds): a store one version keeps may "
        "mean nothing to the other (e.g. the digest of the last listing), so each keeps its own",
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", help="the seed the one-file job edits (default: the middle one)")
    args = parser.parse_args(argv)
    config = args.config.resolve()
    seeds = seeds_of(config)
    binaries = {"this": FEEDSVC} | ({"other": args.other.resolve()} if args.other else {})
    configs = {"this": config, "other": (args.other_config or config).resolve()}
    if seeds_of(configs["other"]).resolve() != seeds.resolve():
        raise SystemExit("--other-config must use the same seeds folder")
    if args.seed:
        target = seeds / args.seed
    else:
        names = sorted(e.name for e in os.scandir(seeds) if e.is_file())
        target = seeds / names[len(names) // 2]
    samples: dict[str, list[Sample]] = {}
    with tempfile.TemporaryDirectory(prefix="nochange-bench-") as tmp:
        work = Path(tmp)
        backup = work / target.name
        shutil.copy2(target, backup)
        try:
            for round_ in range(args.runs):
                print(
                    f"round {round_ + 1}/{args.runs}, load {os.getloadavg()[0]:.2f}",
                    file=sys.stderr,
                )
                samples.setdefault("python -c pass", []).append(
                    run([sys.executable, "-c", "pass"], cwd=work)
                )
                samples.setdefault("floor: list + stat every seed (os.scandir)", []).append(
                    run([sys.executable, "-c", FLOOR, seeds], cwd=work)
                )
                for name, binary in binaries.items():
                    config = configs[name]
                    settle(binary, config, work)
                    samples.setdefault(f"{name}: --version", []).append(
                        run([binary, "--version"], cwd=work)
                    )
                    build = [binary, "build", "--config", config]
                    nochange = run(build, cwd=work)
                    if "(0 new, 0 changed, 0 deleted" not in nochange.said:
                        raise SystemExit(f"{name}: not a no-change build: {nochange.said}")
                    samples.setdefault(f"{name}: build, nothing changed", []).append(nochange)
                    with target.open("a", encoding="utf-8") as f:
                        f.write(f" Aktualisierung {round_}.")
                    one = run([*build, target], cwd=work)
                    shutil.copy2(backup, target)
                    if "(0 new, 1 changed, 0 deleted" not in one.said:
                        raise SystemExit(f"{name}: not a one-file build: {one.said}")
                    samples.setdefault(f"{name}: build SEED, one changed", []).append(one)
        finally:
            shutil.copy2(backup, target)
        for name, binary in binaries.items():
            settle(binary, configs[name], work)  # the store takes the restored seed back in
    print(f"{configs['this']} ({seeds}), medians of {args.runs} interleaved rounds:")
    for job, got in samples.items():
        print(f"- {job}: {median(got)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
