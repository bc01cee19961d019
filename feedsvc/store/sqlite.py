"""The SQLite store: per-file state, the last valid article per key, and the id ledger.

SQLite (WAL) behind the ``Store`` protocol (``feedsvc.store``); the queries, the schema and the
migrations are shared with PostgreSQL in ``sql.py``. One transaction per build: a killed build
leaves the store as it was.

Opening checks what is cheap on every open (the file header, the schema version) and, when
asked (every full build), runs ``PRAGMA quick_check``, which reads the whole file, if the file
was changed by anything but our own last close: a clean close records the store's and its
WAL's size, mtime, ctime and inode in ``STAMP_SUFFIX`` beside it (at 100k articles the store
is ~670 MB, too much to read on every build). ``feedsvc store check`` always reads it all.
Every driver error leaves this module as a one-line ``StoreError`` naming the file and the
cause; a damaged store says how to get back (``restore_store`` or adoption).
"""

from __future__ import annotations

import os
import resource
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from pydantic import ValidationError

from .._causes import low_on_space, os_cause
from .._lock import build_lock
from ..errors import FeedsvcError, StoreError
from ..models import Entry
from .base import StoreSummary
from .sql import MIGRATIONS, SCHEMA, SCHEMA_VERSION, SQLStore, iso, schema_version, too_new

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SQLiteStore"]

SQLITE_MAGIC = b"SQLite format 3\x00"
RECOVERY = (
    "restore a backup with 'feedsvc store restore BACKUP', or move the file away (with its -wal "
    "and -shm files) and build again: a new store adopts the ids published in feeds/"
)
STORE_FILE = "feedsvc.sqlite3"  # in state_dir, with its -wal and -shm beside it
REPLACED_SUFFIX = ".replaced"  # what ``restore_store`` keeps of the store it replaced
STAMP_SUFFIX = ".stamp"  # the store's stat as our last clean close left it (see ``_stamp``)


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
        if _rollback_journal_mode(path):  # a cold build's bulk load holds it to its commit
            return f"a cold build is still loading the store; try again when it ends ({name})"
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
    # a hot rollback journal (a killed bulk load: ``_bulk_journal``) holds what is missing
    journal = path.with_name(path.name + "-journal")
    if (
        valid
        and size < pages * page_size
        and not (wal.exists() and wal.stat().st_size)
        and not journal.exists()
    ):
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
    row = (
        db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        if ("meta" in tables)
        else None
    )
    return schema_version(tables, row[0] if row else None, str(path), own="file", recovery=RECOVERY)


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
    return too_new(str(path), found, SCHEMA_VERSION)


class SQLiteStore(SQLStore):
    """SQLite in ``state_dir/feedsvc.sqlite3``; use as a context manager.

    Opening creates a new store, migrates an older schema (``MIGRATIONS``) and refuses a newer
    one; ``verify=True`` also reads every page (``PRAGMA quick_check``).
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
            for statement in _statements(SCHEMA):  # idempotent: CREATE ... IF NOT EXISTS
                self._db.execute(statement)
            if found != current:
                self.set_meta("schema", str(current))
            if self.get_meta("created") is None:  # what an empty feed is dated with, for good
                self.set_meta("created", iso(datetime.now(UTC)))
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

    def damaged(self, detail: str) -> StoreError:
        return StoreError(self.path, _damaged(detail), damaged=True)

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
        A transaction into an empty store (a cold build's bulk load) runs with a rollback
        journal instead of the WAL (``_bulk_journal``), then the store is WAL again.
        """
        bulk = self._bulk_journal()
        try:
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
        finally:
            if bulk:  # back to the WAL (failing that, the next open sets it)
                with suppress(sqlite3.Error):
                    self._db.execute("PRAGMA journal_mode=WAL")

    def _bulk_journal(self) -> bool:
        """Switch an empty store to a rollback journal (``DELETE``) for one transaction.

        In WAL mode every page a bulk load writes goes to the WAL at commit and is copied
        into the store by the checkpoint: written twice. A rollback journal keeps only the
        old contents of the pages a transaction changes, and an empty store has next to
        none: the new pages are written once, in place (a 10,000-seed cold build: 0.2 s of
        CPU less). Crash safety is the same (``synchronous=FULL``: the journal is synced
        before the store is written; a kill leaves a hot journal that the next open rolls
        back). While it runs, a reader (``store backup``) waits for it instead of reading
        the empty store beside it. False: the store is not empty, or another connection
        kept it in WAL mode.
        """
        if not self.is_empty():
            return False
        try:
            mode = self._db.execute("PRAGMA journal_mode=DELETE").fetchone()
        except sqlite3.Error:
            return False
        return mode is not None and str(mode[0]).lower() == "delete"


