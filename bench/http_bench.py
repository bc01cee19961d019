"""Benchmark: feedsvc's built-in HTTP server beside nginx on the same feeds/ (issue #7, item 11).

Run on demand, not as a test: figures depend on the machine and its load, so they are printed
beside the targets, never asserted. Targets: with 500 idle and 50 dripping connections open,
normal requests answered with p99 < 100 ms; ``wrk -t2 -c256 -d10s`` with 0 errors and 0
timeouts; 304s within 3x of nginx's rate.

Both servers serve one temporary feeds/ (a 50-entry Atom, RSS and JSON feed with their .gz
siblings) on 127.0.0.1 and run side by side for the whole bench: feedsvc in a subprocess of
its own (FeedApp + HTTPServer, as ``feedsvc run`` has them), nginx with
contrib/nginx-feedsvc.conf. On a shared machine the load changes from one minute to the next,
so the wrk runs alternate between the two servers (``--rounds`` of each, the order swapped
every round), and the figures are medians with their range; the 304 ratio is taken within each
round. Server CPU per request (from /proc: feedsvc's process, nginx's master and workers)
varies much less with the machine's load than req/s. All load goes to 127.0.0.1, bounded in
count and time. Needs nginx and wrk (Debian: ``apt-get install -y nginx wrk``).

Usage: ``.venv/bin/python bench/http_bench.py [--rounds 3] [--seconds 10] [--load-seconds 25]
[--json]``
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.nginx_site import NGINX, Nginx  # noqa: E402
from tests.slowclients import SlowClients, raise_fd_limit, timed_get  # noqa: E402

SERVE = """
import sys, time
from pathlib import Path
from feedsvc.service.serve import FeedApp, HTTPServer, ServeOptions
from feedsvc.build.outputs import ATOM_TYPE, JSON_FEED_TYPE, RSS_TYPE
types = {"atom.xml": ATOM_TYPE, "rss.xml": RSS_TYPE, "feed.json": JSON_FEED_TYPE}
app = FeedApp(ServeOptions(root=Path(sys.argv[1]), content_types=types))
server = HTTPServer(app, host="127.0.0.1", port=0)
print(server.start()[1], flush=True)
sys.stdin.read()  # until the bench closes our stdin
server.stop()
"""


def write_feeds(feeds: Path) -> None:
    entry = (
        "<entry><id>urn:feedsvc:{n:016x}</id><title>Meldung {n}: Gemeinderat beschließt "
        'Budget</title><updated>2025-01-{d:02d}T10:00:00Z</updated><content type="html">'
        + "Ein Absatz über die Sitzung, mit Zahlen und Namen. " * 30
        + "</content></entry>"
    )
    atom = '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
    atom += "".join(entry.format(n=n, d=n % 28 + 1) for n in range(50)) + "</feed>\n"
    data = atom.encode()
    for name in ("atom.xml", "rss.xml", "feed.json"):  # same size; the bench is about HTTP
        (feeds / name).write_bytes(data)
        (feeds / (name + ".gz")).write_bytes(gzip.compress(data, compresslevel=6, mtime=0))


def start_feedsvc(feeds: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(feeds)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def latency_under_load(port: int, seconds: float) -> dict[str, Any]:
    """Normal GETs, one every 20 ms on a new connection, while the hostile load is open."""
    load = SlowClients(port, idle=500, drip=50, interval=5.0, max_seconds=seconds + 60)
    load.start()
    times: list[float] = []
    failed = 0
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            status, seconds = timed_get(port, timeout=10)
            if status == 200:
                times.append(seconds)
            else:
                failed += 1
            time.sleep(0.02)
        held = load.open_now
    finally:
        load.stop()
    times.sort()
    return {
        "p50_ms": 1000 * statistics.median(times) if times else None,
        "p99_ms": 1000 * times[min(len(times) - 1, int(len(times) * 0.99))] if times else None,
        "max_ms": 1000 * times[-1] if times else None,
        "done": len(times),
        "failed": failed,
        "hostile_open": held,
        "hostile_reopened": load.counts.closed_by_server,
        "hostile_connect_errors": load.counts.connect_errors,
    }


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def nginx_pids(master: int) -> list[int]:
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        children = []
    return [master, *(int(c) for c in children)]


def wrk(port: int, seconds: int, headers: dict[str, str], pids: list[int]) -> dict[str, Any]:
    cmd = ["wrk", "-t2", "-c256", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    before = cpu_seconds(pids)
    out = subprocess.run(
        [*cmd, f"http://127.0.0.1:{port}/atom.xml"], capture_output=True, text=True, timeout=120
    ).stdout
    cpu = cpu_seconds(pids) - before
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    connect, read, write, timeouts = (int(x) for x in errors.groups()) if errors else (0, 0, 0, 0)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    return {
        "rps": rate,
        "errors": connect + read + write + (int(bad.group(1)) if bad else 0),
        "timeouts": timeouts,
        "p99_ms": _ms(p99.group(1)) if p99 else None,
        "cpu_us": 1e6 * cpu / done if done else None,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def etag_of(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/atom.xml", headers={"Accept-Encoding": "gzip"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return str(resp.headers["ETag"])


def spread(values: list[float]) -> str:
    """The median and, for more than one value, the range: ``12.3 [10.1-14.0]``."""
    if not values:
        return "-"
    mid = _num(statistics.median(values))
    if len(values) == 1:
        return mid
    return f"{mid} [{_num(min(values))}-{_num(max(values))}]"


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--load-seconds", type=float, default=25, help="GETs under the hostile load (past 10 s)"
    )
    parser.add_argument("--seconds", type=int, default=10, help="each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="wrk runs of each kind per server")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if NGINX is None or shutil.which("wrk") is None:
        print("needs nginx and wrk: apt-get install -y nginx wrk", file=sys.stderr)
        return 2
    raise_fd_limit(4096)
    load: dict[str, dict[str, Any]] = {}
    runs: list[dict[str, dict[str, Any]]] = []  # per round: "feedsvc 304" -> figures
    with tempfile.TemporaryDirectory(prefix="feedsvc-http-bench-") as tmp:
        feeds = Path(tmp) / "feeds"
        feeds.mkdir()
        write_feeds(feeds)
        proc, port = start_feedsvc(feeds)
        nginx = Nginx(NGINX, Path(tmp) / "nginx", feeds)
        try:
            servers = {
                "feedsvc": (port, lambda: [proc.pid]),
                "nginx": (nginx.port, lambda: nginx_pids(nginx.proc.pid)),
            }
            for name, (at, _) in servers.items():
                load[name] = latency_under_load(at, args.load_seconds)
                time.sleep(1)  # let the hostile sockets' server ends close
            etags = {name: etag_of(at) for name, (at, _) in servers.items()}
            for n in range(args.rounds):
                figures: dict[str, dict[str, Any]] = {}
                order = list(servers) if n % 2 == 0 else list(reversed(servers))
                for name in order:
                    at, pids = servers[name]
                    plain = {"Accept-Encoding": "gzip"}
                    figures[f"{name} 200"] = wrk(at, args.seconds, plain, pids())
                    unchanged = {**plain, "If-None-Match": etags[name]}
                    figures[f"{name} 304"] = wrk(at, args.seconds, unchanged, pids())
                runs.append(figures)
        finally:
            nginx.stop()
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=10)
    if args.json:
        print(json.dumps({"load": load, "wrk": runs}, indent=2))
        return 0
    report(load, runs)
    return 0


def report(load: dict[str, dict[str, Any]], runs: list[dict[str, dict[str, Any]]]) -> None:
    def each(key: str, field: str) -> list[float]:
        return [r[key][field] for r in runs if r[key][field] is not None]

    rows: list[tuple[str, Callable[[str], str]]] = [
        ("GET p50 under 500 idle + 50 drip (ms)", lambda s: spread([load[s]["p50_ms"]])),
        ("GET p99 under 500 idle + 50 drip (ms)", lambda s: spread([load[s]["p99_ms"]])),
        ("GET max under 500 idle + 50 drip (ms)", lambda s: spread([load[s]["max_ms"]])),
        (
            "GETs done / failed under that load",
            lambda s: f"{load[s]['done']} / {load[s]['failed']}",
        ),
        ("hostile sockets reopened", lambda s: str(load[s]["hostile_reopened"])),
    ]
    for kind in ("200", "304"):
        rows += [
            (f"wrk -t2 -c256 {kind}s: req/s", lambda s, k=kind: spread(each(f"{s} {k}", "rps"))),
            (
                "  errors / timeouts (all rounds)",
                lambda s, k=kind: (
                    f"{sum(each(f'{s} {k}', 'errors')):.0f} / "
                    f"{sum(each(f'{s} {k}', 'timeouts')):.0f}"
                ),
            ),
            ("  p99 (ms)", lambda s, k=kind: spread(each(f"{s} {k}", "p99_ms"))),
            ("  server CPU per request (µs)", lambda s, k=kind: spread(each(f"{s} {k}", "cpu_us"))),
        ]
    print(f"{len(runs)} rounds, median [min-max]")
    print(f"{'':40} {'feedsvc':>22} {'nginx':>22}")
    for label, cell in rows:
        print(f"{label:40} {cell('feedsvc'):>22} {cell('nginx'):>22}")
    ratios = [r["nginx 304"]["rps"] / r["feedsvc 304"]["rps"] for r in runs]
    print(
        f"\nnginx answers {spread(ratios)}x as many 304s per second as feedsvc, per round "
        "(target: within 3x)"
    )


if __name__ == "__main__":
    sys.exit(main())
