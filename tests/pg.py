"""A real, throwaway PostgreSQL for the tests and benches (#10): one cluster per session.

``initdb`` makes a cluster in a fresh ``/tmp/feedsvc-pg-*`` folder owned by an unprivileged
user (PostgreSQL refuses to run as root: as root the cluster belongs to the ``postgres`` user
that Debian's package creates, else ``nobody``; otherwise to ourselves). The server listens on
127.0.0.1 on a free port and on a unix socket in that folder, with fsync off; it is stopped and
the folder removed at the end of the session, whatever happened. Each test gets a fresh database
(``CREATE DATABASE … TEMPLATE template0``, dropped afterwards) owned by ``feedsvc``, an ordinary
role with a password, and a ``postgresql://feedsvc:…@127.0.0.1:port/db`` URL.

Skips without PostgreSQL ≥ 14 (Debian: ``apt-get install postgresql``) or psycopg, but fails in
CI, where ``make test`` installs them. Helpers for the fault tests: stop, start and restart the
server (same port, same data), SIGSTOP a backend, terminate backends, set a database's
``idle_session_timeout``. Shared by the #10 tests and ``bench/pg_bench.py``.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

MIN_VERSION = 14
START_TIMEOUT = 30  # pg_ctl -w -t: a busy 2-core CI machine
APP_USER = "feedsvc"  # what the URLs log in as: no superuser, owns each test database
ADMIN_USER = "postgres"  # the superuser, over the unix socket only (trust)
UNPRIVILEGED = ("postgres", "nobody")  # the cluster's owner when we are root
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",  # a throwaway cluster: nothing here must survive a power cut
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "'32MB'",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] %d '",
}


def find_postgres() -> Path | None:
    """The newest PostgreSQL ≥ 14 ``bin/`` folder (Debian's layout, then PATH), or None."""
    found: list[tuple[int, Path]] = []
    for initdb in Path("/usr/lib/postgresql").glob("*/bin/initdb"):
        if initdb.parent.parent.name.isdigit():
            found.append((int(initdb.parent.parent.name), initdb.parent))
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        out = subprocess.run([on_path, "--version"], capture_output=True, text=True, check=False)
        match = re.search(r"(\d+)(?:\.\d+)*\s*$", out.stdout.strip())
        if match:
            found.append((int(match.group(1)), Path(on_path).parent))
    usable = sorted(v for v in found if v[0] >= MIN_VERSION)
    return usable[-1][1] if usable else None


def require_postgres() -> Path:
    """The PostgreSQL ``bin/`` folder; skip without it or psycopg, but fail in CI."""
    missing = ""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing = "psycopg is not installed (pip install -e '.[dev]')"
    bindir = find_postgres()
    if bindir is None:
        missing = (
            f"PostgreSQL ≥ {MIN_VERSION} is not installed (Debian: apt-get install postgresql)"
        )
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing}: in CI, make test installs it")
        pytest.skip(missing)
    assert bindir is not None
    return bindir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServerError(RuntimeError):
    """initdb or pg_ctl failed; carries the command's output and the server log's tail."""


