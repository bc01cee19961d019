"""``feedsvc migrate-store``: copy the SQLite store into PostgreSQL, ledger and all.

Every table is copied row for row in one PostgreSQL transaction (under the site's build lock
there and the state directory's lock here), so every entry keeps its id and a failed copy
leaves nothing behind. A target that already holds exactly this ledger is left alone (running
it twice is harmless); one holding another site's data is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._lock import build_lock
from ..config import Settings, redact_url
from ..errors import StoreError
from .sql import TABLES
from .sqlite import SQLiteStore, store_path


@dataclass(frozen=True, slots=True)
class MigrateReport:
    source: str
    target: str  # the URL without its password
    copied: bool  # False: the target already held this store
    entries: int  # ledger entries (published or not)
    live: int  # published articles
    rows: int  # rows copied, all tables


def migrate_store(settings: Settings, url: str, *, lock_timeout: float) -> MigrateReport:
    """Copy the store of ``settings.state_dir`` into the PostgreSQL database at ``url``."""
    from .postgres import PostgresStore  # psycopg only here

    source = store_path(settings.state_dir)
    if not source.is_file():
        raise StoreError(
            source, "no store here: nothing to migrate (build first, or check --config)"
        )
    where = redact_url(url)
    with (
        build_lock(settings.state_dir, timeout=lock_timeout),
        SQLiteStore(source) as src,
        PostgresStore(url, site_id=settings.site) as dst,
        dst.transaction(),
    ):
        authority = dst.get_meta("id_authority")
        if authority is not None and authority != settings.id_authority:
            raise StoreError(
                where,
                f"holds entry ids minted for {authority!r}, this site mints them for "
                f"{settings.id_authority!r}; migrate into an empty database or schema",
            )
        tables = {name: src.dump(name) for name in TABLES}
        ours = {str(r[0]): str(r[1]) for r in _rows(tables["articles"], "key", "entry_id")}
        live = sum(1 for path in _column(tables["articles"], "path") if path is not None)
        theirs = {str(r[0]): str(r[1]) for r in _rows(dst.dump("articles"), "key", "entry_id")}
        if theirs:
            differ = sorted(k for k in ours if theirs.get(k) != ours[k])
            if differ:  # else: copied before (the target may have moved on since)
                raise StoreError(
                    where,
                    f"already holds another ledger ({len(theirs)} entries; {differ[0]!r} is "
                    "not as in this store); migrate into an empty database or schema",
                )
            return MigrateReport(str(source), where, False, len(ours), live, 0)
        rows = 0
        for name, (columns, data) in tables.items():
            if name == "meta":  # the target's own schema version and site stay
                data = [r for r in data if r[0] not in ("schema", "site_id")]
            dst.load(name, columns, data)
            rows += len(data)
        dst.set_meta("id_authority", settings.id_authority)
        return MigrateReport(str(source), where, True, len(ours), live, rows)


def _column(table: tuple[list[str], list[tuple[object, ...]]], name: str) -> list[object]:
    columns, data = table
    i = columns.index(name)
    return [r[i] for r in data]


def _rows(
    table: tuple[list[str], list[tuple[object, ...]]], *names: str
) -> list[tuple[object, ...]]:
    columns, data = table
    idx = [columns.index(n) for n in names]
    return [tuple(r[i] for i in idx) for r in data]
