"""Both cores for a cold build: the worker processes the scan and the article pages share.

One home for when a build uses worker processes (``workers``: the work is big and a core is
free, or ``FEEDSVC_POOL=1``/``0`` says so), how they start (``start``: forked from a process
that runs one thread, else spawned) and how they end (each watches its build, ``watch_parent``,
and exits when a kill left it alone), and ``in_order``: tasks handed out in a bounded window,
results taken back in the order given, so the output does not depend on which worker ran what.
The workers' own code lives with its stage (``scan._scan_chunk``, ``plan._page_chunk``).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # the pool's modules (~30 ms to import) load when a pool starts
    from concurrent.futures import Future, ProcessPoolExecutor

# Work of at least this many files (a scan) or pages goes to worker processes when a core is
# free (``workers``); less is done in process: the workers' start-up (~0.3 s of CPU each when
# spawned) would cost more than it saves.
POOL_MIN = 2000
POOL_MAX_WORKERS = 4
POOL_WINDOW = 4  # tasks in flight per worker: results wait in memory for at most this many
ORPHAN_POLL = 0.2  # seconds between a worker's checks that its build is still there

T = TypeVar("T")


def load() -> float:
    """The 1-minute load average (infinite where it cannot be known: no pool by default)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return float("inf")


# A build's own processes raise the load average while it runs: 20 s into a busy build its
# main process alone adds about 0.3, its scan workers as much again each, so a later look
# would find no core free on 2 cores, however idle the machine. The load found by the first
# decision stands for the decisions that follow within this many seconds (a 100,000-seed
# cold build takes about two minutes; a daemon's next cold build looks again).
LOAD_MEMORY = 600.0
_found: tuple[float, float] | None = None  # (time.monotonic(), load) of the first look


def others_load() -> float:
    """The 1-minute load as this build found it (``LOAD_MEMORY``)."""
    global _found
    now = time.monotonic()
    if _found is None or now - _found[0] > LOAD_MEMORY:
        _found = (now, load())
    return _found[1]


def workers(to_do: int, forced: bool | None = None, *, minimum: int = POOL_MIN) -> int:
    """How many worker processes take ``to_do`` items of work (0: this process does it).

    ``forced``: True/False always/never; None: the environment's ``FEEDSVC_POOL=1``/``0``
    decides, else the default: only when the work is big (``minimum``) and a core is free.
    With the 1-minute load at ``cores - 1`` or more, the hand-over only adds CPU time (about
    +30 % at 10,000 files, measured on a busy 2-core machine) and wins no wall time.
    """
    if forced is None:
        forced = {"0": False, "1": True}.get(os.environ.get("FEEDSVC_POOL", ""))
    if forced is False:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    if forced is None and (to_do < minimum or cores < 2 or others_load() >= cores - 1):
        return 0
    return min(max(cores, 2), POOL_MAX_WORKERS)


def start_method() -> str:
    """``fork`` when this process runs one thread (the CLI: the workers start at once, with
    everything imported), else ``spawn`` (a daemon's threads may hold locks a fork copies)."""
    import multiprocessing

    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "spawn"


def orphan_watch(parent: int) -> None:
    """A worker whose build was killed (SIGKILL leaves no time to stop the pool) exits too."""
    while os.getppid() == parent:
        time.sleep(ORPHAN_POLL)
    os._exit(1)


def watch_parent(parent: int) -> None:
    """In a worker's initializer: exit when the build ``parent`` (its pid) is gone."""
    threading.Thread(target=orphan_watch, args=(parent,), daemon=True).start()


def start(
    count: int,
    initializer: Callable[..., None],
    initargs: tuple[Any, ...],
    *,
    method: str | None = None,
) -> ProcessPoolExecutor:
    """``count`` worker processes, each set up by ``initializer(*initargs, parent_pid)``
    (which calls ``watch_parent``), started the ``start_method`` way unless ``method``."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(
        count,
        mp_context=multiprocessing.get_context(method or start_method()),
        initializer=initializer,
        initargs=(*initargs, os.getpid()),
    )


def in_order(
    executor: ProcessPoolExecutor,
    task: Callable[..., T],
    args: Iterable[tuple[Any, ...]],
    *,
    window: int,
    before: Callable[[], None] | None = None,
) -> Generator[T]:
    """``task(*a)`` for each ``a`` of ``args`` in the workers; the results in ``args``' order.

    At most ``window`` tasks are in flight (their results wait in memory), and ``args`` is
    read only as tasks are handed out. ``before`` is called before each task is handed out
    (it raises to stop: no further task starts). The executor is shut down when this ends,
    however it ends (the tasks not started are cancelled, the running ones waited for).
    """
    pending: deque[Future[T]] = deque()
    try:
        for a in args:
            if before is not None:
                before()
            pending.append(executor.submit(task, *a))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
