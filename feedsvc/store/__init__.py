"""The store: the only place that knows SQL, the database file and the driver's exceptions.

Callers see the ``Store`` protocol and open one with ``open_store(settings)``: SQLite
(``sqlite.py``) unless ``store_url`` names a PostgreSQL database (``postgres.py``, imported only
then). Both share the schema and the queries (``sql.py``). Every driver error leaves as a
``StoreError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..config import Settings
from ..errors import StoreError
from .base import ArticleRow, FileState, Member, NewArticle, Stamp, Store, StoreSummary
from .documents import DocumentRef, StoredDocument
from .inbox import InboxRow
from .sql import STAMPS_META
from .sqlite import (
    REPLACED_SUFFIX,
    SCHEMA_VERSION,
    STORE_FILE,
    SQLiteStore,
    backup_store,
    check_store,
    restore_store,
    snapshot,
    store_path,
)

if TYPE_CHECKING:
    from .listen import Listener

__all__ = [
    "REPLACED_SUFFIX",
    "SCHEMA_VERSION",
    "STAMPS_META",
    "STORE_FILE",
    "ArticleRow",
    "DocumentRef",
    "FileState",
    "InboxRow",
    "Member",
    "NewArticle",
    "SQLiteStore",
    "Stamp",
    "Store",
    "StoreSummary",
    "StoredDocument",
    "backup_store",
    "check_store",
    "open_listener",
    "open_store",
    "restore_store",
    "snapshot",
    "snapshot_store",
    "store_path",
]


def open_store(settings: Settings, *, verify: bool = False) -> Store:
    """The store of ``settings``; ``verify`` reads all of it first (SQLite's ``quick_check``).

    With a ``store_url``, the PostgreSQL store (``verify`` has nothing to do there: the server
    checks its own pages).
    """
    if settings.store_url is not None:
        from .postgres import PostgresStore  # psycopg only for a PostgreSQL store

        return PostgresStore(settings.store_url, site_id=settings.site)
    return SQLiteStore(store_path(settings.state_dir), verify=verify)


def open_listener(settings: Settings) -> Listener:
    """A listener for the wake-ups of this site (PostgreSQL's ``LISTEN``; see ``listen.py``).

    A SQLite store has no other hosts to hear from: ``StoreError``.
    """
    if settings.store_url is None:
        raise StoreError(
            str(store_path(settings.state_dir)),
            "documents are kept and announced only in a PostgreSQL store; set store_url",
        )
    from .listen import Listener

    return Listener(settings.store_url, site_id=settings.site)


def snapshot_store(settings: Settings, into: Path) -> None:
    """A consistent copy of the store of ``settings`` as a SQLite store in the state dir
    ``into`` (a dry run's scratch store: whatever it does stays there).

    From PostgreSQL, every table is read in one transaction and written to a new SQLite store.
    """
    if settings.store_url is None:
        snapshot(settings.state_dir, into)
        return
    from .postgres import PostgresStore
    from .sql import TABLES

    with (
        PostgresStore(settings.store_url, site_id=settings.site) as source,
        source.transaction(),
        SQLiteStore(store_path(into)) as target,
        target.transaction(),
    ):
        for name in TABLES:
            columns, rows = source.dump(name)
            if name == "meta":
                rows = [r for r in rows if r[0] != "schema"]
            target.load(name, columns, rows)
