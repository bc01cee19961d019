"""The SQLite store: per-file state, the last valid article per key, and the id ledger.

SQLite (WAL) behind the ``Store`` protocol (``feedsvc.store``) with portable SQL (``INSERT ...
ON CONFLICT``), so another backend can follow. One transaction per build: a killed build
leaves the store as it was.

Opening checks what is cheap on every open (the file header, the schema version) and, when
asked (every full build), runs ``PRAGMA quick_check``, which reads the whole file, if the file
was changed by anything but our own last close: a clean close records the store's and its
WAL's size, mtime, ctime and inode in ``STAMP_SUFFIX`` beside it (at 100k articles the store
is ~670 MB, too much to read on every build). ``feedsvc store check`` always reads it all.
Every driver error leaves this module as a one-line ``StoreError`` naming the file
and the cause; a damaged store says how to get back (``restore_store`` or adoption).
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from .._causes import low_on_space, os_cause
from .._lock import build_lock
from ..errors import FeedsvcError, StoreError
from ..models import Entry
from .base import ArticleRow, FileState, Member, Stamp, StoreSummary

STORE_FILE = "feedsvc.sqlite3"  # in state_dir, with its -wal and -shm beside it
REPLACED_SUFFIX = ".replaced"  # what ``restore_store`` keeps of the store it replaced
STAMP_SUFFIX = ".stamp"  # the store's stat as our last clean close left it (see ``_stamp``)
SCHEMA_VERSION = "2"
# target version -> the SQL that upgrades a store from the version before it. Applied in order,
# all in one transaction, when a store with an older schema is opened.
MIGRATIONS: dict[int, str] = {
    # v2: ctime and inode join size and mtime in change detection; 0 matches no real file, so
    # every file of a v1 store is read (hashed) once more on the next build.
    2: "ALTER TABLE files ADD COLUMN ctime_ns INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE files ADD COLUMN inode INTEGER NOT NULL DEFAULT 0",
}
ADOPTED_HASH = "adopted"  # content_hash of a ledger row taken from feeds/, until a seed confirms it
SQLITE_MAGIC = b"SQLite format 3\x00"
RECOVERY = (
    "restore a backup with 'feedsvc store restore BACKUP', or move the file away (with its -wal "
    "and -shm files) and build again: a new store adopts the ids published in feeds/"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    path       TEXT PRIMARY KEY,  -- relative to seeds/, '/'-separated
    key        TEXT NOT NULL,
    size       INTEGER NOT NULL,
    mtime_ns   INTEGER NOT NULL,
    file_hash  TEXT,              -- sha256 of the bytes last read; NULL when unreadable
    error      TEXT,              -- last error reason; NULL when the file is valid
    error_line INTEGER,
    warnings   TEXT NOT NULL DEFAULT '[]',
    ctime_ns   INTEGER NOT NULL DEFAULT 0,
    inode      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS files_key ON files (key);
CREATE INDEX IF NOT EXISTS files_error ON files (path) WHERE error IS NOT NULL;
CREATE TABLE IF NOT EXISTS articles (
    key          TEXT PRIMARY KEY,
    entry_id     TEXT NOT NULL UNIQUE,  -- the id ledger: never changes once minted
    path         TEXT,                  -- the file it is published from; NULL once deleted
    content_hash TEXT NOT NULL,
    published    TEXT NOT NULL,         -- UTC ISO 8601, sorts as text
    first_seen   TEXT NOT NULL,
    updated      TEXT NOT NULL,
    article      TEXT NOT NULL          -- the validated Article as JSON
);
CREATE INDEX IF NOT EXISTS articles_live ON articles (published DESC, key DESC)
    WHERE path IS NOT NULL;
CREATE INDEX IF NOT EXISTS articles_path ON articles (path);
CREATE INDEX IF NOT EXISTS articles_hash ON articles (content_hash) WHERE path IS NULL;
CREATE TABLE IF NOT EXISTS members (
    feed      TEXT NOT NULL,       -- a feed's name ("all", "politik", "category/sport")
    key       TEXT NOT NULL,       -- a published article in it
    published TEXT NOT NULL,       -- copied from articles, so a feed's newest N is one index walk
    seq       INTEGER,             -- its place in the RFC 5005 archive, once it left the feed
    PRIMARY KEY (feed, key)
);
CREATE INDEX IF NOT EXISTS members_newest ON members (feed, published DESC, key DESC);
CREATE INDEX IF NOT EXISTS members_seq ON members (feed, seq) WHERE seq IS NOT NULL;
CREATE INDEX IF NOT EXISTS members_key ON members (key);
CREATE INDEX IF NOT EXISTS members_open ON members (feed, published, key) WHERE seq IS NULL;
CREATE TABLE IF NOT EXISTS outputs (
    path     TEXT PRIMARY KEY,    -- a file the last builds wrote, relative to feeds/
    size     INTEGER NOT NULL,    -- its stat right after: a build re-stats and compares
    mtime_ns INTEGER NOT NULL,
    inode    INTEGER NOT NULL
);
"""


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def store_path(state_dir: Path) -> Path:
    return state_dir / STORE_FILE


