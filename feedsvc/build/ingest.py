"""The ingest role on a host of its own (#10): this host's seeds read, parsed and reported.

An ingest host runs stage 1 only: it reads and parses its seeds with the one parser
(``Scanner.scan_one``) and upserts each file's outcome into the store's inbox under its
``node_name`` (``store/inbox.py``), in one transaction that wakes the builder (``NOTIFY``,
topic ``seeds``). The builder, wherever it runs, takes the rows as a second source of scan
results (``remote.py``): ids, feeds and documents are its business alone. An ingest host never
writes ``feeds/`` and holds no ledger.

A full round stats every seed and reads those whose stat differs from the one reported (or
that were rejected, or changed within the last ``RACY_NS``); a round for the watcher's paths
reads just those. A file that is gone is a deleted row; more deletions at once than the
deletion limit allows stop the round with nothing reported (as a build would stop).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import MassDeletionError, SeedError, SeedPathError
from ..seeds import printable_path, seed_key, stored_path
from ..store import InboxRow
from ..store.inbox import SEEN, WAKE_SEEDS
from .ledger import MaxDelete
from .publisher import LOCK_TIMEOUT, BuildReport, Publisher
from .scan import RACY_NS, FileResult

PARSE_FP = "inbox_parse_fp:"  # meta, + host: the parse fingerprint of its last full round


def version(result: FileResult) -> str:
    """What the builder gets from a file, as one digest: a change in it is a change to build."""
    article = result.article.model_dump_json() if result.article is not None else ""
    error = f"{result.error.line}:{result.error.reason}" if result.error is not None else ""
    text = f"{result.file_hash}\0{article}\0{error}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def inbox_row(host: str, result: FileResult) -> InboxRow:
    article, error = result.article, result.error
    return InboxRow(
        host,
        result.path,
        article.key if article is not None else seed_key(result.path),
        result.size,
        result.mtime_ns,
        result.ctime_ns,
        result.inode,
        version(result),
        None if article is None else article.model_dump_json(),
        None if error is None else error.reason,
        None if error is None else error.line,
    )


class Ingester(Publisher):
    """``Publisher`` for a host whose role is ingest alone: ``build`` reports, never publishes.

    A ``Publisher`` so that the daemon's rebuilder (its retries with backoff, the periodic
    rescan, ``/status``) runs it unchanged.
    """

    def build(
        self,
        paths: Iterable[Path] | None = None,
        *,
        on_file: Callable[[str], None] | None = None,
        lock_timeout: float = LOCK_TIMEOUT,
        explicit: bool = False,
        max_delete: MaxDelete = None,
    ) -> BuildReport:
        """Report what changed in this host's seeds (all of them, or ``paths``) to the store.

        The files are read before the transaction, which only writes (it waits for a build
        of the site in flight: both take the site's lock).
        """
        start = time.perf_counter()
        self.require_seeds_dir()
        host, now, scanner = self.settings.node, self.clock(), self.scanner
        report = BuildReport()
        with self.open_store() as store:
            known = store.inbox_stamps(host)
            reparse = paths is None and store.get_meta(PARSE_FP + host) != scanner.parse_fp
            if paths is None:
                listing = {stored_path(rel): rel for rel in scanner.list_seeds()}
                gone = sorted(set(known) - set(listing))
            else:
                named, problems = scanner.named(paths)
                if explicit and problems:
                    raise SeedPathError(problems)
                listing, gone = {}, []
                for rel in named:
                    if os.path.lexists(self.seeds / rel):
                        listing[stored_path(rel)] = rel
                    elif stored_path(rel) in known:
                        gone.append(stored_path(rel))
            racy = time.time_ns() - RACY_NS
            put: list[InboxRow] = []
            for path, rel in sorted(listing.items()):
                old = known.get(path)
                if old is not None and paths is None and not reparse and not old[2]:
                    try:
                        st = os.stat(self.seeds / rel)
                    except OSError:
                        st = None
                    if (
                        st is not None
                        and (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) == old[0]
                        and max(st.st_mtime_ns, st.st_ctime_ns) < racy
                    ):
                        report.unchanged += 1
                        continue
                result = scanner.scan_one(rel, None, now, reread=True, reparse=True, racy_ns=0)
                if on_file is not None:
                    on_file(rel)
                if result is None:  # vanished since the listing
                    if path in known:
                        gone.append(path)
                    continue
                if result.article is not None:
                    report.warnings.extend(result.article.warnings)
                row = inbox_row(host, result)
                if old is not None and old[1] == row.version:
                    report.unchanged += 1
                    if old[0] != row.stamp:
                        put.append(row)  # the same outcome: only the stat is new
                    continue
                put.append(row)
                if old is None:
                    report.new += 1
                else:
                    report.changed += 1
            alive = sum(1 for _, _, rejected in known.values() if not rejected)
            limit = self.deletion_limit(alive, max_delete)
            if limit is not None and len(gone) > limit:
                raise MassDeletionError(
                    printable_path(self.seeds), would_delete=len(gone), published=alive, limit=limit
                )
            report.deleted = len(gone)
            with store.transaction():
                store.inbox_put(put)
                store.inbox_drop(host, gone)
                store.set_meta(SEEN + host, now.isoformat())
                if paths is None:
                    store.set_meta(PARSE_FP + host, scanner.parse_fp)
                if report.new or report.changed or report.deleted:
                    store.wake(WAKE_SEEDS)
            report.total = len(known) + report.new - report.deleted
            # every file of this host rejected now, read in this round or before
            errors = store.inbox_errors(host)
            report.errors = [SeedError(self.display(p), line, why) for p, line, why in errors]
        report.seconds = time.perf_counter() - start
        return report

    def describe_round(self, report: BuildReport) -> str:
        """One line for the log: what this host reported."""
        return (
            f"reported {report.total} seeds of {self.settings.node} ({report.new} new, "
            f"{report.changed} changed, {report.deleted} deleted, {len(report.errors)} errors)"
        )
