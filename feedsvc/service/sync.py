"""``feedsvc sync`` and the serve role: mirror the documents in the store into a folder (#10).

One round (``sync_once``) reads the index of the stored documents (path, size, ETag, modified
time; one query), compares it with the folder (one ``stat`` per file: a copy is current when
its size and mtime are the document's, as the mirror sets them), fetches what differs and
writes each into ``.tmp/`` first. Only when every fetched document still has the ETag of the
index (no publish came in between) are they renamed into place: article pages and archive
pages first, then the feeds and pages that link them, then files the store no longer has are
removed. So a reader never sees a feed whose pages are missing, and a file is always whole.

``Mirror`` repeats rounds: after each wake-up (``LISTEN``, within a second of a publish's
commit) and at least every ``POLL_SECONDS``, the net for a lost connection or wake-up.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from .._causes import os_cause
from .._digest import content_digest
from ..build.outputs import GZIP_SUFFIX, TMP_DIR, is_archive_page
from ..config import Settings
from ..errors import ConfigError, PublishError, StoreError
from ..models import ARTICLES_DIR
from ..store import Store, StoredDocument, open_listener, open_store

log = logging.getLogger(__name__)

POLL_SECONDS = 5.0  # the net under the wake-ups
WAKE_CHECK_SECONDS = 0.5  # how long one wait for a wake-up lasts: how soon ``stop`` is seen
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)  # after a store error, then every last one
ROUNDS = 5  # rounds in a row a publish may overtake before one round gives up


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one round did to the folder."""

    serial: int  # the store's documents serial the folder now holds (at least)
    written: int
    removed: int
    total: int  # documents in the store

    def describe(self) -> str:
        return f"{self.total} documents: {self.written} written, {self.removed} removed"


class Overtaken(Exception):
    """A publish changed documents while a round was fetching them: start it again."""


