"""What both store backends share: the schema, the migrations, the SQL, and the dialect.

The SQL text lives once, written for SQLite (``?`` placeholders, ``INTEGER`` and ``TEXT``);
``Dialect`` is the one small place that knows how PostgreSQL differs: ``%s`` placeholders,
``BIGINT`` for nanosecond stamps, ``TEXT COLLATE "C"`` so text sorts by code point as in SQLite
(``ORDER BY key`` and the archive edge compare the same way on both), the build lock, and the
schema lookup. ``SQLStore`` holds every query; a backend adds connecting, transactions and
turning its driver's errors into ``StoreError``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, get_args

from pydantic_core import from_json

from ..errors import StoreError
from ..models import Block, Entry, blocks, trusted
from .base import ArticleRow, FileState, Member, NewArticle, Stamp
from .documents import DOCUMENTS_TABLE, DocumentQueries
from .inbox import INBOX_TABLE, InboxQueries

SCHEMA_VERSION = "4"
# target version -> the SQL that upgrades a store from the version before it. Applied in order,
# all in one transaction, when a store with an older schema is opened.
MIGRATIONS: dict[int, str] = {
    # v2: ctime and inode join size and mtime in change detection; 0 matches no real file, so
    # every file of a v1 store is read (hashed) once more on the next build (and the digest
    # of the last listing, ``STAMPS_META``, no longer speaks for the stamps).
    2: "ALTER TABLE files ADD COLUMN ctime_ns INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE files ADD COLUMN inode INTEGER NOT NULL DEFAULT 0;"
    "DELETE FROM meta WHERE name = 'stamps'",
    # v3: the published documents, for serve nodes on other hosts (written on PostgreSQL only)
    3: DOCUMENTS_TABLE,
    # v4: other hosts' seeds, for a builder apart from its ingest hosts (read on PostgreSQL only)
    4: INBOX_TABLE,
}
ADOPTED_HASH = "adopted"  # content_hash of a ledger row taken from feeds/, until a seed confirms it

SCHEMA = """
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
-- the HTML archive's places (``live_listing``), read from the index alone
CREATE INDEX IF NOT EXISTS articles_listing ON articles (published, first_seen, key, content_hash)
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
SCHEMA += DOCUMENTS_TABLE  # store/documents.py
SCHEMA += INBOX_TABLE  # store/inbox.py


# The secondary indexes, (name, CREATE statement): dropped for a bulk load, built after it.
INDEXES: tuple[tuple[str, str], ...] = tuple(
    (m["name"], m[0])
    for m in re.finditer(r"CREATE INDEX IF NOT EXISTS (?P<name>\w+) ON [^;]*", SCHEMA)
)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


READ_BATCH = 500  # keys per ``IN (...)`` query of ``articles`` (SQLite allows 32,766 params)
_TEXT_FIELDS = ("key", "source", "title", "lead", "language", "content_hash", "entry_id")
_KINDS = frozenset(get_args(Block.model_fields["kind"].annotation))  # ``Block.kind``
# Characters that make XML invalid, which ``XmlText`` keeps out of an article's texts: the
# entry writer (``render.feeds``) writes the texts as they are, so a damaged record's would
# make a feed no reader parses. In the stored JSON a C0 control is an escape (``\u0001``,
# ``\b``, ``\f``), U+FFFE/U+FFFF are themselves or escapes: the texts are searched only when
# the JSON holds a backslash or one of them (single characters, found at memchr speed).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def stored_entry(raw: str | bytes) -> Entry:
    """The ``Entry`` of an ``articles.article`` JSON text that this store wrote.

    No pydantic validation: the store wrote only validated entries (``put_article``,
    ``add_articles``), so the JSON is decoded and its shape checked, nothing more (a
    validation costs about twice as much, twice per article in a cold build with pages and
    archives: its patterns run over every text again). Garbage inside a
    record is ``quick_check``'s and ``check_store``'s to find; what gets this far raises
    ``ValueError`` (or ``KeyError``/``TypeError``), which the store turns into a
    ``StoreError`` naming the article. Fields retired since (``word_count``) are ignored.
    """
    d = from_json(raw)  # (pydantic-core's JSON parser: faster than ``json.loads``)
    if any(type(d[name]) is not str for name in _TEXT_FIELDS):
        raise ValueError("a text field is not a string")
    # (a block without a kind raises ``KeyError`` here; one of another kind is no Block's)
    pairs = [(block["kind"], block["text"]) for block in d["body"]]
    if any(len(b) != 2 for b in d["body"]) or any(
        type(text) is not str or kind not in _KINDS for kind, text in pairs
    ):
        raise ValueError("a body block is not a kind and a text")
    body = blocks(pairs)
    if not body:
        raise ValueError("no body")
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    if ("\\" in text or "\ufffe" in text or "\uffff" in text) and any(
        _NOT_XML.search(t) for t in (d["title"], d["lead"], *(b["text"] for b in d["body"]))
    ):
        raise ValueError("a text holds a character XML forbids")
    fields = {
        "key": d["key"],
        "source": d["source"],
        "title": d["title"],
        "lead": d["lead"],
        "body": body,
        "published": _aware(d["published"]),
        "updated": _aware(d["updated"]),
        "language": d["language"],
        "content_hash": d["content_hash"],
        "warnings": (),  # not stored (``exclude={"warnings"}``)
        "entry_id": d["entry_id"],
    }
    return trusted(Entry, fields)


