"""Benchmark for ``feedsvc build``: the figures the build-speed issue asks for, and its targets.

Run on demand (``make bench``), not as a test: timings depend on the machine and its load, so
they are reported, never asserted. Beside every build time it measures the *floor* (only
reading every seed's bytes in Python) in the same run, so the ratios mean something on any
machine. Targets (from the issue): cold build ≤ 3x the floor; no-change rebuild ≤ 10 % of
the cold build; one-file rebuild ≤ 50 ms and not growing with the corpus; peak RSS ≤ 200 MiB.

The corpus is the shared de-news tarball (1014 real articles). Larger corpora are synthetic:
real leads and real body paragraphs of that corpus recombined, deterministically. Everything
is extracted or generated into a temporary directory that is removed afterwards.

Usage: ``.venv/bin/python bench/build_bench.py [--corpus PATH] [--scale 1014,5000] [--json]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedsvc
from feedsvc.build.publisher import BuildReport, Publisher
from feedsvc.config import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "de-news.tar.gz"
CORPUS_DIR = "de-news"
DEFAULT_SCALES = (1014, 5000, 20000)
SYNTH_SEED = 20240101  # fixed: the synthetic corpora are the same on every run and machine
MIB = 1024 * 1024
FEED_PATHS = re.compile(r" → .*?(?= \(unchanged\)| in )")  # the CLI's temp paths, shortened

FLOOR_RUNS = 3  # best of: the floor is a lower bound, so its least disturbed run counts
COLD_RUNS = 3  # median of: each in a fresh process with a fresh state dir and feeds dir
REBUILD_RUNS = 5  # median of

# The targets.
COLD_VS_FLOOR_MAX = 3.0
NOCHANGE_VS_COLD_MAX = 0.10
ONE_FILE_MAX_S = 0.050
PEAK_RSS_MAX = 200 * MIB
TARGET_NAMES = {
    "cold_vs_floor": "cold build ≤ 3x floor",
    "nochange_vs_cold": "no-change rebuild ≤ 10% of cold",
    "one_file_full": "one-file build() ≤ 50 ms",
    "one_file_incremental": "one-file build(paths) ≤ 50 ms",
    "peak_rss": "peak RSS ≤ 200 MiB",
}
# "Not growing with the corpus": at the largest corpus at most 1.5x the smallest's time,
# with 5 ms of slack so that millisecond jitter on tiny times is not called growth.
GROWTH_MAX_FACTOR = 1.5
GROWTH_SLACK_S = 0.005

# Runs in a fresh interpreter so that its peak RSS is the build's alone (plus the interpreter
# and feedsvc's imports, reported separately as the baseline), never the parent's.
CHILD_CODE = r"""
import json, resource, sys, time
from pathlib import Path

def peak_rss():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux

from feedsvc.config import load_settings
from feedsvc.build.publisher import Publisher

