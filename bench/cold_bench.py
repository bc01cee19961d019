"""Cold builds beside their peers (#9): whole processes, medians, ratios measured in one run.

Every job is a separate process, timed from spawn to exit, its peak RSS and CPU time taken
from ``os.wait4`` (that child's own ``rusage``). The jobs run interleaved, round after round
(floor, naive peer, Hugo, feedsvc ...), so machine noise hits all of them alike; a row's
figure is the median of its rounds and the ratios are ratios of medians from the same run.
The machine is shared, so the load average is printed beside every size.

Jobs (the rows of the issue's table):

* floor: ``read_all.py`` reads every byte of every seed (``../shared/peers``);
* naive: ``naive_pipeline.py``, read → pydantic → sort → feedgen newest 50, run with this
  venv's Python;
* Hugo, feeds only (the home RSS of every article's newest 50; pages are read and listed but
  not rendered) and Hugo with an HTML page per article plus the feeds, on a minimal site made
  from the same seeds (one ``.md`` with title/date front matter per seed; the conversion is
  cached and not timed);
* feedsvc cold builds through the CLI (``feedsvc build --config <temp config>``), so the script
  does not care how the package is laid out: *lightest* settings (``html_pages = false``,
  ``detect_language = false``, ``archive_page_size = 0``, ``gzip_feeds = false``: the feeds
  only, as the naive peer writes them) and *defaults* (pages, language detection, archives,
  ``.gz`` siblings);
* ``feedsvc build`` with nothing changed (after one untimed settling build: the first build
  after a cold build compares every stored stamp once and keeps the listing's digest), and
  ``feedsvc build SEED`` after one seed's body changed, each on the state the defaults cold
  build of the same round left;
* start-up: ``feedsvc --version`` and ``feedsvc --help`` against a bare ``python -c pass``.

Corpora are made by ``make_synthetic.py`` (deterministic) and cached in ``bench/.corpora/``
(git-ignored), with the Hugo sites beside them. The one-seed edit is undone afterwards
(bytes and mtime), also after an interrupted run.

Usage: ``.venv/bin/python bench/cold_bench.py [--sizes 1000,10000] [--runs 5] [--full]
[--jobs floor,naive,...] [--pool auto|1|0] [--json FILE]``. ``--full`` adds 100,000
seeds: many minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PEERS = REPO.parent / "shared" / "peers"
DEFAULT_CORPORA = REPO / "bench" / ".corpora"
DEFAULT_SIZES = (1_000, 10_000)
FULL_SIZES = (1_000, 10_000, 100_000)
DEFAULT_RUNS = 5
STARTUP_ROUNDS = 15  # start-up takes a fraction of a second: more rounds, same interleaving
SYNTH_SEED = 42  # make_synthetic.py's default; the corpora are the same on every machine
HUGO_SITE_VERSION = 1  # bump when the seed -> Markdown conversion changes (invalidates caches)
MB = 1_000_000

BIN = Path(sys.executable).parent
FEEDSVC = BIN / "feedsvc"

# feedsvc settings per cold-build job (written into a temp config with the run's dirs).
LIGHTEST = """\
# Lightest: only the feeds, as the naive peer writes them (it writes no pages, detects no
# language, keeps no archives and writes no .gz). Formats stay the default (Atom, RSS, JSON).
html_pages = false
detect_language = false
archive_page_size = 0
gzip_feeds = false
"""
DEFAULTS = "# defaults: pages, language detection, archives, .gz siblings\n"

HUGO_COMMON = """\
baseURL = "https://example.org/"
title = "feedsvc news"
languageCode = "de"
rssLimit = 50
"""
HUGO_FEEDS_ONLY = (
    HUGO_COMMON
    + """\
disableKinds = ["section", "taxonomy", "term", "sitemap", "robotsTXT", "404"]
[outputs]
home = ["RSS"]
# every article is read, parsed and listed (the feed's newest 50 rendered), no page written;
# disableKinds = ["page"] would drop them from the feed too (an empty feed, not a peer)
[[cascade]]
[cascade._build]
render = "never"
list = "always"
[cascade._target]
kind = "page"
"""
)
HUGO_PAGES = (
    HUGO_COMMON
    + """\
