"""``feedsvc run``: watch seeds/, rebuild through the scheduler, serve feeds/, until a signal.

Start order: daemon lock → HTTP server → watcher → scheduler with a full rescan (so nothing
that changed while the daemon was down, or while it was starting, is missed). Stop order is
the reverse: no new events, then the build in flight finishes, then the server closes.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Literal

from . import __version__
from ._lock import exclusive
from .config import Settings
from .core import Publisher
from .errors import FeedsvcError, LockError, SeedError
from .schedule import BuildOutcome, Rebuilder
from .serve import ATOM_TYPE, JSON_FEED_TYPE, RSS_TYPE, FeedApp, HTTPServer, ServeOptions
from .watch import SeedWatcher
from .websub import HubNotifier, feed_urls

log = logging.getLogger(__name__)

STOP_SECONDS = 3.0  # how long a stop waits for the build in flight (the whole stop: < 5 s)
WEBSUB_CLOSE_SECONDS = 0.5  # then how long it waits for WebSub pings still pending
DAEMON_LOCK = "daemon.lock"
STATUS_LIST_MAX = 20  # /status lists the first errors and files written, and counts them all
LogFormat = Literal["text", "json"]


# --- logging --------------------------------------------------------------------------------
class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: LogFormat = "text") -> None:
    """Log to stderr with timestamps and levels; apscheduler's per-run chatter only at DEBUG."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    logging.getLogger("apscheduler").setLevel(quiet)


# --- status -----------------------------------------------------------------------------------
def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat(timespec="milliseconds")


def _error_json(error: SeedError) -> dict[str, Any]:
    return {"path": error.path, "line": error.line, "reason": error.reason}