config, seeds, feeds, state = sys.argv[1:5]
settings = load_settings(
    config=Path(config),
    env={},
    overrides={"seeds_dir": Path(seeds), "feeds_dir": Path(feeds), "state_dir": Path(state)},
)
baseline = peak_rss()
start = time.perf_counter()
report = Publisher(settings).build()
seconds = time.perf_counter() - start
print(json.dumps({
    "seconds": seconds,
    "total": report.total,
    "new": report.new,
    "errors": len(report.errors),
    "first_error": str(report.errors[0]) if report.errors else None,
    "peak_rss": peak_rss(),
    "baseline_rss": baseline,
}))
"""


@dataclass
class SizeResult:
    """Every figure for one corpus size; times in seconds, sizes in bytes."""

    files: int
    kind: str  # "real" or "synthetic"
    bytes: int = 0
    floor_s: list[float] = field(default_factory=list)
    cold_s: list[float] = field(default_factory=list)
    peak_rss: list[int] = field(default_factory=list)
    baseline_rss: int = 0
    articles: int = 0
    seed_errors: int = 0
    first_error: str | None = None
    nochange_s: list[float] = field(default_factory=list)
    one_full_s: list[float] = field(default_factory=list)
    one_incr_s: list[float] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)

    @property
    def floor(self) -> float:
        return min(self.floor_s)

    @property
    def cold(self) -> float:
        return statistics.median(self.cold_s)

    @property
    def rss(self) -> int:
        return max(self.peak_rss)

    @property
    def nochange(self) -> float:
        return statistics.median(self.nochange_s)

    @property
    def one_full(self) -> float:
        return statistics.median(self.one_full_s)

    @property
    def one_incr(self) -> float:
        return statistics.median(self.one_incr_s)

    @property
    def articles_per_s(self) -> float:
        return self.articles / self.cold

    @property
    def verdicts(self) -> dict[str, bool]:
        return {
            "cold_vs_floor": self.cold / self.floor <= COLD_VS_FLOOR_MAX,
            "nochange_vs_cold": self.nochange / self.cold <= NOCHANGE_VS_COLD_MAX,
            "one_file_full": self.one_full <= ONE_FILE_MAX_S,
            "one_file_incremental": self.one_incr <= ONE_FILE_MAX_S,
            "peak_rss": self.rss <= PEAK_RSS_MAX,
        }


@dataclass
class CliResult:
    """One ``feedsvc build`` process, start-up included, for reference."""

    label: str
    seconds: float
    exit_code: int
    peak_rss: int
    output: str


def log(message: str) -> None:
    """Progress goes to stderr so that stdout stays a clean table (or clean JSON)."""
    print(message, file=sys.stderr, flush=True)


# --- corpora ------------------------------------------------------------------------------------
def extract_corpus(tarball: Path, dest: Path) -> Path:
    """Unpack the shared tarball (read-only source) into ``dest``; return the seeds dir."""
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, filter="data")
    seeds = dest / CORPUS_DIR
    if not seeds.is_dir():
        raise SystemExit(f"{tarball}: no {CORPUS_DIR}/ folder inside")
    return seeds


def seed_files(seeds: Path) -> list[Path]:
    return sorted(
        Path(e.path) for e in os.scandir(seeds) if e.is_file() and e.name.endswith(".txt")
    )


def paragraph_pool(seeds: Path) -> tuple[list[str], list[str]]:
    """The real leads and body paragraphs of the corpus, in file order."""
    leads: list[str] = []
    paragraphs: list[str] = []
    for path in seed_files(seeds):
        head, _, body = path.read_text(encoding="utf-8").partition("\n\n")
        parts = head.split(maxsplit=2)  # " date YYYY-MM <lead>"
        if len(parts) == 3:
            leads.append(parts[2])
        paragraphs.extend(p for p in body.split("\n\n") if p.strip())
    return leads, paragraphs


def synthesize(leads: Sequence[str], paragraphs: Sequence[str], count: int, dest: Path) -> None:
    """``count`` seeds from recombined real text: a real lead, 2-8 real paragraphs, a date.

    Seeded, so the same corpus comes out every time. Names follow the corpus: NNNNN_<16 hex of
    sha256 of the text>.txt; a repeated text (vanishingly unlikely) is drawn again, because a
    duplicate key would be an error in the build, not a cost.
    """
    rng = random.Random(SYNTH_SEED + count)
    width = max(5, len(str(count - 1)))
    keys: set[str] = set()
    dest.mkdir(parents=True)
    for number in range(count):
        while True:
            year, month = rng.choice((2023, 2024)), rng.randint(1, 12)
            body = rng.sample(paragraphs, rng.randint(2, 8))
            text = f" date {year}-{month:02d} {rng.choice(leads)}\n\n" + "\n\n".join(body)
            key = hashlib.sha256(text.encode()).hexdigest()[:16]
            if key not in keys:
                break
        keys.add(key)
        (dest / f"{number:0{width}d}_{key}.txt").write_text(text, encoding="utf-8")


# --- measurements -------------------------------------------------------------------------------
def read_all(seeds: Path) -> int:
    """The floor's work: every seed's bytes read in Python, nothing else."""
    total = 0
    with os.scandir(seeds) as entries:
        for entry in entries:
            if entry.is_file():
                with open(entry.path, "rb") as f:
                    total += len(f.read())
    return total


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def clean_env(**extra: str) -> dict[str, str]:
    """The environment minus FEEDSVC_* so a developer's settings cannot skew the figures."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env.update(extra)
    return env


