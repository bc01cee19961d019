"""Where a cold ``feedsvc build`` spends its time (#9): cProfile of the CLI, grouped by kind.

Runs ``feedsvc build --config <temp config>`` in this process under cProfile, imports
included (the profiler starts before ``feedsvc.cli`` is imported), on a fresh state and feeds
dir, then prints self time grouped by what it is (SQLite calls, parsing, reading, pydantic,
lingua, Jinja, feedgen/lxml, file writes, imports, store glue ...; a builtin such as
``len`` or ``str.strip`` counts in its callers' groups), the functions with the most
self time, feedsvc's functions by cumulative time, and the call counts that matter (SQLite
statements per article). The profiler's clock is CPU time (``time.process_time``), so the
shares hold on a loaded machine; the wall time without the profiler is printed beside it.
cProfile adds a cost per Python call, so call-heavy groups look bigger than they are: read
the shares together with a sampling profiler's (pyinstrument, py-spy) where they matter.

The build runs in this process: the process pool of a cold build (``FEEDSVC_POOL``, off by
default on a busy machine) would hide the parse in its workers, so it is kept off here and
the profile is that of the sequential path (the workers run the same ``scan_one``).

``--settings feeds``: the defaults with three ``[[feeds]]`` (all, a keyword feed, a year), so
an article page links the feeds its article is in (read from the store, 500 pages a query).

Usage: ``.venv/bin/python bench/profile_cold.py SEEDS [--settings lightest|defaults|feeds]
[--top 25] [--save FILE.prof]``; SEEDS e.g. ``bench/.corpora/s10000`` (made by cold_bench.py).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from cold_bench import DEFAULTS, FEEDSVC, LIGHTEST, Sample, feedsvc_config, run

Key = tuple[str, int, str]  # pstats' (file, line, function)
OTHER = "other (stdlib)"
# ``--settings feeds``: appended to the defaults' config (tables after the top-level keys)
FEEDS = """
[[feeds]]
name = "all"

[[feeds]]
name = "ukraine"
keywords = ["Ukraine", "Kiew", "Selenskyj"]

