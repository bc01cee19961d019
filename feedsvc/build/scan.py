"""Stage 1, scan: which seeds changed since the last build, read and parsed. Never writes.

The store is only read here (each file's last stat and hash, the parse fingerprint); every
outcome is a value, a ``FileResult``, errors included. Files are read lazily while the ledger
consumes the results, so memory stays flat however large the corpus.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..config import Settings
from ..errors import SeedError, SeedPathError, SeedReadError, SeedsDirError
from ..models import Article
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
from ..store import FileState, Store
from .fingerprints import ParseOptions

# A stat recorded less than this before a full scan started is "racily clean" (git's term): the
# file may have changed again within the file system's timestamp granularity (1-2 s on some).
RACY_NS = 2_000_000_000


@dataclass(frozen=True, slots=True)
class FileResult:
    """One seed file's outcome in a scan; ``article`` or ``error`` (or neither: unchanged)."""

    path: str  # as stored: valid UTF-8 (see ``seeds.stored_path``)
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

    @property
    def stamp(self) -> tuple[int, int, int, int]:
        return (self.size, self.mtime_ns, self.ctime_ns, self.inode)


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What changed on disk since the last publish, as values; read once, by the ledger."""

    results: Iterator[FileResult]
    full: bool
    started_ns: int = 0  # wall clock before the first stat, for the racy-clean rule


def _unchanged(
    full: str, rel: str, recorded: tuple[int, int, int, int], racy_ns: int
) -> FileResult | None:
    """``scan_one``'s first test alone, on a plain string: the stat proves ``rel`` unchanged.

    The result carries no hash and no ``prev``: the stat is the one recorded, so the ledger
    has nothing to update. None: it may have changed, or cannot be stat'ed (``scan_one``
    then looks properly).
    """
    try:
        st = os.stat(full)
    except OSError:
        return None
    stamp = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if recorded != stamp or max(st.st_mtime_ns, st.st_ctime_ns) >= racy_ns:
        return None
    return FileResult(rel, *stamp, unchanged=True)


class Scanner:
    """Reads the seeds folder of one set of settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.seeds = settings.seeds_dir
        self.pattern = settings.seed_pattern
        self.options = ParseOptions.of(settings)
        self.parse_fp = self.options.fingerprint
        self._parse_kwargs = self.options.kwargs()

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
            listing = {stored_path(rel): rel for rel in self.list_seeds()}
            if reparse_all:  # every file is read: every state is needed
                states = store.file_states()
                known: Iterable[str] = states
            else:  # most files are unchanged: a stamp each, a state only for the others
                states, stamps = {}, store.file_stamps()
                known = stamps
            # other hosts' seeds (``//host/path``, #10) are the remote source's to judge
            gone = sorted(p for p in set(known) - set(listing) if not is_remote(p))
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

        prefix = os.path.join(self.seeds, "")  # plain strings: pathlib costs more than the stat

        def results() -> Iterator[FileResult]:
            for path in gone:
                yield FileResult(path, gone=True)
            for path, rel in sorted(listing.items()):
                if path in stamps:
                    stamp = stamps[path]
                    if stamp is not None and path == rel and path not in shared:
                        result = _unchanged(prefix + rel, rel, stamp, racy)
                        if result is not None:  # the stat proves it (most files of a full scan)
                            if on_file is not None:
                                on_file(rel)
                            yield result
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
            raw = read_seed(path, root=self.seeds, max_bytes=self.options.max_bytes, display=shown)
        except SeedError as e:
            if not os.path.lexists(path):
                return None
            return FileResult(rel, *stamp, error=e)
        stamp = (raw.size, raw.mtime_ns, raw.ctime_ns, raw.inode)
        digest = hashlib.sha256(raw.data).hexdigest()
        if prev and not reparse and prev.error is None and prev.file_hash == digest:
            return FileResult(rel, *stamp, digest, unchanged=True, prev=prev, hashed=True)
        try:
            article = parse_seed(raw.data, source=rel, now=now, display=shown, **self._parse_kwargs)
        except SeedError as e:
            return FileResult(rel, *stamp, digest, error=e, hashed=True)
        return FileResult(rel, *stamp, digest, article=article, hashed=True)