disableKinds = ["taxonomy", "term"]
[outputs]
home = ["HTML", "RSS"]
section = ["HTML", "RSS"]
page = ["HTML"]
"""
)
HUGO_LAYOUTS = {
    "_default/single.html": """\
<!DOCTYPE html>
<html lang="{{ .Site.LanguageCode }}"><head><meta charset="utf-8">
<title>{{ .Title }} · {{ .Site.Title }}</title></head>
<body><article><h1>{{ .Title }}</h1><time>{{ .Date.Format "2006-01-02" }}</time>
{{ .Content }}</article></body></html>
""",
    "_default/list.html": """\
<!DOCTYPE html>
<html lang="{{ .Site.LanguageCode }}"><head><meta charset="utf-8"><title>{{ .Title }}</title>
</head><body><ul>{{ range first 50 .RegularPagesRecursive }}
<li><a href="{{ .RelPermalink }}">{{ .Title }}</a> {{ .Date.Format "2006-01-02" }}</li>
{{ end }}</ul></body></html>
""",
}


@dataclass(frozen=True)
class Job:
    """One row of the table."""

    key: str
    label: str
    hugo_ref: str | None = None  # the Hugo row this one is compared with
    startup: bool = False  # size-independent: measured in the start-up rounds


JOBS = (
    Job("floor", "read every byte (floor, `read_all.py`)"),
    Job("naive", "naive peer: read → pydantic → sort → feedgen 50", "hugo-feeds"),
    Job("hugo-feeds", "Hugo, feeds only"),
    Job("hugo-pages", "Hugo, an HTML page per article + feeds"),
    Job("lightest", "feedsvc cold, lightest (feeds only)", "hugo-feeds"),
    Job("defaults", "feedsvc cold, defaults (pages, language, archives, .gz)", "hugo-pages"),
    Job("nochange", "`feedsvc build`, nothing changed"),
    Job("onefile", "`feedsvc build SEED`, one changed file"),
    Job("python", "bare `python -c pass`", startup=True),
    Job("version", "`feedsvc --version`", startup=True),
    Job("help", "`feedsvc --help`", startup=True),
)
JOB_BY_KEY = {j.key: j for j in JOBS}
HUGO_JOBS = ("hugo-feeds", "hugo-pages")
STATEFUL = ("nochange", "onefile")  # need the defaults state of their round


@dataclass
class Sample:
    seconds: float
    peak_rss: int  # bytes
    cpu: float  # user + system seconds
    ok: bool
    said: str


@dataclass
class Row:
    job: str
    size: int  # 0 for start-up jobs
    samples: list[Sample] = field(default_factory=list)
    skipped: str | None = None  # why there are no samples
    anomalies: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def rss(self) -> int:
        return max(s.peak_rss for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu for s in self.samples)


def log(message: str) -> None:
    """Progress on stderr, so that stdout stays the table."""
    print(message, file=sys.stderr, flush=True)


# ``--pool``: "auto" lets feedsvc decide (workers only when a core is idle), "1" forces the
# read/parse workers (both cores whatever the load), "0" keeps them off.
POOL = {"auto": "feedsvc decides (workers only when a core is idle)", "1": "forced on", "0": "off"}
_pool = "auto"


def clean_env() -> dict[str, str]:
    """The environment minus FEEDSVC_*, so a developer's settings cannot skew the figures;
    ``FEEDSVC_POOL`` only as ``--pool`` says."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    if _pool != "auto":
        env["FEEDSVC_POOL"] = _pool
    return env


def run(command: Sequence[str | Path], *, cwd: Path) -> Sample:
    """One whole process: wall time from spawn to exit, its own peak RSS and CPU time."""
    with tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [str(c) for c in command],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=clean_env(),
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        lines = out.read().strip().splitlines()
    said = lines[-1] if lines else ""
    if proc.returncode != 0:
        said = f"exit {proc.returncode}: " + " | ".join(lines[-3:])
    return Sample(
        seconds=seconds,
        peak_rss=usage.ru_maxrss * 1024,  # KiB on Linux
        cpu=usage.ru_utime + usage.ru_stime,
        ok=proc.returncode == 0,
        said=said,
    )


