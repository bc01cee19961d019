"""One writer per state directory: advisory ``flock``s, and the names of the lock files.

``build_lock`` is held for a whole build (by ``feedsvc build``, the daemon's builds, a store
restore); ``daemon_lock`` for the life of ``feedsvc run``, so a second daemon on the same state
exits at once. The lock file holds its holder's pid, which a ``LockError`` carries as ``holder``.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from ._causes import os_cause
from .errors import LockError, StoreError

LOCK_FILE = "lock"  # in state_dir: held by every build
DAEMON_LOCK = "daemon.lock"  # in state_dir: held by ``feedsvc run`` while it runs
POLL_SECONDS = 0.05


@contextmanager
def exclusive(path: Path, *, timeout: float) -> Iterator[None]:
    """Hold ``path`` locked; wait up to ``timeout`` s for another process, then ``LockError``.

    The kernel drops the lock when the holder dies, so a killed build never leaves it stuck.
    A state directory that cannot be created or written is a ``StoreError`` naming the path.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        where = e.filename or path
        raise StoreError(
            where, f"cannot take the lock: {os_cause(e)}; the state directory must be writable"
        ) from e
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "?"
                    raise LockError(path, holder=holder, waited=timeout) from None
                time.sleep(POLL_SECONDS)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except OSError as e:
            raise StoreError(path, f"cannot write the lock holder's pid: {os_cause(e)}") from e
        yield
    finally:
        os.close(fd)


def build_lock(state_dir: Path, *, timeout: float) -> AbstractContextManager[None]:
    """The per-build lock of ``state_dir``: one build (or restore) at a time."""
    return exclusive(state_dir / LOCK_FILE, timeout=timeout)


@contextmanager
def daemon_lock(state_dir: Path) -> Iterator[None]:
    """Held for the daemon's life: a second ``feedsvc run`` on the same state exits at once.

    ``feedsvc build`` does not take it; it waits for the per-build lock instead.
    """
    try:
        lock = exclusive(state_dir / DAEMON_LOCK, timeout=0)
        lock.__enter__()
    except LockError as e:
        raise LockError(
            e.path,
            holder=e.holder,
            message=f"{state_dir}: another 'feedsvc run' (pid {e.holder}) is already running on "
            "this state directory; stop it first or give this one another state_dir",
        ) from e
    try:
        yield
    finally:
        lock.__exit__(None, None, None)