class PgServer:
    """One throwaway cluster; ``start``/``stop``/``restart`` keep its port and its data."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.password = secrets.token_hex(12)
        self.root = Path(tempfile.mkdtemp(prefix="feedsvc-pg-"))  # short: socket path ≤ 107
        self.data = self.root / "data"
        self.logfile = self.root / "server.log"
        self.port = 0
        self._paused: set[int] = set()
        self._owner: tuple[int, int] | None = None
        if os.geteuid() == 0:
            for name in UNPRIVILEGED:
                with suppress(KeyError):
                    entry = pwd.getpwnam(name)
                    self._owner = (entry.pw_uid, entry.pw_gid)
                    break
            if self._owner is None:
                raise PgServerError(f"running as root and none of {UNPRIVILEGED} exists")
            os.chown(self.root, *self._owner)
        atexit.register(self.destroy)  # also when the session dies before its teardown
        self._initdb()

    # -- processes ----------------------------------------------------------------------
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        uid, gid = self._owner or (None, None)
        proc = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            cwd=self.root, env=env, capture_output=True, text=True, check=False,
            stdin=subprocess.DEVNULL, timeout=START_TIMEOUT + 30,
            user=uid, group=gid, extra_groups=None if uid is None else [],
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise PgServerError(
                f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
                f"\n--- server log ---\n{self.log()[-4000:]}"
            )
        return proc

    def _initdb(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n", encoding="utf-8")
        if self._owner is not None:
            os.chown(pwfile, *self._owner)
        self._run(
            "initdb", "-D", str(self.data), "-U", ADMIN_USER, f"--pwfile={pwfile}",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8",
            "--no-locale", "--no-sync", "--no-instructions",
        )  # fmt: skip
        pwfile.unlink()
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# tests/pg.py\n")
            conf.write(f"unix_socket_directories = '{self.root}'\n")
            conf.writelines(f"{k} = {v}\n" for k, v in SETTINGS.items())

    def start(self) -> None:
        """Start the server (waits until it accepts connections); a first start picks a port."""
        if self.running():
            return
        for _ in range(5):  # a free port can be taken between the probe and the bind
            port = self.port or free_port()
            proc = self._run(
                "pg_ctl", "start", "-w", "-t", str(START_TIMEOUT), "-D", str(self.data),
                "-l", str(self.logfile), "-o", f"-p {port}", check=False,
            )  # fmt: skip
            if proc.returncode == 0:
                if not self.port:
                    self.port = port
                    self._bootstrap()
                return
            if self.port or "Address already in use" not in self.log():
                break
        raise PgServerError(
            f"pg_ctl start exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
            f"\n--- server log ---\n{self.log()[-4000:]}"
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` ends sessions cleanly, ``immediate`` is a crash."""
        self.resume_all()  # a stopped backend would never see its SIGTERM
        if self.running():
            self._run("pg_ctl", "stop", "-w", "-t", str(START_TIMEOUT), "-D", str(self.data),
                      "-m", mode)  # fmt: skip

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def running(self) -> bool:
        if not self.data.exists():
            return False
        return self._run("pg_ctl", "status", "-D", str(self.data), check=False).returncode == 0

    def destroy(self) -> None:
        """Stop the server at once and remove its folder; idempotent."""
        atexit.unregister(self.destroy)
        if self.root.exists():
            with suppress(PgServerError, subprocess.SubprocessError, OSError):
                self.stop("immediate")
            shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        try:
            return self.logfile.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    # -- SQL as the superuser ---------------------------------------------------------------
    @contextmanager
    def admin(self, dbname: str = "postgres") -> Iterator[Any]:
        """An autocommit superuser connection over the unix socket."""
        import psycopg

        conninfo = f"host={self.root} port={self.port} user={ADMIN_USER} dbname={dbname}"
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
            yield conn

    def _bootstrap(self) -> None:
        from psycopg import sql

        with self.admin() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(APP_USER), sql.Literal(self.password)
                )
            )

    def url(self, dbname: str, *, user: str = APP_USER, password: str | None = None) -> str:
        """``postgresql://user:password@127.0.0.1:port/dbname`` (TCP, password auth)."""
        secret = quote(self.password if password is None else password, safe="")
        return f"postgresql://{quote(user, safe='')}:{secret}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> PgDatabase:
        from psycopg import sql

        name = f"t_{secrets.token_hex(6)}"
        with self.admin() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(
                    sql.Identifier(name), sql.Identifier(APP_USER)
                )
            )
        return PgDatabase(self, name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, ending its sessions first; starts the server if a test stopped it."""
        from psycopg import sql

        self.start()
        self.resume_all()
        with self.admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def backends(self, dbname: str) -> list[int]:
        """Pids of the client backends connected to ``dbname``."""
        with self.admin() as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend' ORDER BY pid",
                (dbname,),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def terminate(self, pid: int) -> bool:
        """``pg_terminate_backend``: the session ends, its session locks are released."""
        with self.admin() as conn:
            row = conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()
        return bool(row and row[0])

    def pause(self, pid: int) -> None:
        """SIGSTOP a backend: its socket stays open but it answers nothing (a frozen server)."""
        os.kill(pid, signal.SIGSTOP)
        self._paused.add(pid)

    def resume(self, pid: int) -> None:
        self._paused.discard(pid)
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)

    def resume_all(self) -> None:
        for pid in list(self._paused):
            self.resume(pid)

    @contextmanager
    def paused(self, pid: int) -> Iterator[int]:
        self.pause(pid)
        try:
            yield pid
        finally:
            self.resume(pid)


class PgDatabase:
    """One fresh database on the session's server, owned by ``feedsvc``."""

    def __init__(self, server: PgServer, name: str) -> None:
        self.server = server
        self.name = name
        self.url = server.url(name)

    def connect(self, **kwargs: Any) -> Any:
        """A psycopg connection as ``feedsvc`` over TCP (autocommit unless told otherwise)."""
        import psycopg

        kwargs.setdefault("autocommit", True)
        kwargs.setdefault("connect_timeout", 10)
        return psycopg.connect(self.url, **kwargs)

    def set(self, setting: str, value: str) -> None:
        """``ALTER DATABASE … SET``: applies to the sessions that start afterwards."""
        from psycopg import sql

        with self.server.admin() as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                    sql.Identifier(self.name), sql.Identifier(setting), sql.Literal(value)
                )
            )

    def set_idle_session_timeout(self, seconds: float) -> None:
        """New sessions idle (outside a transaction) this long are ended by the server."""
        self.set("idle_session_timeout", f"{round(seconds * 1000)}ms")

    def backends(self) -> list[int]:
        return self.server.backends(self.name)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL, started once; skips (or fails in CI) without one."""
    bindir = require_postgres()
    server = PgServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@contextmanager
def _fresh_database(server: PgServer) -> Iterator[PgDatabase]:
    db = server.create_database()
    try:
        yield db
    finally:
        server.drop_database(db.name)


@pytest.fixture
def pg_db(pg_server: PgServer) -> Iterator[PgDatabase]:
    """A fresh database for one test, dropped afterwards (even if the test stopped the server)."""
    with _fresh_database(pg_server) as db:
        yield db


@pytest.fixture(scope="module")
def pg_module_db(pg_server: PgServer) -> Iterator[PgDatabase]:
    """A fresh database shared by one test module."""
    with _fresh_database(pg_server) as db:
        yield db


@pytest.fixture
def pg_url(pg_db: PgDatabase) -> str:
    """``postgresql://feedsvc:…@127.0.0.1:port/db`` of a fresh database for one test."""
    return pg_db.url


def wait_until(check: Any, *, timeout: float, interval: float = 0.01) -> float:
    """Poll ``check()`` until truthy; the seconds it took, or raise TimeoutError (benches)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"not within {timeout:g} s: {check}")
        time.sleep(interval)
    return time.monotonic() - start


@pytest.fixture
def pg_schema_url(pg_module_db: PgDatabase) -> Iterator[str]:
    """A URL whose ``search_path`` is a fresh schema in the module's database (cheap: no new
    database per test), dropped with everything in it afterwards."""
    schema = f"s_{secrets.token_hex(6)}"
    with pg_module_db.connect() as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{pg_module_db.url}?options=-csearch_path%3D{schema}"
    finally:
        with pg_module_db.connect() as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
