"""The store: the only place that knows SQL, the database file and the driver's exceptions.

Callers see the ``Store`` protocol and open one with ``open_store(settings)``: SQLite
(``sqlite.py``) unless ``store_url`` names a PostgreSQL database (``postgres.py``, imported only
then). Both share the schema and the queries (``sql.py``). Every driver error leaves as a
``StoreError``.
"""

from __future__ import annotations

from ..config import Settings
from .base import ArticleRow, FileState, Member, Stamp, Store, StoreSummary
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

__all__ = [
    "REPLACED_SUFFIX",
    "SCHEMA_VERSION",
    "STORE_FILE",
    "ArticleRow",
    "FileState",
    "Member",
    "SQLiteStore",
    "Stamp",
    "Store",
    "StoreSummary",
    "backup_store",
    "check_store",
    "open_store",
    "restore_store",
    "snapshot",
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
