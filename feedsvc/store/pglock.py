"""Leadership in PostgreSQL (#10 part 2): the session lock, its heartbeat, and the epoch.

One site has one active builder. It holds a session-level advisory lock (``leader_key``, apart
from the per-build ``pg_advisory_xact_lock`` key) on a dedicated autocommit connection, not the
store's. That connection sets ``idle_session_timeout``, so the server ends the session of a
frozen or cut-off holder (its lock freed) when its heartbeats stop; a holder killed outright
loses the lock at once (its socket closes). Every statement here has a client-side deadline: a
frozen server hangs statements, so a timer shuts the socket down and the statement fails.

Each promotion bumps ``leader_epoch``, kept with the holder's host, pid, kind and start time as
one ``meta`` row (``LEADER_META``) under the build lock, so a build in flight and a promotion
never interleave, and a build can check inside its own transaction that its epoch is still the
store's (``read_leader``, through the ``Store`` protocol). A promotion first ends the previous
leader's store sessions: a frozen leader may sit in a transaction holding a lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import psycopg

from ..config import redact_url
from ..errors import StoreError
from .base import Store
from .postgres import CONNECT_TIMEOUT, _cause, application_name
from .sql import lock_key

T = TypeVar("T")
LEADER_META = "leader"  # the meta row: {"epoch", "host", "pid", "kind", "since"} as JSON
Kind = Literal["run", "build"]
PROMOTE_END_WAIT = 5.0  # s a promotion waits for the old leader's sessions to end
PROMOTE_LOCK_TIMEOUT = 10.0  # s it then waits for the build lock at most


def leader_key(site_id: str) -> int:
    """A site's leadership lock key: a signed 64-bit number, never its build-lock key."""
    digest = hashlib.sha256(b"feedsvc leader lock\0" + site_id.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True, slots=True)
class LeaderRecord:
    """Who leads a site's builds: the epoch (bumped by each promotion) and the holder."""

    epoch: int
    host: str
    pid: int
    kind: Kind  # "run": a daemon; "build": a one-shot ``feedsvc build``
    since: str  # ISO 8601, UTC

    def describe(self) -> str:
        what = "the daemon (feedsvc run)" if self.kind == "run" else "a feedsvc build"
        facts = f"pid {self.pid}, epoch {self.epoch}, since {self.since}"
        return f"{what} on host {self.host} ({facts})"


