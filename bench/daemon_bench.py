"""Benchmark for ``feedsvc run``: change-to-served latency, idle CPU, 304s per second, and
the faults of issue #7 that are about time: a re-created seeds/ served again, and SIGTERM
during a cold build.

Run on demand, not as a test: the figures depend on the machine and its load, so they are
printed beside the issue's targets, never asserted. Targets: a seed written is served over
HTTP with median ≤ 1 s and p95 ≤ 2 s (debounce included); the idle daemon uses under 1 % of a
CPU (inotify, no busy polling); and as many 304 responses per second as the machine gives.

It starts a real ``feedsvc run`` subprocess (with the tests' harness, tests/harness.py) on a
temporary copy of the shared corpus (1014 real articles), on 127.0.0.1 and a free port, and
removes everything afterwards. The 304 load
comes from ``wrk`` (Debian: ``apt-get install -y wrk``) when installed, else from a small
Python client (and says so).

Usage: ``.venv/bin/python bench/daemon_bench.py [--corpus PATH] [--changes 50] [--idle 60]
[--load 10] [--json]``
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.harness import Daemon, wait_for  # noqa: E402  (the daemon harness the tests use too)

CORPUS = REPO.parent / "shared" / "corpus" / "de-news.tar.gz"
POLL = 0.01  # seconds between polls of the served feed while timing a change
START_SECONDS = 60.0  # the daemon's start and first build of the corpus


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reattach(daemon: Daemon, seeds: Path) -> float:
    """Seconds from seeds/ replaced by a fresh copy to a seed written into it being served."""
    fresh, old = seeds.with_name("seeds.new"), seeds.with_name("seeds.old")
    shutil.copytree(seeds, fresh)
    os.rename(seeds, old)
    start = time.perf_counter()
    os.rename(fresh, seeds)
    marker = "Neuangelegtmarke"
    (seeds / f"9999_{0xBF00000000000000:016x}.txt").write_text(
        f" date {datetime.now(UTC).replace(microsecond=0).isoformat()} {marker}.\n\nText.\n",
        encoding="utf-8",
    )
    while marker.encode() not in daemon.get("/atom.xml")[2]:
        if time.perf_counter() > start + 30:
            raise SystemExit("a seed in the re-created seeds/ was not served within 30 s")
        time.sleep(POLL)
    took = time.perf_counter() - start
    shutil.rmtree(old)
    return took


def stop_during_cold_build(site: Path) -> tuple[float, bool, int]:
    """(seconds from SIGTERM to exit, build abandoned?, exit status) in a cold corpus build."""
    shutil.rmtree(site / "state")
    shutil.rmtree(site / "feeds")
    daemon = Daemon(site, healthy=False, start_timeout=START_SECONDS)
    try:
        wait_for(lambda: daemon.status()["building"], timeout=30, what="the cold build")
        start = time.perf_counter()
        code = daemon.stop(timeout=10)
        return time.perf_counter() - start, daemon.logged("abandoning the build"), code
    finally:
        daemon.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def latency(daemon: Daemon, seeds: Path, changes: int) -> list[float]:
    """Seconds from a new seed written to its marker in the served Atom feed, one at a time."""
    results = []
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    for n in range(changes):
        marker = f"Benchmarkmarke{n:04d}"
        when = (base + timedelta(seconds=n)).isoformat()
        text = f" date {when} Eine neue Meldung {marker}.\n\nDer Text der Meldung {n}.\n"
        path = seeds / f"9{n:03d}_{n + 0xBE00000000000000:016x}.txt"
        start = time.perf_counter()
        path.write_text(text, encoding="utf-8")
        deadline = start + 10
        while marker.encode() not in daemon.get("/atom.xml")[2]:
            if time.perf_counter() > deadline:
                raise SystemExit(f"change {n} not served within 10 s")
            time.sleep(POLL)
        results.append(time.perf_counter() - start)
    return results


def idle_cpu(daemon: Daemon, seconds: float) -> float:
    """Percent of one CPU the daemon used while nothing happened."""
    daemon.settled(timeout=30)  # the last build done and reported
    pid = daemon.proc.pid
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)


def load_304(daemon: Daemon, seconds: float) -> tuple[str, float, int]:
    """(tool, responses per second, count) of conditional GETs answered 304 on loopback."""
    _, headers, _ = daemon.get("/atom.xml")
    etag = headers["ETag"]
    assert daemon.get("/atom.xml", {"If-None-Match": etag})[0] == 304
    url = f"http://127.0.0.1:{daemon.port}/atom.xml"
    if shutil.which("wrk"):
        out = subprocess.run(
            ["wrk", "-t2", "-c16", f"-d{seconds:g}s", "-H", f"If-None-Match: {etag}", url],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        if "Non-2xx or 3xx" in out:
            raise SystemExit("wrk saw error responses:\n" + out)
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
        return "wrk -t2 -c16", rate, count
    return _python_load(daemon.port, etag, seconds)


def _python_load(port: int, etag: str, seconds: float) -> tuple[str, float, int]:
    counts = [0] * 8
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < stop:
            conn.request("GET", "/atom.xml", headers={"If-None-Match": etag})
            resp = conn.getresponse()
            resp.read()
            if resp.status == 304:
                counts[i] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(counts))]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = sum(counts)
    return (
        "python http.client, 8 keep-alive connections (wrk not installed)",
        total / (time.monotonic() - start),
        total,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle CPU sampling")
    parser.add_argument("--load", type=float, default=10.0, help="seconds of 304 load")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    if not args.corpus.is_file():
        raise SystemExit(f"corpus not found: {args.corpus}")

    with tempfile.TemporaryDirectory(prefix="feedsvc-daemon-bench-") as tmp:
        site = Path(tmp)
        with tarfile.open(args.corpus) as tar:
            tar.extractall(site, filter="data")
        seeds = site / "seeds"
        (site / "de-news").rename(seeds)
        (site / "feedsvc.toml").write_text(
            'seeds_dir = "seeds"\nfeeds_dir = "feeds"\nstate_dir = "state"\n', encoding="utf-8"
        )
        count = sum(1 for _ in seeds.iterdir())
        started = time.perf_counter()
        daemon = Daemon(site, start_timeout=START_SECONDS)
        try:
            ready = time.perf_counter() - started
            print(f"corpus: {count} seeds; daemon up and first build served in {ready:.2f} s")
            times = latency(daemon, seeds, args.changes)
            median, p95 = statistics.median(times), percentile(times, 95)
            print(
                f"latency, seed written → served over HTTP ({args.changes} changes, "
                f"debounce 0.5 s): median {median * 1000:.0f} ms (target ≤ 1000), "
                f"p95 {p95 * 1000:.0f} ms (target ≤ 2000), "
                f"min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms"
            )
            cpu = idle_cpu(daemon, args.idle)
            print(f"idle CPU over {args.idle:g} s: {cpu:.2f} % of one core (target < 1 %)")
            tool, rate, total = load_304(daemon, args.load)
            print(f"304 responses: {rate:,.0f} per second ({total:,} in {args.load:g} s, {tool})")
            again = reattach(daemon, seeds)
            print(f"seeds/ replaced by a copy: a new seed in it served after {again * 1000:.0f} ms")
            status = json.loads(daemon.get("/status")[2])
        finally:
            code = daemon.stop()
        print(f"builds: {status['builds']}; SIGTERM exit status {code}")
        took, abandoned, code = stop_during_cold_build(site)
        print(
            f"SIGTERM during the cold build of {count} seeds: exit status {code} after "
            f"{took:.2f} s (target < 5 s; build abandoned: {'yes' if abandoned else 'no'})"
        )
        if args.json:
            figures = {
                "seeds": count,
                "latency_median_s": median,
                "latency_p95_s": p95,
                "idle_cpu_percent": cpu,
                "not_modified_per_s": rate,
                "load_tool": tool,
                "builds": status["builds"],
                "reattach_served_s": again,
                "sigterm_in_cold_build_exit_s": took,
            }
            print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