class DaemonStatus:
    """What ``/healthz`` and ``/status`` report: the daemon's builds, not the core's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = datetime.now(UTC)
        self.builds = 0
        self.failed = 0
        self.last: BuildOutcome | None = None
        self.last_ok: BuildOutcome | None = None

    def record(self, outcome: BuildOutcome) -> None:
        """Count a build and log what changed; seed errors are logged once, when they appear."""
        with self._lock:
            previous = self.last_ok
            self.builds += 1
            self.last = outcome
            if outcome.ok:
                self.last_ok = outcome
            else:
                self.failed += 1
        _log_outcome(outcome, previous)

    def snapshot(self) -> tuple[bool, Mapping[str, Any]]:
        """(healthy, the ``/status`` document); healthy while the last build succeeded."""
        with self._lock:
            last, last_ok = self.last, self.last_ok
            builds, failed = self.builds, self.failed
        report = last_ok.report if last_ok is not None else None
        if last is None:
            healthy, reason = False, "starting: no build has finished yet"
        elif last.error is not None:
            healthy, reason = False, f"last build failed: {last.error}"
        else:
            healthy, reason = True, "ok"
        errors = report.errors if report is not None else []
        info: dict[str, Any] = {
            "healthy": healthy,
            "reason": reason,
            "version": __version__,
            "pid": os.getpid(),
            "started": _iso(self.started),
            "builds": builds,
            "builds_failed": failed,
            "articles": report.total if report is not None else None,
            "error_count": len(errors),
            "errors": [_error_json(e) for e in errors[:STATUS_LIST_MAX]],
            "last_build": None if last is None else _outcome_json(last),
            "last_success": None if last_ok is None else _iso(last_ok.started),
        }
        return healthy, info


def _outcome_json(outcome: BuildOutcome) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": outcome.kind,
        "paths": outcome.paths,
        "started": _iso(outcome.started),
        "seconds": round(outcome.seconds, 4),
        "ok": outcome.ok,
        "error": None if outcome.error is None else str(outcome.error),
    }
    if outcome.report is not None:
        r = outcome.report
        data.update(
            new=r.new,
            changed=r.changed,
            deleted=r.deleted,
            written=[p.name for p in r.written[:STATUS_LIST_MAX]],
            written_count=len(r.written),
        )
    return data


def _log_outcome(outcome: BuildOutcome, previous: BuildOutcome | None) -> None:
    if outcome.error is not None:
        bug = not isinstance(outcome.error, FeedsvcError)
        log.error(
            "%s build failed, will retry at the next change or rescan: %s",
            outcome.kind,
            outcome.error,
            exc_info=outcome.error if bug else None,
        )
        return
    report = outcome.report
    assert report is not None
    before = previous.report.errors if previous is not None and previous.report else []
    known = {str(e) for e in before}
    now = {str(e) for e in report.errors}
    for error in report.errors:
        if str(error) not in known:
            log.warning("%s", error)
    for fixed in sorted({e.path for e in before} - {e.path for e in report.errors}):
        log.info("%s: no error any more", fixed)
    for warning in report.warnings:
        log.warning("%s", warning)
    changed = report.new or report.changed or report.deleted or report.written
    level = logging.INFO if changed or known != now or previous is None else logging.DEBUG
    log.log(
        level,
        "%s build: %d articles (%d new, %d changed, %d deleted, %d errors)%s in %.3f s",
        outcome.kind,
        report.total,
        report.new,
        report.changed,
        report.deleted,
        len(report.errors),
        ", wrote " + ", ".join(p.name for p in report.written) if report.written else "",
        outcome.seconds,
    )


# --- the daemon ---------------------------------------------------------------------------------
def serve_options(settings: Settings) -> ServeOptions:
    return ServeOptions(
        root=settings.feeds_dir,
        cache_max_age=settings.cache_max_age,
        content_types={
            settings.atom_file: ATOM_TYPE,
            settings.rss_file: RSS_TYPE,
            settings.json_file: JSON_FEED_TYPE,
        },
        status_public=settings.status_public,
    )


@contextmanager
def daemon_lock(state_dir: Path) -> Iterator[None]:
    """Held for the daemon's life: a second ``feedsvc run`` on the same state exits at once.

    ``feedsvc build`` does not take it; it waits for the per-build lock instead.
    """
    path = state_dir / DAEMON_LOCK
    with ExitStack() as stack:
        try:
            stack.enter_context(exclusive(path, timeout=0))
        except LockError as e:
            try:
                holder = path.read_text(encoding="ascii", errors="replace").strip() or "?"
            except OSError:
                holder = "?"
            raise LockError(
                f"{state_dir}: another 'feedsvc run' (pid {holder}) is already running on this "
                "state directory; stop it first or give this one another state_dir"
            ) from e
        yield


class Daemon:
    """The running parts: watcher → rebuilder → store/feeds; server over feeds/."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.status = DaemonStatus()
        self.rebuilder = Rebuilder(Publisher(settings), on_result=self._built)
        self.notifier: HubNotifier | None = None
        self.watcher = self._watcher(settings)
        self.app = FeedApp(serve_options(settings), status=self.status.snapshot)
        self.server = (
            HTTPServer(self.app, host=settings.host, port=settings.port) if settings.serve else None
        )
        self.address: tuple[str, int] | None = None

    def _watcher(self, settings: Settings) -> SeedWatcher:
        return SeedWatcher(
            settings.seeds_dir,
            pattern=settings.seed_pattern,
            debounce=settings.debounce_seconds,
            deliver=self._deliver,
        )

    def _deliver(self, paths: list[Path], full: bool) -> None:
        self.rebuilder.request(paths, full=full)

    def _built(self, outcome: BuildOutcome) -> None:
        """Record a build; after one that wrote feeds, ping the WebSub hub (in the background)."""
        self.status.record(outcome)
        notifier, report = self.notifier, outcome.report
        if notifier is not None and report is not None and report.written:
            notifier.notify(feed_urls(report, self.settings))

    def _set_hub(self, hub: str | None) -> None:
        old, self.notifier = self.notifier, HubNotifier(hub) if hub else None
        if old is not None:
            old.close(timeout=WEBSUB_CLOSE_SECONDS)

    def start(self) -> None:
        if self.server is not None:
            self.address = self.server.start()
            host, port = self.address
            log.info("serving %s at http://%s:%d/", self.settings.feeds_dir, host, port)
        else:
            log.info(
                "not serving HTTP (--no-serve): %s is served by others", self.settings.feeds_dir
            )
        try:
            self._set_hub(self.settings.websub_hub)
            self.watcher.start()
            self.rebuilder.request(full=True)  # catch up on what changed while we were down
            self.rebuilder.start()
        except BaseException:
            self.stop()
            raise
        log.info("feedsvc %s running (pid %d)", __version__, os.getpid())

    def reload(self, settings: Settings) -> None:
        """Apply new settings (SIGHUP). Listening address and state_dir need a restart."""
        old = self.settings
        for key in ("host", "port", "serve", "state_dir"):
            if getattr(settings, key) != getattr(old, key):
                log.warning("config key %r changed: takes effect at the next restart", key)
        settings = settings.model_copy(
            update={k: getattr(old, k) for k in ("host", "port", "serve", "state_dir")}
        )
        self.rebuilder.reconfigure(Publisher(settings))
        self.app.configure(serve_options(settings))
        watch_keys = ("seeds_dir", "seed_pattern", "debounce_seconds")
        if any(getattr(settings, k) != getattr(old, k) for k in watch_keys):
            self.watcher.stop()
            self.watcher = self._watcher(settings)
            self.watcher.start()
        self.settings = settings
        if settings.websub_hub != old.websub_hub:
            self._set_hub(settings.websub_hub)
        self.rebuilder.request(full=True)
        log.info("configuration reloaded")

    def stop(self, timeout: float = STOP_SECONDS) -> bool:
        """Stop in order; False when the build in flight did not finish within ``timeout``."""
        self.watcher.stop()
        finished = self.rebuilder.shutdown(timeout)
        if self.server is not None:
            self.server.stop()
        self._set_hub(None)
        return finished


