"""Stage 1, scan: which seeds changed since the last build, read and parsed. Never writes.

The store is only read here (each file's last stat and hash, the parse fingerprint); every
outcome is a value, a ``FileResult``, errors included. Files are read lazily while the ledger
consumes the results, so memory stays flat however large the corpus.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, KeysView
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import SeedError, SeedPathError, SeedReadError, SeedsDirError
from ..models import Article, pack_article, unpack_article
from ..seeds import (
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
)
from ..store import FileState, NewArticle, Store
from .feeds import FeedSet
from .fingerprints import ParseOptions
from .rows import new_article

# A stat recorded less than this before a full scan started is "racily clean" (git's term): the
# file may have changed again within the file system's timestamp granularity (1-2 s on some).
RACY_NS = 2_000_000_000
# A full scan that reads every file (a cold build, a changed parse setting) with at least this
# many files reads and parses them in worker processes when a core is free (``pool_workers``);
# fewer are read in process: the workers' start-up (~0.3 s of CPU each) would cost more.
POOL_MIN_FILES = 2000
POOL_CHUNK = 100  # files per task: ~15 ms of work, large next to a task's overhead
POOL_WINDOW = 4  # tasks in flight per worker: results wait in memory for at most this many
ORPHAN_POLL = 0.2  # seconds between a worker's checks that its build is still there


class FileResult:
    """One seed file's outcome in a scan; ``article`` or ``error`` (or neither: unchanged).

    A value, never changed once made; a plain class with slots, not a dataclass: a full scan
    makes one per seed (a frozen dataclass costs 1.8 µs to make instead of 0.4), and
    ``article`` is a property. A worker of a cold build sends the article packed beside its
    ``row`` (``rows.py``): it is unpacked only when asked for, and the bulk load of a cold
    build asks only for the row and the ``warnings``.
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
        packed: tuple[tuple[Any, ...], tuple[str, ...]] | None = None,  # (packed, warnings)
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
            self._article, self._packed = unpack_article(self._packed[0]), None
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


_ABSENT = (-1, -1, -1, -1)  # not a file the store knows (``stamps.get`` default)


def _open_dir(folder: Path) -> int | None:
    """An fd of ``folder`` to stat its files by; None when it cannot be opened (each file
    then goes through ``scan_one``, which says why)."""
    try:
        return os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return None


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
        racy = int(store.get_meta("scan_ns") or 0) - racy_ns
        stamps: dict[str, tuple[int, int, int, int] | None] = {}
        if paths is None:
            # a printable name is its own stored name (``stored_path``), decided at C speed
            listing = {
                rel if rel.isprintable() else stored_path(rel): rel for rel in self.list_seeds()
            }
            if reparse_all:  # every file is read: every state is needed
                states = store.file_states()
                known: KeysView[str] = states.keys()
            else:  # most files are unchanged: a stamp each, a state only for the others
                states, stamps = {}, store.file_stamps()
                known = stamps.keys()
            # other hosts' seeds (``//host/path``, #10) are the remote source's to judge
            gone = sorted(p for p in known - listing.keys() if not is_remote(p))
            shared = {p for group in store.duplicate_paths().values() for p in group}
        else:
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
            for path in gone:
                yield FileResult(path, gone=True)
            if workers:
                yield from pooled()
                return
            # most files of a full scan are proven unchanged by a stat, relative to this fd
            root_fd = _open_dir(self.seeds) if stamps else None
            try:
                yield from listed(root_fd)
            finally:
                if root_fd is not None:
                    os.close(root_fd)

        def listed(root_fd: int | None) -> Iterator[FileResult]:
            stat = os.stat
            for path, rel in order:
                stamp = stamps.get(path, _ABSENT)
                if stamp is not _ABSENT:
                    if (
                        stamp is not None
                        and root_fd is not None
                        and path == rel
                        and path not in shared
                    ):  # ``scan_one``'s first test alone: the stat proves it unchanged
                        try:
                            st = stat(rel, dir_fd=root_fd)  # one path component to resolve
                        except OSError:
                            st = None  # scan_one looks properly
                        if (
                            st is not None
                            and stamp == (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
                            and st.st_mtime_ns < racy
                            and st.st_ctime_ns < racy
                        ):  # no hash, no ``prev``: the ledger has nothing to update
                            if on_file is not None:
                                on_file(rel)
                            yield FileResult(rel, *stamp, unchanged=True)
                            continue
                    prev = store.file_states([path]).get(path)
                else:
                    prev = states.get(path)
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

        return ScanResult(results(), full=paths is None, started_ns=started_ns)

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
        forced = self.pool
        if forced is None:
            forced = {"0": False, "1": True}.get(os.environ.get("FEEDSVC_POOL", ""))
        if forced is False:
            return 0
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        if forced is None and (to_read < POOL_MIN_FILES or cores < 2 or _load() >= cores - 1):
            return 0
        return min(max(cores, 2), 4)

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
        many files there are. The workers are forked or spawned (``_start_method``) and exit
        by themselves when the build is killed. ``rows``: a worker also makes each article's
        row as a new ledger entry (``rows.new_article``), so the main process of a cold build
        only writes it.
        """
        executor = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context(_start_method()),
            initializer=_start_worker,
            initargs=(self.settings, os.getpid()),
        )
        pending: deque[Future[list[_Packed]]] = deque()
        try:
            for start in range(0, len(todo), POOL_CHUNK):
                chunk = todo[start : start + POOL_CHUNK]
                pending.append(executor.submit(_scan_chunk, chunk, now, racy_ns, rows))
                if len(pending) >= POOL_WINDOW * workers:
                    yield from map(_unpack, pending.popleft().result())
            while pending:
                yield from map(_unpack, pending.popleft().result())
        finally:
            executor.shutdown(wait=True, cancel_futures=True)

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
# models costs more than parsing them).
_Packed = (
    tuple[
        tuple[str, int, int, int, int, str | None, bool, FileState | None, bool],
        tuple[tuple[Any, ...], tuple[str, ...]] | None,
        tuple[type[SeedError], str, int, str] | None,
        NewArticle | None,
    ]
    | None
)
_WORKER: Scanner | None = None
_FEEDS: FeedSet | None = None


def _load() -> float:
    """The 1-minute load average (infinite where it cannot be known: no pool by default)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return float("inf")


def _start_method() -> str:
    """``fork`` when this process runs one thread (the CLI: the workers start at once, with
    everything imported), else ``spawn`` (a daemon's threads may hold locks a fork copies)."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "spawn"


def _start_worker(settings: Settings, parent: int) -> None:
    """A worker's set-up; ``parent``: the build's pid (it may be gone already)."""
    global _WORKER, _FEEDS
    _WORKER = Scanner(settings)
    _FEEDS = FeedSet(settings)
    threading.Thread(target=_orphan_watch, args=(parent,), daemon=True).start()


def _orphan_watch(parent: int) -> None:
    """A worker whose build was killed (SIGKILL leaves no time to stop the pool) exits too."""
    while os.getppid() == parent:
        time.sleep(ORPHAN_POLL)
    os._exit(1)


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
        if a is not None and rows:
            row = new_article(a, authority=settings.id_authority, tz=settings.tz, feeds=feeds)
        article = (pack_article(a), a.warnings) if a is not None else None
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
