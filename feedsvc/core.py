"""The ``Publisher``: seeds → store → feeds. The CLI, the watcher and the scheduler all call it.

``scan()`` reads (never writes) and returns per-file results, errors as values; ``publish()``
applies them in one store transaction and writes the feeds atomically before it commits.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from ._lock import exclusive
from .config import Settings
from .errors import PublishError, SeedError
from .models import Article
from .parsing import parse_seed, read_seed, seed_key
from .site import Changes, SiteWriter
from .store import FileState, Store

Status = Literal["new", "changed", "unchanged", "deleted", "error"]
PARSER_VERSION = "1"
LOCK_TIMEOUT = 30.0
IGNORED_SUFFIXES = (".swp", ".swx", "~", ".tmp", ".part", ".crdownload")


@dataclass(frozen=True, slots=True)
class FileResult:
    """One seed file's outcome in a scan; ``article`` or ``error`` (or neither: unchanged)."""

    path: str
    size: int = 0
    mtime_ns: int = 0
    file_hash: str | None = None
    article: Article | None = None
    error: SeedError | None = None
    unchanged: bool = False
    gone: bool = False
    prev: FileState | None = None


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What changed on disk since the last publish, as values; read once, by ``publish``."""

    results: Iterator[FileResult]
    full: bool


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
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors


def is_seed_name(name: str, pattern: str) -> bool:
    """Seed files match the pattern; hidden files and editor or transfer leftovers never do."""
    return (
        not name.startswith(".")
        and not name.endswith(IGNORED_SUFFIXES)
        and fnmatch.fnmatchcase(name, pattern)
    )


class Publisher:
    """Owns one seeds dir, one store and one feeds dir, as the settings say."""

    def __init__(
        self, settings: Settings, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.seeds = settings.seeds_dir
        self.seed_pattern = settings.seed_pattern
        self.site = SiteWriter(settings)
        self._parse_fp = self._fingerprint(
            PARSER_VERSION,
            settings.timezone,
            settings.language,
            str(settings.max_seed_bytes),
            ",".join(settings.languages) if settings.detect_language else "",
            repr(settings.language_min_confidence),
        )

    @staticmethod
    def _fingerprint(*parts: str) -> str:
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    @property
    def outputs(self) -> list[Path]:
        """The main feed's documents (the first configured feed)."""
        return self.site.main_outputs()

    def open_store(self) -> Store:
        return Store(self.settings.state_dir / "feedsvc.sqlite3")

    def display(self, rel: str) -> str:
        """How a seed is named in messages: the seeds dir as configured, then the relative path."""
        return str(self.seeds / rel)

    def relative(self, path: Path) -> str | None:
        """``path`` as a '/'-separated path inside seeds/, or None when it is outside."""
        try:
            rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(self.seeds))
        except ValueError:
            return None
        return rel.as_posix() if rel.parts else None

    def list_seeds(self) -> list[str]:
        """Every seed file under seeds/ (recursive, symlinked dirs not followed), sorted."""
        found: list[str] = []
        root = str(self.seeds)
        pattern = self.seed_pattern
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            base = os.path.relpath(dirpath, root)
            for name in filenames:
                if is_seed_name(name, pattern):
                    found.append(name if base == "." else f"{base}/{name}".replace(os.sep, "/"))
        found.sort()
        return found

    # --- scan: read only -------------------------------------------------------------------
    def scan(
        self,
        store: Store,
        paths: Iterable[Path] | None = None,
        *,
        on_file: Callable[[str], None] | None = None,
    ) -> ScanResult:
        """Plan what to read: every seed (``paths=None``) or just ``paths`` (from the watcher).

        The files are read lazily while ``publish`` consumes the results, so memory stays flat
        however large the corpus; an incremental scan touches only the given files' rows.
        """
        force_all = store.get_meta("parse_fp") != self._parse_fp
        if paths is None:
            states = store.file_states()
            listing = self.list_seeds()
            gone = sorted(set(states) - set(listing))
            shared = {p for group in store.duplicate_paths().values() for p in group}
        else:
            rels = {r for r in map(self.relative, paths) if r is not None}
            rels = {r for r in rels if is_seed_name(r.rsplit("/", 1)[-1], self.seed_pattern)}
            # files sharing a key with a changed or deleted one get another look: one of them
            # may now own the key alone
            siblings = store.paths_with_keys({seed_key(r) for r in rels})
            shared = {p for group in siblings.values() if len(group) > 1 for p in group}
            rels |= shared
            states = store.file_states(rels)
            listing = sorted(r for r in rels if os.path.lexists(self.seeds / r))
            gone = sorted(r for r in rels - set(listing) if r in states)
        now = self.clock()

        def results() -> Iterator[FileResult]:
            for rel in gone:
                yield FileResult(rel, gone=True)
            for rel in listing:
                result = self._scan_one(rel, states.get(rel), force_all or rel in shared, now)
                if on_file is not None:
                    on_file(rel)
                if result is not None:
                    yield result
                elif rel in states:
                    yield FileResult(rel, gone=True)  # vanished since the listing

        return ScanResult(results(), full=paths is None)

    def _scan_one(
        self, rel: str, prev: FileState | None, force: bool, now: datetime
    ) -> FileResult | None:
        path = self.seeds / rel
        shown = self.display(rel)
        try:
            st = path.stat()
        except FileNotFoundError:
            if not os.path.lexists(path):
                return None  # vanished since the listing: it is gone, not broken
            st = path.lstat()  # a dangling symlink: read_seed reports it
        except OSError:
            st = path.lstat()
        same_stat = prev is not None and (prev.size, prev.mtime_ns) == (st.st_size, st.st_mtime_ns)
        if prev and not force and same_stat and prev.file_hash is not None:
            return FileResult(
                rel, st.st_size, st.st_mtime_ns, prev.file_hash, unchanged=True, prev=prev
            )
        try:
            raw = read_seed(
                path, root=self.seeds, max_bytes=self.settings.max_seed_bytes, display=shown
            )
        except SeedError as e:
            if not os.path.lexists(path):
                return None
            return FileResult(rel, st.st_size, st.st_mtime_ns, error=e)
        digest = hashlib.sha256(raw.data).hexdigest()
        if prev and not force and prev.file_hash == digest:
            return FileResult(rel, raw.size, raw.mtime_ns, digest, unchanged=True, prev=prev)
        try:
            article = parse_seed(
                raw.data,
                source=rel,
                now=now,
                tz=self.settings.tz,
                language=self.settings.language,
                languages=self.settings.languages if self.settings.detect_language else (),
                language_min_confidence=self.settings.language_min_confidence,
                max_bytes=self.settings.max_seed_bytes,
                max_future=timedelta(days=self.settings.max_future_days),
                display=shown,
            )
        except SeedError as e:
            return FileResult(rel, raw.size, raw.mtime_ns, digest, error=e)
        return FileResult(rel, raw.size, raw.mtime_ns, digest, article=article)

    # --- publish: one transaction -------------------------------------------------------------
    def publish(self, store: Store, scan: ScanResult) -> BuildReport:
        """Apply a scan to the store and write the feeds; all of it or (on error) none of it."""
        report = BuildReport(outputs=self.outputs)
        now = self.clock()
        try:
            with store.transaction():
                changes = Changes(page_size=self.settings.archive_page_size)
                resort = store.get_meta("members_fp") != self.site.membership_fp
                if resort and not store.count_live():  # a fresh store: nothing to re-sort
                    store.set_meta("members_fp", self.site.membership_fp)
                    resort = False
                for result in scan.results:
                    status = self._apply(store, result, now, changes)
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
                if resort:
                    self._place_all(store, changes)
                written = self.site.write(store, changes)
                report.written, report.repaired = written.paths, written.repaired
                if scan.full:
                    store.set_meta("parse_fp", self._parse_fp)
                report.errors = self._standing_errors(store)
                report.total = store.count_live()
        except (OSError, sqlite3.Error) as e:
            raise PublishError(f"build abandoned, previous feeds and store kept: {e}") from e
        return report

    def _apply(
        self, store: Store, result: FileResult, now: datetime, changes: Changes
    ) -> Status | None:
        """Record one file's outcome; say how its article changed (None: a duplicate key)."""
        rel, article, error, prev = result.path, result.article, result.error, result.prev
        if result.gone:
            key = store.key_at_path(rel)
            if key is not None:
                store.retire(key)  # unpublished, but the ledger keeps its id
                changes.gone(key, store.drop_members(key))
            store.delete_file(rel)
            return "deleted" if key is not None else None
        if result.unchanged:
            if prev is not None and (prev.size, prev.mtime_ns) != (result.size, result.mtime_ns):
                store.put_file(replace(prev, size=result.size, mtime_ns=result.mtime_ns))
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
    ) -> BuildReport:
        """Scan and publish under the state-dir lock; errors in seeds are values in the report."""
        start = time.perf_counter()
        with (
            exclusive(self.settings.state_dir / "lock", timeout=lock_timeout),
            self.open_store() as store,
        ):
            report = self.publish(store, self.scan(store, paths, on_file=on_file))
        report.seconds = time.perf_counter() - start
        return report

    def check(self, *, on_file: Callable[[str], None] | None = None) -> list[SeedError]:
        """Validate every seed without touching the store or the feeds."""
        errors: list[SeedError] = []
        now = self.clock()
        keys: dict[str, list[str]] = {}
        for rel in self.list_seeds():
            result = self._scan_one(rel, None, True, now)
            if on_file is not None:
                on_file(rel)
            if result is None:
                continue
            if result.error is not None:
                errors.append(result.error)
            keys.setdefault(seed_key(rel), []).append(rel)
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
