"""Crash-safe file replacement that leaves unchanged files (and their mtimes) alone."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomic(
    path: Path,
    data: bytes,
    *,
    durable: bool = True,
    tmp_dir: Path | None = None,
    before_replace: Callable[[], None] | None = None,
) -> bool:
    """Write ``data`` to ``path`` via temp file + fsync + ``os.replace``; False if already equal.

    Readers see the old file or the new one, never a mix; equal bytes keep the old mtime so HTTP
    validators stay put. ``durable=False`` skips the fsyncs, for files that can be rebuilt from
    the store (the per-article HTML pages, thousands in a cold build). ``tmp_dir`` (on the same
    file system) holds the temp file instead of ``path``'s folder. ``before_replace`` is called
    right before the rename that publishes the file; if it raises, nothing is replaced.
    """
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=tmp_dir or path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if not durable:
        return True
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True
