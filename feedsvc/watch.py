"""watchdog events on ``seeds/`` → debounced batches of changed paths for the rebuild job.

A path is handed on once it has had ``delay`` seconds without an event *and* its size and
mtime held still over that time, so a file being written slowly is never read half. The two
sides of a move travel in one batch, so the store's id ledger sees a rename, not a delete and
an unrelated add.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from .core import is_seed_name

log = logging.getLogger(__name__)

Deliver = Callable[[list[Path], bool], None]
"""Called with (ready paths, whether a full rescan is wanted)."""

Stamp = tuple[int, int] | None  # (size, mtime_ns); None when the path does not exist

# Opened and closed-without-writing events are left out on purpose: reading a seed must not
# look like a change to it. Directory "modified" events only echo their files' events.
EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileAttribEvent,
    FileMovedEvent,
    FileDeletedEvent,
    DirCreatedEvent,
    DirMovedEvent,
    DirDeletedEvent,
]


def _stamp(path: Path) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


@dataclass(slots=True)
class _Pending:
    deadline: float
    stamp: Stamp
    partner: Path | None = None


class Debouncer:
    """Holds changed paths until each is quiet and stable, then delivers them in batches."""

    def __init__(self, deliver: Deliver, *, delay: float) -> None:
        self.delay = delay
        self._deliver = deliver
        self._cond = threading.Condition()
        self._pending: dict[Path, _Pending] = {}
        self._full_at: float | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="feedsvc-debounce", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def touch(self, path: Path, partner: Path | None = None) -> None:
        """Note an event on ``path``; ``partner`` is the other side of a move."""
        now = time.monotonic()
        deadline = now + self.delay
        with self._cond:
            for p, other in ((path, partner), (partner, path)):
                if p is None:
                    continue
                entry = self._pending.get(p)
                stamp = _stamp(p)
                if entry is None:
                    self._pending[p] = _Pending(deadline, stamp, other)
                else:
                    entry.deadline, entry.stamp = deadline, stamp
                    entry.partner = other or entry.partner
            self._cond.notify_all()

    def request_full(self) -> None:
        """A directory came, went or moved: rescan everything once things are quiet."""
        with self._cond:
            self._full_at = time.monotonic() + self.delay
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                wake = self._next_deadline()
                if wake is None:
                    self._cond.wait()
                    continue
                wait = wake - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                ready, full = self._collect(time.monotonic())
            if ready or full:
                try:
                    self._deliver(sorted(ready), full)
                except Exception:  # never lose the watcher to one failed hand-off
                    log.exception("could not hand changed seeds to the rebuild job")

    def _next_deadline(self) -> float | None:
        times = [e.deadline for e in self._pending.values()]
        if self._full_at is not None:
            times.append(self._full_at)
        return min(times) if times else None

    def _collect(self, now: float) -> tuple[list[Path], bool]:
        """Take the paths that are due and stable (with their move partners); re-arm the rest."""
        due: set[Path] = set()
        for path, entry in self._pending.items():
            if entry.deadline > now:
                continue
            stamp = _stamp(path)
            if stamp != entry.stamp:  # changed without an event we saw: wait another round
                entry.deadline, entry.stamp = now + self.delay, stamp
                continue
            due.add(path)
        ready = []
        for path in due:
            partner = self._pending[path].partner
            if partner is not None and partner in self._pending and partner not in due:
                continue  # the other side of the move is still settling
            ready.append(path)
        for path in ready:
            del self._pending[path]
        full = self._full_at is not None and self._full_at <= now
        if full:
            self._full_at = None
        return ready, full


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: SeedWatcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._watcher.handle(event)


class SeedWatcher:
    """An inotify (watchdog) observer on ``seeds/`` feeding a ``Debouncer``."""

    def __init__(self, seeds: Path, *, pattern: str, debounce: float, deliver: Deliver) -> None:
        self.seeds = Path(os.path.abspath(seeds))
        self.pattern = pattern
        self.debouncer = Debouncer(deliver, delay=debounce)
        self._observer: BaseObserver | None = None

    def start(self) -> None:
        self.seeds.mkdir(parents=True, exist_ok=True)
        observer = Observer()
        observer.schedule(
            _Handler(self), os.fspath(self.seeds), recursive=True, event_filter=EVENTS
        )
        observer.daemon = True
        self.debouncer.start()
        observer.start()
        self._observer = observer
        log.info("watching %s for %s", self.seeds, self.pattern)

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=2)
        self.debouncer.stop()

    def _wanted(self, raw: str | bytes) -> Path | None:
        """The path if it is a seed inside seeds/ (no hidden parts, not an editor leftover)."""
        path = Path(os.fsdecode(raw))
        try:
            parts = path.relative_to(self.seeds).parts
        except ValueError:
            return None
        if not parts or any(p.startswith(".") for p in parts[:-1]):
            return None
        return path if is_seed_name(parts[-1], self.pattern) else None

    def handle(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            log.debug("directory %s: %s; full rescan queued", event.event_type, event.src_path)
            self.debouncer.request_full()
            return
        src = self._wanted(event.src_path)
        dest = self._wanted(event.dest_path) if event.dest_path else None
        log.debug("%s %s %s", event.event_type, event.src_path, event.dest_path or "")
        if src is not None:
            self.debouncer.touch(src, dest)
        elif dest is not None:
            self.debouncer.touch(dest)
