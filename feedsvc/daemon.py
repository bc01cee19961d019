"""``feedsvc run``: watch seeds/, rebuild through the scheduler, serve feeds/, until a signal.

Start order: daemon lock → HTTP server (its bound address gives ``base_url`` when none is
set) → watcher → scheduler with a full rescan (so nothing that changed while the daemon was
down, or while it was starting, is missed). Stop order is the reverse: no new events, then
the build in flight finishes (or, past ``STOP_SECONDS``, is abandoned by ending the process),
then the server closes.
"""

from __future__ import annotations

import faulthandler
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Literal

from ._lock import exclusive
from ._version import __version__
from .config import Settings
from .core import Publisher
from .errors import FeedsvcError, LockError, SeedError
from .schedule import BuildOutcome, Rebuilder
from .serve import ATOM_TYPE, JSON_FEED_TYPE, RSS_TYPE, FeedApp, HTTPServer, ServeOptions
from .watch import SeedWatcher
from .websub import HubNotifier, feed_urls

log = logging.getLogger(__name__)

STOP_SECONDS = 3.0  # how long a stop waits for the build in flight (the whole stop: < 5 s)
STOP_DEADLINE = 4.5  # the hard limit for a whole stop: then the process ends regardless
LOG_NAMES = 20  # file or feed names in one log line at most
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


Probe = Callable[[], list[str]]
"""The daemon's own checks at each health request: one line per problem, none when fine."""


