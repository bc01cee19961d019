"""Short, plain causes for I/O failures: ``disk full (ENOSPC)`` rather than a traceback."""

from __future__ import annotations

import errno
import os
from pathlib import Path

LOW_SPACE_BYTES = 64 * 1024  # less than this free: a vague I/O error is most likely "disk full"

_PLAIN = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for the file system or the process limit",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "no such file or directory",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.EIO: "I/O error",
}


def os_cause(e: OSError) -> str:
    """``disk full (ENOSPC)``: what went wrong in words, then the errno name to search for."""
    if e.errno is None:
        return str(e)
    name = errno.errorcode.get(e.errno, str(e.errno))
    plain = _PLAIN.get(e.errno) or (e.strerror or name).lower()
    return f"{plain} ({name})"


def low_on_space(path: Path) -> bool:
    """Whether the file system holding ``path`` (or its nearest existing parent) is full."""
    for folder in (path, *path.parents):
        try:
            st = os.statvfs(folder)
        except OSError:
            continue
        return st.f_bavail * st.f_frsize < LOW_SPACE_BYTES
    return False