# --- the store file as a whole: check, back up, restore ------------------------------------------
# How long a reader (``store check``, ``store backup``) waits for a lock: a build's commit and
# checkpoint are short in WAL mode; but a cold build's bulk load, with a rollback journal,
# keeps readers out until it commits (a 100,000-seed cold build: ~45 s on 2 cores).
BUSY_TIMEOUT_MS = 10_000
BULK_LOAD_WAIT_MS = 600_000


def _rollback_journal_mode(path: Path) -> bool:
    """The file format's write version (header byte 18): 1 with a rollback journal, 2 in WAL
    mode. feedsvc leaves WAL mode only for a cold build's bulk load (or a crash in it)."""
    try:
        with open(path, "rb") as f:
            return f.read(19)[18:] == b"\x01"
    except OSError:
        return False


def _roll_back_hot_journal(path: Path) -> None:
    """A cold build killed in its bulk load (``_bulk_journal``) leaves a hot rollback journal,
    which a read-only connection cannot play back (SQLITE_READONLY_ROLLBACK): a read-write
    connection that only reads does, as the next build's open would (the store is then as
    it was before the killed transaction). A journal of a live writer is not hot: SQLite
    leaves it alone (this waits for its commit). Nothing to do without a journal, or in a
    folder nobody can write.
    """
    journal = path.with_name(path.name + "-journal")
    try:
        if not journal.stat().st_size or not os.access(path.parent, os.W_OK):
            return
    except OSError:
        return
    try:
        db = sqlite3.connect(path, isolation_level=None)
        try:  # the journal of a live bulk load: wait for its commit, as a reader would
            db.execute(f"PRAGMA busy_timeout={BULK_LOAD_WAIT_MS}")
            db.execute("SELECT 1 FROM sqlite_schema LIMIT 1").fetchall()
        finally:
            db.close()
    except sqlite3.Error as e:
        raise store_error(path, e) from e


def _open_read_only(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise StoreError(path, "no store here")
    _check_header(path)
    _roll_back_hot_journal(path)
    uri = f"{path.resolve().as_uri()}?mode=ro"
    # a store with a rollback journal is being bulk loaded (``_bulk_journal``): the load
    # holds it whole until its commit, so a reader waits for that, not only ``BUSY_TIMEOUT_MS``
    wait_ms = BULK_LOAD_WAIT_MS if _rollback_journal_mode(path) else BUSY_TIMEOUT_MS
    try:
        try:
            db = sqlite3.connect(uri, uri=True)
            db.execute(f"PRAGMA busy_timeout={wait_ms}")
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
            for suffix in ("", "-wal", "-shm", "-journal"):
                target.with_name(aside.name + suffix).unlink(missing_ok=True)
            if target.exists():
                os.replace(target, aside)
            for suffix in ("-wal", "-journal"):  # the WAL or a hot journal (a killed cold
                # build) belongs to the old file: it goes with it
                beside = target.with_name(target.name + suffix)
                if beside.exists():
                    os.replace(beside, aside.with_name(aside.name + suffix))
            target.with_name(target.name + "-shm").unlink(missing_ok=True)
            os.replace(tmp, target)
            _fsync_dir(state_dir)
        except OSError as e:
            raise StoreError(e.filename or target, f"cannot restore: {os_cause(e)}") from e
    return StoreSummary(target, summary.schema, summary.articles, summary.live, summary.size)