# --- corpora ------------------------------------------------------------------------------------
def synthetic_corpus(peers: Path, corpora: Path, size: int) -> Path:
    """``make_synthetic.py size`` once, cached; an interrupted generation is started over."""
    seeds = corpora / f"s{size}"
    restore_edits(corpora, size)
    if seeds.is_dir():
        return seeds
    part = corpora / f"s{size}.part"
    shutil.rmtree(part, ignore_errors=True)
    log(f"generating {size} synthetic seeds into {seeds} (once)")
    subprocess.run(
        [sys.executable, peers / "make_synthetic.py", str(size), part, "--seed", str(SYNTH_SEED)],
        check=True,
    )
    part.rename(seeds)
    return seeds


def seed_to_markdown(text: str) -> str:
    """A seed as a Hugo page: TOML front matter (title, date), paragraphs, ## subheadings.

    The title is cut like the naive peer's; subheadings are told apart as the peers do (short,
    no closing punctuation). JSON string escapes are valid TOML basic strings.
    """
    first, _, body = text.partition("\n")
    _, year_month, lead = first.split(maxsplit=2)
    lead = lead.strip()
    title = lead if len(lead) <= 90 else lead[:90].rsplit(" ", 1)[0] + " …"
    out = [
        "+++",
        f"title = {json.dumps(title, ensure_ascii=False)}",
        f"date = {year_month}-01T00:00:00Z",
        "+++",
        "",
        lead,
    ]
    for para in (p.strip() for p in body.split("\n\n")):
        if not para:
            continue
        short = len(para) < 60 and not para.endswith((".", "!", "?", '"', ":"))
        out += ["", f"## {para}" if short else para]
    return "\n".join(out) + "\n"


def hugo_site(corpora: Path, seeds: Path, size: int) -> Path:
    """A minimal Hugo site whose content is the corpus, cached beside it (conversion untimed)."""
    site = corpora / f"hugo{HUGO_SITE_VERSION}-{size}"
    if not site.is_dir():
        log(f"converting {size} seeds to Hugo pages in {site} (once)")
        part = corpora / f"hugo{HUGO_SITE_VERSION}-{size}.part"
        shutil.rmtree(part, ignore_errors=True)
        posts = part / "content" / "posts"
        posts.mkdir(parents=True)
        with os.scandir(seeds) as entries:
            for entry in entries:
                if entry.name.endswith(".txt"):
                    text = Path(entry.path).read_text(encoding="utf-8")
                    md = posts / (entry.name.removesuffix(".txt") + ".md")
                    md.write_text(seed_to_markdown(text), encoding="utf-8")
        part.rename(site)
    for name, text in HUGO_LAYOUTS.items():  # cheap: always the script's current version
        path = site / "layouts" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (site / "hugo-feeds.toml").write_text(HUGO_FEEDS_ONLY, encoding="utf-8")
    (site / "hugo-pages.toml").write_text(HUGO_PAGES, encoding="utf-8")
    return site


def edit_backup(corpora: Path, size: int) -> Path:
    return corpora / f"s{size}.orig"


def restore_edits(corpora: Path, size: int) -> None:
    """Put back a seed the one-file job edited (its bytes and mtime), e.g. after Ctrl-C."""
    backup = edit_backup(corpora, size)
    if not backup.is_dir():
        return
    for saved in backup.iterdir():
        shutil.copy2(saved, corpora / f"s{size}" / saved.name)
        saved.unlink()
    backup.rmdir()


# --- one size -----------------------------------------------------------------------------------
def feedsvc_config(path: Path, body: str, seeds: Path, feeds: Path, state: Path) -> Path:
    path.write_text(
        body + f'seeds_dir = "{seeds}"\nfeeds_dir = "{feeds}"\nstate_dir = "{state}"\n',
        encoding="utf-8",
    )
    return path


