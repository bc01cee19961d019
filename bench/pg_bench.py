"""Benchmark: the PostgreSQL facts #10's leader election rests on, on a real throwaway cluster.

Run on demand, not as a test: figures depend on the machine and its load, so they are printed,
never asserted. Prints the cluster's set-up cost (initdb, start, stop), the cost of a fresh
database per test, and how soon a session-level advisory lock held by another *process* is free
for a standby polling ``pg_try_advisory_lock``:

- after ``kill -9`` of the holder (the kernel closes its socket, the backend sees EOF);
- after ``kill -STOP`` of the holder, which heartbeats (``SELECT 1``) every ``--heartbeat`` s on
  its lock connection with ``idle_session_timeout`` = ``--idle-timeout`` s: only the server's
  timer ends the session (TCP keepalives take hours by default). The holder is stopped right
  after a heartbeat, the worst case: the timer has just started;

plus the LISTEN/NOTIFY delivery time between two connections. Uses tests/pg.py's cluster.
Needs PostgreSQL ≥ 14 (Debian: ``apt-get install postgresql``) and psycopg.

Usage: ``.venv/bin/python bench/pg_bench.py [--repeat 10] [--idle-timeout 2] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402

from tests.pg import PgDatabase, PgServer, find_postgres  # noqa: E402

KEY = 0x66656564
HOLDER = """
import sys, time, psycopg
url, key, idle, beat = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
conn = psycopg.connect(url, autocommit=True)
if idle:
    conn.execute("SELECT set_config('idle_session_timeout', %s, false)", (idle,))
assert conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
print(conn.info.backend_pid, flush=True)
while True:  # the leader's heartbeat on its lock connection
    time.sleep(beat)
    conn.execute("SELECT 1")
    print("beat", flush=True)
"""


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "min_ms": ms(min(values)),
        "median_ms": ms(statistics.median(values)),
        "max_ms": ms(max(values)),
    }


def takeover(db: PgDatabase, sig: signal.Signals, *, idle: str, beat: float) -> float:
    """Seconds from ``sig`` to the holder until a standby's pg_try_advisory_lock succeeds."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, db.url, str(KEY), idle, str(beat)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        proc.stdout.readline()  # right after a heartbeat: the server's timer starts anew
        with db.connect() as standby:
            assert not standby.execute("SELECT pg_try_advisory_lock(%s)", (KEY,)).fetchone()[0]
            os.kill(proc.pid, sig)
            start = time.monotonic()
            while True:
                row = standby.execute("SELECT pg_try_advisory_lock(%s)", (KEY,)).fetchone()
                if row and row[0]:
                    return time.monotonic() - start
                if time.monotonic() - start > 60:
                    raise TimeoutError(f"lock still held 60 s after {sig.name}")
                time.sleep(0.001)
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def notify_latency(db: PgDatabase) -> float:
    with db.connect() as listener, db.connect() as sender:
        listener.execute("LISTEN bench")
        start = time.monotonic()
        sender.execute("NOTIFY bench, 'x'")
        for _ in listener.notifies(timeout=5, stop_after=1):
            return time.monotonic() - start
    raise TimeoutError("no notification within 5 s")


def timed(action: Any) -> float:
    start = time.monotonic()
    action()
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--idle-timeout", type=float, default=2.0)
    parser.add_argument("--heartbeat", type=float, default=0.5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    bindir = find_postgres()
    if bindir is None:
        print("PostgreSQL >= 14 is not installed (Debian: apt-get install postgresql)")
        return 2
    out: dict[str, Any] = {"postgres": str(bindir)}
    start = time.monotonic()
    server = PgServer(bindir)
    try:
        out["initdb_ms"] = ms(time.monotonic() - start)
        out["first_start_ms"] = ms(timed(server.start))  # pg_ctl -w, plus CREATE ROLE
        out["stop_fast_ms"] = ms(timed(server.stop))
        out["start_ms"] = ms(timed(server.start))
        with server.admin() as conn:
            out["server_version"] = conn.execute("SHOW server_version").fetchone()[0]
        for strategy in ("", "FILE_COPY"):
            create, drop = [], []
            for i in range(args.repeat):
                name = f"bench_{strategy.lower() or 'wal_log'}_{i}"
                with server.admin() as conn:
                    sql = f"CREATE DATABASE {name} TEMPLATE template0"
                    sql += f" STRATEGY {strategy}" if strategy else ""
                    create.append(timed(lambda sql=sql, c=conn: c.execute(sql)))
                    drop_sql = f"DROP DATABASE {name} WITH (FORCE)"
                    drop.append(timed(lambda s=drop_sql, c=conn: c.execute(s)))
            out[f"create_db_{strategy.lower() or 'wal_log'}"] = summary(create)
            out[f"drop_db_after_{strategy.lower() or 'wal_log'}"] = summary(drop)
        fixture = []
        for _ in range(args.repeat):  # what pg_db costs a test: create, then drop
            t = time.monotonic()
            db = server.create_database()
            server.drop_database(db.name)
            fixture.append(time.monotonic() - t)
        out["pg_db_fixture_create_and_drop"] = summary(fixture)

        db = server.create_database()
        idle = f"{round(args.idle_timeout * 1000)}ms"
        kill = [
            takeover(db, signal.SIGKILL, idle=idle, beat=args.heartbeat) for _ in range(args.repeat)
        ]
        out["lock_free_after_sigkill"] = summary(kill)
        stops = [
            takeover(db, signal.SIGSTOP, idle=idle, beat=args.heartbeat)
            for _ in range(max(3, args.repeat // 2))
        ]
        out[f"lock_free_after_sigstop_idle_session_timeout_{idle}"] = summary(stops)
        out["notify_delivery"] = summary([notify_latency(db) for _ in range(args.repeat)])
        server.drop_database(db.name)
        out["stop_immediate_ms"] = ms(timed(lambda: server.stop("immediate")))
    except psycopg.Error as e:
        print(f"bench failed: {e}\n{server.log()[-2000:]}", file=sys.stderr)
        return 1
    finally:
        server.destroy()
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for key, value in out.items():
            print(f"{key:55} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
