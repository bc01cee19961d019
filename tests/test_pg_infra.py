"""The PostgreSQL primitives #10 builds on, against the real server of tests/pg.py.

Leadership is a session-level ``pg_try_advisory_lock`` held on an autocommit connection; it
ends with the session: on close, on ``pg_terminate_backend``, when the holding process dies
(the kernel closes its socket) and, for a frozen holder, when ``idle_session_timeout`` ends the
idle session server-side. The builder is woken with LISTEN/NOTIFY. Skips without PostgreSQL,
fails in CI (see tests/pg.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests import pg
from tests.harness import wait_for
from tests.pg import APP_USER, MIN_VERSION, PgDatabase, PgServer

KEY = 0x66656564  # any bigint; #10 derives it from site_id

HOLDER = """
import sys, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
if sys.argv[3]:  # what the leader sets on its lock connection: the server-side lease
    conn.execute("SELECT set_config('idle_session_timeout', %s, false)", (sys.argv[3],))
got = conn.execute("SELECT pg_try_advisory_lock(%s)", (int(sys.argv[2]),)).fetchone()[0]
print(got, conn.info.backend_pid, flush=True)
sys.stdin.read()  # hold the lock, idle, until killed
"""


def try_lock(conn: psycopg.Connection[tuple[object, ...]], key: int = KEY) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    assert row is not None
    return bool(row[0])


def lock_is_free(db: PgDatabase, key: int = KEY) -> bool:
    """Take and release the lock on a fresh connection: True if nobody else holds it."""
    with db.connect() as conn:
        if not try_lock(conn, key):
            return False
        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        return True


@contextmanager
def holder(db: PgDatabase, *, idle_session_timeout: str = "") -> Iterator[tuple[int, int]]:
    """Another process holding the lock on its own idle connection: its pid and backend pid."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, db.url, str(KEY), idle_session_timeout],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        got, backend = proc.stdout.readline().split()
        assert got == "True"
        assert int(backend) in db.backends()
        yield proc.pid, int(backend)
    finally:
        proc.kill()  # SIGKILL also ends a stopped process
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def test_the_server_is_real_unprivileged_and_on_loopback_only(
    pg_server: PgServer, pg_db: PgDatabase
) -> None:
    with pg_db.connect() as conn:
        user, superuser = conn.execute(
            "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone() or ("", True)
        assert (user, superuser) == (APP_USER, False)
        assert conn.info.server_version >= MIN_VERSION * 10000
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW fsync").fetchone() == ("off",)
        conn.execute("CREATE TABLE t (id bigint PRIMARY KEY)")  # the role owns its database
    postmaster = int((pg_server.data / "postmaster.pid").read_text().split()[0])
    assert Path(f"/proc/{postmaster}").stat().st_uid != 0
    assert pg_db.url.startswith(f"postgresql://{APP_USER}:")


def test_a_wrong_password_is_refused(pg_server: PgServer, pg_db: PgDatabase) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(pg_server.url(pg_db.name, password="wrong"), connect_timeout=10)


def test_each_test_gets_an_empty_database_of_its_own(pg_db: PgDatabase) -> None:
    with pg_db.connect() as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
        assert tables == (0,)  # the table of the test above is gone with its database


def test_advisory_lock_is_one_session_s_and_freed_on_close(pg_db: PgDatabase) -> None:
    with pg_db.connect() as first, pg_db.connect() as second:
        assert try_lock(first)
        assert not try_lock(second)
        assert try_lock(second, KEY + 1)  # another site's key is independent
        assert try_lock(first)  # re-entrant: the same session takes it again ...
        first.execute("SELECT pg_advisory_unlock(%s)", (KEY,))
        assert not try_lock(second)  # ... and holds it until unlocked as often
        first.close()  # the backend exits after the client has gone: a little later
        wait_for(lambda: try_lock(second), what="the lock of a closed session is free")


def test_advisory_lock_is_freed_when_the_backend_is_terminated(
    pg_server: PgServer, pg_db: PgDatabase
) -> None:
    with pg_db.connect() as leader, pg_db.connect() as standby:
        assert try_lock(leader)
        assert pg_server.terminate(leader.info.backend_pid)
        assert try_lock(standby)
        with pytest.raises(psycopg.OperationalError):
            leader.execute("SELECT 1")


def test_advisory_lock_is_freed_when_the_holding_process_is_killed(pg_db: PgDatabase) -> None:
    with holder(pg_db) as (pid, _):
        assert not lock_is_free(pg_db)
        os.kill(pid, signal.SIGKILL)  # the kernel closes its socket: the backend sees EOF
        wait_for(lambda: lock_is_free(pg_db), what="the lock of a SIGKILLed holder is free")


def test_a_frozen_holder_loses_the_lock_by_its_idle_session_timeout(pg_db: PgDatabase) -> None:
    with holder(pg_db, idle_session_timeout="300ms") as (pid, backend):
        os.kill(pid, signal.SIGSTOP)  # its socket stays open: only the server's timer helps
        wait_for(lambda: lock_is_free(pg_db), what="the lock of a SIGSTOPped holder is free")
        assert backend not in pg_db.backends()


def test_idle_session_timeout_ends_an_idle_session_and_frees_its_lock(pg_db: PgDatabase) -> None:
    pg_db.set_idle_session_timeout(0.3)  # for every session that starts from now on
    with pg_db.connect() as leader:
        assert try_lock(leader)
        pid = leader.info.backend_pid
        wait_for(lambda: pid not in pg_db.backends(), what="the idle session ended")
        assert lock_is_free(pg_db)
        with pytest.raises(psycopg.errors.IdleSessionTimeout):
            leader.execute("SELECT 1")


def test_a_standby_can_name_the_lock_holder(pg_db: PgDatabase) -> None:
    """``feedsvc build`` can say who leads: the holder's application_name via pg_locks."""
    with pg_db.connect(application_name="feedsvc@host-a:4711") as leader, pg_db.connect() as other:
        assert try_lock(leader)
        row = other.execute(
            "SELECT a.application_name, a.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND l.classid = (%s::bigint >> 32)::oid"
            " AND l.objid = (%s::bigint & 4294967295)::oid AND l.objsubid = 1",
            (KEY, KEY),
        ).fetchone()
        assert row == ("feedsvc@host-a:4711", leader.info.backend_pid)


def test_notify_reaches_a_listener_on_another_connection(pg_db: PgDatabase) -> None:
    with pg_db.connect() as listener, pg_db.connect() as ingest:
        listener.execute("LISTEN feedsvc_build")
        ingest.execute("SELECT pg_notify('feedsvc_build', %s)", ("seeds/0001.txt",))
        got = [(n.channel, n.payload) for n in listener.notifies(timeout=3, stop_after=1)]
        assert got == [("feedsvc_build", "seeds/0001.txt")]


def test_notify_is_sent_only_on_commit(pg_db: PgDatabase) -> None:
    with pg_db.connect() as listener, pg_db.connect(autocommit=False) as ingest:
        listener.execute("LISTEN feedsvc_build")
        ingest.execute("NOTIFY feedsvc_build, 'rolled back'")
        ingest.rollback()
        ingest.execute("NOTIFY feedsvc_build, 'committed'")
        ingest.commit()
        got = [n.payload for n in listener.notifies(timeout=3, stop_after=1)]
        assert got == ["committed"]


def test_a_restart_keeps_url_and_data_but_ends_sessions(
    pg_server: PgServer, pg_db: PgDatabase
) -> None:
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE t (id bigint PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (1)")
        pg_server.stop()
        assert not pg_server.running()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError):
        pg_db.connect()
    pg_server.start()
    with pg_db.connect() as conn:
        assert conn.execute("SELECT id FROM t").fetchall() == [(1,)]


def test_a_paused_backend_is_stopped_until_resumed(pg_server: PgServer, pg_db: PgDatabase) -> None:
    with pg_db.connect() as conn:
        pid = conn.info.backend_pid
        with pg_server.paused(pid):
            wait_for(lambda: _state(pid) == "T", what="the backend is stopped")
        wait_for(lambda: _state(pid) != "T", what="the backend runs again")
        assert conn.execute("SELECT 1").fetchone() == (1,)


def _state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


def test_without_postgresql_the_tests_skip_but_fail_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg, "find_postgres", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"apt-get install postgresql"):
        pg.require_postgres()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"in CI, make test installs it"):
        pg.require_postgres()
