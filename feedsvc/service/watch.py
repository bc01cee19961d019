"""watchdog events on ``seeds/`` → debounced batches of changed paths for the rebuild job.

A path is handed on once it has had ``delay`` seconds without an event *and* its size and
mtime held still over that time, so a file being written slowly is never read half. The two
sides of a move travel in one batch, so the store's id ledger sees a rename, not a delete and
an unrelated add.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

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

from ..seeds import is_seed_name

log = logging.getLogger(__name__)

Deliver = Callable[[list[Path], bool], None]
"""Called with (ready paths, whether a full rescan is wanted)."""

ROOT_CHECK_SECONDS = 1.0  # how often seeds/ itself is checked (one stat call)

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
        self._handing_on = False
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

    @property
    def waiting(self) -> int:
        """Paths (and a full rescan) still held back or being handed on; 0 when quiet."""
        with self._cond:
            extra = int(self._full_at is not None) + int(self._handing_on)
            return len(self._pending) + extra

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
                self._handing_on = bool(ready or full)
            if ready or full:
                try:
                    self._deliver(sorted(ready), full)
                except Exception:  # never lose the watcher to one failed hand-off
                    log.exception("could not hand changed seeds to the rebuild job")
                finally:
                    with self._cond:
                        self._handing_on = False

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


WatchState = Literal["starting", "watching", "missing", "lost", "stopped"]


@dataclass(frozen=True, slots=True)
class WatchStatus:
    """What the watcher can say about itself: for ``/healthz`` and ``/status``."""

    seeds: Path
    state: WatchState
    since: datetime
    reattached: int = 0  # how often the watch was set up again on a new seeds/ folder
    problem: str | None = None  # why it is not watching; None while it is

    @property
    def ok(self) -> bool:
        return self.state == "watching"


class SeedWatcher:
    """An inotify (watchdog) observer on ``seeds/`` feeding a ``Debouncer``.

    The watcher never creates ``seeds/``. A check every ``check_every`` seconds (one
    ``stat``, and at once when the folder itself is deleted) compares the folder with the
    one the observer is attached to: a missing folder is reported and waited for; a folder
    that was deleted and made again, replaced, or renamed away and back gets a new observer
    and a full rescan, so no change is left waiting for the periodic rescan.
    """

    def __init__(
        self,
        seeds: Path,
        *,
        pattern: str,
        debounce: float,
        deliver: Deliver,
        check_every: float = ROOT_CHECK_SECONDS,
    ) -> None:
        self.seeds = Path(os.path.abspath(seeds))
        self.pattern = pattern
        self.check_every = check_every
        self.debouncer = Debouncer(deliver, delay=debounce)
        self._observer: BaseObserver | None = None
        self._attached: tuple[int, int] | None = None  # (st_dev, st_ino) being watched
        self._lock = threading.Lock()  # one check at a time; guards the fields above
        self._status = WatchStatus(self.seeds, "starting", datetime.now(UTC))
        self._wake = threading.Event()
        self._stopping = False
        self._checker = threading.Thread(target=self._loop, name="feedsvc-seeds-check", daemon=True)

    @property
    def status(self) -> WatchStatus:
        return self._status

    def start(self) -> None:
        """Attach to seeds/ now if it is there (else say so), and keep checking it."""
        self.debouncer.start()
        self.check()
        self._checker.start()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._checker.is_alive():
            self._checker.join(timeout=2)
        with self._lock:
            self._detach()
            self._set("stopped", None)
        self.debouncer.stop()

    def _loop(self) -> None:
        while not self._stopping:
            self._wake.wait(self.check_every)
            self._wake.clear()
            if self._stopping:
                return
            try:
                self.check()
            except Exception:  # never lose the checker itself
                log.exception("could not check the seeds directory %s", self.seeds)

    def check(self) -> WatchStatus:
        """Compare seeds/ with the folder being watched; (re-)attach or report. Cheap."""
        with self._lock:
            if self._stopping:
                return self._status
            try:
                st = os.stat(self.seeds)
                here = (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None
                why = "not a directory"
            except FileNotFoundError:
                here, why = None, "missing"
            except OSError as e:
                here, why = None, f"cannot be read: {e.strerror or e}"
            if here is not None and here == self._attached and self._observer_alive():
                return self._status
            was = self._status
            self._detach()
            if here is None:
                problem = f"seeds directory {self.seeds} is {why}"
                if was.problem != problem:
                    log.error(
                        "%s: nothing is published until it is back; the feeds stay as they are",
                        problem,
                    )
                self._set("missing", problem)
                return self._status
            try:
                self._attach()
            except OSError as e:  # e.g. the inotify watch limit; tried again at the next check
                problem = f"cannot watch seeds directory {self.seeds}: {e}"
                if was.problem != problem:
                    log.error("%s; retrying every %g s", problem, self.check_every)
                self._set("lost", problem)
                return self._status
            self._attached = here
            if was.state == "starting":
                log.info("watching %s for %s", self.seeds, self.pattern)
                self._set("watching", None)
            else:
                what = "appeared" if was.state == "missing" else "was replaced or re-created"
                log.warning(
                    "seeds directory %s %s: watching it again (re-attached), full rescan",
                    self.seeds,
                    what,
                )
                self._set("watching", None, reattached=was.reattached + 1)
                self.debouncer.request_full()
            return self._status

    def _set(
        self, state: WatchState, problem: str | None, *, reattached: int | None = None
    ) -> None:
        old = self._status
        since = old.since if old.state == state else datetime.now(UTC)
        count = old.reattached if reattached is None else reattached
        self._status = WatchStatus(self.seeds, state, since, count, problem)

    def _observer_alive(self) -> bool:
        observer = self._observer
        return (
            observer is not None
            and observer.is_alive()
            and all(e.is_alive() for e in observer.emitters)
        )

    def _attach(self) -> None:
        observer = Observer()
        observer.schedule(
            _Handler(self), os.fspath(self.seeds), recursive=True, event_filter=EVENTS
        )
        observer.daemon = True
        observer.start()
        self._observer = observer

    def _detach(self) -> None:
        observer, self._observer, self._attached = self._observer, None, None
        if observer is not None:
            observer.stop()
            if observer is not threading.current_thread():
                observer.join(timeout=2)

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
            if Path(os.fsdecode(event.src_path)) == self.seeds:  # seeds/ itself went away
                log.debug("seeds directory %s: %s", self.seeds, event.event_type)
                self._wake.set()
                return
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
