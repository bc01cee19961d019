"""The ``Publisher``: seeds → store → feeds. The CLI, the watcher and the scheduler all call it.

``scan()`` reads (never writes) and returns per-file results, errors as values; ``publish()``
applies them in one store transaction and writes the feeds atomically before it commits.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Literal

from ._causes import os_cause
from ._lock import exclusive
from .adopt import Found, read_published
from .config import Settings
from .errors import (
    MassDeletionError,
    PublishError,
    SeedError,
    SeedPathError,
    SeedReadError,
    SeedsDirError,
    StoreError,
)
from .models import Article
from .seeds import (
    is_seed_name,
    list_seeds,
    name_problem,
    os_reason,
    parse_seed,
    printable_path,
    read_seed,
    require_seeds_dir,
    seed_key,
    stored_path,
)
from .site import Changes, SiteWriter
from .store import LOCK_FILE, FileState, Store, store_path

Status = Literal["new", "changed", "unchanged", "deleted", "error"]
PARSER_VERSION = "1"
LOCK_TIMEOUT = 30.0
# A stat recorded less than this before a full scan started is "racily clean" (git's term): the
# file may have changed again within the file system's timestamp granularity (1-2 s on some).
RACY_NS = 2_000_000_000
MaxDelete = int | Literal["all"] | None


@dataclass(frozen=True, slots=True)
class FileResult:
    """One seed file's outcome in a scan; ``article`` or ``error`` (or neither: unchanged)."""

    path: str  # as stored: valid UTF-8 (see ``stored_path``)
    size: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    inode: int = 0
    file_hash: str | None = None
    article: Article | None = None
    error: SeedError | None = None
    unchanged: bool = False
    gone: bool = False
    prev: FileState | None = None
    hashed: bool = False  # its bytes were read in this scan (not trusted from the stat)


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What changed on disk since the last publish, as values; read once, by ``publish``."""

    results: Iterator[FileResult]
    full: bool
    started_ns: int = 0  # wall clock before the first stat, for the racy-clean rule


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
    written: list[Path] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # outputs found missing or damaged
    outputs: list[Path] = field(default_factory=list)
    adopted: int = 0  # ids a new store took from the entries already in feeds/
    notes: list[str] = field(default_factory=list)  # worth saying even without -v
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """Every setting ``parse_seed`` uses; its repr is the parse fingerprint, so none is missed."""

    tz: tzinfo
    language: str
    languages: tuple[str, ...]
    language_min_confidence: float
    max_bytes: int
    max_future: timedelta

    @classmethod
    def of(cls, settings: Settings) -> ParseOptions:
        return cls(
            tz=settings.tz,
            language=settings.language,
            languages=settings.languages if settings.detect_language else (),
            language_min_confidence=settings.language_min_confidence,
            max_bytes=settings.max_seed_bytes,
            max_future=timedelta(days=settings.max_future_days),
        )


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
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.adopt_from = adopt_from or settings.feeds_dir  # where a new store finds its ids
        self.seeds = settings.seeds_dir
        self.seed_pattern = settings.seed_pattern
        self.site = SiteWriter(settings)
        self._parse_options = ParseOptions.of(settings)
        self._parse_fp = self._fingerprint(PARSER_VERSION, repr(self._parse_options))

    @staticmethod
    def _fingerprint(*parts: str) -> str:
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    @property
    def outputs(self) -> list[Path]:
        """The main feed's documents (the first configured feed)."""
        return self.site.main_outputs()

    def open_store(self, *, verify: bool = False) -> Store:
        """The store; ``verify`` reads every page first (``PRAGMA quick_check``)."""
        return Store(store_path(self.settings.state_dir), verify=verify)

    def display(self, rel: str) -> str:
        """How a seed is named in messages: the seeds dir as configured, then the relative path.

        Always one printable line: odd bytes and control characters in a name are escaped.
        """
        return printable_path(self.seeds / rel)

    def relative(self, path: Path) -> str | None:
        """``path`` as a '/'-separated path inside seeds/, or None when it is outside."""
        try:
            rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(self.seeds))
        except ValueError:
            return None
        return rel.as_posix() if rel.parts else None

    def require_seeds_dir(self) -> None:
        """Raise ``SeedsDirError`` unless the seeds folder exists and is a folder we can list."""
        require_seeds_dir(self.seeds)

    def list_seeds(self) -> list[str]:
        """Every seed file under seeds/, sorted (see ``seeds.list_seeds``)."""
        return list_seeds(self.seeds, self.seed_pattern)

    # --- scan: read only -------------------------------------------------------------------
    def scan(
        self,
        store: Store,
        paths: Iterable[Path] | None = None,
        *,
        on_file: Callable[[str], None] | None = None,
        explicit: bool = False,
    ) -> ScanResult:
        """Plan what to read: every seed (``paths=None``) or just ``paths`` (from the watcher).

        The files are read lazily while ``publish`` consumes the results, so memory stays flat
        however large the corpus; an incremental scan touches only the given files' rows. Named
        files are always read again. ``explicit``: the paths were named by a person, so one
        that is not a seed raises ``SeedPathError`` (the watcher's odd paths are ignored).
        Raises ``SeedsDirError`` before anything is read when a folder cannot be listed.
        """
        started_ns = time.time_ns()
        reparse_all = store.get_meta("parse_fp") != self._parse_fp
        # git's racy-clean rule: a stat recorded too close to a full scan's start proves nothing
        racy_ns = int(store.get_meta("scan_ns") or 0) - self.racy_ns
        if paths is None:
            listing = {stored_path(rel): rel for rel in self.list_seeds()}
            states = store.file_states()
            gone = sorted(set(states) - set(listing))
            shared = {p for group in store.duplicate_paths().values() for p in group}
        else:
            self.require_seeds_dir()
            named, problems = self._named(paths)
            # files sharing a key with a changed or deleted one get another look: one of them
            # may now own the key alone
            siblings = store.paths_with_keys({seed_key(stored_path(r)) for r in named})
            shared = {p for group in siblings.values() if len(group) > 1 for p in group}
            wanted = {stored_path(r): r for r in named} | {p: p for p in shared}
            states = store.file_states(wanted)
            listing, gone = {}, []
            for path, rel in sorted(wanted.items()):
                if self._exists(rel):
                    listing[path] = rel
                elif path in states:
                    gone.append(path)  # a seed that was deleted
                elif rel in named:
                    problems.append((self.display(rel), "no such file"))
            if explicit and problems:
                raise SeedPathError(problems)
        now = self.clock()

        def results() -> Iterator[FileResult]:
            for path in gone:
                yield FileResult(path, gone=True)
            for path, rel in sorted(listing.items()):
                prev = states.get(path)
                result = self._scan_one(
                    rel,
                    prev,
                    now,
                    reread=paths is not None,
                    reparse=reparse_all or path in shared,
                    racy_ns=racy_ns,
                )
                if on_file is not None:
                    on_file(rel)
                if result is not None:
                    yield result
                elif prev is not None:
                    yield FileResult(path, gone=True)  # vanished since the listing

        return ScanResult(results(), full=paths is None, started_ns=started_ns)

    def _named(self, paths: Iterable[Path]) -> tuple[set[str], list[tuple[str, str]]]:
        """The seeds among ``paths`` as relative paths, and why each other one is not."""
        named: set[str] = set()
        problems: list[tuple[str, str]] = []
        for path in paths:
            rel = self.relative(path)
            if rel is None and os.path.abspath(path) == os.path.abspath(self.seeds):
                problems.append((printable_path(path), "a folder, not a seed file"))
            elif rel is None:
                problems.append((printable_path(path), f"not inside the seeds folder {self.seeds}"))
            elif not is_seed_name(rel.rsplit("/", 1)[-1], self.seed_pattern):
                reason = f"not a seed file name (seed_pattern {self.seed_pattern!r})"
                problems.append((printable_path(path), reason))
            elif os.path.isdir(self.seeds / rel):
                problems.append((printable_path(path), "a folder, not a seed file"))
            else:
                named.add(rel)
        return named, problems

    def _exists(self, rel: str) -> bool:
        """Whether ``rel`` is there; a folder on its way that cannot be searched is an error."""
        path = self.seeds / rel
        try:
            os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as e:
            raise SeedsDirError(printable_path(path.parent), os_reason(e)) from e
        return True

    def _scan_one(
        self,
        rel: str,
        prev: FileState | None,
        now: datetime,
        *,
        reread: bool,
        reparse: bool,
        racy_ns: int,
    ) -> FileResult | None:
        """Read and parse one file unless its stat proves it unchanged (None: it vanished).

        ``reread``: hash it whatever the stat says; ``reparse``: parse it whatever the hash
        says. A file rejected last time is always parsed again: the reason may be gone (the
        clock moved on, a setting changed).
        """
        path = self.seeds / rel
        stored, shown = stored_path(rel), self.display(rel)
        if stored != rel:
            return FileResult(stored, error=SeedReadError(shown, 1, name_problem(rel)))
        try:
            st = path.stat()
        except FileNotFoundError:
            if not os.path.lexists(path):
                return None  # vanished since the listing: it is gone, not broken
            st = path.lstat()  # a dangling symlink: read_seed reports it
        except OSError:
            try:
                st = path.lstat()
            except OSError as e:
                return FileResult(rel, error=SeedReadError(shown, 1, os_reason(e)))
        stamp = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        if (
            prev is not None
            and not (reread or reparse)
            and prev.file_hash is not None
            and prev.error is None
            and (prev.size, prev.mtime_ns, prev.ctime_ns, prev.inode) == stamp
            and max(st.st_mtime_ns, st.st_ctime_ns) < racy_ns
        ):
            return FileResult(rel, *stamp, prev.file_hash, unchanged=True, prev=prev)
        try:
            raw = read_seed(
                path, root=self.seeds, max_bytes=self.settings.max_seed_bytes, display=shown
            )
        except SeedError as e:
            if not os.path.lexists(path):
                return None
            return FileResult(rel, *stamp, error=e)
        stamp = (raw.size, raw.mtime_ns, raw.ctime_ns, raw.inode)
        digest = hashlib.sha256(raw.data).hexdigest()
        if prev and not reparse and prev.error is None and prev.file_hash == digest:
            return FileResult(rel, *stamp, digest, unchanged=True, prev=prev, hashed=True)
        opts = self._parse_options
        try:
            article = parse_seed(
                raw.data,
                source=rel,
                now=now,
                tz=opts.tz,
                language=opts.language,
                languages=opts.languages,
                language_min_confidence=opts.language_min_confidence,
                max_bytes=opts.max_bytes,
                max_future=opts.max_future,
                display=shown,
            )
        except SeedError as e:
            return FileResult(rel, *stamp, digest, error=e, hashed=True)
        return FileResult(rel, *stamp, digest, article=article, hashed=True)

    # --- publish: one transaction -------------------------------------------------------------
    def publish(
        self, store: Store, scan: ScanResult, *, max_delete: MaxDelete = None
    ) -> BuildReport:
        """Apply a scan to the store and write the feeds; all of it or (on error) none of it.

        Raises ``MassDeletionError`` (nothing written) when the scan would unpublish more
        articles than ``max_delete`` allows (see ``deletion_limit``). Feeds are written before
        the commit, so a failed commit leaves new feeds over an old store: the error says so,
        and the next build sees the feeds are not the ones the store recorded and writes them
        again.
        """
        report = BuildReport(outputs=self.outputs)
        now = self.clock()
        committing = False
        self.site.touched.clear()
        try:
            with store.transaction():
                adopted = self._adopt(store, report)
                published = store.count_live()
                unpublished: set[str] = set()  # keys live before and not (yet) again
                changes = Changes(page_size=self.settings.archive_page_size)
                resort = store.get_meta("members_fp") != self.site.membership_fp
                if resort and not store.count_live():  # a fresh store: nothing to re-sort
                    store.set_meta("members_fp", self.site.membership_fp)
                    resort = False
                for result in scan.results:
                    article = result.article
                    seen = adopted.entries.get(article.key) if adopted and article else None
                    if article is not None and seen is not None and seen.shows(article):
                        store.confirm_adopted(article.key, article.content_hash)
                    status = self._apply(store, result, now, changes, unpublished)
                    if status == "deleted":
                        report.deleted += 1
                    elif status == "new":
                        report.new += 1
                    elif status == "changed":
                        report.changed += 1
                    elif status == "unchanged":
                        report.unchanged += 1
                    if result.article is not None:
                        report.warnings.extend(result.article.warnings)
                limit = self.deletion_limit(published, max_delete)
                if limit is not None and len(unpublished) > limit:
                    raise MassDeletionError(
                        printable_path(self.seeds),
                        would_delete=len(unpublished),
                        published=published,
                        limit=limit,
                    )
                if resort:
                    self._place_all(store, changes)
                if adopted is not None:
                    self._adopt_places(store, adopted)
                written = self.site.write(store, changes)
                report.written, report.repaired = written.paths, written.repaired
                if scan.full:
                    store.set_meta("parse_fp", self._parse_fp)
                    store.set_meta("scan_ns", str(scan.started_ns))
                report.errors = self._standing_errors(store)
                report.total = store.count_live()
                committing = True
        except StoreError as e:
            if e.damaged:  # the reason says what to do; only what was written is added
                if not self.site.touched:
                    raise
                note = f" ({_files(len(self.site.touched))} rewritten in feeds)"
                raise StoreError(e.path, e.reason + note, damaged=True) from e
            raise StoreError(e.path, f"{e.reason}; {self._aftermath(committing)}") from e
        except OSError as e:
            where = e.filename2 or e.filename or self.settings.feeds_dir
            raise PublishError(f"{where}: {os_cause(e)}; {self._aftermath(committing)}") from e
        return report

    def deletion_limit(self, published: int, max_delete: MaxDelete = None) -> int | None:
        """How many of ``published`` articles one build may unpublish (None: any number).

        ``max_delete``: a number, "all", or None for the ``max_delete_fraction`` rule: more
        than that share of the published articles stops the build, but one is always allowed
        (so a small site can still delete its only article, and a single removal never stops).
        """
        if max_delete == "all":
            return None
        if max_delete is not None:
            return max_delete
        return max(1, int(published * self.settings.max_delete_fraction))

    def _aftermath(self, committing: bool) -> str:
        """What a failed build left behind, truly: the feeds are old, new, or partly new."""
        touched = len(self.site.touched)
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

    def _adopt(self, store: Store, report: BuildReport) -> Found | None:
        """A store that never minted an id takes those feeds/ published (see ``adopt``)."""
        if not store.needs_adoption():
            return None
        found = read_published(self.adopt_from)
        for entry in found.entries.values():
            if store.adopt_entry(
                entry.key, entry.entry_id, published=entry.published, updated=entry.updated
            ):
                report.adopted += 1
        store.adoption_done()
        report.warnings.extend(found.skipped)
        if report.adopted:
            note = f"adopted {report.adopted} ids from {self.adopt_from} (a new store)"
            report.notes.append(note)
            report.warnings.append(note)  # the daemon logs warnings
        return found

    def _adopt_places(self, store: Store, found: Found) -> None:
        """Adopted entries keep their archive pages, so no archive document changes."""
        size = self.settings.archive_page_size
        if not size or not found.archives:
            return
        for spec in self.site.specs(store):
            folder = (self.settings.feeds_dir / spec.archive_file(0)).parent
            places = found.places(folder, size)
            for key, seq in (places or {}).items():
                if any(m.feed == spec.name and m.seq is None for m in store.members_of(key)):
                    store.set_seq(spec.name, key, seq)

    def _apply(
        self,
        store: Store,
        result: FileResult,
        now: datetime,
        changes: Changes,
        unpublished: set[str],
    ) -> Status | None:
        """Record one file's outcome; say how its article changed (None: a duplicate key).

        ``unpublished`` collects the keys taken off the feeds and not published again (a
        moved or renamed file's article comes back in the same build).
        """
        rel, article, error, prev = result.path, result.article, result.error, result.prev
        if result.gone:
            key = store.key_at_path(rel)
            if key is not None:
                store.retire(key)  # unpublished, but the ledger keeps its id
                changes.gone(key, store.drop_members(key))
                unpublished.add(key)
            store.delete_file(rel)
            return "deleted" if key is not None else None
        stamp = (result.size, result.mtime_ns, result.ctime_ns, result.inode)
        if result.unchanged:
            if prev is not None and (prev.size, prev.mtime_ns, prev.ctime_ns, prev.inode) != stamp:
                store.put_file(
                    replace(
                        prev,
                        size=result.size,
                        mtime_ns=result.mtime_ns,
                        ctime_ns=result.ctime_ns,
                        inode=result.inode,
                    )
                )
            return "unchanged"
        key = article.key if article is not None else seed_key(rel)
        store.put_file(
            FileState(
                rel,
                key,
                result.size,
                result.mtime_ns,
                result.file_hash,
                error.reason if error else None,
                error.line if error else None,
                article.warnings if article else (),
                result.ctime_ns,
                result.inode,
            )
        )
        if article is None:
            return "error"  # the last valid version, if any, stays published
        row = store.article_row(key)
        if (
            row is not None
            and row.path not in (None, rel)
            and row.path in store.paths_with_key(key)
        ):
            return None  # another file already publishes this key: reported as a duplicate
        old_key = store.retired_key(article.content_hash) if row is None else None
        old = store.article_row(old_key) if old_key else None
        status: Status
        if old is not None:  # the same content under a new name keeps its id
            store.forget(old.key)
            unpublished.discard(old.key)
            changes.gone(old.key, store.drop_members(old.key))
            entry_id, first_seen, updated, status = (
                old.entry_id,
                old.first_seen,
                old.updated,
                "changed",
            )
        elif row is None:
            entry_id, first_seen, updated, status = (
                self._mint_id(store, article),
                now,
                article.published,
                "new",
            )
        else:
            entry_id, first_seen = row.entry_id, row.first_seen
            same = row.content_hash == article.content_hash
            updated = row.updated if same else max(now, article.published)
            status = "new" if row.path is None else ("unchanged" if same else "changed")
        updated = max(updated, article.published)
        stored = article.model_copy(update={"entry_id": entry_id, "updated": updated})
        store.put_article(stored, path=rel, entry_id=entry_id, first_seen=first_seen)
        unpublished.discard(key)
        if status != "unchanged":
            feeds = self.site.feeds_for(stored)
            changes.moved(key, store.set_members(key, stored.published, feeds), feeds)
        return status

    def _place_all(self, store: Store, changes: Changes) -> None:
        """The feeds' definitions changed: sort every article into its feeds afresh.

        Archive places are handed out again too, so the archive is rebuilt from scratch.
        """
        store.clear_members()
        for article in store.iter_live_articles():
            feeds = self.site.feeds_for(article)
            store.set_members(article.key, article.published, feeds)
            changes.feeds.update(feeds)
        store.force_rerender()
        store.set_meta("members_fp", self.site.membership_fp)

    def _mint_id(self, store: Store, article: Article) -> str:
        """A ``tag:`` URI (RFC 4151) from the key; minted once, then kept by the ledger."""
        day = article.published.astimezone(self.settings.tz).date().isoformat()
        base = f"tag:{self.settings.id_authority},{day}:{article.key}"
        candidate, n = base, 1
        while store.has_entry_id(candidate):  # a renamed article took this key's id with it
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def _standing_errors(self, store: Store) -> list[SeedError]:
        errors = [SeedError(self.display(p), line, reason) for p, line, reason in store.errors()]
        errors += self._duplicate_errors(store.duplicate_paths())
        errors.sort(key=lambda e: (e.path, e.line, e.reason))
        return errors

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
        self.require_seeds_dir()  # before the state dir and the store are created
        publishing = False
        try:
            with (
                exclusive(self.settings.state_dir / LOCK_FILE, timeout=lock_timeout),
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

    def check(self, *, on_file: Callable[[str], None] | None = None) -> list[SeedError]:
        """Validate every seed without touching the store or the feeds."""
        errors: list[SeedError] = []
        now = self.clock()
        keys: dict[str, list[str]] = {}
        for rel in self.list_seeds():
            result = self._scan_one(rel, None, now, reread=True, reparse=True, racy_ns=0)
            if on_file is not None:
                on_file(rel)
            if result is None:
                continue
            if result.error is not None:
                errors.append(result.error)
            keys.setdefault(seed_key(result.path), []).append(result.path)
        errors += self._duplicate_errors({k: ps for k, ps in keys.items() if len(ps) > 1})
        return errors

    def _duplicate_errors(self, groups: dict[str, list[str]]) -> list[SeedError]:
        """Every file of a key that several files carry, naming the others."""
        errors = []
        for key, paths in groups.items():
            for p in paths:
                others = ", ".join(self.display(o) for o in paths if o != p)
                errors.append(SeedError(self.display(p), 1, f"duplicate key {key}: also {others}"))
        return errors
