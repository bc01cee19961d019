"""Stage 1's second source (#10): the seeds ingest hosts reported into the store, as scan results.

A builder on PostgreSQL scans its own seeds (when it has the ingest role) and then these: each
reported file is a ``FileResult`` named ``//host/path`` (``seeds.remote_path``), its article
parsed on its host by the one parser; from the ledger on, nothing tells them apart. A reported
file whose ``version`` is the ``file_hash`` the builder recorded is unchanged and not yielded; a
recorded one its host no longer reports is gone. Every build compares all of them: one light
query each on the inbox and on ``files``.

Last, files that were waiting as a duplicate of a key whose publishing file went away (on this
host or another) are read again, so one of them publishes the key, under its old id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from ..errors import SeedError
from ..models import Article
from ..seeds import is_remote, remote_path, split_remote
from ..store import InboxRow, Store
from .scan import FileResult, Scanner


def reported(row: InboxRow) -> FileResult:
    """An ingest host's row as the builder's scan result (``file_hash`` is its ``version``)."""
    path = remote_path(row.host, row.path)
    article = None if row.article is None else Article.model_validate_json(row.article)
    error = None if row.error is None else SeedError(path, row.error_line or 1, row.error)
    return FileResult(
        path,
        row.size,
        row.mtime_ns,
        row.ctime_ns,
        row.inode,
        row.version,
        article=article,
        error=error,
        hashed=True,
    )


def remote_results(
    store: Store,
    scanner: Scanner,
    *,
    now: datetime,
    local: bool,
    gone_before: Callable[[], bool],
) -> Iterator[FileResult]:
    """What changed among the reported seeds since the last build, then the orphans.

    Lazy: the ledger records each result before the next is made, so the orphans are found
    with everything before them applied. Only a file that went away can leave one, so they
    are looked for only when one did, here or before (``gone_before``: in the local scan, or
    a full build, which always looks). ``local``: this builder reads its own seeds folder.
    """
    versions = store.inbox_versions()
    recorded = store.remote_file_hashes()
    names = {remote_path(host, path): (host, path) for host, path in versions}
    gone = sorted(set(recorded) - set(names))
    for path in gone:
        yield FileResult(path, gone=True)  # deleted on its host, or the host was dropped
    changed = sorted(pair for name, pair in names.items() if recorded.get(name) != versions[pair])
    for row in store.inbox_rows(changed):
        yield reported(row)
    if not (gone or gone_before()):
        return
    for path in store.orphan_paths():
        if is_remote(path):
            for row in store.inbox_rows([split_remote(path)]):
                yield reported(row)
        elif local:
            result = scanner.scan_one(path, None, now, reread=True, reparse=True, racy_ns=0)
            yield result if result is not None else FileResult(path, gone=True)