def cold_build_child(config: Path, seeds: Path, feeds: Path, state: Path) -> dict[str, Any]:
    """One cold build in a fresh interpreter; its own timing and peak RSS, as JSON."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD_CODE, str(config), str(seeds), str(feeds), str(state)],
        capture_output=True,
        text=True,
        cwd=config.parent,
        env=clean_env(),
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"cold build child failed ({proc.returncode}):\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def settings_for(config: Path, seeds: Path, feeds: Path, state: Path) -> Settings:
    """Default settings (an empty config file, no environment) with the given dirs."""
    return load_settings(
        config=config,
        env={},
        overrides={"seeds_dir": seeds, "feeds_dir": feeds, "state_dir": state},
    )


def touch_body(path: Path, round_: int) -> None:
    """An edit of the body text, as an editor would save it.

    Appends a sentence, so the size grows each time: the build must notice the change even
    when two saves fall into the same coarse mtime tick.
    """
    text = path.read_text(encoding="utf-8")
    path.write_text(text + f" Aktualisierung {round_}.", encoding="utf-8")


def expect(report: BuildReport, what: str, result: SizeResult, **counts: int) -> None:
    """Record (not raise) when a build did not do what the measurement assumed."""
    for name, want in counts.items():
        got = getattr(report, name)
        if got != want:
            result.anomalies.append(f"{what}: {name}={got}, expected {want}")


def measure_size(
    files: int, kind: str, seeds: Path, work: Path, config: Path, cli: list[CliResult] | None
) -> SizeResult:
    """All figures for one corpus: floor, cold builds, then rebuilds on the last cold state."""
    result = SizeResult(files=files, kind=kind)
    for _ in range(FLOOR_RUNS):
        seconds, result.bytes = timed(lambda: read_all(seeds))
        result.floor_s.append(seconds)
    log(f"  floor {result.floor * 1000:.1f} ms")

    for run in range(COLD_RUNS):
        feeds, state = work / f"feeds{run}", work / f"state{run}"
        child = cold_build_child(config, seeds, feeds, state)
        result.cold_s.append(child["seconds"])
        result.peak_rss.append(child["peak_rss"])
        result.baseline_rss = max(result.baseline_rss, child["baseline_rss"])
        result.articles, result.seed_errors = child["total"], child["errors"]
        result.first_error = child["first_error"]
        if child["new"] != files:
            result.anomalies.append(f"cold build {run}: new={child['new']}, expected {files}")
        if run < COLD_RUNS - 1:
            shutil.rmtree(feeds)
            shutil.rmtree(state)
    log(f"  cold {result.cold * 1000:.0f} ms, peak RSS {result.rss / MIB:.1f} MiB")

    settings = settings_for(config, seeds, feeds, state)
    Publisher(settings).build()  # warm-up: imports and caches of this process, not timed
    for run in range(REBUILD_RUNS):
        seconds, report = timed(lambda: Publisher(settings).build())
        result.nochange_s.append(seconds)
        expect(report, f"no-change rebuild {run}", result, new=0, changed=0, deleted=0)

    target = seed_files(seeds)[files // 2]
    for run in range(REBUILD_RUNS):
        touch_body(target, run)
        seconds, report = timed(lambda: Publisher(settings).build())
        result.one_full_s.append(seconds)
        expect(report, f"one-file build() {run}", result, new=0, changed=1, deleted=0)
    for run in range(REBUILD_RUNS):
        touch_body(target, REBUILD_RUNS + run)
        seconds, report = timed(lambda: Publisher(settings).build(paths=[target]))
        result.one_incr_s.append(seconds)
        expect(report, f"one-file build(paths) {run}", result, new=0, changed=1, deleted=0)
    log(
        f"  no-change {result.nochange * 1000:.1f} ms, one-file {result.one_full * 1000:.1f} ms"
        f" (build()) / {result.one_incr * 1000:.1f} ms (build(paths))"
    )

    if cli is not None:
        cli.extend(cli_builds(config, seeds, work))
    return result


def feedsvc_command() -> list[str]:
    script = Path(sys.executable).parent / "feedsvc"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from feedsvc.cli import main; main()"]


def cli_builds(config: Path, seeds: Path, work: Path) -> list[CliResult]:
    """``feedsvc build`` as cron runs it: cold, then again with nothing changed; once each.

    Waited for with ``os.wait4`` so the peak RSS is this child's alone.
    """
    feeds, state = work / "cli-feeds", work / "cli-state"
    command = [*feedsvc_command(), "build", "--config", str(config), "--seeds", str(seeds)]
    command += ["--feeds", str(feeds)]
    results: list[CliResult] = []
    for label in ("cold", "no-change"):
        with tempfile.TemporaryFile("w+") as out:
            start = time.perf_counter()
            proc = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=config.parent,
                env=clean_env(FEEDSVC_STATE_DIR=str(state)),
            )
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            lines = out.read().strip().splitlines()
        results.append(
            CliResult(
                label=label,
                seconds=seconds,
                exit_code=proc.returncode,
                peak_rss=usage.ru_maxrss * 1024,
                output=lines[-1] if lines else "",
            )
        )
    log(f"  CLI cold {results[0].seconds:.2f} s, no-change {results[1].seconds:.2f} s")
    return results


# --- report -------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.2f} s"


def growth(results: Sequence[SizeResult], attr: str) -> tuple[float, float, bool] | None:
    """(smallest's time, largest's time, flat?) for a one-file path; None with one size."""
    if len(results) < 2:
        return None
    small = getattr(min(results, key=lambda r: r.files), attr)
    large = getattr(max(results, key=lambda r: r.files), attr)
    flat = large <= max(small * GROWTH_MAX_FACTOR, small + GROWTH_SLACK_S)
    return small, large, flat


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"feedsvc {feedsvc.__version__}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, load {load}"
    )


def table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned first column, right-aligned figures."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_text(
    results: Sequence[SizeResult], cli: Sequence[CliResult], corpus: Path, started: str
) -> str:
    real = next((r for r in results if r.kind == "real"), None)
    synthetic = [r for r in results if r.kind == "synthetic"]
    out = [
        f"feedsvc build benchmark, {started}",
        machine(),
        f"corpus: {corpus}",
    ]
    if real:
        out.append(f"  {real.files} files: the real de-news articles")
    if synthetic:
        sizes = ", ".join(str(r.files) for r in synthetic)
        out.append(
            f"  {sizes} files: synthetic, recombined real lead sentences and real body paragraphs"
            " of that corpus (2-8 paragraphs each, seeded)"
        )
    out += [
        f"floor = read every seed's bytes in Python (os.scandir + open/read), best of {FLOOR_RUNS};"
        " warm page cache",
        f"cold = Publisher.build() in a fresh process, fresh state and feeds dirs, median of"
        f" {COLD_RUNS}; peak RSS = max VmHWM of those processes",
        f"rebuilds = in one process on the cold build's state, median of {REBUILD_RUNS};"
        " one-file edits append a sentence to one seed's body",
        "",
    ]
    head = [
        "",
        "target",
        *(f"{r.files} {'real' if r.kind == 'real' else 'synth.'}" for r in results),
    ]

    def row(label: str, target: str, cell: Callable[[SizeResult], str]) -> list[str]:
        return [label, target, *(cell(r) for r in results)]

    def judged(value: Callable[[SizeResult], str], key: str) -> Callable[[SizeResult], str]:
        return lambda r: f"{value(r)} {verdict(r.verdicts[key])}"

    rows = [
        head,
        row("seed files", "", lambda r: f"{r.files:,}"),
        row("corpus size", "", lambda r: f"{r.bytes / 1e6:.1f} MB"),
        row("articles published", "", lambda r: f"{r.articles:,}"),
        row("seed errors", "", lambda r: str(r.seed_errors)),
        row("floor: read all bytes", "", lambda r: ms(r.floor)),
        row("cold build", "", lambda r: ms(r.cold)),
        row("  articles/s (cold)", "", lambda r: f"{r.articles_per_s:,.0f}"),
        row(
            "  cold / floor",
            f"≤ {COLD_VS_FLOOR_MAX:g}x",
            judged(lambda r: f"{r.cold / r.floor:.1f}x", "cold_vs_floor"),
        ),
        row("no-change rebuild", "", lambda r: ms(r.nochange)),
        row(
            "  no-change / cold",
            f"≤ {NOCHANGE_VS_COLD_MAX:.0%}",
            judged(lambda r: f"{r.nochange / r.cold:.1%}", "nochange_vs_cold"),
        ),
        row(
            "one-file, build()",
            f"≤ {ONE_FILE_MAX_S * 1000:g} ms",
            judged(lambda r: ms(r.one_full), "one_file_full"),
        ),
        row(
            "one-file, build(paths=[f])",
            f"≤ {ONE_FILE_MAX_S * 1000:g} ms",
            judged(lambda r: ms(r.one_incr), "one_file_incremental"),
        ),
        row(
            "peak RSS, cold build",
            f"≤ {PEAK_RSS_MAX / MIB:g} MiB",
            judged(lambda r: f"{r.rss / MIB:.1f} MiB", "peak_rss"),
        ),
        row("  of which start-up+imports", "", lambda r: f"{r.baseline_rss / MIB:.1f} MiB"),
    ]
    out.append(table(rows))

    out.append("")
    for label, attr in (("build()", "one_full"), ("build(paths=[f])", "one_incr")):
        g = growth(results, attr)
        if g:
            small, large, flat = g
            lo, hi = min(r.files for r in results), max(r.files for r in results)
            out.append(
                f"one-file {label} vs corpus size: {ms(small)} at {lo:,} files → {ms(large)} at"
                f" {hi:,} ({large / small:.1f}x for {hi / lo:.0f}x the files): "
                f"{'flat' if flat else 'grows'} → {verdict(flat)}"
                f" (flat = ≤ {GROWTH_MAX_FACTOR:g}x or ≤ +{GROWTH_SLACK_S * 1000:g} ms)"
            )
    for c in cli:
        out.append(
            f"CLI `feedsvc build` ({c.label}, {real.files if real else '?'} real files, start-up"
            f" included): {ms(c.seconds)}, exit {c.exit_code}, peak RSS {c.peak_rss / MIB:.1f}"
            f" MiB; said: {FEED_PATHS.sub(' → feeds', c.output)}"
        )
    for r in results:
        for a in r.anomalies:
            out.append(f"ANOMALY ({r.files} files): {a}")
        if r.first_error:
            out.append(f"first seed error ({r.files} files): {r.first_error}")
    out += ["", "Summary:", summary(results, cli)]
    return "\n".join(out)


def summary(results: Sequence[SizeResult], cli: Sequence[CliResult]) -> str:
    """A few plain sentences that can be pasted into the issue's closing note."""
    parts = [
        f"Measured with bench/build_bench.py on {machine()}; floor = only reading every seed's"
        " bytes in Python, in the same run."
    ]
    for r in results:
        v = r.verdicts
        parts.append(
            f"{r.files:,} {'real' if r.kind == 'real' else 'recombined-paragraph'} files"
            f" ({r.bytes / 1e6:.1f} MB): floor {ms(r.floor)}; cold build {ms(r.cold)}"
            f" = {r.cold / r.floor:.1f}x floor ({verdict(v['cold_vs_floor'])}, ≤ 3x),"
            f" {r.articles_per_s:,.0f} articles/s; no-change {ms(r.nochange)}"
            f" = {r.nochange / r.cold:.1%} of cold ({verdict(v['nochange_vs_cold'])}, ≤ 10%);"
            f" one-file {ms(r.one_full)} via build() ({verdict(v['one_file_full'])}) and"
            f" {ms(r.one_incr)} via build(paths) ({verdict(v['one_file_incremental'])}, ≤ 50 ms);"
            f" peak RSS {r.rss / MIB:.0f} MiB ({verdict(v['peak_rss'])}, ≤ 200 MiB)."
        )
    for label, attr in (("build()", "one_full"), ("build(paths)", "one_incr")):
        g = growth(results, attr)
        if g:
            parts.append(
                f"One-file {label} goes from {ms(g[0])} to {ms(g[1])} across the sizes:"
                f" {'flat' if g[2] else 'grows with the corpus'} ({verdict(g[2])})."
            )
    if cli:
        parts.append(
            "The CLI (start-up included) takes "
            + " and ".join(f"{ms(c.seconds)} {c.label}" for c in cli)
            + " on the real corpus."
        )
    failed = [
        f"{TARGET_NAMES[k]} (at {', '.join(f'{r.files:,}' for r in results if not r.verdicts[k])})"
        for k in TARGET_NAMES
        if any(not r.verdicts[k] for r in results)
    ]
    failed += [
        f"one-file {label} flat across sizes"
        for attr, label in (("one_full", "build()"), ("one_incr", "build(paths)"))
        if (g := growth(results, attr)) and not g[2]
    ]
    parts.append("All targets met." if not failed else "Targets missed: " + "; ".join(failed) + ".")
    return "\n".join(parts)