def _one_line(text: str, limit: int = 200) -> str:
    """Driver and check messages as one printable line, cut to ``limit`` characters."""
    flat = "; ".join(part.strip() for part in text.splitlines() if part.strip())
    flat = "".join(c if c.isprintable() else "?" for c in flat)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _damaged(detail: str) -> str:
    return f"the store is damaged ({_one_line(detail)}); {RECOVERY}"


def sqlite_cause(path: Path, e: sqlite3.Error) -> str:
    """``disk full (SQLITE_FULL)``: a driver error in words, with the code to search for."""
    name = getattr(e, "sqlite_errorname", None) or type(e).__name__
    if "decode to UTF-8" in str(e):  # text the driver cannot read: garbage in a page
        return _damaged(f"a text column holds bytes that are not UTF-8 ({name})")
    if name == "SQLITE_FULL" or (name.startswith("SQLITE_IOERR") and low_on_space(path.parent)):
        return f"disk full ({name})"
    if name.startswith("SQLITE_READONLY"):
        return f"read-only: the store cannot be written ({name}); check the mount and permissions"
    if name.startswith("SQLITE_CANTOPEN"):
        return f"cannot open the store ({name}); the state directory must exist and be writable"
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return _damaged(f"{e} ({name})")
    if name.startswith("SQLITE_BUSY"):
        return f"locked by another process for too long ({name})"
    if name.startswith("SQLITE_IOERR"):
        cap, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        if cap != resource.RLIM_INFINITY:  # EFBIG: SQLite cannot tell it from other errors
            return f"I/O error ({name}); this process may write files of {cap} bytes at most"
        return f"I/O error ({name})"
    return f"{_one_line(str(e))} ({name})"


def store_error(path: Path, e: sqlite3.Error) -> StoreError:
    reason = sqlite_cause(path, e)
    return StoreError(path, reason, damaged=reason.endswith(RECOVERY))


def _check_header(path: Path) -> None:
    """Cheap checks before SQLite sees the file: its magic, and that it is not cut short.

    A missing or empty file is a new store. The size check trusts the header's page count only
    when SQLite marks it valid, and only without a WAL (a checkpoint may still extend the file).
    """
    try:
        with open(path, "rb") as f:
            header = f.read(100)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        return
    except OSError as e:
        raise StoreError(path, f"cannot read the store: {os_cause(e)}") from e
    if not header:
        return
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        raise StoreError(
            path, _damaged("not an SQLite database: the header is wrong"), damaged=True
        )
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    valid = pages and header[24:28] == header[92:96]
    wal = path.with_name(path.name + "-wal")
    if valid and size < pages * page_size and not (wal.exists() and wal.stat().st_size):
        raise StoreError(
            path,
            _damaged(f"cut short: {size} bytes, the header says {pages * page_size}"),
            damaged=True,
        )


def _stamp(path: Path) -> str:
    """The store's and its WAL's size, mtime, ctime and inode: any write by anyone changes it."""
    parts = []
    for name in (path.name, path.name + "-wal"):
        try:
            st = os.stat(path.with_name(name))
        except FileNotFoundError:
            parts.append("-")
            continue
        parts.append(f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino}")
    return "; ".join(parts) + "\n"


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + STAMP_SUFFIX)


def _changed_since_our_close(path: Path) -> bool:
    """True unless the store is exactly as our last clean close left it (see ``_stamp``)."""
    try:
        return _stamp_path(path).read_text(encoding="ascii") != _stamp(path)
    except (OSError, UnicodeDecodeError):
        return True


def _quick_check(db: sqlite3.Connection) -> str | None:
    """The first problem ``PRAGMA quick_check`` finds (it reads every page), or None."""
    rows = db.execute("PRAGMA quick_check(3)").fetchall()
    if rows == [("ok",)]:
        return None
    first = "; ".join(str(r[0]) for r in rows)
    return f"quick_check: {first[:200]}"


