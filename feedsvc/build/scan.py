"""Stage 1, scan: which seeds changed since the last build, read and parsed. Never writes.

The store is only read here (each file's last stat and hash, the parse fingerprint); every
outcome is a value, a ``FileResult``, errors included. Files are read lazily while the ledger
consumes the results, so memory stays flat however large the corpus.
"""

from __future__ import annotations

import hashlib
import marshal
import operator
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import SeedError, SeedPathError, SeedReadError, SeedsDirError
from ..models import Article, pack_article, unpack_article
from ..seeds import (
    Listing,
    Stamped,
    is_remote,
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
    walk_seeds,
)
from ..store import STAMPS_META, FileState, NewArticle, Store
from . import pool
from .feeds import FeedSet
from .fingerprints import ParseOptions
from .pool import POOL_MIN, POOL_WINDOW
from .pool import workers as _workers
from .rows import article_of, new_article

# A stat recorded less than this before a full scan started is "racily clean" (git's term): the
# file may have changed again within the file system's timestamp granularity (1-2 s on some).
RACY_NS = 2_000_000_000
# A full scan that reads every file (a cold build, a changed parse setting) with at least this
# many files reads and parses them in worker processes when a core is free (``pool_workers``);
# fewer are read in process: the workers' start-up (~0.3 s of CPU each) would cost more.
POOL_MIN_FILES = POOL_MIN
POOL_CHUNK = 100  # files per task: ~15 ms of work, large next to a task's overhead


