"""``feedsvc run``: watch seeds/, rebuild through the scheduler, serve feeds/, until a signal.

Start order: daemon lock → HTTP server (its bound address gives ``base_url`` when none is
set) → watcher → scheduler with a full rescan (so nothing that changed while the daemon was
down, or while it was starting, is missed). Stop order is the reverse: no new events, then
the build in flight finishes (or, past ``STOP_SECONDS``, is abandoned by ending the process),
then the server closes.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import queue
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from .._lock import daemon_lock
from .._version import __version__
from ..build.ingest import Ingester
from ..build.outputs import SERVED_TYPES
from ..build.publisher import Publisher
from ..config import Settings
from ..errors import FeedsvcError
from .leader import leadership_for, store_status
from .logs import LOG_NAMES
from .roles import builds, check_roles, ingests_apart, mirrors, reads_seeds
from .schedule import BuildOutcome, Rebuilder
from .serve import FeedApp, HTTPServer, ServeOptions
from .status import DaemonStatus, iso
from .sync import Mirror, SyncReport
from .wakeups import SeedWakeups
from .watch import SeedWatcher
from .websub import HubNotifier, announce

log = logging.getLogger(__name__)

STOP_SECONDS = 3.0  # how long a stop waits for the build in flight (the whole stop: < 5 s)
STOP_DEADLINE = 4.5  # the hard limit for a whole stop: then the process ends regardless
WEBSUB_CLOSE_SECONDS = 0.5  # then how long it waits for WebSub pings still pending


# --- the daemon ---------------------------------------------------------------------------------
def serve_options(settings: Settings) -> ServeOptions:
    return ServeOptions(
        root=settings.feeds_dir,
        cache_max_age=settings.cache_max_age,
        content_types={
            settings.atom_file: SERVED_TYPES["atom"],
            settings.rss_file: SERVED_TYPES["rss"],
            settings.json_file: SERVED_TYPES["json"],
        },
        status_public=settings.status_public,
    )


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
        self.roles = check_roles(settings)
        self.settings = settings
        # PostgreSQL: one builder per site (#10); None with SQLite or without the build role
        self.leadership = (
            leadership_for(settings, on_promoted=self._promoted) if builds(settings) else None
        )
        self.publisher = self._publisher(settings)
        self.status = DaemonStatus(
            probe=self._problems,
            details=self._details,
            builds=builds(settings) or ingests_apart(settings),  # an ingest round is its build
            standby=self._standby,
        )
        self.mirror = self._mirror(settings) if mirrors(settings) else None
        # a builder on PostgreSQL: ingest hosts' reports wake it (NOTIFY "seeds")
        self.wakeups = (
            SeedWakeups(settings, lambda: self.rebuilder.request(wake=True))
            if builds(settings) and settings.store_url is not None
            else None
        )
        self.rebuilder = Rebuilder(
            self.publisher,
            on_result=self._built,
            gate=None if self.leadership is None else lambda: self._leads(),
        )
        self.notifier: HubNotifier | None = None
        self.watcher = self._watcher(settings)
        self.app = FeedApp(serve_options(settings), status=self.status.snapshot)
        self.server = (
            HTTPServer(self.app, host=settings.host, port=settings.port)
            if settings.serve and "serve" in self.roles
            else None
        )
        self.address: tuple[str, int] | None = None

    def _watcher(self, settings: Settings) -> SeedWatcher:
        return SeedWatcher(
            settings.seeds_dir,
            pattern=settings.seed_pattern,
            debounce=settings.debounce_seconds,
            deliver=self._deliver,
        )

    def _mirror(self, settings: Settings) -> Mirror:
        """A serve node's sync loop: the store's documents into its feeds/ (roles.py)."""

        def synced(report: SyncReport) -> None:
            if report.written or report.removed:
                log.info("synced %s: %s", settings.feeds_dir, report.describe())

        def failed(error: Exception) -> None:
            log.error("sync failed, retrying: %s", error)

        return Mirror(settings, settings.feeds_dir, on_round=synced, on_error=failed)

    # --- leadership (PostgreSQL, #10) ---------------------------------------------------------
    def _publisher(self, settings: Settings) -> Publisher:
        if ingests_apart(settings):  # reports this host's seeds; the builder is elsewhere
            return Ingester(settings)
        local = reads_seeds(settings)
        if self.leadership is None:
            return Publisher(settings, local=local)
        publisher = Publisher(settings, fence=self.leadership.fence, local=local)
        publisher.writer.guard = self.leadership.guard
        return publisher

    def _leads(self) -> bool:
        return self.leadership is None or self.leadership.leading

    def _standby(self) -> bool:
        return self.leadership is not None and not self.leadership.leading

    def _promoted(self, record: object) -> None:
        """A new leader first catches up: a full build of everything."""
        self.rebuilder.request(full=True)

    def _deliver(self, paths: list[Path], full: bool) -> None:
        self.rebuilder.request(paths, full=full)

    def _built(self, outcome: BuildOutcome) -> None:
        """Record a build; after one that wrote feeds, ping the WebSub hub (in the background)."""
        self.status.record(outcome)
        notifier, report = self.notifier, outcome.report
        if notifier is not None and report is not None:
            announce(report, self.settings, notifier)

    def _problems(self) -> list[str]:
        """What keeps the daemon from being healthy right now, beside a failed build.

        Cheap enough for every ``/healthz``: the watcher's own state and one ``stat`` per
        document of the main feed.
        """
        problems: list[str] = []
        if self.mirror is not None:
            return self.mirror.problems()
        watch = self.watcher.status
        if watch.problem is not None:
            problems.append(watch.problem)
        if self.leadership is not None and self.leadership.problem is not None:
            problems.append(self.leadership.problem)
        if self.wakeups is not None and self.wakeups.error is not None:
            problems.append(f"not hearing from ingest hosts: {self.wakeups.error}")
        if builds(self.settings) and self.status.last_ok is not None:  # else "starting" says it
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
            current["started"] = iso(building.started)
        waiting, pending = self.watcher.debouncer.waiting, self.rebuilder.pending
        leader: dict[str, Any] = {"leading": True, "role": "single", "leader": None}
        if ingests_apart(self.settings):
            leader = {"leading": False, "role": "ingest", "leader": None}
        if self.leadership is not None:
            leader = self.leadership.status()
        if self.mirror is not None:
            return {
                "roles": list(self.roles),
                "store": store_status(self.settings),
                "sync": self.mirror.describe(),
            }
        return {
            "roles": list(self.roles),
            "node": self.settings.node,
            **leader,
            "store": store_status(self.settings),
            "idle": waiting == 0 and self.rebuilder.idle,
            "queue": {"settling": waiting, "pending": pending},
            "watch": {
                "seeds": str(watch.seeds),
                "state": watch.state,
                "since": iso(watch.since),
                "reattached": watch.reattached,
                "problem": watch.problem,
            }
            if reads_seeds(self.settings)
            else None,  # a builder without ingest has no seeds folder (#10)
            "building": current,
        }

    def _set_hub(self, hub: str | None) -> None:
        old, self.notifier = self.notifier, HubNotifier(hub) if hub else None
        if old is not None:
            old.close(timeout=WEBSUB_CLOSE_SECONDS)

    def _use(self, settings: Settings) -> None:
        """Build with ``settings`` from the next build on."""
        self.settings = settings
        self.publisher = self._publisher(settings)
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
            why = "--no-serve" if not self.settings.serve else "roles " + ",".join(self.roles)
            log.info("not serving HTTP (%s): %s is served by others", why, self.settings.feeds_dir)
        try:
            settings = self._with_served_url(self.settings)
            if settings is not self.settings:
                log.info("base_url not set: links use the served address %s", settings.base_url)
                self._use(settings)
            self._set_hub(self.settings.websub_hub)
            if self.mirror is not None:
                self.mirror.start()
            if builds(self.settings) or reads_seeds(self.settings):
                if reads_seeds(self.settings):
                    self.watcher.start()
                if self.wakeups is not None:
                    self.wakeups.start()
                self.rebuilder.request(full=True)  # catch up on what changed while we were down
                self.rebuilder.start()
            if self.leadership is not None:
                self.leadership.start()  # a standby until it takes the lead
        except BaseException:
            self.stop()
            raise
        log.info("feedsvc %s running (pid %d)", __version__, os.getpid())

    def reload(self, settings: Settings) -> None:
        """Apply new settings (SIGHUP). Listening address and state_dir need a restart."""
        old = self.settings
        fixed = ("host", "port", "serve", "state_dir", "roles", "store_url", "site_id")
        for key in fixed:
            if getattr(settings, key) != getattr(old, key):
                log.warning("config key %r changed: takes effect at the next restart", key)
        settings = settings.model_copy(update={k: getattr(old, k) for k in fixed})
        settings = self._with_served_url(settings)
        self._use(settings)
        self.app.configure(serve_options(settings))
        watch_keys = ("seeds_dir", "seed_pattern", "debounce_seconds")
        if mirrors(settings):  # a serve node: nothing to watch or build
            log.info("configuration reloaded")
            return
        if reads_seeds(settings) and any(
            getattr(settings, k) != getattr(old, k) for k in watch_keys
        ):
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
        if self.mirror is not None:
            self.mirror.stop()
        self.watcher.stop()
        if self.wakeups is not None:
            self.wakeups.stop()
        finished = self.rebuilder.shutdown(max(0.0, timeout - (time.monotonic() - started)))
        if not finished:  # the process ends now: its sockets and threads go with it
            return False
        if self.leadership is not None:
            self.leadership.stop()  # gives the lock up: a standby takes over at once
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
