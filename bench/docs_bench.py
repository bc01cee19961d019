"""Benchmark: documents in the store (#10 part 4) on a real throwaway PostgreSQL cluster.

Run on demand, not as a test: figures depend on the machine and its load, so they are printed,
never asserted. CPU seconds (user + sys of the child, from ``wait4``) are the figures to
compare; the PostgreSQL server's own CPU is not in them. Prints, for a site of ``--seeds``
articles:

- ``feedsvc build`` on PostgreSQL, cold and after one edited seed, with the documents recorded
  (as shipped) and without (``keeps_documents`` switched off in the child): what recording
  costs the builder;
- ``feedsvc build`` on SQLite (no documents: the guard), and with ``--old PATH`` (a checkout
  of the code before this branch) the same build by the old code, for the "as fast as
  before" figure;
- ``feedsvc sync`` into an empty folder (a cold mirror) and again (nothing to do);
- the time from a publish's commit to a mirror's round having written it (``Mirror`` woken by
  NOTIFY, polling switched off), over ``--publishes`` publishes.

Usage: ``.venv/bin/python bench/docs_bench.py [--seeds 2000] [--rounds 3] [--old /tmp/x]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from feedsvc.build.publisher import Publisher  # noqa: E402
from feedsvc.config import load_settings  # noqa: E402
from feedsvc.service.sync import Mirror, SyncReport  # noqa: E402
from tests.conftest import seed_text  # noqa: E402
from tests.harness import make_site, seed_name, write  # noqa: E402
from tests.pg import PgServer, find_postgres  # noqa: E402

CHILD = """
import sys
if sys.argv[1] == "off":
    from feedsvc.store.postgres import PostgresStore
    PostgresStore.keeps_documents = False
from feedsvc.cli import main
main(sys.argv[2:])
"""


def cpu(args: list[str], *, cwd: Path, code: str = "on", pythonpath: str | None = None) -> float:
    """The child's user + sys CPU seconds (``wait4``) for ``feedsvc ARGS``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, code, *args],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise RuntimeError(f"feedsvc {' '.join(args)} failed: {err}")
    return usage.ru_utime + usage.ru_stime


def corpus(seeds: Path, n: int) -> None:
    for i in range(1, n + 1):
        folder = ("sport/", "politik/", "")[i % 3]
        day = f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}"
        body = f"Meldung {i} des Tages. " * 20
        write(seeds / f"{folder}{seed_name(i)}", seed_text(body, date=day))


def site(root: Path, n: int, **config: object) -> Path:
    made = make_site(root, category_feeds=True, **config)
    corpus(made / "seeds", n)
    return made


def builds(root: Path, n: int, url: str | None, code: str, old: str | None) -> tuple[float, float]:
    """Cold build, then one edited seed: CPU seconds of each."""
    where = site(root, n, **({"store_url": url} if url else {}))
    cold = cpu(["build", "-q", "--config", str(where / "feedsvc.toml")], cwd=where, code=code,
               pythonpath=old)  # fmt: skip
    write(where / "seeds" / seed_name(5), seed_text("Neu geschrieben. " * 20, date="2024-06-06"))
    warm = cpu(["build", "-q", "--config", str(where / "feedsvc.toml")], cwd=where, code=code,
               pythonpath=old)  # fmt: skip
    return cold, warm


def latency(url: str, root: Path, n: int, publishes: int) -> list[float]:
    """Seconds from each publish's return (its commit) to the mirror's round that wrote it."""
    where = site(root, n, store_url=url)
    settings = load_settings(config=where / "feedsvc.toml", env={})
    Publisher(settings).build()
    seen: list[tuple[float, int]] = []
    ready = threading.Condition()

    def on_round(report: SyncReport) -> None:
        with ready:
            seen.append((time.monotonic(), report.serial))
            ready.notify_all()

    mirror = Mirror(settings, root / "mirror", poll=3600, on_round=on_round)
    mirror.start()
    out: list[float] = []
    try:
        with ready:
            ready.wait_for(lambda: seen, timeout=30)
        for i in range(publishes):
            write(where / "seeds" / seed_name(n + 1 + i), seed_text(f"Neu {i}.", date="2024-07-01"))
            Publisher(settings).build()
            done = time.monotonic()
            with ready:
                target = len(seen) + 1
                if not ready.wait_for(lambda t=target: len(seen) >= t, timeout=30):
                    raise TimeoutError("the mirror did not follow within 30 s")
                out.append(seen[-1][0] - done)
            time.sleep(0.2)  # publishes apart, as an editor's are
    finally:
        mirror.stop()
    return out


def fmt(values: list[float], unit: str = "s") -> str:
    if unit == "ms":
        values = [v * 1000 for v in values]
    med = statistics.median(values)
    return f"median {med:.3f} {unit} (" + " / ".join(f"{v:.3f}" for v in values) + ")"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--publishes", type=int, default=10)
    parser.add_argument("--old", help="a checkout of the code before this branch (SQLite)")
    parser.add_argument("--sqlite-only", action="store_true", help="only the SQLite builds")
    args = parser.parse_args()
    bindir = find_postgres()
    if bindir is None:
        print("PostgreSQL >= 14 is not installed (Debian: apt-get install postgresql)")
        return 2
    server = PgServer(bindir)
    tmp = Path(tempfile.mkdtemp(prefix="feedsvc-docs-bench-"))
    figures: dict[str, list[Any]] = {}
    try:
        server.start()
        for r in range(args.rounds):  # the variants interleaved, so load hits all alike
            variants = [
                ("postgres, documents recorded", True, "on", None),
                ("postgres, documents off", True, "off", None),
                ("sqlite (this branch)", False, "on", None),
                *([("sqlite (old code)", False, "on", args.old)] if args.old else []),
            ]
            if args.sqlite_only:
                variants = [v for v in variants if not v[1]]
            for name, url_needed, code, old in variants:
                url = server.create_database().url if url_needed else None
                cold, warm = builds(tmp / f"{r}-{name[:8]}-{code}-{bool(old)}", args.seeds, url,
                                    code, old)  # fmt: skip
                figures.setdefault(f"{name}: cold build CPU", []).append(cold)
                figures.setdefault(f"{name}: one edit CPU", []).append(warm)
        if args.sqlite_only:
            for key, values in figures.items():
                print(f"{key:50} {fmt(values)}")
            return 0
        where = site(tmp / "sync", args.seeds, store_url=server.create_database().url)
        cpu(["build", "-q", "--config", str(where / "feedsvc.toml")], cwd=where)
        mirror = tmp / "sync-mirror"
        sync = ["sync", "-q", "--feeds", str(mirror), "--config", str(where / "feedsvc.toml")]
        figures["sync into an empty folder CPU"] = [cpu(sync, cwd=where)]
        files = sum(1 for p in mirror.rglob("*") if p.is_file())
        figures["sync with nothing to do CPU"] = [cpu(sync, cwd=where)]
        lat = latency(server.create_database().url, tmp / "latency", args.seeds, args.publishes)
        print(f"site: {args.seeds} seeds, {files} files in feeds/; {os.cpu_count()} cores")
        for key, values in figures.items():
            print(f"{key:50} {fmt(values)}")
        print(f"{'publish commit -> mirror round done':50} {fmt(lat, 'ms')}")
    finally:
        server.destroy()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