class DaemonStatus:
    """What ``/healthz`` and ``/status`` report: the daemon's builds, not the core's.

    Healthy while the last build succeeded and ``probe`` finds no problem (seeds folder there
    and watched, main feed on disk); each problem is named in ``reason``.
    """

    def __init__(
        self,
        *,
        probe: Probe | None = None,
        details: Callable[[], Mapping[str, Any]] | None = None,
        feeds_dir: Path = Path("."),
    ) -> None:
        self._lock = threading.Lock()
        self._probe = probe
        self._details = details
        self.feeds_dir = feeds_dir  # for the names of written files in the log
        self.started = datetime.now(UTC)
        self.builds = 0
        self.failed = 0
        self.last: BuildOutcome | None = None
        self.last_ok: BuildOutcome | None = None

    def record(self, outcome: BuildOutcome) -> None:
        """Count a build and log what changed; seed errors are logged once, when they appear."""
        with self._lock:
            previous, last = self.last_ok, self.last
            self.builds += 1
            self.last = outcome
            if outcome.ok:
                self.last_ok = outcome
            else:
                self.failed += 1
        same_failure = (
            last is not None
            and last.error is not None
            and outcome.error is not None
            and str(last.error) == str(outcome.error)
        )
        _log_outcome(outcome, previous, feeds_dir=self.feeds_dir, repeated=same_failure)

    def snapshot(self) -> tuple[bool, Mapping[str, Any]]:
        """(healthy, the ``/status`` document)."""
        with self._lock:
            last, last_ok = self.last, self.last_ok
            builds, failed = self.builds, self.failed
        report = last_ok.report if last_ok is not None else None
        problems = self._probe() if self._probe is not None else []
        if last is None:
            problems.append("starting: no build has finished yet")
        elif last.error is not None:
            problems.append(f"last build failed: {last.error}")
        healthy = not problems
        reason = "; ".join(problems) if problems else "ok"
        errors = report.errors if report is not None else []
        info: dict[str, Any] = {
            "healthy": healthy,
            "reason": reason,
            "problems": problems,
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
        if self._details is not None:
            info.update(self._details())
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
        data.update(new=r.new, changed=r.changed, deleted=r.deleted, written=len(r.written))
    return data


@dataclass(frozen=True, slots=True)
class Written:
    """The files a build wrote, summed up: feed documents by name, the rest counted."""

    feeds: list[str]
    archive_pages: int
    html_pages: int
    other: int

    @classmethod
    def of(cls, written: list[Path], feeds_dir: Path) -> Written:
        root = os.path.abspath(feeds_dir)
        feeds: list[str] = []
        archive = html = other = 0
        for path in written:
            rel = os.path.relpath(os.path.abspath(path), root).replace(os.sep, "/")
            folder, _, name = rel.rpartition("/")
            if name.endswith((".html", ".htm")):
                html += 1
            elif folder == "archive" or folder.endswith("/archive"):
                archive += 1
            elif name.endswith((".xml", ".json")):
                feeds.append(rel)
            else:
                other += 1  # .gz siblings, images
        return cls(feeds, archive, html, other)

    def __str__(self) -> str:
        shown = self.feeds[:LOG_NAMES]
        more = len(self.feeds) - len(shown)
        names = ", ".join(shown) + (f" and {more} more" if more else "")
        parts = [f"feeds {names}"] if shown else []
        for count, what in (
            (self.archive_pages, "archive pages"),
            (self.html_pages, "HTML pages"),
            (self.other, "other files"),
        ):
            if count:
                parts.append(f"{count} {what}")
        return ", ".join(parts)


def _names(paths: list[Path], limit: int = LOG_NAMES) -> str:
    shown = ", ".join(p.name for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _log_outcome(
    outcome: BuildOutcome,
    previous: BuildOutcome | None,
    *,
    feeds_dir: Path = Path("."),
    repeated: bool = False,
) -> None:
    """One line per build at INFO (counts and feed names, never a file list); details at DEBUG.

    A failure is logged at ERROR when it first appears; the same failure again (a retry) only
    at DEBUG, so a folder that stays missing does not fill the log.
    """
    if outcome.error is not None:
        bug = not isinstance(outcome.error, FeedsvcError)
        log.log(
            logging.DEBUG if repeated and not bug else logging.ERROR,
            "%s build failed, old feeds kept, will retry: %s",
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
    written = report.written
    log.log(
        level,
        "%s build: %d articles (%d new, %d changed, %d deleted, %d errors)%s in %.3f s",
        outcome.kind,
        report.total,
        report.new,
        report.changed,
        report.deleted,
        len(report.errors),
        f", wrote {len(written)} files: {Written.of(written, feeds_dir)}" if written else "",
        outcome.seconds,
    )
    if written and log.isEnabledFor(logging.DEBUG):
        log.debug("wrote %s", _names(written))


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


def served_base_url(settings: Settings, address: tuple[str, int]) -> str | None:
    """``base_url`` for a daemon serving at ``address``, when the settings did not set one.

    ``--port 0`` picks a free port at bind time, so the default ``http://localhost:8080/``
    would make every link in the feeds dead: take the real address instead. None when
    ``base_url`` was given (config file, ``FEEDSVC_BASE_URL``), which always wins.
    """
    if "base_url" in settings.model_fields_set:
        return None
    host, port = address
    if host in ("", "0.0.0.0"):  # every IPv4 address: this host's loopback works for a test
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


class Daemon:
    """The running parts: watcher → rebuilder → store/feeds; server over feeds/."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.publisher = Publisher(settings)
        self.status = DaemonStatus(
            probe=self._problems, details=self._details, feeds_dir=settings.feeds_dir
        )
        self.rebuilder = Rebuilder(self.publisher, on_result=self._built)
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

    def _problems(self) -> list[str]:
        """What keeps the daemon from being healthy right now, beside a failed build.

        Cheap enough for every ``/healthz``: the watcher's own state and one ``stat`` per
        document of the main feed.
        """
        problems: list[str] = []
        watch = self.watcher.status
        if watch.problem is not None:
            problems.append(watch.problem)
        if self.status.last_ok is not None:  # before the first build, "starting" says it all
            missing = [p for p in self.publisher.outputs if not p.is_file()]
            if missing:
                names = ", ".join(str(p) for p in missing[:LOG_NAMES])
                problems.append(f"main feed missing on disk: {names} (rewritten at the next build)")
        return problems

    def _details(self) -> dict[str, Any]:
        watch, building = self.watcher.status, self.rebuilder.building
        current: dict[str, Any] | None = None
        if building is not None:
            current = {"kind": building.kind, "paths": building.paths}
            current["started"] = _iso(building.started)
        waiting, pending = self.watcher.debouncer.waiting, self.rebuilder.pending
        return {
            "idle": waiting == 0 and self.rebuilder.idle,
            "queue": {"settling": waiting, "pending": pending},
            "watch": {
                "seeds": str(watch.seeds),
                "state": watch.state,
                "since": _iso(watch.since),
                "reattached": watch.reattached,
                "problem": watch.problem,
            },
            "building": current,
        }

    def _set_hub(self, hub: str | None) -> None:
        old, self.notifier = self.notifier, HubNotifier(hub) if hub else None
        if old is not None:
            old.close(timeout=WEBSUB_CLOSE_SECONDS)

    def _use(self, settings: Settings) -> None:
        """Build with ``settings`` from the next build on."""
        self.settings = settings
        self.publisher = Publisher(settings)
        self.status.feeds_dir = settings.feeds_dir
        self.rebuilder.reconfigure(self.publisher)

    def _with_served_url(self, settings: Settings) -> Settings:
        if self.address is None:
            if "base_url" not in settings.model_fields_set:
                log.warning(
                    "base_url is not set: links in the feeds point to %s; set base_url to the "
                    "address the feeds are served at",
                    settings.base_url,
                )
            return settings
        url = served_base_url(settings, self.address)
        return settings if url is None else settings.model_copy(update={"base_url": url})

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
            settings = self._with_served_url(self.settings)
            if settings is not self.settings:
                log.info("base_url not set: links use the served address %s", settings.base_url)
                self._use(settings)
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
        settings = self._with_served_url(settings)
        self._use(settings)
        self.app.configure(serve_options(settings))
        watch_keys = ("seeds_dir", "seed_pattern", "debounce_seconds")
        if any(getattr(settings, k) != getattr(old, k) for k in watch_keys):
            self.watcher.stop()
            self.watcher = self._watcher(settings)
            self.watcher.start()
        if settings.websub_hub != old.websub_hub:
            self._set_hub(settings.websub_hub)
        self.rebuilder.request(full=True)
        log.info("configuration reloaded")

    def stop(self, timeout: float = STOP_SECONDS) -> bool:
        """Stop in order; False when the build in flight did not finish within ``timeout``.

        The build is not waited for beyond ``timeout``: the caller then ends the process,
        which rolls the build's store transaction back (the feeds are replaced atomically).
        """
        started = time.monotonic()
        self.watcher.stop()
        finished = self.rebuilder.shutdown(max(0.0, timeout - (time.monotonic() - started)))
        if not finished:  # the process ends now: its sockets and threads go with it
            return False
        if self.server is not None:
            self.server.stop()
        self._set_hub(None)
        return True


def run(
    settings: Settings,
    *,
    reload: Callable[[], Settings] | None = None,
    on_ready: Callable[[Daemon], None] | None = None,
) -> int:
    """Run until SIGTERM or SIGINT (exit status 0); SIGHUP calls ``reload`` for new settings.

    A build still running when the stop deadline passes is abandoned by ending the process:
    its store transaction rolls back and the feeds on disk stay whole (they are replaced
    atomically), so the next start picks up where this one left off. Should the stop itself
    hang (a thread that never returns), a watchdog outside the interpreter ends the process
    ``STOP_DEADLINE`` seconds after the signal, with the threads' stacks in the log.
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
                _hard_deadline(STOP_DEADLINE)
                finished = daemon.stop()
            if not finished:
                log.warning("abandoning the build in flight; the next start redoes it")
                logging.shutdown()
                os._exit(0)
            faulthandler.cancel_dump_traceback_later()
            log.info("stopped in %.2f s", time.monotonic() - started)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


def _hard_deadline(seconds: float) -> None:
    """End the process ``seconds`` from now whatever the threads do (faulthandler's C thread).

    It needs no GIL, so it fires even while a thread is stuck in one long C call.
    """
    try:
        stream = sys.stderr if sys.stderr.fileno() >= 0 else None
    except (AttributeError, ValueError, OSError):  # no real stderr (embedded, captured)
        stream = None
    if stream is not None:
        faulthandler.dump_traceback_later(seconds, exit=True, file=stream)


def _reload(daemon: Daemon, reload: Callable[[], Settings] | None) -> None:
    if reload is None:
        log.warning("SIGHUP received, but there is no configuration to reload")
        return
    log.info("SIGHUP received, reloading the configuration")
    try:
        settings = reload()
    except FeedsvcError as e:
        log.error("configuration not reloaded, keeping the running one: %s", e)
        return
    except Exception:  # a bug in loading must not end the daemon
        log.exception("configuration not reloaded, keeping the running one")
        return
    try:
        daemon.reload(settings)
    except Exception:  # e.g. a new seeds_dir that cannot be watched: keep running
        log.exception("configuration only partly applied")
