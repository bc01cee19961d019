"""The embedded store: per-file state, the last valid article per key, and the id ledger.

SQLite (WAL) behind a small interface with portable SQL (``INSERT ... ON CONFLICT``), so another
backend can follow. One transaction per build: a killed build leaves the store as it was.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import PublishError
from .models import Article

SCHEMA_VERSION = "1"

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
    warnings   TEXT NOT NULL DEFAULT '[]'
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


@dataclass(frozen=True, slots=True)
class FileState:
    """What the last build learned about one seed file."""

    path: str
    key: str
    size: int
    mtime_ns: int
    file_hash: str | None
    error: str | None
    error_line: int | None
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ArticleRow:
    """The ledger entry for one key: its id, where it lives, and its content fingerprint."""

    key: str
    entry_id: str
    path: str | None
    content_hash: str
    first_seen: datetime
    updated: datetime


@dataclass(frozen=True, slots=True)
class Member:
    """One feed an article is in, and its archive place there (None: still current)."""

    feed: str
    seq: int | None


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


class Store:
    """SQLite in ``state_dir/feedsvc.sqlite3``; use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT INTO meta (name, value) VALUES ('schema', ?) ON CONFLICT DO NOTHING",
                (SCHEMA_VERSION,),
            )
        except sqlite3.Error as e:
            raise PublishError(f"{path}: cannot open the store: {e}") from e

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: an exception (or a kill) rolls everything back."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

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

    # --- files --------------------------------------------------------------------------
    def file_states(self, paths: Iterable[str] | None = None) -> dict[str, FileState]:
        """Every file's state, or only those of ``paths`` (an incremental build's few rows)."""
        sql = "SELECT path, key, size, mtime_ns, file_hash, error, error_line, warnings FROM files"
        if paths is None:
            rows: Iterable[tuple[Any, ...]] = self._db.execute(sql)
        else:
            rows = [r for p in paths for r in self._db.execute(sql + " WHERE path = ?", (p,))]
        return {
            r[0]: FileState(r[0], r[1], r[2], r[3], r[4], r[5], r[6], tuple(json.loads(r[7])))
            for r in rows
        }

    def put_file(self, state: FileState) -> None:
        self._db.execute(
            "INSERT INTO files (path, key, size, mtime_ns, file_hash, error, error_line, warnings)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET"
            " key = excluded.key, size = excluded.size, mtime_ns = excluded.mtime_ns,"
            " file_hash = excluded.file_hash, error = excluded.error,"
            " error_line = excluded.error_line, warnings = excluded.warnings",
            (
                state.path,
                state.key,
                state.size,
                state.mtime_ns,
                state.file_hash,
                state.error,
                state.error_line,
                json.dumps(list(state.warnings)),
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

    def put_article(
        self, article: Article, *, path: str, entry_id: str, first_seen: datetime
    ) -> None:
        """Insert or replace the published version of ``article.key``."""
        self._db.execute(
            "INSERT INTO articles (key, entry_id, path, content_hash, published, first_seen,"
            " updated, article) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
            " entry_id = excluded.entry_id, path = excluded.path,"
            " content_hash = excluded.content_hash, published = excluded.published,"
            " first_seen = excluded.first_seen, updated = excluded.updated,"
            " article = excluded.article",
            (
                article.key,
                entry_id,
                path,
                article.content_hash,
                _iso(article.published),
                _iso(first_seen),
                _iso(article.updated),
                article.model_dump_json(exclude={"warnings"}),
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

    def replace_entry_id(self, key: str, entry_id: str) -> None:
        """Publish ``key`` under an id carried over from another publisher (``import-ids``)."""
        article = self._db.execute("SELECT article FROM articles WHERE key = ?", (key,)).fetchone()
        if article is None:
            raise KeyError(key)
        stored = Article.model_validate_json(article[0]).model_copy(update={"entry_id": entry_id})
        self._db.execute(
            "UPDATE articles SET entry_id = ?, article = ? WHERE key = ?",
            (entry_id, stored.model_dump_json(exclude={"warnings"}), key),
        )
        self.force_rerender()

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

    def feed_articles(self, feed: str, limit: int) -> list[Article]:
        """A feed's newest ``limit`` articles without an archive place, newest first.

        An entry with an archive place is never in a current document; ties broken by key.
        """
        rows = self._db.execute(
            "SELECT a.article FROM members m JOIN articles a ON a.key = m.key"
            " WHERE m.feed = ? AND m.seq IS NULL ORDER BY m.published DESC, m.key DESC LIMIT ?",
            (feed, limit),
        )
        return [Article.model_validate_json(r[0]) for r in rows]

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

    def archived(self, feed: str, first: int, stop: int) -> list[Article]:
        """Articles with archive places in ``[first, stop)``, newest first."""
        rows = self._db.execute(
            "SELECT a.article FROM members m JOIN articles a ON a.key = m.key"
            " WHERE m.feed = ? AND m.seq >= ? AND m.seq < ?"
            " ORDER BY m.published DESC, m.key DESC",
            (feed, first, stop),
        )
        return [Article.model_validate_json(r[0]) for r in rows]

    # --- the output manifest: what the builds wrote into feeds/, as they left it ---------------
    def output_stamps(self) -> dict[str, tuple[int, int, int]]:
        """Every output's (size, mtime_ns, inode) as recorded right after it was written."""
        rows = self._db.execute("SELECT path, size, mtime_ns, inode FROM outputs")
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def record_outputs(self, stamps: Mapping[str, tuple[int, int, int] | None]) -> None:
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

    def articles(self, keys: Iterable[str]) -> list[Article]:
        """The published articles among ``keys``."""
        out = []
        for key in keys:
            row = self._db.execute(
                "SELECT article FROM articles WHERE key = ? AND path IS NOT NULL", (key,)
            ).fetchone()
            if row is not None:
                out.append(Article.model_validate_json(row[0]))
        return out

    def iter_live_articles(self) -> Iterator[Article]:
        """Every published article, one at a time (memory stays flat on a large corpus)."""
        cursor = self._db.execute(
            "SELECT article FROM articles WHERE path IS NOT NULL ORDER BY key"
        )
        for (raw,) in cursor:
            yield Article.model_validate_json(raw)

    def live_articles(self, limit: int | None = None) -> list[Article]:
        """Published articles, newest first; ties broken by key so output is stable."""
        sql = (
            "SELECT article FROM articles WHERE path IS NOT NULL ORDER BY published DESC, key DESC"
        )
        params: tuple[int, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (limit,)
        return [Article.model_validate_json(r[0]) for r in self._db.execute(sql, params)]

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