def keyed_entry(key: str, raw: str | bytes) -> Entry:
    """``stored_entry`` of ``key``'s row; ``ValueError`` saying what is wrong when it is
    garbage (the store names itself: ``damaged``; a cold build's page workers send it back)."""
    try:
        entry = stored_entry(raw)
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"article {key} does not validate: {e}") from e
    if entry.key != key:
        raise ValueError(f"article {key} does not validate: it holds {entry.key!r}")
    return entry


def _aware(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"a date without a UTC offset: {text!r}")
    return value


# Each table and its primary key: what ``migrate-store`` copies, row for row.
TABLES: dict[str, tuple[str, ...]] = {
    "meta": ("name",),
    "files": ("path",),
    "articles": ("key",),
    "members": ("feed", "key"),
    "outputs": ("path",),
    "inbox": ("host", "path"),
}


# The meta entry for the digest of a full scan's listing (``build/scan.py``), as
# "<scan_ns>:<sha256>": kept only while the store's files are exactly that listing. Every
# ``put_file``, ``delete_file`` and ``add_files`` drops it in the same transaction (and the
# v2 migration); the ledger writes it again (``ledger.record_stamps``).
STAMPS_META = "stamps"


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one database spells what the shared SQL says."""

    name: str
    placeholder: str  # what ``?`` becomes
    integer: str  # what ``INTEGER`` becomes in DDL
    text: str  # what ``TEXT`` becomes in DDL
    blob: str = "BLOB"  # what ``BLOB`` becomes in DDL
    # Waking other processes at commit (PostgreSQL's NOTIFY): the statement, given the channel
    # and the payload; None: they poll. Channel and payload are made here and nowhere else.
    wake: str | None = None
    # The title in ``articles.article`` (JSON text), read in SQL (no model validation)
    title: str = "json_extract(article, '$.title')"
    # A TEXT value bound as its UTF-8 bytes (a cold build's article JSON: ``add_articles``):
    # stored as the same text the ``str`` would make, without decoding it in Python first
    utf8_text: str = "CAST(? AS TEXT)"

    def channel(self, site_id: str) -> str:
        """The wake-up channel of one site (an identifier: ``LISTEN`` takes it unquoted)."""
        return f"feedsvc_{lock_key(site_id) & 0xFFFFFFFFFFFFFFFF:016x}"

    def payload(self, topic: str) -> str:
        """A wake-up's payload: what changed (``documents``: a publish; ``seeds``: ingest)."""
        return topic

    def sql(self, statement: str) -> str:
        """A statement of the shared SQL in this dialect (placeholders rewritten)."""
        return _rewrite(statement, self.placeholder)

    def ddl(self, script: str) -> str:
        """A schema script (``SCHEMA``, a migration) with this dialect's column types."""
        script = re.sub(r"\bINTEGER\b", self.integer, script)
        script = re.sub(r"\bBLOB\b", self.blob, script)
        return re.sub(r"\bTEXT\b", self.text, script)


@lru_cache(maxsize=512)
def _rewrite(statement: str, placeholder: str) -> str:
    if placeholder == "?":
        return statement
    return statement.replace("%", "%%").replace("?", placeholder)


SQLITE = Dialect("sqlite", "?", "INTEGER", "TEXT")
POSTGRES = Dialect(
    "postgresql",
    "%s",
    "BIGINT",
    'TEXT COLLATE "C"',
    blob="BYTEA",
    wake="SELECT pg_notify(?, ?)",
    title="(article::json ->> 'title')",
    utf8_text="convert_from(?, 'UTF8')",
)


