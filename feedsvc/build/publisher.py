"""The ``Publisher``: one build = scan → ledger → plan → write. CLI, watcher and scheduler call it.

``build`` takes the state-dir lock, opens the store, and runs the stages in one store
transaction: ``scan`` reads (never writes), the ``ledger`` applies the results, the ``plan``
settles archive places and lists the documents, ``outputs`` writes them atomically. Then one
last named step records the manifest of what was written (``record_outputs``): it needs the
files' stamps, so it can only follow the write, and it is what lets the next build find a
missing or damaged output with one stat. The transaction commits after the files are
written, so a failed commit leaves new feeds over an old store: the error says so, and the
next build sees the feeds are not the ones the store recorded and writes them again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

from .._causes import os_cause
from .._lock import build_lock
from ..config import Settings
from ..errors import MassDeletionError, PublishError, SeedError, StoreError
from ..seeds import printable_path, require_seeds_dir, seed_key
from ..store import Store, open_store
from .documents import changed_documents
from .feeds import FeedSet
from .ledger import (
    Ledger,
    MaxDelete,
    deletion_limit,
    duplicate_errors,
    record_stamps,
    standing_errors,
)
from .outputs import Writer, Written, WrittenFile, summarize
from .plan import Planner
from .remote import remote_results
from .scan import RACY_NS, FileResult, Scanner, ScanResult

if TYPE_CHECKING:  # lxml and feedgen: only a new store adopts (``_adopt``)
    from .adopt import Found

LOCK_TIMEOUT = 30.0

__all__ = [
    "LOCK_TIMEOUT",
    "BuildReport",
    "CheckReport",
    "FileResult",
    "MaxDelete",
    "Publisher",
    "ScanResult",
]


@dataclass(slots=True)
class BuildReport:
    """What a publish did: counts, the standing errors, warnings and the files written."""

    total: int = 0
    new: int = 0
    changed: int = 0
    deleted: int = 0
    unchanged: int = 0
    errors: list[SeedError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    written: Sequence[Path] = field(default_factory=list)  # ``outputs.Paths``: names, not Paths
    files: list[WrittenFile] = field(default_factory=list)  # what each written file is
    repaired: list[str] = field(default_factory=list)  # outputs found missing or damaged
    outputs: list[Path] = field(default_factory=list)  # the main feed's documents
    adopted: int = 0  # ids a new store took from the entries already in feeds/
    notes: list[str] = field(default_factory=list)  # worth saying even without -v
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors

    def describe(self, main: Iterable[str] = ()) -> str:
        """What was written, by feed; "unchanged" first when ``main`` (rel paths) was not."""
        wrote = {f.path for f in self.files}
        text = summarize(self.files)
        if main and not wrote & set(main):
            return f"unchanged; wrote {text}" if text else "unchanged"
        return text


def _files(n: int) -> str:
    return f"{n} file was" if n == 1 else f"{n} files were"


class Publisher:
    """Owns one seeds dir, one store and one feeds dir, as the settings say."""

    racy_ns: int = RACY_NS  # see RACY_NS; a test may narrow it to see the stat comparison alone

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        adopt_from: Path | None = None,
        fence: Callable[[Store], None] | None = None,
        local: bool = True,
    ) -> None:
        self.settings = settings
        # False: a builder without the ingest role (#10) has no seeds folder of its own; it
        # builds what ingest hosts report into the store
        self.local = local
        # PostgreSQL's leadership (#10): raises ``LeaderError`` inside the build transaction
        # when this process no longer leads the site, so a fenced-out builder writes nothing
        self.fence = fence
        self.clock = clock
        self.adopt_from = adopt_from or settings.feeds_dir  # where a new store finds its ids
        self.seeds = settings.seeds_dir
        self.feeds = FeedSet(settings)
        self.scanner = Scanner(settings)
        self.planner = Planner(settings, self.feeds)
        self.writer = Writer(settings.feeds_dir, gzip_feeds=settings.gzip_feeds)

    @property
    def outputs(self) -> list[Path]:
        """The main feed's documents (the first configured feed)."""
        return [self.settings.feeds_dir / rel for rel in self.planner.main_outputs()]

    def open_store(self, *, verify: bool = False) -> Store:
        """The store; ``verify`` reads every page first (``PRAGMA quick_check``)."""
        return open_store(self.settings, verify=verify)

    def display(self, rel: str) -> str:
        return self.scanner.display(rel)

    def require_seeds_dir(self) -> None:
        """Raise ``SeedsDirError`` unless the seeds folder exists and is a folder we can list."""
        require_seeds_dir(self.seeds)

    def list_seeds(self) -> list[str]:
        """Every seed file under seeds/, sorted (see ``seeds.list_seeds``)."""
        return self.scanner.list_seeds()

    # --- stage 1 -------------------------------------------------------------------------------
    def scan(
        self,
        store: Store,
        paths: Iterable[Path] | None = None,
        *,
        on_file: Callable[[str], None] | None = None,
        explicit: bool = False,
    ) -> ScanResult:
        """What changed since the last build, read lazily (see ``Scanner.scan``).

        With a store that receives other hosts' seeds (PostgreSQL), what they reported
        follows this host's own (``remote.py``), whatever ``paths`` says.
        """
        now = self.clock()
        if self.local:
            scan = self.scanner.scan(
                store, paths, now=now, racy_ns=self.racy_ns, on_file=on_file, explicit=explicit
            )
        else:
            scan = ScanResult(iter(()), full=paths is None, started_ns=time.time_ns())
        if not store.receives_seeds:
            return scan
        went: list[bool] = [scan.full]  # a file went away in the local scan (or: look anyway)

        def local() -> Iterator[FileResult]:
            for result in scan.results:
                went[0] = went[0] or result.gone
                yield result

        remote = remote_results(
            store, self.scanner, now=now, local=self.local, gone_before=lambda: went[0]
        )
        return ScanResult(
            chain(local(), remote),
            full=scan.full,
            started_ns=scan.started_ns,
            unchanged=scan.unchanged,
            duplicates=scan.duplicates,
            listed=scan.listed,
        )

    # --- stages 2-4, in one transaction ---------------------------------------------------------
    def publish(
        self, store: Store, scan: ScanResult, *, max_delete: MaxDelete = None
    ) -> BuildReport:
        """Apply a scan to the store and write the feeds; all of it or (on error) none of it.

        Raises ``MassDeletionError`` (nothing written) when the scan would unpublish more
        articles than ``max_delete`` allows (see ``ledger.deletion_limit``).
        """
        report = BuildReport(outputs=self.outputs)
        committing = False
        self.writer.touched.clear()
        try:
            with store.transaction():
                if self.fence is not None:
                    self.fence(store)
                ledger = Ledger(
                    store,
                    self.feeds,
                    now=self.clock(),
                    authority=self.settings.id_authority,
                    tz=self.settings.tz,
                    page_size=self.settings.archive_page_size,
                    membership_fp=self.planner.membership_fp,
                )
                adopted = self._adopt(ledger, report)
                published = store.count_live()
                resort = ledger.needs_resort()
                ledger.begin_bulk()  # an empty store: a cold build's rows go in batches
                recorded = 0  # results the ledger took in: only it writes the files table
                for result in scan.results:
                    recorded += 1
                    if adopted is not None and adopted.entries:  # else: no article unpacked
                        ledger.confirm(adopted, result.article)
                    status = ledger.record(result)
                    if status == "deleted":
                        report.deleted += 1
                    elif status == "new":
                        report.new += 1
                    elif status == "changed":
                        report.changed += 1
                    elif status == "unchanged":
                        report.unchanged += 1
                    report.warnings.extend(result.warnings)
                ledger.finish_bulk()
                report.unchanged += scan.unchanged  # proven by their stats: no results
                limit = deletion_limit(published, max_delete, self.settings.max_delete_fraction)
                if limit is not None and len(ledger.unpublished) > limit:
                    raise MassDeletionError(
                        printable_path(self.seeds),
                        would_delete=len(ledger.unpublished),
                        published=published,
                        limit=limit,
                    )
                if resort:
                    ledger.resort()
                if adopted is not None:
                    ledger.adopt_places(adopted, self.settings.feeds_dir)
                kept = False
                if scan.full:
                    store.set_meta("parse_fp", self.scanner.parse_fp)
                    store.set_meta("scan_ns", str(scan.started_ns))
                    # the digest this scan trusted still holds: no file's row was written
                    kept = record_stamps(store, scan, scan.duplicates if recorded == 0 else None)
                # the last store writes; an incremental build checks only what it touches
                plan = self.planner.plan(store, ledger.changes, check_all=scan.full)
                written = Written()
                if self.fence is not None:  # right before the write, under the build lock
                    self.fence(store)
                if not plan.idle:
                    written = self.writer.write(
                        plan.documents,
                        pages=plan.pages,  # one at a time
                        remove=plan.remove,
                        sweep=plan.sweep,
                        keep=plan.owned,
                        suspect=plan.suspect,
                        stamp_also=plan.owned if plan.full else (),
                        folders=plan.folders,
                    )
                    report.written, report.files = written.paths, written.files
                    report.repaired = written.repaired
                if store.keeps_documents:  # PostgreSQL: what serve nodes elsewhere mirror
                    put, dropped = changed_documents(store, self.settings.feeds_dir, written)
                    store.record_documents(put, dropped)  # reads (and re-dates) the files
                if written.stamps:
                    store.record_outputs(written.stamps)  # after the write: it needs the stamps
                if not plan.idle:
                    store.set_meta("render_fp", self.planner.render_fp)
                # nothing recorded: the duplicate keys are those the scan read
                same_files = scan.duplicates if recorded == 0 or kept else None
                report.errors = standing_errors(store, self.display, same_files)
                report.total = store.count_live()
                committing = True
        except StoreError as e:
            touched = self.writer.touched
            if e.damaged:  # the reason says what to do; only what was written is added
                if not touched:
                    raise
                note = f" ({_files(len(touched))} rewritten in feeds)"
                raise StoreError(e.path, e.reason + note, damaged=True) from e
            raise StoreError(e.path, f"{e.reason}; {self._aftermath(committing)}") from e
        except OSError as e:
            where = e.filename2 or e.filename or self.settings.feeds_dir
            raise PublishError(f"{where}: {os_cause(e)}; {self._aftermath(committing)}") from e
        return report

    def deletion_limit(self, published: int, max_delete: MaxDelete = None) -> int | None:
        """How many of ``published`` articles one build may unpublish (None: any number)."""
        return deletion_limit(published, max_delete, self.settings.max_delete_fraction)

    def _aftermath(self, committing: bool) -> str:
        """What a failed build left behind, truly: the feeds are old, new, or partly new."""
        touched = len(self.writer.touched)
        if committing and touched:
            return (
                f"the feeds in {self.settings.feeds_dir} were written but the store could not "
                "record them; the next build catches up"
            )
        if touched:
            return (
                f"{_files(touched)} already rewritten in {self.settings.feeds_dir}; the store "
                "is kept as it was and the next build rewrites the feeds from it"
            )
        return "nothing was published, the previous feeds and store are kept"

    def _adopt(self, ledger: Ledger, report: BuildReport) -> Found | None:
        """A store that never minted an id takes those feeds/ published (see ``adopt``)."""
        if not ledger.store.needs_adoption():
            return None
        from .adopt import read_published

        found = read_published(self.adopt_from)
        report.adopted = ledger.adopt(found)
        report.warnings.extend(found.skipped)
        if report.adopted:
            note = f"adopted {report.adopted} ids from {self.adopt_from} (a new store)"
            report.notes.append(note)
            report.warnings.append(note)  # the daemon logs warnings
        return found

    # --- the one entry point ------------------------------------------------------------------
    def build(
        self,
        paths: Iterable[Path] | None = None,
        *,
        on_file: Callable[[str], None] | None = None,
        lock_timeout: float = LOCK_TIMEOUT,
        explicit: bool = False,
        max_delete: MaxDelete = None,
    ) -> BuildReport:
        """Scan and publish under the state-dir lock; errors in seeds are values in the report.

        What stops a build with nothing written (``FeedsvcError``s): a seeds folder that is
        missing or cannot be listed (``SeedsDirError``), ``explicit`` paths that are not seeds
        (``SeedPathError``), too many articles unpublished at once (``MassDeletionError``).
        """
        start = time.perf_counter()
        if self.local:
            self.require_seeds_dir()  # before the state dir and the store are created
        publishing = False
        try:
            with (
                build_lock(self.settings.state_dir, timeout=lock_timeout),
                self.open_store(verify=paths is None) as store,
            ):
                scan = self.scan(store, paths, on_file=on_file, explicit=explicit)
                publishing = True  # from here on, ``publish`` says what its failure left
                report = self.publish(store, scan, max_delete=max_delete)
        except StoreError as e:
            if publishing or e.damaged:
                raise
            raise StoreError(e.path, f"{e.reason}; {self._aftermath(False)}") from e
        report.seconds = time.perf_counter() - start
        return report

    def check(self, *, on_file: Callable[[str], None] | None = None) -> CheckReport:
        """Validate every seed without touching the store or the feeds."""
        report = CheckReport()
        now = self.clock()
        keys: dict[str, list[str]] = {}
        for rel in self.list_seeds():
            result = self.scanner.scan_one(rel, None, now, reread=True, reparse=True, racy_ns=0)
            if on_file is not None:
                on_file(rel)
            if result is None:
                continue
            report.checked += 1
            if result.error is not None:
                report.append(result.error)
            if result.article is not None:
                report.warnings.extend(result.article.warnings)
            keys.setdefault(seed_key(result.path), []).append(result.path)
        groups = {k: ps for k, ps in keys.items() if len(ps) > 1}
        report += duplicate_errors(groups, self.display)
        return report


class CheckReport(list[SeedError]):
    """What ``check`` found: the errors ``build`` would report (the list itself), the same
    warnings ``build -v`` prints, and how many seeds were read."""

    def __init__(self) -> None:
        super().__init__()
        self.warnings: list[str] = []
        self.checked = 0