def to_json(results: Sequence[SizeResult], cli: Sequence[CliResult], corpus: Path) -> str:
    sizes = []
    for r in results:
        d = asdict(r)
        d.update(
            floor=r.floor,
            cold=r.cold,
            peak_rss_max=r.rss,
            nochange=r.nochange,
            one_file_full=r.one_full,
            one_file_incremental=r.one_incr,
            articles_per_s=r.articles_per_s,
            cold_vs_floor=r.cold / r.floor,
            nochange_vs_cold=r.nochange / r.cold,
            verdicts=r.verdicts,
        )
        sizes.append(d)
    grow = {
        attr: {"smallest_s": g[0], "largest_s": g[1], "flat": g[2]}
        for attr in ("one_full", "one_incr")
        if (g := growth(results, attr))
    }
    doc = {
        "machine": machine(),
        "corpus": str(corpus),
        "synthetic": "recombined real leads and body paragraphs of the corpus",
        "method": {
            "floor": f"best of {FLOOR_RUNS}",
            "cold": f"median of {COLD_RUNS}, fresh process each",
            "rebuilds": f"median of {REBUILD_RUNS}",
            "units": "seconds, bytes",
        },
        "targets": {
            "cold_vs_floor_max": COLD_VS_FLOOR_MAX,
            "nochange_vs_cold_max": NOCHANGE_VS_COLD_MAX,
            "one_file_max_s": ONE_FILE_MAX_S,
            "peak_rss_max_bytes": PEAK_RSS_MAX,
            "growth_max_factor": GROWTH_MAX_FACTOR,
            "growth_slack_s": GROWTH_SLACK_S,
        },
        "sizes": sizes,
        "one_file_growth": grow,
        "cli": [asdict(c) for c in cli],
    }
    return json.dumps(doc, indent=2)