def lock_key(site_id: str) -> int:
    """A site's advisory-lock key: a signed 64-bit number from its ``site_id``."""
    digest = hashlib.sha256(b"feedsvc build lock\0" + site_id.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def schema_version(
    tables: set[str], meta_schema: Any, where: str, *, own: str, recovery: str
) -> int | None:
    """The store's schema version from its table names and ``meta.schema``; None: empty."""
    if not tables:
        return None
    if "meta" not in tables:
        raise StoreError(where, f"not a feedsvc store (no meta table); give feedsvc its own {own}")
    if meta_schema is None or not str(meta_schema).isdigit():
        found = meta_schema if meta_schema is not None else "missing"
        raise StoreError(
            where, f"the store is damaged (schema version {found!r}); {recovery}", damaged=True
        )
    return int(meta_schema)


def too_new(where: str, found: int, known: str) -> StoreError:
    return StoreError(
        where,
        f"the store has schema {found}, newer than this feedsvc knows ({known}): it was "
        "written by a newer feedsvc; run that version, or restore a backup made with this one",
    )


class SQLStore(DocumentQueries, InboxQueries):
    """Every query of the ``Store`` protocol, on ``self._db`` in ``self.dialect``.

    ``self._db`` is a connection whose ``execute(sql, params)`` returns a cursor (iterable,
    ``fetchone``) and which has ``executemany``: sqlite3's, or ``postgres._Connection``.
    """

    dialect: Dialect = SQLITE
    _db: Any
    site_id: str = ""

    def wake(self, topic: str) -> None:
        """Wake this site's listeners when the transaction commits (where the dialect can)."""
        if self.dialect.wake is not None:
            channel = self.dialect.channel(self.site_id)
            self._db.execute(self.dialect.wake, (channel, self.dialect.payload(topic)))

    def damaged(self, detail: str) -> StoreError:
        """The error for garbage inside a record of this store (a backend names itself)."""
        return StoreError(
            self.site_id or "the store", f"the store is damaged ({detail})", damaged=True
        )

    def _entry(self, key: str, raw: str | bytes) -> Entry:
        """``stored_entry`` of ``key``'s row; one ``StoreError`` naming it if it is garbage."""
        try:
            return keyed_entry(key, raw)
        except ValueError as e:
            raise self.damaged(str(e)) from e.__cause__

    # --- meta -------------------------------------------------------------------------
    def _stamps_changed(self) -> None:
        """A file's stamp is written: the digest of the last full listing proves nothing now."""
        self._db.execute("DELETE FROM meta WHERE name = ?", (STAMPS_META,))

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
                iso(published),
                iso(min(published, updated)),
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

    def file_stamps(self, before_ns: int) -> set[tuple[str, int, int, int, int]]:
        """Every file as (path, size, mtime_ns, ctime_ns, inode), for a full scan to compare
        with its stats in bulk: a file whose stat gives the same tuple is unchanged.

        The size is -1 (no stat has it) where the stamp proves nothing: the file was never
        hashed or was rejected (it is read again), or one of its times is not before
        ``before_ns`` (git's racy-clean rule). One set of the rows as SQLite returns them:
        about half the CPU of a dict of stamps by path at 100,000 files.
        """
        rows = self._db.execute(
            "SELECT path, CASE WHEN file_hash IS NOT NULL AND error IS NULL AND mtime_ns < ?"
            " AND ctime_ns < ? THEN size ELSE -1 END, mtime_ns, ctime_ns, inode FROM files",
            (before_ns, before_ns),
        )
        return set(rows)

    def put_file(self, state: FileState) -> None:
        self._stamps_changed()
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
        self._stamps_changed()
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

    # --- a bulk load into an empty store (a cold build): no lookups, rows in batches -----------
    def is_empty(self) -> bool:
        """No seed file, ledger entry or membership yet: every lookup of a build would miss."""
        for table in ("files", "articles", "members"):
            if self._db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None:
                return False
        return True

    def bulk_indexes(self, *, built: bool) -> None:
        """Drop the secondary indexes before a bulk load (``built=False``), build them after.

        Sorting once costs less than keeping eight indexes up to date row by row. Both run
        in the build's transaction (index DDL is transactional in SQLite and PostgreSQL), so
        a killed build leaves the store with its indexes, as it was.
        """
        for name, statement in INDEXES:
            self._db.execute(statement if built else f"DROP INDEX IF EXISTS {name}")

    def add_files(self, states: Iterable[FileState]) -> None:
        """``put_file`` for many files the store does not know, in one ``executemany``."""
        self._stamps_changed()
        self._db.executemany(
            "INSERT INTO files (path, key, size, mtime_ns, file_hash, error, error_line, warnings,"
            " ctime_ns, inode) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    s.path,
                    s.key,
                    s.size,
                    s.mtime_ns,
                    s.file_hash,
                    s.error,
                    s.error_line,
                    json.dumps(list(s.warnings)) if s.warnings else "[]",
                    s.ctime_ns,
                    s.inode,
                )
                for s in states
            ],
        )

    def add_articles(self, rows: Iterable[tuple[NewArticle, str]], first_seen: datetime) -> None:
        """``put_article`` + ``set_members`` for keys the ledger has never seen, at once.

        ``rows``: (the article's row form, its path), all first seen at ``first_seen``. A key
        already there is the caller's bug: the insert fails (the build rolls back) rather
        than overwrite a ledger entry.
        """
        seen = iso(first_seen)
        articles = []
        members = []
        for new, path in rows:
            key, published = new.key, new.published
            articles.append(
                (key, new.entry_id, path, new.content_hash, published, seen, published, new.article)
            )
            members += [(feed, key, published) for feed in new.feeds]
        self._db.executemany(
            "INSERT INTO articles (key, entry_id, path, content_hash, published, first_seen,"
            f" updated, article) VALUES (?, ?, ?, ?, ?, ?, ?, {self.dialect.utf8_text})",
            articles,
        )
        self._db.executemany("INSERT INTO members (feed, key, published) VALUES (?, ?, ?)", members)

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
                iso(entry.published),
                iso(first_seen),
                iso(entry.updated),
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
        when = iso(published)
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

    def members_of_keys(self, keys: Iterable[str]) -> dict[str, list[Member]]:
        """``members_of`` for many keys, ``READ_BATCH`` a query: key -> its rows (a key in
        no feed is left out), each key's rows in the order ``members_of`` gives them."""
        out: dict[str, list[Member]] = {}
        rows = self._for_keys(
            "SELECT key, feed, seq FROM members WHERE", list(keys), " ORDER BY key, feed"
        )
        for key, feed, seq in rows:
            out.setdefault(key, []).append(Member(feed, seq))
        return out

    def _for_keys(
        self, head: str, keys: Sequence[str], tail: str = "", *, size: int = READ_BATCH
    ) -> Iterator[Any]:
        """The rows of ``{head} key IN (...){tail}`` for ``keys``, ``size`` keys a query (a
        statement's parameters are bounded; SQLite allows 32,766)."""
        for at in range(0, len(keys), size):
            batch = keys[at : at + size]
            marks = ", ".join("?" * len(batch))
            yield from self._db.execute(f"{head} key IN ({marks}){tail}", tuple(batch))

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
            "SELECT a.key, a.article FROM members m JOIN articles a ON a.key = m.key"
            " WHERE m.feed = ? AND m.seq IS NULL ORDER BY m.published DESC, m.key DESC LIMIT ?",
            (feed, limit),
        )
        return [self._entry(key, raw) for key, raw in rows]

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

    def set_seqs(self, feed: str, places: Iterable[tuple[str, int | None]]) -> None:
        """``set_seq`` for many keys of ``feed``, (key, seq) pairs, in one ``executemany``."""
        self._db.executemany(
            "UPDATE members SET seq = ? WHERE feed = ? AND key = ?",
            [(seq, feed, key) for key, seq in places],
        )

    def archived(self, feed: str, first: int, stop: int) -> list[Entry]:
        """Articles with archive places in ``[first, stop)``, newest first."""
        rows = self._db.execute(
            "SELECT a.key, a.article FROM members m JOIN articles a ON a.key = m.key"
            " WHERE m.feed = ? AND m.seq >= ? AND m.seq < ?"
            " ORDER BY m.published DESC, m.key DESC",
            (feed, first, stop),
        )
        return [self._entry(key, raw) for key, raw in rows]

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
        if paths is not None:  # ``READ_BATCH`` paths a query (a page sample: 2,000)
            wanted = list(paths)
            rows = [
                r
                for at in range(0, len(wanted), READ_BATCH)
                for batch in (wanted[at : at + READ_BATCH],)
                for r in self._db.execute(
                    f"{sql} WHERE path IN ({', '.join('?' * len(batch))})", tuple(batch)
                )
            ]
        elif skip_folder is not None:  # a range on the primary key: "folder/" .. "folder0"
            start = skip_folder.rstrip("/") + "/"
            rows = self._db.execute(sql + " WHERE path < ? OR path >= ?", (start, start[:-1] + "0"))
        else:
            rows = self._db.execute(sql)
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def record_outputs(self, stamps: Mapping[str, Stamp | None]) -> None:
        """Remember these outputs' stamps; None forgets an output (removed, or not there)."""
        self._db.executemany(
            "DELETE FROM outputs WHERE path = ?", ((p,) for p, s in stamps.items() if s is None)
        )  # generators, not lists: a cold build stamps a file per article (#9)
        self._db.executemany(
            "INSERT INTO outputs (path, size, mtime_ns, inode) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (path) DO UPDATE SET size = excluded.size,"
            " mtime_ns = excluded.mtime_ns, inode = excluded.inode",
            ((p, *s) for p, s in stamps.items() if s is not None),
        )

    def live_keys(self) -> list[str]:
        """The keys of every published article (their pages are outputs)."""
        rows = self._db.execute("SELECT key FROM articles WHERE path IS NOT NULL")
        return [r[0] for r in rows]

    def live_keys_after(self, after: str, limit: int) -> list[str]:
        """The first ``limit`` keys of published articles after ``after``, in key order:
        a walk along the key index, however many articles there are."""
        rows = self._db.execute(
            "SELECT key FROM articles WHERE key > ? AND path IS NOT NULL ORDER BY key LIMIT ?",
            (after, limit),
        )
        return [r[0] for r in rows]

    def articles(self, keys: Iterable[str]) -> list[Entry]:
        """The published articles among ``keys``, in their order (``READ_BATCH`` a query)."""
        wanted = list(keys)
        found: dict[str, Any] = dict(
            self._for_keys("SELECT key, article FROM articles WHERE path IS NOT NULL AND", wanted)
        )
        return [self._entry(key, found[key]) for key in wanted if key in found]

    def iter_live_articles(self) -> Iterator[Entry]:
        """Every published article, one at a time (memory stays flat on a large corpus)."""
        cursor = self._db.execute(
            "SELECT key, article FROM articles WHERE path IS NOT NULL ORDER BY key"
        )
        for key, raw in cursor:
            yield self._entry(key, raw)

    def iter_live_rows(self) -> Iterator[tuple[str, str | bytes]]:
        """``iter_live_articles`` as stored: (key, JSON text), for ``keyed_entry`` elsewhere
        (a cold build's page workers decode them)."""
        yield from self._db.execute(
            "SELECT key, article FROM articles WHERE path IS NOT NULL ORDER BY key"
        )

    def live_listing(self) -> list[tuple[str, str, str, str]]:
        """(published, first_seen, key, content_hash) of every published article, oldest
        first (ties by first seen, then key): the places of the HTML archive. One walk of a
        covering index (``articles_listing``), no article read; the dates are as stored (UTC
        ISO 8601 text).
        """
        rows = self._db.execute(
            "SELECT published, first_seen, key, content_hash FROM articles"
            " WHERE path IS NOT NULL ORDER BY published, first_seen, key"
        )
        return list(rows.fetchall())  # text columns: str tuples from either driver

    def titles(self, keys: Iterable[str]) -> dict[str, str]:
        """The titles of the published articles among ``keys`` (one query per 100), read
        from their JSON in SQL (no article validated)."""
        rows = self._for_keys(
            f"SELECT key, {self.dialect.title} FROM articles WHERE path IS NOT NULL AND",
            list(keys),
            size=100,
        )
        return {str(k): str(t) for k, t in rows}

    def live_articles(self, limit: int | None = None) -> list[Entry]:
        """Published articles, newest first; ties broken by key so output is stable."""
        sql = (
            "SELECT key, article FROM articles WHERE path IS NOT NULL"
            " ORDER BY published DESC, key DESC"
        )
        params: tuple[int, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (limit,)
        return [self._entry(key, raw) for key, raw in self._db.execute(sql, params)]

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

    # --- whole tables, for copying a store (``migrate-store``) ------------------------------
    def dump(self, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """A table's column names and every row, in key order."""
        key = TABLES[table]
        cursor = self._db.execute(f"SELECT * FROM {table} ORDER BY {', '.join(key)}")
        columns = [d[0] for d in cursor.description]
        return columns, [tuple(r) for r in cursor]

    def load(self, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> None:
        """Insert ``rows`` into ``table``, replacing rows with the same key."""
        key = TABLES[table]
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
        conflict = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        self._db.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES"
            f" ({', '.join('?' for _ in columns)}) ON CONFLICT ({', '.join(key)}) {conflict}",
            list(rows),
        )
