"""The published documents in the store (#10): what serve nodes on other hosts mirror.

A PostgreSQL builder records every document it writes into ``feeds/`` (path, bytes, ETag,
modified time) in its publish transaction; ``feedsvc sync`` and serve-only daemons copy them
into a folder of their own. The table exists on both backends (one schema), but only a store
with ``keeps_documents`` (PostgreSQL) is written: with SQLite the one machine that builds also
serves, and a build costs exactly what it did.

``DocumentQueries`` is mixed into ``SQLStore``: the SQL is the shared SQL, in the dialect.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

# The documents table, for new stores (``sql.SCHEMA``) and as migration 3 of older ones.
DOCUMENTS_TABLE = """
CREATE TABLE IF NOT EXISTS documents (
    path        TEXT PRIMARY KEY,  -- relative to feeds/, '/'-separated
    data        BLOB NOT NULL,     -- the bytes, as in the builder's feeds/
    size        INTEGER NOT NULL,
    etag        TEXT NOT NULL,     -- the content digest the servers send as ETag
    modified_ns INTEGER NOT NULL,  -- the file's mtime: Last-Modified, on every host
    serial      INTEGER NOT NULL   -- the documents_serial of the publish that wrote it
);
"""
WAKE_DOCUMENTS = "documents"  # the wake-up topic of a publish that changed documents
SERIAL = "documents_serial"  # meta: bumped by each publish that changed a document
FETCH_BATCH = 200  # documents fetched per query by a mirror
WRITE_BATCH = 200  # documents written per statement batch by a publish


@dataclass(frozen=True, slots=True)
class DocumentRef:
    """A stored document without its bytes: enough to see whether a copy is current."""

    path: str
    size: int
    etag: str
    modified_ns: int


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A document as recorded: its bytes and validators."""

    path: str
    data: bytes
    etag: str
    modified_ns: int

    @property
    def ref(self) -> DocumentRef:
        return DocumentRef(self.path, len(self.data), self.etag, self.modified_ns)


class DocumentQueries:
    """The documents table on ``self._db``; see the module docstring."""

    keeps_documents: bool = False  # only PostgreSQL stores record documents (see above)
    _db: Any

    if TYPE_CHECKING:  # SQLStore's, which this is mixed into

        def get_meta(self, name: str) -> str | None: ...
        def set_meta(self, name: str, value: str) -> None: ...
        def wake(self, topic: str) -> None: ...

    def documents_serial(self) -> int:
        """How many publishes changed the documents (0: none recorded yet)."""
        value = self.get_meta(SERIAL)
        return int(value) if value else 0

    def document_refs(self) -> dict[str, DocumentRef]:
        """Every stored document's path, size, ETag and modified time (no bytes)."""
        rows = self._db.execute("SELECT path, size, etag, modified_ns FROM documents")
        return {r[0]: DocumentRef(r[0], int(r[1]), r[2], int(r[3])) for r in rows}

    def documents(self, refs: Sequence[DocumentRef]) -> Iterator[StoredDocument]:
        """The documents of ``refs`` that still have the ETag given (a newer one is left out),
        ``FETCH_BATCH`` at a time: a mirror holds one batch, not the site."""
        for start in range(0, len(refs), FETCH_BATCH):
            batch = refs[start : start + FETCH_BATCH]
            wanted = {r.path: r.etag for r in batch}
            rows = self._db.execute(
                "SELECT path, data, etag, modified_ns FROM documents WHERE path IN"
                f" ({', '.join('?' for _ in batch)})",
                [r.path for r in batch],
            )
            for path, data, etag, modified_ns in rows:
                if wanted.get(path) == etag:
                    yield StoredDocument(path, bytes(data), etag, int(modified_ns))

    def record_documents(self, put: Iterable[StoredDocument], removed: Iterable[str]) -> int:
        """Store ``put`` and delete ``removed`` (in the caller's transaction); wake mirrors.

        ``put`` is taken ``WRITE_BATCH`` at a time (a cold build's pages are many). Returns
        the new serial, or the old one when nothing was given.
        """
        serial = self.documents_serial()
        gone = [(p,) for p in removed]
        self._db.executemany("DELETE FROM documents WHERE path = ?", gone)
        count = len(gone)
        batch: list[tuple[Any, ...]] = []
        for doc in put:
            batch.append((doc.path, doc.data, len(doc.data), doc.etag, doc.modified_ns, serial + 1))
            if len(batch) >= WRITE_BATCH:
                count += self._put_documents(batch)
        count += self._put_documents(batch)
        if not count:
            return serial
        self.set_meta(SERIAL, str(serial + 1))
        self.wake(WAKE_DOCUMENTS)
        return serial + 1

    def _put_documents(self, batch: list[tuple[Any, ...]]) -> int:
        self._db.executemany(
            "INSERT INTO documents (path, data, size, etag, modified_ns, serial)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET data = excluded.data,"
            " size = excluded.size, etag = excluded.etag, modified_ns = excluded.modified_ns,"
            " serial = excluded.serial",
            batch,
        )
        count = len(batch)
        batch.clear()
        return count