[[feeds]]
name = "2024"
since = 2024-01-01
until = 2024-12-31
"""

# First match wins: (group, test on file name, test on function name).
GROUPS: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("imports", ("<frozen importlib", "<frozen zipimport"), ("<module>", "marshal.loads")),
    ("SQLite calls", (), ("sqlite3.",)),
    ("lingua", ("/lingua/",), ("lingua", "LanguageDetector")),
    ("Jinja", ("/jinja2/", "<template>", "/markupsafe/"), ("markupsafe",)),
    ("feedgen + lxml", ("/feedgen/", "/lxml/", "/dateutil/"), ("lxml.",)),
    ("pydantic", ("/pydantic/", "/pydantic_core/", "/annotated_types/"), ("pydantic_core",)),
    (
        "file writes",
        ("/feedsvc/_atomic.py", "/gzip.py", "/tempfile.py", "/shutil.py"),
        ("posix.fsync", "posix.replace", "posix.rename", "zlib.", "_io.BufferedWriter", "write'"),
    ),
    (
        "reading + path checks",
        ("/pathlib.py", "/posixpath.py", "/fnmatch.py", "/genericpath.py"),
        ("posix.stat", "posix.lstat", "posix.scandir", "posix.open", "io.open", "read'", "fspath"),
    ),
    (
        "parsing (feedsvc + re + html)",
        ("/feedsvc/seeds.py", "/feedsvc/_text.py", "/re/", "/html/", "/unicodedata"),
        ("re.Pattern", "_sre.", "unicodedata", "'str'", "html."),
    ),
    ("store glue (feedsvc/store/)", ("/feedsvc/store/",), ()),
    ("ledger (feedsvc/build/ledger.py)", ("/feedsvc/build/ledger.py",), ()),
    ("scan + pool hand-over (feedsvc/build/scan.py)", ("/feedsvc/build/scan.py",), ()),
    ("models (feedsvc/models.py: trusted, pack)", ("/feedsvc/models.py",), ()),
    ("other feedsvc", ("/feedsvc/",), ()),
    ("click", ("/click/",), ()),
    ("json", ("/json/",), ("_json.",)),
]


def group_of(key: Key) -> str:
    filename, _, function = key
    for name, files, functions in GROUPS:
        if any(f in filename for f in files) or any(f in function for f in functions):
            return name
    return OTHER


def label(key: Key) -> str:
    filename, line, function = key
    if filename == "~":
        return function
    short = filename.split("/site-packages/")[-1].split("/lib/python3.11/")[-1]
    short = short.split("/wt-bench/")[-1]
    return f"{short}:{line} {function}"


def profile_build(config: Path, pool: str = "0") -> tuple[pstats.Stats, float]:
    # "0": the parse and the pages in this process, where the profiler sees them; "1": the
    # main process's own share beside its workers (which the profiler does not see)
    os.environ["FEEDSVC_POOL"] = pool
    profiler = cProfile.Profile(time.process_time)  # CPU time: shares hold on a loaded machine
    start = time.perf_counter()
    profiler.enable()
    try:
        from feedsvc.cli import main

        main(["build", "--config", str(config), "--quiet"], standalone_mode=False)
    except SystemExit as e:
        if e.code:
            raise
    finally:
        profiler.disable()
    seconds = time.perf_counter() - start
    return pstats.Stats(profiler), seconds


def report(stats: pstats.Stats, seconds: float, plain: Sample, files: int, top: int) -> str:
    table: dict[Key, tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for _, _, tt, _, _ in table.values())
    groups: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    for key, (_, nc, tt, _, callers) in table.items():
        group = group_of(key)
        calls[group] += nc
        if group != OTHER or not isinstance(callers, dict) or not callers:
            groups[group] += tt
            continue
        # a builtin such as len() or str.strip(): its time goes to its callers' groups
        weight = sum(c[2] for c in callers.values()) or 1.0
        for caller, c in callers.items():
            groups[group_of(caller)] += tt * (c[2] or weight / len(callers)) / weight
    out = [
        f"{files:,} seeds: {total:.2f} s of CPU under cProfile ({seconds:.2f} s wall);"
        f" without the profiler {plain.seconds:.2f} s wall, {plain.cpu:.2f} s CPU (whole process)",
        "",
        "| group (self time) | s | share | calls |",
        "|---|---:|---:|---:|",
    ]
    for name, tt in sorted(groups.items(), key=lambda kv: -kv[1]):
        out.append(f"| {name} | {tt:.2f} | {tt / total:.0%} | {calls[name]:,} |")
    sqlite = {label(k): (v[1], v[2]) for k, v in table.items() if "sqlite3." in k[2]}
    out += ["", "SQLite calls (per article; a bulk load's executemany takes 1,000 files a call):"]
    for name, (n, tt) in sorted(sqlite.items(), key=lambda kv: -kv[1][1])[:8]:
        out.append(f"- {name}: {n:,} ({n / files:.2f}), {tt:.2f} s")
    out += ["", f"Top {top} by self time:", "", "| function | self s | cum s | calls |"]
    out.append("|---|---:|---:|---:|")
    by_self = sorted(table.items(), key=lambda kv: -kv[1][2])[:top]
    for key, (_, nc, tt, ct, _) in by_self:
        out.append(f"| {label(key)} | {tt:.3f} | {ct:.3f} | {nc:,} |")
    out += ["", f"Top {top} feedsvc functions by cumulative time:", ""]
    out += ["| function | cum s | self s | calls |", "|---|---:|---:|---:|"]
    ours = [kv for kv in table.items() if "/feedsvc/" in kv[0][0]]
    for key, (_, nc, tt, ct, _) in sorted(ours, key=lambda kv: -kv[1][3])[:top]:
        out.append(f"| {label(key)} | {ct:.3f} | {tt:.3f} | {nc:,} |")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("seeds", type=Path)
    parser.add_argument("--settings", choices=("lightest", "defaults", "feeds"), default="lightest")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--save", type=Path, help="write the raw profile here (pstats format)")
    parser.add_argument("--pool", choices=("0", "1"), default="0", help="FEEDSVC_POOL (#9)")
    args = parser.parse_args(argv)
    seeds = args.seeds.resolve()
    files = sum(1 for p in seeds.iterdir() if p.name.endswith(".txt"))
    body = LIGHTEST if args.settings == "lightest" else DEFAULTS
    with tempfile.TemporaryDirectory(prefix="cold-profile-") as tmp:
        work = Path(tmp)
        plain_cfg = feedsvc_config(work / "a.toml", body, seeds, work / "fa", work / "sa")
        tables = FEEDS if args.settings == "feeds" else ""
        plain_cfg.write_text(plain_cfg.read_text() + tables)
        plain = run([FEEDSVC, "build", "--config", plain_cfg], cwd=work)
        if not plain.ok:
            raise SystemExit(plain.said)
        config = feedsvc_config(work / "b.toml", body, seeds, work / "fb", work / "sb")
        config.write_text(config.read_text() + tables)
        stats, seconds = profile_build(config, args.pool)
    if args.save:
        stats.dump_stats(args.save)
    print(f"settings: {args.settings}")
    print(report(stats, seconds, plain, files, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