def _schema_version(db: sqlite3.Connection, path: Path) -> int | None:
    """The store's schema version; None for an empty database (a new store)."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    if not tables:
        return None
    if "meta" not in tables:
        raise StoreError(path, "not a feedsvc store (no meta table); give feedsvc its own file")
    row = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
    if row is None or not str(row[0]).isdigit():
        raise StoreError(
            path, _damaged(f"schema version {row[0] if row else 'missing'!r}"), damaged=True
        )
    return int(row[0])


def _statements(script: str) -> Iterator[str]:
    """The statements of an SQL script, one at a time (``executescript`` would commit first)."""
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            buffer = ""
            if statement.strip(";").strip():
                yield statement
    if buffer.strip(";").strip():
        yield buffer  # incomplete: SQLite says what is wrong with it


def _too_new(path: Path, found: int) -> StoreError:
    return StoreError(
        path,
        f"the store has schema {found}, newer than this feedsvc knows ({SCHEMA_VERSION}): it was "
        "written by a newer feedsvc; run that version, or restore a backup made with this one",
    )


class SQLiteStore:
    """SQLite in ``state_dir/feedsvc.sqlite3``; use as a context manager.

    Opening creates a new store, migrates an older schema (``MIGRATIONS``) and refuses a newer
    one; ``verify=True`` also reads every page (``PRAGMA quick_check``) when the file changed
    since our last clean close (``_stamp``).
    """

    def __init__(self, path: Path, *, verify: bool = False) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(e.filename or path.parent, f"cannot create: {os_cause(e)}") from e
        _check_header(path)
        # read every page only when someone else may have written the file since our last close
        self.checked = verify and path.exists() and _changed_since_our_close(path)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            raise store_error(path, e) from e
        try:
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            if self.checked:
                problem = _quick_check(self._db)
                if problem is not None:
                    raise StoreError(path, _damaged(problem), damaged=True)
            self._prepare()
        except sqlite3.Error as e:
            self._db.close()
            raise store_error(path, e) from e
        except BaseException:
            self._db.close()
            raise

    def _prepare(self) -> None:
        """Create a new store, or bring an older schema up to ``SCHEMA_VERSION``, atomically."""
        current = int(SCHEMA_VERSION)
        self._db.execute("BEGIN IMMEDIATE")  # one process decides and migrates
        try:
            found = _schema_version(self._db, self.path)
            if found is not None and found > current:
                raise _too_new(self.path, found)
            for version in range(current + 1 if found is None else found + 1, current + 1):
                if version not in MIGRATIONS:
                    raise StoreError(
                        self.path,
                        f"no migration from schema {version - 1} to {version}; "
                        "use the feedsvc version that wrote this store",
                    )
                for statement in _statements(MIGRATIONS[version]):
                    self._db.execute(statement)
            for statement in _statements(_SCHEMA):  # idempotent: CREATE ... IF NOT EXISTS
                self._db.execute(statement)
            if found != current:
                self.set_meta("schema", str(current))
            if self.get_meta("created") is None:  # what an empty feed is dated with, for good
                self.set_meta("created", _iso(datetime.now(UTC)))
        except BaseException:
            self._rollback()
            raise
        self._db.execute("COMMIT")

    def _rollback(self) -> None:
        """Undo what is pending; SQLite may have rolled back already (e.g. on SQLITE_FULL)."""
        if self._db.in_transaction:
            with suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def close(self) -> None:
        self._db.close()

    def _record_stamp(self) -> None:
        """After a clean close: the file as we left it, so the next open can skip quick_check."""
        try:
            _stamp_path(self.path).write_text(_stamp(self.path), encoding="ascii")
        except OSError:
            with suppress(OSError):
                _stamp_path(self.path).unlink(missing_ok=True)  # no stamp: the next open checks

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(
        self,
        typ: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close; a driver error that got this far leaves as a ``StoreError``.

        So does an article stored here that no longer validates: only garbage in the file
        makes the JSON we wrote unreadable.
        """
        self.close()
        if exc is None or (isinstance(exc, FeedsvcError) and not isinstance(exc, StoreError)):
            self._record_stamp()  # e.g. a MassDeletionError rolled back: the file is ours
        if isinstance(exc, sqlite3.Error):
            raise store_error(self.path, exc) from exc
        if isinstance(exc, ValidationError) and exc.title == Entry.__name__:
            detail = f"an article stored in it does not validate: {exc.errors()[0]['msg']}"
            raise StoreError(self.path, _damaged(detail), damaged=True) from exc

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: an exception (or a kill) rolls everything back.

        Driver errors, ``COMMIT``'s included, leave as ``StoreError``; others pass unchanged.
        """
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise store_error(self.path, e) from e
        try:
            yield
        except sqlite3.Error as e:
            self._rollback()
            raise store_error(self.path, e) from e
        except BaseException:
            self._rollback()
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback()
            raise store_error(self.path, e) from e

    # --- meta -------------------------------------------------------------------------
    def get_meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, name: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    # --- adoption: a new store takes the ids feeds/ already published ----------------------------
    def needs_adoption(self) -> bool:
        """A store that has never minted an id (new, or rebuilt), or one restored from a backup."""
        if self.get_meta("adopt") is not None:
            return True
        return self._db.execute("SELECT 1 FROM articles LIMIT 1").fetchone() is None

    def adopt_entry(
        self, key: str, entry_id: str, *, published: datetime, updated: datetime
    ) -> bool:
        """Put a published entry in the ledger as unpublished, so its seed gets this id back.

        Nothing is changed for a key the ledger knows or an id it has given out (False). Until
        ``confirm_adopted``, its content counts as changed; ``updated`` keeps its UTC offset,
        so the feeds come out byte for byte as before.
        """
        if self.article_row(key) is not None or self.has_entry_id(entry_id):
            return False
        self._db.execute(
            "INSERT INTO articles (key, entry_id, path, content_hash, published, first_seen,"
            " updated, article) VALUES (?, ?, NULL, ?, ?, ?, ?, ?)",
            (
                key,
                entry_id,
                ADOPTED_HASH,
                _iso(published),
                _iso(min(published, updated)),
                updated.isoformat(),
                json.dumps({"key": key, "entry_id": entry_id, "adopted": True}),
            ),
        )
        return True

    def confirm_adopted(self, key: str, content_hash: str) -> None:
        """The seed of an adopted entry reads as the feeds showed it: its ``updated`` stays."""
        self._db.execute(
            "UPDATE articles SET content_hash = ? WHERE key = ? AND content_hash = ?",
            (content_hash, key, ADOPTED_HASH),
        )

    def adoption_done(self) -> None:
        self._db.execute("DELETE FROM meta WHERE name = 'adopt'")

    # --- files --------------------------------------------------------------------------
    def file_states(self, paths: Iterable[str] | None = None) -> dict[str, FileState]:
        """Every file's state, or only those of ``paths`` (an incremental build's few rows)."""
        sql = (
            "SELECT path, key, size, mtime_ns, file_hash, error, error_line, warnings,"
            " ctime_ns, inode FROM files"
        )
        if paths is None:
            rows: Iterable[tuple[Any, ...]] = self._db.execute(sql)
        else:
            rows = [r for p in paths for r in self._db.execute(sql + " WHERE path = ?", (p,))]
        return {
            r[0]: FileState(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                () if r[7] == "[]" else tuple(json.loads(r[7])),  # most have none
                r[8],
                r[9],
            )
            for r in rows
        }

    def file_stamps(self) -> dict[str, tuple[int, int, int, int] | None]:
        """Every file's (size, mtime_ns, ctime_ns, inode) as last read; None when its stat
        proves nothing (never hashed, or rejected: it is read again). Far lighter than
        ``file_states`` for a full scan in which most files are unchanged."""
        rows = self._db.execute(
            "SELECT path, size, mtime_ns, ctime_ns, inode,"
            " file_hash IS NOT NULL AND error IS NULL FROM files"
        )
        return {r[0]: (r[1], r[2], r[3], r[4]) if r[5] else None for r in rows}

    def put_file(self, state: FileState) -> None:
        self._db.execute(
            "INSERT INTO files (path, key, size, mtime_ns, file_hash, error, error_line, warnings,"
            " ctime_ns, inode) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE"
            " SET key = excluded.key, size = excluded.size, mtime_ns = excluded.mtime_ns,"
            " file_hash = excluded.file_hash, error = excluded.error,"
            " error_line = excluded.error_line, warnings = excluded.warnings,"
            " ctime_ns = excluded.ctime_ns, inode = excluded.inode",
            (
                state.path,
                state.key,
                state.size,
                state.mtime_ns,
                state.file_hash,
                state.error,
                state.error_line,
                json.dumps(list(state.warnings)),
                state.ctime_ns,
                state.inode,
            ),
        )

    def delete_file(self, path: str) -> None:
        self._db.execute("DELETE FROM files WHERE path = ?", (path,))

    def paths_with_keys(self, keys: Iterable[str]) -> dict[str, list[str]]:
        """key -> the files that carry it, for the given keys."""
        return {key: self.paths_with_key(key) for key in keys}

    def paths_with_key(self, key: str) -> list[str]:
        rows = self._db.execute("SELECT path FROM files WHERE key = ? ORDER BY path", (key,))
        return [r[0] for r in rows]

    def duplicate_paths(self) -> dict[str, list[str]]:
        """Files that share a key with another file: key -> paths."""
        rows = self._db.execute(
            "SELECT key, path FROM files WHERE key IN "
            "(SELECT key FROM files GROUP BY key HAVING COUNT(*) > 1) ORDER BY key, path"
        )
        out: dict[str, list[str]] = {}
        for key, path in rows:
            out.setdefault(key, []).append(path)
        return out

    # --- articles and the id ledger ---------------------------------------------------------
    def article_row(self, key: str) -> ArticleRow | None:
        r = self._db.execute(
            "SELECT key, entry_id, path, content_hash, first_seen, updated FROM articles"
            " WHERE key = ?",
            (key,),
        ).fetchone()
        if r is None:
            return None
        return ArticleRow(
            r[0], r[1], r[2], r[3], datetime.fromisoformat(r[4]), datetime.fromisoformat(r[5])
        )

    def has_entry_id(self, entry_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM articles WHERE entry_id = ?", (entry_id,)).fetchone()
        return row is not None

    def retired_key(self, content_hash: str) -> str | None:
        """The key of a deleted article with exactly this content: a renamed file's old name."""
        r = self._db.execute(
            "SELECT key FROM articles WHERE path IS NULL AND content_hash = ? ORDER BY key LIMIT 1",
            (content_hash,),
        ).fetchone()
        return None if r is None else str(r[0])

    def put_article(self, entry: Entry, *, path: str, first_seen: datetime) -> None:
        """Insert or replace the published version of ``entry.key``."""
        self._db.execute(
            "INSERT INTO articles (key, entry_id, path, content_hash, published, first_seen,"
            " updated, article) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
            " entry_id = excluded.entry_id, path = excluded.path,"
            " content_hash = excluded.content_hash, published = excluded.published,"
            " first_seen = excluded.first_seen, updated = excluded.updated,"
            " article = excluded.article",
            (
                entry.key,
                entry.entry_id,
                path,
                entry.content_hash,
                _iso(entry.published),
                _iso(first_seen),
                _iso(entry.updated),
                entry.model_dump_json(exclude={"warnings"}),
            ),
        )

    def retire(self, key: str) -> None:
        """Unpublish (the file is gone) but keep the ledger entry so the id is never reused."""
        self._db.execute("UPDATE articles SET path = NULL WHERE key = ?", (key,))

    def forget(self, key: str) -> None:
        self._db.execute("DELETE FROM articles WHERE key = ?", (key,))

    def key_at_path(self, path: str) -> str | None:
        r = self._db.execute("SELECT key FROM articles WHERE path = ?", (path,)).fetchone()
        return None if r is None else str(r[0])

    def replace_entry_id(self, key: str, entry_id: str) -> bool:
        """Publish ``key`` under an id carried over from another publisher (``import-ids``).

        False (nothing changed) when the ledger already gave ``entry_id`` to any article,
        published or deleted: an id is never shared.
        """
        if self.has_entry_id(entry_id):
            return False
        article = self._db.execute("SELECT article FROM articles WHERE key = ?", (key,)).fetchone()
        if article is None:
            raise KeyError(key)
        stored = Entry.model_validate_json(article[0]).model_copy(update={"entry_id": entry_id})
        self._db.execute(
            "UPDATE articles SET entry_id = ?, article = ? WHERE key = ?",
            (entry_id, stored.model_dump_json(exclude={"warnings"}), key),
        )
        self.force_rerender()
        return True

    def newest_date(self) -> datetime | None:
        """The newest date the ledger knows, from data only: an article's last change or first
        sight (deleted ones too), else the day this store was made. None: neither is known.

        What an empty feed is dated with (RFC 4287 wants ``atom:updated``; the clock would
        change the bytes of every rebuild).
        """
        newest: datetime | None = None
        for updated, first_seen in self._db.execute("SELECT updated, first_seen FROM articles"):
            when = max(datetime.fromisoformat(updated), datetime.fromisoformat(first_seen))
            newest = when if newest is None else max(newest, when)
        if newest is None:
            created = self.get_meta("created")
            newest = datetime.fromisoformat(created) if created else None
        return newest

    def force_rerender(self) -> None:
        """Make the next build render every output again (the ledger changed under them)."""
        self._db.execute("DELETE FROM meta WHERE name = 'render_fp'")

    # --- feed membership and RFC 5005 archive places ------------------------------------------
    def set_members(self, key: str, published: datetime, feeds: Iterable[str]) -> list[Member]:
        """Put ``key`` in exactly ``feeds``; returns its rows from before (to see what moved).

        A feed it stays in keeps its archive place, so archive pages do not shift.
        """
        old = self.members_of(key)
        wanted = set(feeds)
        when = _iso(published)
        for member in old:
            if member.feed not in wanted:
                self._db.execute(
                    "DELETE FROM members WHERE feed = ? AND key = ?", (member.feed, key)
                )
        self._db.executemany(
            "INSERT INTO members (feed, key, published) VALUES (?, ?, ?)"
            " ON CONFLICT (feed, key) DO UPDATE SET published = excluded.published",
            [(feed, key, when) for feed in sorted(wanted)],
        )
        return old

    def drop_members(self, key: str) -> list[Member]:
        """Take ``key`` out of every feed; returns the rows it had."""
        old = self.members_of(key)
        self._db.execute("DELETE FROM members WHERE key = ?", (key,))
        return old

    def members_of(self, key: str) -> list[Member]:
        rows = self._db.execute("SELECT feed, seq FROM members WHERE key = ?", (key,))
        return [Member(feed, seq) for feed, seq in rows]

    def clear_members(self) -> None:
        self._db.execute("DELETE FROM members")

    def member_feeds(self, prefix: str) -> list[str]:
        """Names of the feeds that have members and start with ``prefix``."""
        rows = self._db.execute(
            "SELECT DISTINCT feed FROM members WHERE feed >= ? AND feed < ? ORDER BY feed",
            (prefix, prefix + "\U0010ffff"),
        )
        return [r[0] for r in rows]

    def feed_articles(self, feed: str, limit: int) -> list[Entry]:
        """A feed's newest ``limit`` articles without an archive place, newest first.

        An entry with an archive place is never in a current document; ties broken by key.
        """
        rows = self._db.execute(
            "SELECT a.article FROM members m JOIN articles a ON a.key = m.key"
            " WHERE m.feed = ? AND m.seq IS NULL ORDER BY m.published DESC, m.key DESC LIMIT ?",
            (feed, limit),
        )
        return [Entry.model_validate_json(r[0]) for r in rows]

    def unarchived_after(self, feed: str, newest: int) -> list[str]:
        """Keys without an archive place past the newest ``newest`` of them, oldest first."""
        edge = self._db.execute(
            "SELECT published, key FROM members WHERE feed = ? AND seq IS NULL"
            " ORDER BY published DESC, key DESC LIMIT 1 OFFSET ?",
            (feed, max(newest - 1, 0)),
        ).fetchone()
        if edge is None:
            return []
        if newest == 0:
            edge = ("\U0010ffff", "")
        rows = self._db.execute(
            "SELECT key FROM members WHERE feed = ? AND seq IS NULL AND (published, key) < (?, ?)"
            " ORDER BY published, key",
            (feed, *edge),
        )
        return [r[0] for r in rows]

    def last_archived(self, feed: str, limit: int) -> list[tuple[str, int]]:
        """The ``limit`` most recently archived entries: (key, seq), highest place first."""
        rows = self._db.execute(
            "SELECT key, seq FROM members WHERE feed = ? AND seq IS NOT NULL"
            " ORDER BY seq DESC LIMIT ?",
            (feed, limit),
        )
        return [(r[0], int(r[1])) for r in rows]

    def next_seq(self, feed: str) -> int:
        row = self._db.execute(
            "SELECT MAX(seq) FROM members WHERE feed = ? AND seq IS NOT NULL", (feed,)
        ).fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def set_seq(self, feed: str, key: str, seq: int | None) -> None:
        """Give ``key`` its archive place in ``feed`` (None: back in the current document)."""
        self._db.execute("UPDATE members SET seq = ? WHERE feed = ? AND key = ?", (seq, feed, key))

    def archived(self, feed: str, first: int, stop: int) -> list[Entry]:
        """Articles with archive places in ``[first, stop)``, newest first."""
        rows = self._db.execute(
            "SELECT a.article FROM members m JOIN articles a ON a.key = m.key"
            " WHERE m.feed = ? AND m.seq >= ? AND m.seq < ?"
            " ORDER BY m.published DESC, m.key DESC",
            (feed, first, stop),
        )
        return [Entry.model_validate_json(r[0]) for r in rows]

    # --- the output manifest: what the builds wrote into feeds/, as they left it ---------------
    def output_stamps(
        self, paths: Iterable[str] | None = None, *, skip_folder: str | None = None
    ) -> dict[str, Stamp]:
        """Every output's (size, mtime_ns, inode) as recorded right after it was written.

        Or only those of ``paths``, or all but those under ``skip_folder`` (an incremental
        build leaves the many article pages it does not write alone).
        """
        sql = "SELECT path, size, mtime_ns, inode FROM outputs"
        rows: Iterable[tuple[Any, ...]]
        if paths is not None:
            sql += " WHERE path = ?"
            rows = [r for p in paths for r in self._db.execute(sql, (p,))]
        elif skip_folder is not None:  # a range on the primary key: "folder/" .. "folder0"
            start = skip_folder.rstrip("/") + "/"
            rows = self._db.execute(sql + " WHERE path < ? OR path >= ?", (start, start[:-1] + "0"))
        else:
            rows = self._db.execute(sql)
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def record_outputs(self, stamps: Mapping[str, Stamp | None]) -> None:
        """Remember these outputs' stamps; None forgets an output (removed, or not there)."""
        self._db.executemany(
            "DELETE FROM outputs WHERE path = ?", [(p,) for p, s in stamps.items() if s is None]
        )
        self._db.executemany(
            "INSERT INTO outputs (path, size, mtime_ns, inode) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (path) DO UPDATE SET size = excluded.size,"
            " mtime_ns = excluded.mtime_ns, inode = excluded.inode",
            [(p, *s) for p, s in stamps.items() if s is not None],
        )

    def live_keys(self) -> list[str]:
        """The keys of every published article (their pages are outputs)."""
        rows = self._db.execute("SELECT key FROM articles WHERE path IS NOT NULL")
        return [r[0] for r in rows]

    def articles(self, keys: Iterable[str]) -> list[Entry]:
        """The published articles among ``keys``."""
        out = []
        for key in keys:
            row = self._db.execute(
                "SELECT article FROM articles WHERE key = ? AND path IS NOT NULL", (key,)
            ).fetchone()
            if row is not None:
                out.append(Entry.model_validate_json(row[0]))
        return out

    def iter_live_articles(self) -> Iterator[Entry]:
        """Every published article, one at a time (memory stays flat on a large corpus)."""
        cursor = self._db.execute(
            "SELECT article FROM articles WHERE path IS NOT NULL ORDER BY key"
        )
        for (raw,) in cursor:
            yield Entry.model_validate_json(raw)

    def live_articles(self, limit: int | None = None) -> list[Entry]:
        """Published articles, newest first; ties broken by key so output is stable."""
        sql = (
            "SELECT article FROM articles WHERE path IS NOT NULL ORDER BY published DESC, key DESC"
        )
        params: tuple[int, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (limit,)
        return [Entry.model_validate_json(r[0]) for r in self._db.execute(sql, params)]

    def count_live(self) -> int:
        return int(
            self._db.execute("SELECT COUNT(*) FROM articles WHERE path IS NOT NULL").fetchone()[0]
        )

    def errors(self) -> list[tuple[str, int, str]]:
        """(path, line, reason) of every file whose last read failed."""
        rows = self._db.execute(
            "SELECT path, error_line, error FROM files WHERE error IS NOT NULL ORDER BY path"
        )
        return [(r[0], int(r[1] or 1), r[2]) for r in rows]


# --- the store file as a whole: check, back up, restore ------------------------------------------
def _open_read_only(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise StoreError(path, "no store here")
    _check_header(path)
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        try:
            db = sqlite3.connect(uri, uri=True)
            db.execute("PRAGMA busy_timeout=10000")
            db.execute("SELECT 1 FROM sqlite_schema LIMIT 1").fetchall()
        except sqlite3.OperationalError:
            if os.access(path.parent, os.W_OK):
                raise
            # a WAL store in a read-only folder: no WAL index can be made, and nobody can
            # write it either, so reading it as immutable is safe
            db = sqlite3.connect(uri + "&immutable=1", uri=True)
    except sqlite3.Error as e:
        raise store_error(path, e) from e
    return db


def _summary(db: sqlite3.Connection, path: Path) -> StoreSummary:
    schema = _schema_version(db, path)
    if schema is None:
        raise StoreError(path, "an empty database, not a feedsvc store")
    if schema > int(SCHEMA_VERSION):
        raise _too_new(path, schema)
    total, live = db.execute("SELECT COUNT(*), COUNT(path) FROM articles").fetchone()
    return StoreSummary(path, schema, int(total), int(live), path.stat().st_size)


def _verified(db: sqlite3.Connection, path: Path) -> StoreSummary:
    problem = _quick_check(db)
    if problem is not None:
        raise StoreError(path, _damaged(problem), damaged=True)
    return _summary(db, path)


def check_store(path: Path) -> StoreSummary:
    """Read every page and every stored article (without changing anything); ``StoreError``.

    Deeper than the check at open: ``quick_check`` sees the file's structure, not garbage
    inside a record, so each published article is read back and validated too.
    """
    db = _open_read_only(path)
    try:
        summary = _verified(db, path)
        rows = db.execute("SELECT key, article FROM articles WHERE path IS NOT NULL")
        for key, raw in rows:
            try:
                Entry.model_validate_json(raw)
            except ValidationError as e:
                detail = f"article {key} does not validate: {e.errors()[0]['msg']}"
                raise StoreError(path, _damaged(detail), damaged=True) from e
        return summary
    except sqlite3.Error as e:
        raise store_error(path, e) from e
    finally:
        db.close()


def _copy(source: Path, target: Path, *, restored: bool) -> StoreSummary:
    """An online, consistent copy of ``source`` (SQLite's backup API), checked, then renamed in.

    A live writer is not disturbed: the copy is one read transaction of a WAL database.
    """
    tmp = target.with_name(f".{target.name}.tmp")
    for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
        leftover.unlink(missing_ok=True)
    src = _open_read_only(source)
    try:
        _summary(src, source)  # a file that is no feedsvc store is not copied at all
        dst = sqlite3.connect(tmp, isolation_level=None)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            if restored:  # ids published after the backup are adopted from feeds/ again
                dst.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('adopt', '1')")
                dst.execute("DELETE FROM meta WHERE name = 'render_fp'")
            problem = _quick_check(dst)
            if problem is not None:
                raise StoreError(source, _damaged(problem), damaged=True)
            summary = _summary(dst, tmp)
        finally:
            dst.close()
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except sqlite3.Error as e:
        tmp.unlink(missing_ok=True)
        where = target if getattr(e, "sqlite_errorname", "") == "SQLITE_FULL" else source
        raise store_error(where, e) from e
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise StoreError(e.filename or target, f"cannot write the copy: {os_cause(e)}") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    return StoreSummary(
        target, summary.schema, summary.articles, summary.live, target.stat().st_size
    )


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def snapshot(state_dir: Path, into: Path) -> None:
    """A consistent copy of ``state_dir``'s store into the state dir ``into`` (a dry run's).

    No store yet: nothing is copied (the dry run starts from a new one).
    """
    source = store_path(state_dir)
    if not source.is_file():
        return
    try:
        into.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(e.filename or into, f"cannot create: {os_cause(e)}") from e
    _copy(source, store_path(into), restored=False)


def backup_store(state_dir: Path, target: Path) -> StoreSummary:
    """Copy the store to ``target`` while builds (and the daemon) go on; ``target`` is replaced."""
    if target.is_dir():
        target = target / STORE_FILE
    source = store_path(state_dir)
    if target.resolve() == source.resolve():
        raise StoreError(target, "is the store itself; give the backup another name")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(e.filename or target.parent, f"cannot create: {os_cause(e)}") from e
    return _copy(source, target, restored=False)


def restore_store(state_dir: Path, backup: Path, *, lock_timeout: float) -> StoreSummary:
    """Put the store in ``backup`` in place, under the build lock; the old one is kept aside.

    The old file (with its WAL) becomes ``feedsvc.sqlite3.replaced``; the next build rewrites
    feeds/ from the restored store and adopts the ids of articles published after the backup.
    """
    check_store(backup)
    target = store_path(state_dir)
    with build_lock(state_dir, timeout=lock_timeout):
        tmp = state_dir / f".{STORE_FILE}.restore"
        summary = _copy(backup, tmp, restored=True)
        aside = target.with_name(target.name + REPLACED_SUFFIX)
        try:
            for suffix in ("", "-wal", "-shm"):
                target.with_name(aside.name + suffix).unlink(missing_ok=True)
            if target.exists():
                os.replace(target, aside)
            wal = target.with_name(target.name + "-wal")
            if wal.exists():  # the WAL belongs to the old file: it goes with it
                os.replace(wal, aside.with_name(aside.name + "-wal"))
            target.with_name(target.name + "-shm").unlink(missing_ok=True)
            os.replace(tmp, target)
            _fsync_dir(state_dir)
        except OSError as e:
            raise StoreError(e.filename or target, f"cannot restore: {os_cause(e)}") from e
    return StoreSummary(target, summary.schema, summary.articles, summary.live, summary.size)