def check(row: Row, sample: Sample, expect: str | None) -> None:
    """Record (not raise) a failed process, or a summary line without what the job implies."""
    if not sample.ok:
        row.anomalies.append(sample.said)
    elif expect is not None and expect not in sample.said:
        row.anomalies.append(f"expected {expect!r} in: {sample.said}")


def check_hugo_feed(row: Row, feed: Path, items: int) -> None:
    """Hugo exits 0 on an empty feed too: the feed must hold the newest ``items`` articles."""
    try:
        found = feed.read_text(encoding="utf-8").count("<item>")
    except OSError as e:
        found, row.samples[-1].said = -1, str(e)
    if found != items:
        row.anomalies.append(f"{feed.name}: {found} items, expected {items}")


def measure_size(
    size: int, jobs: Sequence[str], runs: int, peers: Path, corpora: Path, hugo: str | None
) -> tuple[list[Row], tuple[float, float]]:
    seeds = synthetic_corpus(peers, corpora, size)
    files = sorted(e.name for e in os.scandir(seeds) if e.name.endswith(".txt"))
    if len(files) != size:
        raise SystemExit(f"{seeds}: {len(files)} seeds, expected {size}; remove it to regenerate")
    rows = {key: Row(key, size) for key in jobs}
    site = None
    if any(k in HUGO_JOBS for k in jobs):
        if hugo is None:
            for k in HUGO_JOBS:
                if k in rows:
                    rows[k].skipped = "hugo not installed"
        else:
            site = hugo_site(corpora, seeds, size)
    python = sys.executable
    target = seeds / files[size // 2]  # the seed the one-file job edits
    backup = edit_backup(corpora, size)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cold-bench-") as tmp:
        work = Path(tmp)
        for round_ in range(runs):
            log(f"  {size}: round {round_ + 1}/{runs}, load {os.getloadavg()[0]:.2f}")
            out = work / f"r{round_}"
            out.mkdir()

            def one(
                key: str, command: Sequence[str | Path], expect: str | None = None, cwd: Path = out
            ) -> None:
                if key not in rows or rows[key].skipped:
                    return
                sample = run(command, cwd=cwd)
                rows[key].samples.append(sample)
                check(rows[key], sample, expect)

            one("floor", [python, peers / "read_all.py", seeds], "bytes=")
            one("naive", [python, peers / "naive_pipeline.py", seeds, out / "naive"], "articles=")
            if site is not None and hugo is not None:
                for key in HUGO_JOBS:
                    config = site / f"{key}.toml"
                    command: list[str | Path] = [
                        hugo,
                        "--source",
                        site,
                        "--config",
                        config,
                        "--destination",
                    ]
                    command += [out / key, "--cacheDir", out / "hugo-cache", "--quiet"]
                    one(key, [*command, "--noBuildLock"])
                    if key in rows and rows[key].samples:
                        check_hugo_feed(rows[key], out / key / "index.xml", min(size, 50))
            light = feedsvc_config(
                out / "lightest.toml", LIGHTEST, seeds, out / "light", out / "light-state"
            )
            one("lightest", [FEEDSVC, "build", "--config", light], f"({size} new,")
            defaults = feedsvc_config(
                out / "defaults.toml", DEFAULTS, seeds, out / "feeds", out / "state"
            )
            build: list[str | Path] = [FEEDSVC, "build", "--config", defaults]
            if "defaults" in rows:
                one("defaults", build, f"({size} new,")
            elif any(k in rows for k in STATEFUL):
                run(build, cwd=out)  # the state the rebuilds need, not timed
            # The first build after a cold build compares every stored stamp once and keeps
            # the listing's digest (a cold build keeps none); the one timed is the steady
            # state a cron job sees from then on.
            run(build, cwd=out)
            one("nochange", build, "(0 new, 0 changed, 0 deleted")
            if "onefile" in rows:
                backup.mkdir(exist_ok=True)
                shutil.copy2(target, backup / target.name)
                try:
                    with target.open("a", encoding="utf-8") as f:
                        f.write(f" Aktualisierung {round_}.")
                    one("onefile", [*build, target], "(0 new, 1 changed, 0 deleted")
                finally:
                    restore_edits(corpora, size)
            shutil.rmtree(out)  # untimed; 100k pages take a while
    return list(rows.values()), (load_before, os.getloadavg()[0])


def measure_startup(jobs: Sequence[str], rounds: int) -> list[Row]:
    rows = {key: Row(key, 0) for key in jobs}
    commands: dict[str, list[str | Path]] = {
        "python": [sys.executable, "-c", "pass"],
        "version": [FEEDSVC, "--version"],
        "help": [FEEDSVC, "--help"],
    }
    with tempfile.TemporaryDirectory(prefix="cold-bench-") as tmp:
        for _ in range(rounds):
            for key, row in rows.items():
                sample = run(commands[key], cwd=Path(tmp))
                row.samples.append(sample)
                check(row, sample, None)
    return list(rows.values())


# --- report -------------------------------------------------------------------------------------
def secs(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds:.2f} s"
    if seconds < 100:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s"


def cell(row: Row, by_key: dict[str, Row]) -> str:
    if row.skipped:
        return row.skipped
    if not row.samples:
        return "—"
    if row.anomalies and not any(s.ok for s in row.samples):
        return "failed"
    text = secs(row.seconds)
    ratios = []
    naive = by_key.get("naive")
    if row.job != "naive" and naive is not None and naive.samples:
        ratios.append(f"{row.seconds / naive.seconds:.1f}× naive")
    ref = by_key.get(JOB_BY_KEY[row.job].hugo_ref or "")
    if ref is not None and ref.samples:
        ratios.append(f"{row.seconds / ref.seconds:.1f}× Hugo")
    return text + (f" ({', '.join(ratios)})" if ratios else "")


def rss_cell(row: Row) -> str:
    if row.skipped:
        return row.skipped
    if not row.samples:
        return "—"
    return f"{row.rss / MB:.0f} MB, CPU {secs(row.cpu)}"


def table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in body]


