"""The PostgreSQL store (≥ 14, psycopg 3): the same tables and queries as SQLite (``sql.py``).

Imported only when ``store_url`` is a ``postgresql://`` URL, so a SQLite build never loads
psycopg. The connection is autocommit; ``transaction`` opens one explicitly and first takes a
transaction-level advisory lock keyed by ``site_id`` (``pg_advisory_xact_lock``), so two
builders of one site never write at once: the second waits for the first's commit. (Leader
election with a session lock, heartbeats and epochs comes later, #10 part 2.)

Every driver error leaves as a one-line ``StoreError`` naming the URL without its password.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import psycopg
from psycopg import pq
from pydantic import ValidationError

from ..config import redact_url
from ..errors import StoreError
from ..models import Entry
from .sql import (
    MIGRATIONS,
    POSTGRES,
    SCHEMA,
    SCHEMA_VERSION,
    SQLStore,
    iso,
    lock_key,
    schema_version,
    too_new,
)

CONNECT_TIMEOUT = 10  # seconds, for an unreachable host
RECOVERY = "restore it from a pg_dump, or empty the schema and build again"
# one key for every site: creating and migrating the schema, which all sites of a database share
SCHEMA_LOCK = lock_key("feedsvc schema")


def application_name(
    role: str = "feedsvc", *, host: str | None = None, pid: int | None = None
) -> str:
    """``role@host:pid`` (≤ 63 bytes, PostgreSQL's limit): which process a session belongs to."""
    host = socket.gethostname() if host is None else host
    return f"{role}@{host}:{os.getpid() if pid is None else pid}"[:63]


def _cause(e: psycopg.Error) -> str:
    """A driver error as one printable line with its SQLSTATE, never the password."""
    text = str(e) or type(e).__name__
    flat = "; ".join(part.strip() for part in text.splitlines() if part.strip())
    flat = "".join(c if c.isprintable() else "?" for c in flat)
    flat = flat if len(flat) <= 300 else flat[:299] + "…"
    code = getattr(e, "sqlstate", None)
    return f"{flat} ({code or type(e).__name__})"


class _Connection:
    """psycopg's connection with sqlite3's face: ``execute`` and ``executemany`` on the shared
    SQL, whose ``?`` placeholders become ``%s`` here (``Dialect.sql``)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.conn.execute(POSTGRES.sql(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            with self.conn.cursor() as cursor:
                cursor.executemany(POSTGRES.sql(sql), rows)

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != pq.TransactionStatus.IDLE


class PostgresStore(SQLStore):
    """The store in a PostgreSQL database (the schema of the URL's ``search_path``).

    Opening creates the tables, migrates an older schema (``MIGRATIONS``, the same as SQLite's)
    and refuses a newer one; a database holding another site's store (``meta.site_id``) is
    refused too.
    """

    dialect = POSTGRES
    keeps_documents = True  # serve nodes on other hosts mirror them (documents.py)
    receives_seeds = True  # ingest hosts report their seeds (inbox.py)

    def __init__(self, url: str, *, site_id: str) -> None:
        self.url = url
        self.where = redact_url(url)
        self.site_id = site_id
        self._lock_key = lock_key(site_id)
        try:
            conn = psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT,
                application_name=application_name(),
            )
        except psycopg.Error as e:
            raise StoreError(self.where, f"cannot connect: {_cause(e)}") from None
        self._db = _Connection(conn)
        try:
            self._prepare()
        except psycopg.Error as e:
            self.close()
            raise StoreError(self.where, _cause(e)) from None
        except BaseException:
            self.close()
            raise

    def _schema_version(self) -> int | None:
        tables = {
            r[0]
            for r in self._db.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema()"
            )
        }
        row = (
            self._db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            if "meta" in tables
            else None
        )
        return schema_version(
            tables, row[0] if row else None, self.where, own="database or schema", recovery=RECOVERY
        )

    def _prepare(self) -> None:
        """Create a new store, or bring an older schema up to ``SCHEMA_VERSION``, atomically."""
        current = int(SCHEMA_VERSION)
        self._db.execute("BEGIN")
        try:
            self._db.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
            found = self._schema_version()
            if found is not None and found > current:
                raise too_new(self.where, found, SCHEMA_VERSION)
            for version in range(current + 1 if found is None else found + 1, current + 1):
                if version not in MIGRATIONS:
                    raise StoreError(
                        self.where,
                        f"no migration from schema {version - 1} to {version}; "
                        "use the feedsvc version that wrote this store",
                    )
                self._db.conn.execute(POSTGRES.ddl(MIGRATIONS[version]))
            self._db.conn.execute(POSTGRES.ddl(SCHEMA))  # idempotent: CREATE ... IF NOT EXISTS
            if found != current:
                self.set_meta("schema", str(current))
            if self.get_meta("created") is None:
                self.set_meta("created", iso(datetime.now(UTC)))
            owner = self.get_meta("site_id")
            if owner is None:
                self.set_meta("site_id", self.site_id)
            elif owner != self.site_id:
                raise StoreError(
                    self.where,
                    f"holds the store of site {owner!r}, not {self.site_id!r} (site_id); "
                    "give each site its own database or schema",
                )
        except BaseException:
            self._rollback()
            raise
        self._db.execute("COMMIT")

    def _rollback(self) -> None:
        if self._db.in_transaction:
            with suppress(psycopg.Error):
                self._db.execute("ROLLBACK")

    def close(self) -> None:
        self._db.conn.close()

    def __enter__(self) -> PostgresStore:
        return self

    def damaged(self, detail: str) -> StoreError:
        return StoreError(self.where, f"the store is damaged ({detail})", damaged=True)

    def __exit__(
        self,
        typ: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        if isinstance(exc, psycopg.Error):
            raise StoreError(self.where, _cause(exc)) from exc
        if isinstance(exc, ValidationError) and exc.title == Entry.__name__:
            detail = f"an article stored in it does not validate: {exc.errors()[0]['msg']}"
            raise StoreError(self.where, f"the store is damaged ({detail})", damaged=True) from exc

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing, and one builder of this site at a time (the advisory lock)."""
        try:
            self._db.execute("BEGIN")
            self._db.execute("SELECT pg_advisory_xact_lock(?)", (self._lock_key,))
        except psycopg.Error as e:
            self._rollback()
            raise StoreError(self.where, _cause(e)) from e
        try:
            yield
        except psycopg.Error as e:
            self._rollback()
            raise StoreError(self.where, _cause(e)) from e
        except BaseException:
            self._rollback()
            raise
        try:
            self._db.execute("COMMIT")
        except psycopg.Error as e:
            self._rollback()
            raise StoreError(self.where, _cause(e)) from e
