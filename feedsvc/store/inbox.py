"""Seeds of other hosts in the store (#10, the ingest role): what the builder scans beside its own.

An ingest host reads and parses its own seeds (the scan stage, the one parser) and upserts each
file's outcome here, keyed by (host, path): its stamp, the parsed article as JSON or the error,
and a ``version``, a digest of what the builder gets. The builder reads these rows as a second
source of scan results, under the names ``//host/path`` (``seeds.remote_path``), and records
them in ``files`` as it records its own seeds; a row whose ``version`` is the ``file_hash`` the
builder recorded is unchanged. A file deleted on its host is a deleted row.

The table exists on both backends (one schema), but only a store with ``receives_seeds``
(PostgreSQL) is read: with SQLite there is no other host, and a build costs what it did.
``InboxQueries`` is mixed into ``SQLStore``: the SQL is the shared SQL, in the dialect.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

# The inbox table, for new stores (``sql.SCHEMA``) and as migration 4 of older ones.
INBOX_TABLE = """
CREATE TABLE IF NOT EXISTS inbox (
    host       TEXT NOT NULL,     -- the ingest host's node_name
    path       TEXT NOT NULL,     -- relative to that host's seeds/, as stored
    key        TEXT NOT NULL,
    size       INTEGER NOT NULL,  -- the stat the bytes were read at, on that host
    mtime_ns   INTEGER NOT NULL,
    ctime_ns   INTEGER NOT NULL,
    inode      INTEGER NOT NULL,
    version    TEXT NOT NULL,     -- digest of the bytes' hash, the article and the error
    article    TEXT,              -- the parsed Article as JSON; NULL when the file was rejected
    error      TEXT,              -- the reason it was rejected
    error_line INTEGER,
    PRIMARY KEY (host, path)
);
"""
WAKE_SEEDS = "seeds"  # the wake-up topic of an ingest that changed the inbox
SEEN = "inbox_seen:"  # meta, + host: when that host last reported (its last ingest round)
FETCH_BATCH = 200  # rows fetched per query by the builder


@dataclass(frozen=True, slots=True)
class InboxRow:
    """One seed of an ingest host, as it read and parsed it."""

    host: str
    path: str
    key: str
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    version: str
    article: str | None  # Article JSON
    error: str | None
    error_line: int | None

    @property
    def stamp(self) -> tuple[int, int, int, int]:
        return (self.size, self.mtime_ns, self.ctime_ns, self.inode)


_COLUMNS = "host, path, key, size, mtime_ns, ctime_ns, inode, version, article, error, error_line"


class InboxQueries:
    """The inbox table on ``self._db``; see the module docstring."""

    receives_seeds: bool = False  # only PostgreSQL stores are read for other hosts' seeds
    _db: Any

    # --- the ingest host ------------------------------------------------------------------
    def inbox_stamps(self, host: str) -> dict[str, tuple[tuple[int, int, int, int], str, bool]]:
        """``host``'s reported files: path -> (stamp, version, rejected)."""
        rows = self._db.execute(
            "SELECT path, size, mtime_ns, ctime_ns, inode, version, error IS NOT NULL"
            " FROM inbox WHERE host = ?",
            (host,),
        )
        return {r[0]: ((r[1], r[2], r[3], r[4]), r[5], bool(r[6])) for r in rows}

    def inbox_put(self, rows: Iterable[InboxRow]) -> None:
        """Insert or replace these files' rows."""
        updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS.split(", ")[2:])
        self._db.executemany(
            f"INSERT INTO inbox ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            f" ON CONFLICT (host, path) DO UPDATE SET {updates}",
            [
                (
                    r.host,
                    r.path,
                    r.key,
                    r.size,
                    r.mtime_ns,
                    r.ctime_ns,
                    r.inode,
                    r.version,
                    r.article,
                    r.error,
                    r.error_line,
                )
                for r in rows
            ],
        )

    def inbox_drop(self, host: str, paths: Iterable[str] | None = None) -> None:
        """Forget ``host``'s files ``paths`` (deleted there), or all of them (None)."""
        if paths is None:
            self._db.execute("DELETE FROM inbox WHERE host = ?", (host,))
            return
        self._db.executemany(
            "DELETE FROM inbox WHERE host = ? AND path = ?", [(host, p) for p in paths]
        )

    def inbox_errors(self, host: str) -> list[tuple[str, int, str]]:
        """(path, line, reason) of each of ``host``'s files it rejected, by path."""
        rows = self._db.execute(
            "SELECT path, error_line, error FROM inbox WHERE host = ? AND error IS NOT NULL"
            " ORDER BY path",
            (host,),
        )
        return [(r[0], int(r[1] or 1), r[2]) for r in rows]

    # --- the builder ----------------------------------------------------------------------
    def inbox_versions(self) -> dict[tuple[str, str], str]:
        """Every reported file's (host, path) -> version: what the builder compares."""
        rows = self._db.execute("SELECT host, path, version FROM inbox")
        return {(r[0], r[1]): r[2] for r in rows}

    def inbox_rows(self, wanted: Sequence[tuple[str, str]]) -> Iterator[InboxRow]:
        """The rows of ``wanted`` (host, path) that are there, a batch at a time."""
        for start in range(0, len(wanted), FETCH_BATCH):
            batch = wanted[start : start + FETCH_BATCH]
            where = " OR ".join("(host = ? AND path = ?)" for _ in batch)
            params = [v for pair in batch for v in pair]
            for r in self._db.execute(f"SELECT {_COLUMNS} FROM inbox WHERE {where}", params):
                yield InboxRow(*r)

    def inbox_hosts(self) -> dict[str, int]:
        """Each ingest host and how many files it reports."""
        rows = self._db.execute("SELECT host, COUNT(*) FROM inbox GROUP BY host ORDER BY host")
        return {r[0]: int(r[1]) for r in rows}

    def remote_file_hashes(self) -> dict[str, str | None]:
        """The builder's ``files`` rows of other hosts' seeds (``//host/path``): path -> hash."""
        rows = self._db.execute(  # a range on the primary key: "//" .. "/0"
            "SELECT path, file_hash FROM files WHERE path >= ? AND path < ?", ("//", "/0")
        )
        return {r[0]: r[1] for r in rows}

    def orphan_paths(self) -> list[str]:
        """Valid files whose key no file publishes: a duplicate left alone with its key.

        The file that published the key was deleted or turned into another key, possibly on
        another host, while this one waited as its duplicate: it is read again and publishes.
        """
        rows = self._db.execute(
            "SELECT f.path FROM files f JOIN articles a ON a.key = f.key"
            " WHERE f.error IS NULL AND (a.path IS NULL OR NOT EXISTS"
            " (SELECT 1 FROM files g WHERE g.path = a.path)) ORDER BY f.path"
        )
        return [r[0] for r in rows]