def run(
    settings: Settings,
    *,
    reload: Callable[[], Settings] | None = None,
    on_ready: Callable[[Daemon], None] | None = None,
) -> int:
    """Run until SIGTERM or SIGINT (exit status 0); SIGHUP calls ``reload`` for new settings.

    A build still running when the stop deadline passes is abandoned by ending the process:
    its store transaction rolls back and the feeds on disk stay whole (they are replaced
    atomically), so the next start picks up where this one left off.
    """
    signals: queue.SimpleQueue[int] = queue.SimpleQueue()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signals.put(signum)

    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {s: signal.signal(s, on_signal) for s in handled}
    try:
        with daemon_lock(settings.state_dir):
            daemon = Daemon(settings)
            daemon.start()
            if on_ready is not None:
                on_ready(daemon)
            try:
                while True:
                    signum = signals.get()
                    if signum != signal.SIGHUP:
                        log.info("%s received, stopping", signal.Signals(signum).name)
                        break
                    _reload(daemon, reload)
            finally:
                started = time.monotonic()
                finished = daemon.stop()
            if not finished:
                log.warning("abandoning the build in flight; the next start redoes it")
                logging.shutdown()
                os._exit(0)
            log.info("stopped in %.2f s", time.monotonic() - started)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


def _reload(daemon: Daemon, reload: Callable[[], Settings] | None) -> None:
    if reload is None:
        log.warning("SIGHUP received, but there is no configuration to reload")
        return
    log.info("SIGHUP received, reloading the configuration")
    try:
        settings = reload()
    except FeedsvcError as e:
        log.error("configuration not reloaded, keeping the old one: %s", e)
        return
    try:
        daemon.reload(settings)
    except Exception:  # e.g. a new seeds_dir that cannot be watched: keep running
        log.exception("configuration only partly applied")