class FileResult:
    """One seed file's outcome in a scan; ``article`` or ``error`` (or neither: unchanged).

    A value, never changed once made; a plain class with slots, not a dataclass: a full scan
    makes one per seed (a frozen dataclass costs 1.8 µs to make instead of 0.4), and
    ``article`` is a property. A worker sends the article packed (``models.pack_article``);
    in a cold build it sends the article's ``row`` (``rows.py``) instead, with only what the
    row leaves out (its own ``updated``, its ``warnings``): the bulk load of a cold build
    asks only for the row and the warnings, and the article is made again from the row if
    anything asks for it (``rows.article_of``).
    """

    __slots__ = (
        "_article",
        "_packed",
        "_warnings",
        "ctime_ns",
        "error",
        "file_hash",
        "gone",
        "hashed",
        "inode",
        "mtime_ns",
        "path",
        "prev",
        "row",
        "size",
        "unchanged",
    )

    def __init__(
        self,
        path: str,  # as stored: valid UTF-8 (see ``seeds.stored_path``)
        size: int = 0,
        mtime_ns: int = 0,
        ctime_ns: int = 0,
        inode: int = 0,
        file_hash: str | None = None,
        article: Article | None = None,
        error: SeedError | None = None,
        unchanged: bool = False,
        gone: bool = False,
        prev: FileState | None = None,
        hashed: bool = False,  # its bytes were read in this scan (not trusted from the stat)
        row: NewArticle | None = None,  # the article as a new ledger entry (``rows.py``)
        packed: Sent | None = None,  # (packed, warnings), or (updated, warnings) beside a row
    ) -> None:
        self.path = path
        self.size = size
        self.mtime_ns = mtime_ns
        self.ctime_ns = ctime_ns
        self.inode = inode
        self.file_hash = file_hash
        self._article = article
        self._packed = packed
        self._warnings = packed[1] if packed is not None else None
        self.error = error
        self.unchanged = unchanged
        self.gone = gone
        self.prev = prev
        self.hashed = hashed
        self.row = row

    @property
    def article(self) -> Article | None:
        """The parsed article (unpacked on first use when a worker sent it)."""
        if self._packed is not None:
            values, warnings = self._packed
            if values is None or isinstance(values, datetime):  # the rest is in the row
                assert self.row is not None, "a worker sent neither the article nor its row"
                self._article = article_of(self.row, updated=values, warnings=warnings)
            else:
                self._article = unpack_article(values)
            self._packed = None
        return self._article

    @property
    def warnings(self) -> tuple[str, ...]:
        """The article's warnings (without unpacking it); none without an article."""
        if self._warnings is not None:
            return self._warnings
        return self._article.warnings if self._article is not None else ()

    @property
    def stamp(self) -> tuple[int, int, int, int]:
        return (self.size, self.mtime_ns, self.ctime_ns, self.inode)

    def __repr__(self) -> str:
        shown = "gone" if self.gone else "unchanged" if self.unchanged else "read"
        return f"FileResult({self.path!r}, {shown}, error={self.error!r})"


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What changed on disk since the last publish, as values; read once, by the ledger."""

    results: Iterator[FileResult]
    full: bool
    started_ns: int = 0  # wall clock before the first stat, for the racy-clean rule
    # files of a full scan whose stat alone proved them unchanged: not among ``results``
    # (nothing to record: the ledger would only count them)
    unchanged: int = 0
    # a full scan's ``Store.duplicate_paths``, read before any result: still the store's when
    # the ledger records no result (nothing changed), so the build's report reuses it
    duplicates: dict[str, list[str]] | None = None
    # a full scan's listing, digested: what the ledger keeps in the store's meta when the
    # results leave the store's files exactly as listed (``ledger.record_stamps``)
    listed: Listed | None = None


# An article as a worker sends it: (``pack_article``'s values, warnings) or, beside its row,
# (its own ``updated``, None when it is ``published`` as always from a seed; warnings): the
# row holds the rest (``rows.article_of``).
Sent = tuple[tuple[Any, ...] | datetime | None, tuple[str, ...]]


def stamps_digest(found: Listing) -> str | None:
    """One digest of every seed's path and stamp in listing order (None: a stat failed).

    ``marshal`` format 2 (no back references: the same list gives the same bytes whatever
    else holds its strings), then SHA-256, at C speed: ~20 ms for 100,000 seeds. A folder
    listed in another order only costs the row compare once.
    """
    if len(found.stamped) != len(found.seeds):
        return None
    return hashlib.sha256(marshal.dumps(found.stamped, 2)).hexdigest()


def _clean_or_racy(
    stamped: list[Stamped], racy: int
) -> tuple[Collection[Stamped], dict[str, tuple[int, int, int, int]]]:
    """The stamps taken before ``racy`` (proven) and the others by path (a closer look)."""
    if not stamped or max(max(map(_MTIME, stamped)), max(map(_CTIME, stamped))) < racy:
        return stamped, {}
    clean = [t for t in stamped if t[2] < racy and t[3] < racy]
    return clean, {t[0]: t[1:] for t in stamped if t[2] >= racy or t[3] >= racy}


_MTIME, _CTIME = operator.itemgetter(2), operator.itemgetter(3)


class Listed:
    """A full scan's listing as its digest, and whether its results leave the store's files
    as listed: each listed seed not proven by its stat is read, not an error, and recorded
    with its listed stamp (``see`` each result). ``held``: the meta entry this scan trusted
    in place of the stored rows (None: the rows were compared).
    """

    __slots__ = ("_pending", "clean", "digest", "held")

    def __init__(
        self, digest: str, held: str | None, pending: dict[str, tuple[int, int, int, int]]
    ) -> None:
        self.digest = digest
        self.held = held
        self._pending = pending  # listed seeds without a result yet, and their stamps
        self.clean = True

    def see(self, result: FileResult) -> None:
        want = self._pending.pop(result.path, None)
        if want is None:
            return  # a stored file no longer listed (gone), or an odd name's stored path
        if result.gone or result.error is not None or result.stamp != want:
            self.clean = False

    @property
    def complete(self) -> bool:
        """Every listed seed was proven by its stat or recorded clean, as listed."""
        return self.clean and not self._pending


class Scanner:
    """Reads the seeds folder of one set of settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.seeds = settings.seeds_dir
        self.pattern = settings.seed_pattern
        self.options = ParseOptions.of(settings)
        self.parse_fp = self.options.fingerprint
        self._parse_kwargs = self.options.kwargs()
        root = str(self.seeds)  # as pathlib shows it: no "./", no trailing "/"
        self._prefix = "" if root == "." else root.rstrip("/") + "/"

    def display(self, rel: str) -> str:
        """How a seed is named in messages: the seeds dir as configured, then the relative path.

        Always one printable line: odd bytes and control characters in a name are escaped.
        """
        shown = self._prefix + rel  # str(seeds / rel) when nothing in rel needs normalizing
        if shown.isprintable() and not rel.startswith(".") and "/." not in rel and "//" not in rel:
            return shown
        return printable_path(self.seeds / rel)

    def relative(self, path: Path) -> str | None:
        """``path`` as a '/'-separated path inside seeds/, or None when it is outside."""
        try:
            rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(self.seeds))
        except ValueError:
            return None
        return rel.as_posix() if rel.parts else None

    def list_seeds(self) -> list[str]:
        return list_seeds(self.seeds, self.pattern)

    def scan(
        self,
        store: Store,
        paths: Iterable[Path] | None,
        *,
        now: datetime,
        racy_ns: int = RACY_NS,
        on_file: Callable[[str], None] | None = None,
        explicit: bool = False,
    ) -> ScanResult:
        """Plan what to read: every seed (``paths=None``) or just ``paths`` (from the watcher).

        An incremental scan touches only the given files' rows. Named files are always read
        again. ``explicit``: the paths were named by a person, so one that is not a seed
        raises ``SeedPathError`` (the watcher's odd paths are ignored). Raises
        ``SeedsDirError`` before anything is read when a folder cannot be listed.
        """
        started_ns = time.time_ns()
        reparse_all = store.get_meta("parse_fp") != self.parse_fp
        # git's racy-clean rule: a stat recorded too close to a full scan's start proves nothing
        scan_ns = store.get_meta("scan_ns")
        racy = int(scan_ns or 0) - racy_ns
        known: set[str] = set()  # stored files whose ``prev`` is read when they come up
        same: Collection[Stamped] = ()  # files a stat proved unchanged: no result at all
        listed: Listed | None = None  # what the results must leave for the listing's digest
        known_rest: Iterable[str] = ()
        states: dict[str, FileState] = {}
        if paths is None:
            found = walk_seeds(self.seeds, self.pattern, stats=not reparse_all)
            rest = found.seeds
            # (a scan that reads every file keeps no digest: its stats would be held for the
            # whole corpus; the next full scan compares the rows once and keeps it)
            digest = None if reparse_all else stamps_digest(found)
            held = store.get_meta(STAMPS_META) if digest is not None else None
            if digest is not None and not reparse_all and held == f"{scan_ns}:{digest}":
                # the store's own files are this very listing, each one hashed and accepted,
                # no key shared (``Listed``): nothing stored is read, and only the racily
                # clean files need a closer look, as ``Store.file_stamps`` would have said
                duplicates, shared = {}, set()
                same, pending = _clean_or_racy(found.stamped, racy)
                rest = list(pending)
                known = set(rest)
                listed = Listed(digest, held, pending)
            else:
                duplicates = store.duplicate_paths()
                shared = {p for group in duplicates.values() for p in group}
                if reparse_all:  # every file is read: every state is needed
                    states = store.file_states()
                    known_rest = states.keys()
                    pending = {}
                else:  # most files are unchanged: their stats and stamps are compared in bulk
                    stamps = store.file_stamps(racy)
                    proved = stamps.intersection(found.stamped)
                    if shared:  # files of a shared key are parsed again: one may own it now
                        proved = {t for t in proved if t[0] not in shared}
                    others = stamps - proved if len(proved) < len(stamps) else set()
                    if len(proved) < len(rest):
                        proven = {t[0] for t in proved}
                        rest = [rel for rel in rest if rel not in proven]
                        pending = {t[0]: t[1:] for t in found.stamped if t not in proved}
                    else:
                        rest, pending = [], {}
                    known = known_rest = {t[0] for t in others}
                    same = proved
                if digest is not None:
                    listed = Listed(digest, None, pending)
            # a printable name is its own stored name (``stored_path``), decided at C speed
            listing = {rel if rel.isprintable() else stored_path(rel): rel for rel in rest}
            # other hosts' seeds (``//host/path``, #10) are the remote source's to judge
            gone = sorted(p for p in known_rest if p not in listing and not is_remote(p))
        else:
            duplicates = None
            require_seeds_dir(self.seeds)
            named, problems = self.named(paths)
            # files sharing a key with a changed or deleted one get another look: one of them
            # may now own the key alone
            siblings = store.paths_with_keys({seed_key(stored_path(r)) for r in named})
            shared = {
                p
                for group in siblings.values()
                if len(group) > 1
                for p in group
                if not is_remote(p)
            }
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

        order = sorted(listing.items())
        workers = self.pool_workers(len(order)) if paths is None and reparse_all else 0

        def pooled() -> Iterator[FileResult]:
            """Every file read and parsed in worker processes; results in ``order``."""
            todo = [(rel, states.get(path)) for path, rel in order]
            # an empty store (a cold build) takes every article as new: the workers make rows
            scanned = self._scan_pooled(todo, now, racy, workers, rows=store.is_empty())
            for (path, rel), (_, prev), result in zip(order, todo, scanned, strict=True):
                if on_file is not None:
                    on_file(rel)
                if result is not None:
                    yield result
                elif prev is not None:
                    yield FileResult(path, gone=True)  # vanished since the listing

        def results() -> Iterator[FileResult]:
            if on_file is not None:
                for proven in same:
                    on_file(proven[0])
            for path in gone:
                yield FileResult(path, gone=True)
            if listed is None:
                yield from pooled() if workers else read()
                return
            for result in pooled() if workers else read():
                listed.see(result)
                yield result

        def read() -> Iterator[FileResult]:
            for path, rel in order:
                # a stored file its stat proved nothing about: its state, for a closer look
                prev = store.file_states([path]).get(path) if path in known else states.get(path)
                result = self.scan_one(
                    rel,
                    prev,
                    now,
                    reread=paths is not None,
                    reparse=reparse_all or path in shared,
                    racy_ns=racy,
                )
                if on_file is not None:
                    on_file(rel)
                if result is not None:
                    yield result
                elif prev is not None:
                    yield FileResult(path, gone=True)  # vanished since the listing

        return ScanResult(
            results(),
            full=paths is None,
            started_ns=started_ns,
            unchanged=len(same),
            duplicates=duplicates,
            listed=listed,
        )

    # --- both cores: a scan that reads every file reads and parses in worker processes ---------
    # None: decided by size and load (``pool_workers``); True/False: always/never. Without it
    # the environment's FEEDSVC_POOL=1/0 decides (the bench and the tests).
    pool: bool | None = None

    def pool_workers(self, to_read: int) -> int:
        """How many worker processes read and parse ``to_read`` files (0: this process).

        By default only when the work is big (``POOL_MIN_FILES``) and a core is free: with
        the 1-minute load at ``cores - 1`` or more, the hand-over only adds CPU time (about
        +30 % at 10,000 files, measured on a busy 2-core machine) and wins no wall time.
        """
        return _workers(to_read, self.pool, minimum=POOL_MIN_FILES)

    def _scan_pooled(
        self,
        todo: list[tuple[str, FileState | None]],
        now: datetime,
        racy_ns: int,
        workers: int,
        *,
        rows: bool = False,
    ) -> Iterator[FileResult | None]:
        """``scan_one`` (reparse) of every file in worker processes; results in ``todo``'s order.

        At most ``POOL_WINDOW`` tasks per worker are in flight, so memory stays flat however
        many files there are. The workers are forked or spawned (``pool.start``) and exit
        by themselves when the build is killed. ``rows``: a worker also makes each article's
        row as a new ledger entry (``rows.new_article``), so the main process of a cold build
        only writes it.
        """
        executor = pool.start(workers, _start_worker, (self.settings,))
        tasks = (
            (todo[start : start + POOL_CHUNK], now, racy_ns, rows)
            for start in range(0, len(todo), POOL_CHUNK)
        )
        for packed in pool.in_order(executor, _scan_chunk, tasks, window=POOL_WINDOW * workers):
            yield from map(_unpack, packed)

    def named(self, paths: Iterable[Path]) -> tuple[set[str], list[tuple[str, str]]]:
        """The seeds among ``paths`` as relative paths, and why each other one is not."""
        named: set[str] = set()
        problems: list[tuple[str, str]] = []
        for path in paths:
            rel = self.relative(path)
            if rel is None and os.path.abspath(path) == os.path.abspath(self.seeds):
                problems.append((printable_path(path), "a folder, not a seed file"))
            elif rel is None:
                problems.append((printable_path(path), f"not inside the seeds folder {self.seeds}"))
            elif not is_seed_name(rel.rsplit("/", 1)[-1], self.pattern):
                reason = f"not a seed file name (seed_pattern {self.pattern!r})"
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

    def scan_one(
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
        full = self._prefix + rel
        stored, shown = stored_path(rel), self.display(rel)
        if stored != rel:
            return FileResult(stored, error=SeedReadError(shown, 1, name_problem(rel)))
        if (
            prev is not None
            and not (reread or reparse)
            and prev.file_hash is not None
            and prev.error is None
        ):  # the stat may prove it unchanged
            st = self._stat(full, rel, shown)
            if not isinstance(st, os.stat_result):
                return st
            stamp = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
            if (prev.size, prev.mtime_ns, prev.ctime_ns, prev.inode) == stamp and max(
                st.st_mtime_ns, st.st_ctime_ns
            ) < racy_ns:
                return FileResult(rel, *stamp, prev.file_hash, unchanged=True, prev=prev)
        try:  # its stamp comes from the read (fstat); a stat first would only repeat it
            raw = read_seed(full, root=self.seeds, max_bytes=self.options.max_bytes, display=shown)
        except SeedError as e:
            st = self._stat(full, rel, shown)
            if not isinstance(st, os.stat_result):
                return st
            if not os.path.lexists(full):
                return None
            return FileResult(rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, error=e)
        stamp = (raw.size, raw.mtime_ns, raw.ctime_ns, raw.inode)
        digest = hashlib.sha256(raw.data).hexdigest()
        if prev and not reparse and prev.error is None and prev.file_hash == digest:
            return FileResult(rel, *stamp, digest, unchanged=True, prev=prev, hashed=True)
        try:
            article = parse_seed(raw.data, source=rel, now=now, display=shown, **self._parse_kwargs)
        except SeedError as e:
            return FileResult(rel, *stamp, digest, error=e, hashed=True)
        return FileResult(rel, *stamp, digest, article=article, hashed=True)

    @staticmethod
    def _stat(full: str, rel: str, shown: str) -> os.stat_result | FileResult | None:
        """A seed's stat (its symlink's when it dangles); None: it vanished; a ``FileResult``
        with the error when not even ``lstat`` works."""
        try:
            return os.stat(full)
        except FileNotFoundError:
            if not os.path.lexists(full):
                return None  # vanished since the listing: it is gone, not broken
            return os.lstat(full)  # a dangling symlink: read_seed reports it
        except OSError:
            try:
                return os.lstat(full)
            except OSError as e:
                return FileResult(rel, error=SeedReadError(shown, 1, os_reason(e)))


# --- the worker side of ``Scanner._scan_pooled`` ------------------------------------------------
# A SeedError does not survive pickling (its args are the message, not the facts): it travels as
# (class, path, line, reason); an Article as plain values (``pack_article``: pickling the
# models costs more than parsing them), or, when the worker made its row, as the little the
# row leaves out (half the bytes to pickle, send and unpickle: the row holds the JSON).
_Packed = (
    tuple[
        tuple[str, int, int, int, int, str | None, bool, FileState | None, bool],
        Sent | None,
        tuple[type[SeedError], str, int, str] | None,
        NewArticle | None,
    ]
    | None
)
_WORKER: Scanner | None = None
_FEEDS: FeedSet | None = None


def _start_worker(settings: Settings, parent: int) -> None:
    """A worker's set-up; ``parent``: the build's pid (it may be gone already)."""
    global _WORKER, _FEEDS
    _WORKER = Scanner(settings)
    _FEEDS = FeedSet(settings)
    pool.watch_parent(parent)


def _scan_chunk(
    chunk: list[tuple[str, FileState | None]], now: datetime, racy_ns: int, rows: bool
) -> list[_Packed]:
    scanner, feeds = _WORKER, _FEEDS
    assert scanner is not None, "the pool's initializer did not run"
    assert feeds is not None
    settings = scanner.settings
    out: list[_Packed] = []
    for rel, prev in chunk:
        result = scanner.scan_one(rel, prev, now, reread=False, reparse=True, racy_ns=racy_ns)
        if result is None:
            out.append(None)
            continue
        a, row = result.article, None
        article: Sent | None = None
        if a is not None and rows:
            row = new_article(a, authority=settings.id_authority, tz=settings.tz, feeds=feeds)
            article = (None if a.updated == a.published else a.updated, a.warnings)
        elif a is not None:
            article = (pack_article(a), a.warnings)
        e = result.error
        facts = (type(e), e.path, e.line, e.reason) if e is not None else None
        r = result
        head = (r.path, *r.stamp, r.file_hash, r.unchanged, r.prev, r.hashed)
        out.append((head, article, facts, row))
    return out


def _unpack(packed: _Packed) -> FileResult | None:
    if packed is None:
        return None
    head, article, facts, row = packed
    path, size, mtime_ns, ctime_ns, inode, file_hash, unchanged, prev, hashed = head
    return FileResult(
        path,
        size,
        mtime_ns,
        ctime_ns,
        inode,
        file_hash,
        packed=article,  # unpacked when asked for (``FileResult.article``)
        error=facts[0](facts[1], facts[2], facts[3]) if facts is not None else None,
        unchanged=unchanged,
        prev=prev,
        hashed=hashed,
        row=row,
    )
