"""Benchmark: feedsvc's built-in HTTP server beside nginx on the same feeds/ (issue #7, item 11).

Run on demand, not as a test: figures depend on the machine and its load, so they are printed
beside the targets, never asserted. Targets: with 500 idle and 50 dripping connections open,
normal requests answered with p99 < 100 ms; ``wrk -t2 -c256 -d10s`` with 0 errors and 0
timeouts; 304s within 3x of nginx's rate.

Both servers serve one temporary feeds/ (a 50-entry Atom, RSS and JSON feed with their .gz
siblings) on 127.0.0.1: feedsvc in a subprocess of its own (FeedApp + HTTPServer, as
``feedsvc run`` has them), nginx with contrib/nginx-feedsvc.conf. All load goes to 127.0.0.1,
bounded in count and time. Needs nginx and wrk (Debian: ``apt-get install -y nginx wrk``).

Usage: ``.venv/bin/python bench/http_bench.py [--load-seconds 25] [--seconds 10] [--json]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
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


def wrk(port: int, seconds: int, headers: dict[str, str]) -> dict[str, Any]:
    cmd = ["wrk", "-t2", "-c256", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run(
        [*cmd, f"http://127.0.0.1:{port}/atom.xml"], capture_output=True, text=True, timeout=120
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    connect, read, write, timeouts = (int(x) for x in errors.groups()) if errors else (0, 0, 0, 0)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    return {
        "rps": rate,
        "errors": connect + read + write + (int(bad.group(1)) if bad else 0),
        "timeouts": timeouts,
        "p99": p99.group(1) if p99 else "?",
    }


def etag_of(port: int) -> str:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/atom.xml", headers={"Accept-Encoding": "gzip"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return str(resp.headers["ETag"])


def measure(port: int, load_seconds: float, seconds: int) -> dict[str, Any]:
    result = {"load": latency_under_load(port, load_seconds)}
    time.sleep(1)  # let the hostile sockets' server ends close
    result["wrk_200"] = wrk(port, seconds, {"Accept-Encoding": "gzip"})
    etag = etag_of(port)
    result["wrk_304"] = wrk(port, seconds, {"Accept-Encoding": "gzip", "If-None-Match": etag})
    return result


def fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:,.1f}{unit}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--load-seconds", type=float, default=25, help="GETs under the hostile load (past 10 s)"
    )
    parser.add_argument("--seconds", type=int, default=10, help="each wrk run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if NGINX is None or shutil.which("wrk") is None:
        print("needs nginx and wrk: apt-get install -y nginx wrk", file=sys.stderr)
        return 2
    raise_fd_limit(4096)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="feedsvc-http-bench-") as tmp:
        feeds = Path(tmp) / "feeds"
        feeds.mkdir()
        write_feeds(feeds)
        proc, port = start_feedsvc(feeds)
        try:
            results["feedsvc"] = measure(port, args.load_seconds, args.seconds)
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=10)
        nginx = Nginx(NGINX, Path(tmp) / "nginx", feeds)
        try:
            results["nginx"] = measure(nginx.port, args.load_seconds, args.seconds)
        finally:
            nginx.stop()
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    rows = [
        ("GET p50 under 500 idle + 50 drip", lambda r: fmt(r["load"]["p50_ms"], " ms")),
        ("GET p99 under 500 idle + 50 drip", lambda r: fmt(r["load"]["p99_ms"], " ms")),
        ("GET max under 500 idle + 50 drip", lambda r: fmt(r["load"]["max_ms"], " ms")),
        (
            "GETs done / failed under that load",
            lambda r: f"{r['load']['done']} / {r['load']['failed']}",
        ),
        ("hostile sockets reopened", lambda r: str(r["load"]["hostile_reopened"])),
        ("wrk -t2 -c256 200s: req/s", lambda r: fmt(r["wrk_200"]["rps"])),
        ("  errors / timeouts", lambda r: f"{r['wrk_200']['errors']} / {r['wrk_200']['timeouts']}"),
        ("  p99", lambda r: r["wrk_200"]["p99"]),
        ("wrk -t2 -c256 304s: req/s", lambda r: fmt(r["wrk_304"]["rps"])),
        ("  errors / timeouts", lambda r: f"{r['wrk_304']['errors']} / {r['wrk_304']['timeouts']}"),
        ("  p99", lambda r: r["wrk_304"]["p99"]),
    ]
    print(f"{'':36} {'feedsvc':>14} {'nginx':>14}")
    for label, cell in rows:
        print(f"{label:36} {cell(results['feedsvc']):>14} {cell(results['nginx']):>14}")
    ratio = results["nginx"]["wrk_304"]["rps"] / results["feedsvc"]["wrk_304"]["rps"]
    print(f"\nnginx answers {ratio:.1f}x as many 304s per second (target: within 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