# --- main ---------------------------------------------------------------------------------------
def parse_scales(text: str) -> list[int]:
    try:
        scales = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from e
    if not scales or scales[0] < 2:
        raise argparse.ArgumentTypeError("sizes must be at least 2")
    return scales


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="de-news tarball")
    parser.add_argument(
        "--scale",
        type=parse_scales,
        default=list(DEFAULT_SCALES),
        help="corpus sizes, comma-separated; the real size uses the real files "
        f"[default: {','.join(map(str, DEFAULT_SCALES))}]",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument(
        "--feeds-only",
        action="store_true",
        help="measure the feed pipeline alone: html_pages = false, detect_language = false",
    )
    args = parser.parse_args(argv)
    if not args.corpus.is_file():
        parser.error(f"corpus not found: {args.corpus} (pass --corpus PATH)")

    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results: list[SizeResult] = []
    cli: list[CliResult] = []
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as tmp:
        root = Path(tmp)
        config = root / "feedsvc.toml"
        if args.feeds_only:
            config.write_text("html_pages = false\ndetect_language = false\n", encoding="utf-8")
        else:
            config.write_text("# empty: the benchmark uses the defaults\n", encoding="utf-8")
        real = extract_corpus(args.corpus, root / "real")
        real_count = len(seed_files(real))
        leads, paragraphs = paragraph_pool(real)
        log(f"corpus: {real_count} files, {len(leads)} leads, {len(paragraphs)} paragraphs")
        for count in args.scale:
            work = root / f"run-{count}"
            if count == real_count:
                seeds, kind = real, "real"
            else:
                seeds, kind = work / "seeds", "synthetic"
                synthesize(leads, paragraphs, count, seeds)
            log(f"{count} files ({kind}):")
            results.append(
                measure_size(count, kind, seeds, work, config, cli if kind == "real" else None)
            )
            shutil.rmtree(work, ignore_errors=True)
        if not any(r.kind == "real" for r in results):
            cli = cli_builds(config, real, root / "run-cli")
    rusage = resource.getrusage(resource.RUSAGE_SELF)
    log(f"benchmark's own peak RSS: {rusage.ru_maxrss / 1024:.0f} MiB (not a build figure)")
    if args.json:
        print(to_json(results, cli, args.corpus))
    else:
        mode = (
            "feeds only (html_pages = false, detect_language = false)"
            if args.feeds_only
            else "defaults (HTML pages and language detection on)"
        )
        print(f"settings: {mode}")
        print(render_text(results, cli, args.corpus, started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