def render(
    sizes: Sequence[int],
    by_size: dict[int, list[Row]],
    loads: dict[int, tuple[float, float]],
    startup: list[Row],
    runs: int,
    hugo_version: str,
) -> str:
    lookup = {size: {r.job: r for r in rows} for size, rows in by_size.items()}
    keys = [j.key for j in JOBS if not j.startup and any(j.key in lookup[s] for s in sizes)]
    names = [f"{s:,}" for s in sizes]
    out = [
        f"Cold builds, whole processes, median of {runs} interleaved rounds"
        f" ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}; {hugo_version};"
        f" feedsvc's process pool: {POOL[_pool]}).",
        "Ratios are to the naive peer and to Hugo (feeds only for the naive peer and the"
        " lightest build, with pages for the defaults build), all from the same run.",
        "",
    ]
    body = [
        [JOB_BY_KEY[k].label]
        + [cell(lookup[s][k], lookup[s]) if k in lookup[s] else "—" for s in sizes]
        for k in keys
    ]
    body.append(
        ["load average (1 min) before → after"]
        + [f"{loads[s][0]:.2f} → {loads[s][1]:.2f}" for s in sizes]
    )
    out += table(["job", *names], body)
    out += ["", "Peak RSS (largest of the rounds) and CPU time (user + system, median):", ""]
    body = [
        [JOB_BY_KEY[k].label] + [rss_cell(lookup[s][k]) if k in lookup[s] else "—" for s in sizes]
        for k in keys
    ]
    out += table(["job", *names], body)
    if startup:
        base = next((r for r in startup if r.job == "python"), None)
        out += ["", f"Start-up, median of {len(startup[0].samples)} interleaved rounds:", ""]
        body = []
        for r in startup:
            over = f"+{(r.seconds - base.seconds) * 1000:.0f} ms" if base and r is not base else ""
            body.append(
                [
                    JOB_BY_KEY[r.job].label,
                    f"{r.seconds * 1000:.0f} ms",
                    over,
                    f"{r.rss / MB:.0f} MB",
                ]
            )
        out += table(["command", "time", "over bare Python", "peak RSS"], body)
    problems = [
        f"{r.job} at {r.size or 'start-up'}: {a}"
        for rows in [*by_size.values(), startup]
        for r in rows
        for a in dict.fromkeys(r.anomalies)
    ]
    if problems:
        out += ["", "ANOMALIES (figures of failed runs are not build times):"]
        out += [f"- {p}" for p in problems]
    return "\n".join(out)


