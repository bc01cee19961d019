"""One writer per state directory: an advisory ``flock`` held for a whole build."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ._causes import os_cause
from .errors import LockError, StoreError

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
                    raise LockError(
                        f"{path}: another feedsvc process (pid {holder}) is writing this state "
                        f"directory; waited {timeout:g} s"
                    ) from None
                time.sleep(POLL_SECONDS)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except OSError as e:
            raise StoreError(path, f"cannot write the lock holder's pid: {os_cause(e)}") from e
        yield
    finally:
        os.close(fd)