def local_files(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` but hidden ones (and ``.tmp/``): path -> (size, mtime_ns)."""
    out: dict[str, tuple[int, int]] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel_folder = os.path.relpath(folder, root)
        prefix = "" if rel_folder == "." else rel_folder.replace(os.sep, "/") + "/"
        for name in files:
            if name.startswith("."):
                continue
            try:
                st = os.stat(os.path.join(folder, name), follow_symlinks=False)
            except FileNotFoundError:
                continue
            out[prefix + name] = (st.st_size, st.st_mtime_ns)
    return out


def _order(rel: str) -> tuple[int, str]:
    """Pages that feeds link to first, then everything else (feeds, index, OPML)."""
    plain = rel.removesuffix(GZIP_SUFFIX)
    linked = plain.startswith(ARTICLES_DIR + "/") or is_archive_page(plain)
    return (0 if linked else 1, rel)


def _plain(rel: str) -> bool:
    """Whether ``rel`` names a file inside the folder: relative, no ``..``, nothing hidden."""
    parts = rel.split("/")
    return (
        not rel.startswith("/")
        and "\\" not in rel
        and "\0" not in rel
        and all(p and not p.startswith(".") for p in parts)
    )


def sync_once(store: Store, root: Path) -> SyncReport:
    """Make ``root`` hold exactly the documents in ``store`` (see the module docstring).

    Raises ``Overtaken`` when publishes kept changing the documents under it.
    """
    root.mkdir(parents=True, exist_ok=True)
    serial = store.documents_serial()  # first: a publish after it is seen by the next round
    index = store.document_refs()
    have = local_files(root)
    stale = [ref for rel, ref in index.items() if have.get(rel) != (ref.size, ref.modified_ns)]
    for ref in stale:
        if not _plain(ref.path):
            raise StoreError(ref.path, "a stored document's path leads outside the folder")
    tmp = root / TMP_DIR
    tmp.mkdir(exist_ok=True)
    staged: list[tuple[Path, str]] = []
    try:
        for doc in store.documents(stale):  # a batch at a time, each into a temp file
            staged.append((_stage(tmp, doc), doc.path))
        whole = len(staged) == len(stale)
        staged.sort(key=lambda s: _order(s[1]))
        placed = 0
        for temp, rel in staged:
            if not whole and _order(rel)[0]:
                break  # overtaken by a publish: the pages fetched are kept, the feeds wait
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, target)
            placed += 1
        del staged[:placed]
        if not whole:
            raise Overtaken()
    finally:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
    removed = 0
    for rel in sorted(set(have) - set(index), key=_order, reverse=True):
        (root / rel).unlink(missing_ok=True)
        removed += 1
    if stale or removed:
        _fsync_dir(root)
    return SyncReport(serial, len(stale), removed, len(index))


def _stage(tmp: Path, doc: StoredDocument) -> Path:
    """``doc`` written into a temp file in ``tmp``, dated as recorded; checked against its ETag."""
    if content_digest(doc.data) != doc.etag:
        raise StoreError(doc.path, "a stored document does not match its ETag (damaged store)")
    fd, name = tempfile.mkstemp(dir=tmp, prefix=".sync.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(doc.data)
            f.flush()
            if _order(doc.path)[0]:  # feeds: durable; pages come again with the next round
                os.fsync(f.fileno())
        os.chmod(name, 0o644)
        os.utime(name, ns=(doc.modified_ns, doc.modified_ns))
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def require_documents(settings: Settings) -> None:
    """Raise ``ConfigError`` unless the store of ``settings`` keeps documents (PostgreSQL)."""
    if settings.store_url is None:
        raise ConfigError(
            "store_url",
            "not set: a SQLite store keeps no documents to mirror; sync needs the PostgreSQL "
            "store the builder publishes into (--store-url, FEEDSVC_STORE_URL)",
        )


def sync_folder(settings: Settings, root: Path) -> SyncReport:
    """One shot: ``root`` made to hold the documents in the store of ``settings``."""
    require_documents(settings)
    with open_store(settings) as store:
        return sync(store, root)


def sync(store: Store, root: Path) -> SyncReport:
    """``sync_once``, again while publishes overtake it (at most ``ROUNDS`` rounds)."""
    try:
        remove_tmp(root)
        for _ in range(ROUNDS - 1):
            try:
                return sync_once(store, root)
            except Overtaken:
                continue
        try:
            return sync_once(store, root)
        except Overtaken:
            raise StoreError(
                str(root), f"documents kept changing during {ROUNDS} rounds in a row; try again"
            ) from None
    except OSError as e:
        where = e.filename or root
        raise PublishError(
            f"{where}: {os_cause(e)}; {root} keeps what it had, every file whole"
        ) from e


class Mirror:
    """Keeps ``root`` in step with the store of ``settings`` until ``stop`` (a thread)."""

    def __init__(
        self,
        settings: Settings,
        root: Path,
        *,
        poll: float = POLL_SECONDS,
        on_round: Callable[[SyncReport], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.settings = settings
        self.root = root
        self.poll = poll
        self.on_round = on_round
        self.on_error = on_error
        self.last: SyncReport | None = None
        self.error: str | None = None
        self.rounds = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="feedsvc-sync", daemon=True)
        self._thread.start()

    def problems(self) -> list[str]:
        """What keeps a serve node from being healthy: no round yet, or the last one failed."""
        if self.error is not None:
            return [f"sync failed: {self.error}"]
        if self.last is None:
            return ["starting: the documents are not mirrored yet"]
        return []

    def describe(self) -> dict[str, Any]:
        """The mirror in ``/status``."""
        last = self.last
        return {
            "folder": str(self.root),
            "serial": None if last is None else last.serial,
            "documents": None if last is None else last.total,
            "rounds": self.rounds,
            "error": self.error,
        }

    def request_stop(self) -> None:
        """Stop after the round in flight (safe from a signal handler)."""
        self._stop.set()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        """Rounds until ``stop``; a store error is reported and retried with backoff."""
        failures = 0
        while not self._stop.is_set():
            try:
                for report in self._rounds():
                    failures = 0
                    self.last, self.error = report, None
                    self.rounds += 1
                    if self.on_round is not None:
                        self.on_round(report)
            except (PublishError, OSError) as e:  # the store, or the folder: retried
                self.error = str(e)
                if self.on_error is not None:
                    self.on_error(e)
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                self._stop.wait(delay)

    def _rounds(self) -> Iterator[SyncReport]:
        """A round now, then one after each wake-up, and at each poll that finds a newer serial.

        The listener is opened first, so no publish falls between it and the first round.
        """
        with open_listener(self.settings) as listener, open_store(self.settings) as store:
            report = sync(store, self.root)
            yield report
            next_poll = time.monotonic() + self.poll
            while not self._stop.is_set():
                wait = min(WAKE_CHECK_SECONDS, max(0.0, next_poll - time.monotonic()))
                woken = listener.wait(wait)
                if self._stop.is_set():
                    return
                if not woken:
                    if time.monotonic() < next_poll:
                        continue
                    if store.documents_serial() == report.serial:
                        next_poll = time.monotonic() + self.poll
                        continue
                report = sync(store, self.root)
                yield report
                next_poll = time.monotonic() + self.poll


def remove_tmp(root: Path) -> None:
    """Remove a killed round's temp files (only ours: ``.sync.*``)."""
    tmp = root / TMP_DIR
    if tmp.is_dir():
        for path in tmp.glob(".sync.*"):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def watch_folder(settings: Settings, root: Path, *, poll: float = POLL_SECONDS) -> None:
    """``feedsvc sync --watch``: mirror until SIGTERM or SIGINT; each round logged.

    A store that cannot be reached is logged and retried with backoff; only a folder that is
    not set up for it (no ``store_url``) stops it.
    """
    require_documents(settings)

    def logged(report: SyncReport) -> None:
        if report.written or report.removed:
            log.info("synced %s: %s", root, report.describe())

    def failed(error: Exception) -> None:
        log.error("sync failed, retrying: %s", error)

    mirror = Mirror(settings, root, poll=poll, on_round=logged, on_error=failed)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("%s received, stopping", signal.Signals(signum).name)
        mirror.request_stop()

    handled = (signal.SIGTERM, signal.SIGINT)
    previous = {s: signal.signal(s, on_signal) for s in handled}
    try:
        log.info("mirroring the documents of %s into %s", settings.site, root)
        mirror.run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
