"""What a publish records for serve nodes on other hosts: the documents it changed (#10).

With a store that ``keeps_documents`` (PostgreSQL), the publisher hands this module what the
writer did to ``feeds/``; it reads back the files that changed (just written: in the page
cache) and returns them with their ETag (``content_digest``, as every server sends it) and
modified time, plus the outputs removed. The publisher records them in its transaction, so the
documents in the store and the ledger always agree. With SQLite nothing is read or recorded.

Modified times are whole-second monotonic per document: a new version dated in the same second
as the one before gets that second + 1 s, and the file in ``feeds/`` is given that time too.
That is what a server does on its own for two versions within one second (``serve.FileCache``),
done once here, so the builder's server and every mirror send the same ``Last-Modified``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from .._digest import content_digest
from ..store import DocumentRef, Store, StoredDocument
from .outputs import GZIP_SUFFIX, Stamp, Written, stat_stamp

NS = 1_000_000_000


def changed_documents(
    store: Store, root: Path, written: Written
) -> tuple[Iterator[StoredDocument], list[str]]:
    """The documents to store (read one at a time) and the paths to drop after ``written``;
    nothing with SQLite.

    The first time (no documents recorded yet, e.g. a store moved from SQLite), every output
    of the manifest is taken. Re-dating a file updates its stamp in ``written.stamps`` as the
    documents are read: read them all before recording the stamps.
    """
    if not store.keeps_documents:
        return iter(()), []
    known = store.document_refs()
    stamps = written.stamps
    removed = sorted(rel for rel, stamp in stamps.items() if stamp is None and rel in known)
    wanted = {f.path for f in written.files}
    wanted.update(rel for rel, stamp in stamps.items() if stamp is not None and rel not in known)
    if store.documents_serial() == 0:
        wanted.update(store.output_stamps())
    wanted.difference_update(rel for rel, stamp in stamps.items() if stamp is None)
    # the manifest also stamps folders (``articles/``, to sample its pages): not documents
    wanted = {rel for rel in wanted if not rel.endswith("/")}
    # a feed before its .gz, so the .gz is never dated before the bytes it packs
    order = sorted(wanted, key=lambda r: (r.removesuffix(GZIP_SUFFIX), r.endswith(GZIP_SUFFIX)))
    return _read(root, order, known, stamps), removed


def _read(
    root: Path, paths: list[str], known: Mapping[str, DocumentRef], stamps: dict[str, Stamp | None]
) -> Iterator[StoredDocument]:
    """The new versions among ``paths``, dated (see the module docstring)."""
    dated: dict[str, int] = {}
    for rel in paths:
        path = os.path.join(root, rel)
        try:
            with open(path, "rb") as f:
                data = f.read()
                mtime_ns = os.fstat(f.fileno()).st_mtime_ns
        except FileNotFoundError:
            continue  # not there (never written): nothing to serve
        etag = content_digest(data)
        before = known.get(rel)
        if before is not None and before.etag == etag:
            modified = before.modified_ns  # the same bytes rewritten (a repair): same date
        else:
            modified = _after(mtime_ns, before, dated.get(rel.removesuffix(GZIP_SUFFIX)))
            yield StoredDocument(rel, data, etag, modified)
        dated[rel] = modified
        if modified != mtime_ns:
            os.utime(path, ns=(modified, modified))
            stamps[rel] = stat_stamp(path)


def _after(mtime_ns: int, before: DocumentRef | None, source_ns: int | None) -> int:
    """A new version's modified time: its mtime, but in a later second than the version
    before it, and never before the document a ``.gz`` packs."""
    modified = mtime_ns
    if before is not None and modified // NS <= before.modified_ns // NS:
        modified = (before.modified_ns // NS + 1) * NS
    if source_ns is not None:
        modified = max(modified, source_ns)
    return modified
