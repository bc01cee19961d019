"""What checking every output costs: no-change builds and repairs on a synthetic corpus.

Each build stats every file it owns in feeds/ against the store's manifest (issue #7, item 6).
This prints the median no-change ``feedsvc build`` at N seeds (wall time of a fresh process and
the build's own figure), and the time to repair one lost archive page and a lost
``feeds/articles``. With ``--compare REV`` the same no-change figures are measured for the code
at git revision REV, interleaved in the same run, so the two stand side by side (the machine is
noisy; only figures from one run compare). Timings are printed, never asserted.

Usage: ``.venv/bin/python bench/outputs_bench.py [--files 10000] [--runs 9] [--compare REV]``
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SYNTHETIC = REPO.parent / "shared" / "peers" / "make_synthetic.py"
BUILD_SECONDS = re.compile(r" in (\d+\.\d+) s$", re.MULTILINE)
CLI = "import sys; from feedsvc.cli import main; sys.argv[0] = 'feedsvc'; main()"


def build(site: Path, code: Path | None) -> tuple[float, float, str]:
    """One ``feedsvc build`` in a fresh process: (wall s, the build's own s, its output)."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if code is not None:  # another checkout's package first on the path
        env["PYTHONPATH"] = str(code)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CLI, "build", "--config", str(site / "config" / "feedsvc.toml")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"build failed ({done.returncode}): {done.stdout}{done.stderr}")
    found = BUILD_SECONDS.search(done.stdout)
    return wall, float(found.group(1)) if found else float("nan"), done.stdout.strip()


def make_site(site: Path, seeds: Path) -> Path:
    (site / "config").mkdir(parents=True)
    (site / "config" / "feedsvc.toml").write_text(
        f'title = "Bench"\nbase_url = "https://news.example.org/"\nseeds_dir = "{seeds}"\n'
        'feeds_dir = "../feeds"\nstate_dir = ".feedsvc"\n',
        encoding="utf-8",
    )
    return site


def checkout(rev: str, into: Path) -> Path:
    """The ``feedsvc`` package as it is at ``rev``, unpacked into ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "feedsvc"], capture_output=True, check=True
    ).stdout
    into.mkdir()
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--compare", metavar="REV", help="also measure the code at git REV")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="outputs-bench-") as tmp:
        root = Path(tmp)
        seeds = root / "seeds"
        subprocess.run(
            [sys.executable, str(SYNTHETIC), str(args.files), str(seeds)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        variants: dict[str, tuple[Path, Path | None]] = {
            "this code": (make_site(root / "new", seeds), None)
        }
        if args.compare:
            code = checkout(args.compare, (root / "old-code").resolve())
            variants[f"at {args.compare}"] = (make_site(root / "old", seeds), code)
        for name, (site, code) in variants.items():
            wall, own, _ = build(site, code)
            build(site, code)  # the first build after a cold one may still settle things
            print(f"{name}: cold build of {args.files} seeds {own:.2f} s")
        walls: dict[str, list[float]] = {name: [] for name in variants}
        owns: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.runs):  # interleaved, so load changes hit both alike
            for name, (site, code) in variants.items():
                wall, own, out = build(site, code)
                assert "(unchanged)" in out, out
                walls[name].append(wall)
                owns[name].append(own)
        print(f"no-change build, median of {args.runs} (process wall / build's own figure):")
        for name in variants:
            print(
                f"  {name:>24}: {statistics.median(walls[name]):.3f} s / "
                f"{statistics.median(owns[name]):.3f} s"
            )
        site = variants["this code"][0]
        feeds = site / "feeds"  # feeds_dir is relative to the config file's folder
        pages = sorted((feeds / "archive").glob("*.xml"))
        pages[len(pages) // 2].unlink()
        wall, own, out = build(site, None)
        print(f"repair one lost archive page: {own:.3f} s ({out.rsplit('(', 1)[-1]}")
        shutil.rmtree(feeds / "articles")
        wall, own, out = build(site, None)
        print(f"repair a lost feeds/articles: {own:.3f} s ({out.rsplit('(', 1)[-1]}")


if __name__ == "__main__":
    main()