def machine() -> str:
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return (
        f"{os.cpu_count()} CPUs, Python {platform.python_version()},"
        f" feedsvc at {commit or 'unknown commit'}"
    )


# --- main ---------------------------------------------------------------------------------------
def parse_list(text: str) -> list[int]:
    try:
        sizes = sorted({int(x.replace("_", "")) for x in text.split(",") if x.strip()})
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from e
    if not sizes or sizes[0] < 2:
        raise argparse.ArgumentTypeError("sizes must be at least 2")
    return sizes


def parse_jobs(text: str) -> list[str]:
    keys = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in JOB_BY_KEY]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(
            f"unknown job(s) {', '.join(unknown) or '(none)'}; known: {', '.join(JOB_BY_KEY)}"
        )
    return keys


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument(
        "--sizes",
        type=parse_list,
        default=list(DEFAULT_SIZES),
        help=f"corpus sizes [default: {','.join(map(str, DEFAULT_SIZES))}]",
    )
    parser.add_argument(
        "--full", action="store_true", help="sizes 1000,10000,100000: every job, many minutes"
    )
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="rounds per size")
    parser.add_argument(
        "--jobs",
        type=parse_jobs,
        default=[j.key for j in JOBS],
        help=f"comma-separated subset of: {','.join(JOB_BY_KEY)} [default: all]",
    )
    parser.add_argument("--peers", type=Path, default=DEFAULT_PEERS, help="../shared/peers")
    parser.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA, help="corpus cache")
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    parser.add_argument(
        "--pool",
        choices=sorted(POOL),
        default="auto",
        help="feedsvc's read/parse workers: auto (its own choice), 1 (forced), 0 (off)",
    )
    args = parser.parse_args(argv)
    global _pool
    _pool = args.pool
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    for needed in ("read_all.py", "naive_pipeline.py", "make_synthetic.py"):
        if not (args.peers / needed).is_file():
            parser.error(f"{args.peers / needed} not found (pass --peers DIR)")
    if not FEEDSVC.exists():
        parser.error(f"{FEEDSVC} not found: run with the venv's python (make .venv/.installed)")
    sizes = list(FULL_SIZES) if args.full else args.sizes
    hugo = shutil.which("hugo")
    hugo_version = "hugo not installed"
    if hugo is not None:
        hugo_version = subprocess.run(
            [hugo, "version"], capture_output=True, text=True, check=False
        ).stdout.split(" BuildDate")[0]
    args.corpora.mkdir(parents=True, exist_ok=True)

    size_jobs = [k for k in args.jobs if not JOB_BY_KEY[k].startup]
    startup_jobs = [k for k in args.jobs if JOB_BY_KEY[k].startup]
    by_size: dict[int, list[Row]] = {}
    loads: dict[int, tuple[float, float]] = {}
    startup: list[Row] = []
    if startup_jobs:
        log(f"start-up: {STARTUP_ROUNDS} rounds")
        startup = measure_startup(startup_jobs, STARTUP_ROUNDS)
    for size in sizes:
        log(f"{size} seeds: {args.runs} rounds of {', '.join(size_jobs)}")
        by_size[size], loads[size] = measure_size(
            size, size_jobs, args.runs, args.peers, args.corpora, hugo
        )
    print(render(sizes, by_size, loads, startup, args.runs, hugo_version))
    if args.json:
        doc = {
            "machine": machine(),
            "hugo": hugo_version,
            "runs": args.runs,
            "loadavg": {str(s): v for s, v in loads.items()},
            "rows": [asdict(r) for rows in [*by_size.values(), startup] for r in rows],
        }
        args.json.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