def parse_leader(value: str | None) -> LeaderRecord | None:
    """The record of a ``meta`` value; None when there is none (or it cannot be read)."""
    if not value:
        return None
    try:
        data = json.loads(value)
        return LeaderRecord(
            epoch=int(data["epoch"]),
            host=str(data["host"]),
            pid=int(data["pid"]),
            kind="build" if data.get("kind") == "build" else "run",
            since=str(data["since"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


def read_leader(store: Store) -> LeaderRecord | None:
    """The store's leader record (inside a build transaction: under the build lock)."""
    return parse_leader(store.get_meta(LEADER_META))


class LeaderLock:
    """The leadership lock of one site on its own autocommit connection.

    ``idle_timeout`` (s) is the server's ``idle_session_timeout`` for this session; every
    statement fails after ``deadline`` s (the socket is shut down). Driver errors leave as
    ``StoreError`` naming the URL without its password; the connection is then unusable
    (``close`` it and open another).
    """

    def __init__(self, url: str, *, site_id: str, idle_timeout: float, deadline: float) -> None:
        self.where = redact_url(url)
        self.key = leader_key(site_id)
        self.build_key = lock_key(site_id)
        self.deadline = deadline
        self.held = False
        self._cut = False
        try:
            self._conn = psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=max(1, min(CONNECT_TIMEOUT, round(deadline))),
                application_name=application_name("feedsvc-leader"),
            )
        except psycopg.Error as e:
            raise StoreError(self.where, f"cannot connect: {_cause(e)}") from None
        try:  # for this session only (the URL's own ``options`` stay as they are)
            self._guarded("setting idle_session_timeout", lambda c: c.execute(
                "SELECT set_config('idle_session_timeout', %s, false)",
                (f"{round(idle_timeout * 1000)}ms",),
            ))  # fmt: skip
        except StoreError:
            self.close()
            raise

    # -- statements with a deadline -----------------------------------------------------------
    def _shutdown(self) -> None:
        """The deadline passed: shut the socket down, so the statement waiting on it fails."""
        self._cut = True
        try:
            fd = self._conn.pgconn.socket
            with socket.socket(fileno=os.dup(fd)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except (OSError, psycopg.Error):
            pass

    def _guarded(self, what: str, run: Callable[[psycopg.Connection[Any]], T]) -> T:
        timer = threading.Timer(self.deadline, self._shutdown)
        timer.daemon = True
        timer.start()
        try:
            return run(self._conn)
        except psycopg.Error as e:
            if self._cut:
                reason = f"{what}: no answer within {self.deadline:g} s"
                raise StoreError(self.where, reason) from None
            raise StoreError(self.where, f"{what}: {_cause(e)}") from None
        finally:
            timer.cancel()

    # -- the lock ------------------------------------------------------------------------------
    def try_lock(self) -> tuple[bool, LeaderRecord | None]:
        """Take the lock if free (never twice: session locks are re-entrant); and the record."""

        def run(conn: psycopg.Connection[Any]) -> tuple[bool, str | None]:
            row = conn.execute(
                "SELECT CASE WHEN %s THEN true ELSE pg_try_advisory_lock(%s) END,"
                " (SELECT value FROM meta WHERE name = %s)",
                (self.held, self.key, LEADER_META),
            ).fetchone()
            assert row is not None
            return bool(row[0]), row[1]

        got, value = self._guarded("taking the leader lock", run)
        self.held = got
        return got, parse_leader(value)

    def heartbeat(self) -> LeaderRecord | None:
        """One round trip on the lock's session (it resets the server's idle timer)."""

        def run(conn: psycopg.Connection[Any]) -> str | None:
            row = conn.execute("SELECT value FROM meta WHERE name = %s", (LEADER_META,)).fetchone()
            return None if row is None else str(row[0])

        return parse_leader(self._guarded("heartbeat", run))

    def promote(self, *, kind: Kind) -> LeaderRecord:
        """Bump the epoch and record this process as the leader, under the build lock.

        First the sessions of the previous leader (named in the record) are ended: it lost
        the lock, so it is dead, frozen or fenced, and a frozen one may sit in a transaction
        holding the build or schema lock, which would stall every build after it.
        """
        host, pid = socket.gethostname(), os.getpid()

        def run(conn: psycopg.Connection[Any]) -> LeaderRecord:
            self._end_old_sessions(conn)
            with conn.transaction():
                conn.execute(f"SET LOCAL lock_timeout = {round(PROMOTE_LOCK_TIMEOUT * 1000)}")
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.build_key,))
                row = conn.execute(
                    "SELECT value FROM meta WHERE name = %s", (LEADER_META,)
                ).fetchone()
                old = parse_leader(None if row is None else str(row[0]))
                record = LeaderRecord(
                    epoch=(old.epoch if old else 0) + 1,
                    host=host,
                    pid=pid,
                    kind=kind,
                    since=datetime.now(UTC).isoformat(timespec="milliseconds"),
                )
                conn.execute(
                    "INSERT INTO meta (name, value) VALUES (%s, %s)"
                    " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (LEADER_META, json.dumps(asdict(record), sort_keys=True)),
                )
            return record

        saved, self.deadline = (
            self.deadline,
            self.deadline + PROMOTE_END_WAIT + PROMOTE_LOCK_TIMEOUT,
        )
        try:
            return self._guarded("promoting", run)
        finally:
            self.deadline = saved

    def _end_old_sessions(self, conn: psycopg.Connection[Any]) -> None:
        """End the store sessions of the previous leader (not this process), and wait for it."""
        row = conn.execute("SELECT value FROM meta WHERE name = %s", (LEADER_META,)).fetchone()
        old = parse_leader(None if row is None else str(row[0]))
        if old is None or (old.host, old.pid) == (socket.gethostname(), os.getpid()):
            return
        conn.execute(
            "SELECT pg_terminate_backend(pid, %s) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()",
            (
                round(PROMOTE_END_WAIT * 1000),
                application_name("feedsvc", host=old.host, pid=old.pid),
            ),
        )

    def release(self) -> None:
        """Give the lock up (a clean stop); closing the connection does it too."""
        if self.held:
            self.held = False
            self._guarded("releasing the leader lock", lambda c: c.execute(
                "SELECT pg_advisory_unlock(%s)", (self.key,)
            ))  # fmt: skip

    def close(self) -> None:
        self.held = False
        with suppress(psycopg.Error):
            self._conn.close()
