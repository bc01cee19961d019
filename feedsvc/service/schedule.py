"""The one rebuild job (apscheduler 3), and the periodic full rescan that backs up the watcher.

Changes are requested, never built directly: ``request()`` adds paths to a pending set and
schedules the one rebuild job (``REBUILD_JOB``: ``max_instances=1``, ``coalesce=True``) to run
now. A run keeps taking whatever is pending until nothing is, so a burst of 1,000 files costs
a handful of builds, and two builds never run at once.

A build that fails (any exception, e.g. a ``SeedsDirError`` for a missing seeds folder or a
``PublishError``) keeps its work pending and the same job is scheduled again after a growing
pause (1 s up to a minute), or at once on the next change; the feeds on disk stay as the last
good build left them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ..build.publisher import BuildReport, Publisher
from ..config import Settings
from ..errors import SeedsDirError

log = logging.getLogger(__name__)

REBUILD_JOB = "rebuild"
RESCAN_JOB = "rescan"
RETRY_SKIPPED = timedelta(milliseconds=20)
RETRY_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)  # seconds after the 1st, 2nd, ... failure


@dataclass(frozen=True, slots=True)
class BuildOutcome:
    """One run of the rebuild job: its report, or the exception that stopped it."""

    kind: Literal["full", "incremental"]
    paths: int
    started: datetime
    seconds: float
    report: BuildReport | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class Building:
    """The build in flight, for ``/status``."""

    kind: Literal["full", "incremental"]
    paths: int
    started: datetime


def rescan_trigger(settings: Settings) -> CronTrigger | IntervalTrigger:
    """``rescan_cron`` when set (in the configured time zone), else every ``rescan_interval``."""
    if settings.rescan_cron:
        return CronTrigger.from_crontab(settings.rescan_cron, timezone=settings.tz)
    return IntervalTrigger(seconds=settings.rescan_interval, timezone=settings.tz)


class Rebuilder:
    """Runs ``Publisher.build`` on a background scheduler, one build at a time.

    apscheduler does the scheduling: one job for every rebuild (a change, a retry after a
    failure), one for the periodic rescan. Two pieces of state stay here, and why:

    - the pending set (paths, "full"): what the next build takes, so a burst is one build;
    - ``_busy``: a run is scheduled or running and will look at the pending set before it
      ends, so a request during a long build adds its paths instead of asking apscheduler for
      a run it would refuse (``max_instances``) with a warning, again and again. The one gap
      apscheduler 3 leaves (a run asked for while the previous one is returning is dropped,
      not deferred) is closed by ``_skipped``, which asks again a moment later.
    """

    def __init__(
        self,
        publisher: Publisher,
        *,
        on_result: Callable[[BuildOutcome], None],
        gate: Callable[[], bool] | None = None,
    ) -> None:
        self._publisher = publisher
        self._on_result = on_result
        # False: this process does not lead the site's builds (#10): what is pending is
        # dropped, the leader builds it (and a new leader starts with a full build)
        self._gate = gate
        self._cond = threading.Condition()
        self._paths: set[Path] = set()
        self._full = False
        self._wake = False  # another host's seeds changed (#10): a build even without paths
        self._busy = False
        self._stopping = False
        self._failures = 0  # failed builds in a row: the pause before the retry grows
        self.building: Building | None = None
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=2)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=publisher.settings.tz,
        )
        self._scheduler.add_listener(self._skipped, EVENT_JOB_MAX_INSTANCES)

    def start(self) -> None:
        """Start the scheduler and the periodic rescan."""
        trigger = self._schedule_rescan(self._publisher.settings)
        log.info("periodic full rescan: %s", trigger)
        self._scheduler.start()

    def reconfigure(self, publisher: Publisher) -> None:
        """Use a new publisher (SIGHUP) from the next build on, with its rescan schedule."""
        with self._cond:
            self._publisher = publisher
        trigger = self._schedule_rescan(publisher.settings)
        if self._scheduler.running:
            log.info("periodic full rescan: %s", trigger)

    def _schedule_rescan(self, settings: Settings) -> CronTrigger | IntervalTrigger:
        trigger = rescan_trigger(settings)
        self._scheduler.add_job(
            self._periodic, trigger, id=RESCAN_JOB, name="rescan", replace_existing=True
        )
        return trigger

    def _periodic(self) -> None:
        log.info("periodic full rescan")
        self.request(full=True)

    @property
    def pending(self) -> int:
        """Changed paths (and a full rescan) waiting for a build, the one in flight included."""
        with self._cond:
            running = self.building.paths if self.building is not None else 0
            return len(self._paths) + int(self._full or self._wake) + running

    @property
    def idle(self) -> bool:
        """Nothing pending, scheduled or running: every build asked for has been reported."""
        with self._cond:
            return not (self._paths or self._full or self._wake or self._busy or self.building)

    def request(
        self, paths: Iterable[Path] = (), *, full: bool = False, wake: bool = False
    ) -> None:
        """Queue changed paths (or a full rescan) and make sure the rebuild job will run.

        ``wake``: ingest hosts reported seeds (#10); a build looks at them with no paths.
        """
        with self._cond:
            self._paths.update(paths)
            self._full = self._full or full
            self._wake = self._wake or wake
            if self._busy or self._stopping or not (self._paths or self._full or self._wake):
                return
            self._busy = True
        self._arm()

    def _arm(self, delay: timedelta = timedelta(0)) -> None:
        """Schedule the one rebuild job ``delay`` from now (replacing a later run of it)."""
        self._scheduler.add_job(
            self._run,
            "date",
            run_date=datetime.now(UTC) + delay,
            id=REBUILD_JOB,
            name="rebuild",
            replace_existing=True,
        )

    def _skipped(self, event: JobSubmissionEvent) -> None:
        """Asked for while the last run was returning: ask again once it has returned."""
        if event.job_id != REBUILD_JOB:
            return
        with self._cond:
            if self._stopping or not self._busy:
                return
        self._arm(RETRY_SKIPPED)

    def _run(self) -> None:
        """The rebuild job: build whatever is pending until nothing is (or a build failed)."""
        while self._build_once():
            pass

    def _build_once(self) -> bool:
        """One build of what is pending; False when there is nothing left (or it failed)."""
        with self._cond:
            if self._stopping or not (self._paths or self._full or self._wake):
                self._busy = False
                self._cond.notify_all()
                return False
            if self._gate is not None and not self._gate():
                self._paths, self._full, self._wake = set(), False, False
                self._busy = False
                self._cond.notify_all()
                return False
            paths, full, wake = sorted(self._paths), self._full, self._wake
            self._paths, self._full, self._wake = set(), False, False
            self._busy = True  # (a retry runs unasked): changes meanwhile wait for this run
            publisher = self._publisher
            started = datetime.now(UTC)
            kind: Literal["full", "incremental"] = "full" if full else "incremental"
            self.building = Building(kind, len(paths), started)
        t0 = time.perf_counter()
        try:
            if publisher.local and not publisher.seeds.is_dir():  # never "all deleted"
                raise SeedsDirError(publisher.seeds, "the seeds directory is missing")
            report = publisher.build(None if full else paths)
        except Exception as e:
            seconds = time.perf_counter() - t0
            with self._cond:  # keep the work for the retry or the next change
                self._paths.update(paths)
                self._full = self._full or full
                self._wake = self._wake or wake
                pause = RETRY_BACKOFF[min(self._failures, len(RETRY_BACKOFF) - 1)]
                self._failures += 1
                self._busy = False  # the next change builds at once, not after the pause
                stopping = self._stopping
            if not stopping:  # (the scheduler's own lock is never taken under ours)
                self._arm(timedelta(seconds=pause))
            self._finish(BuildOutcome(kind, len(paths), started, seconds, error=e))
            return False
        with self._cond:
            self._failures = 0
        self._finish(
            BuildOutcome(kind, len(paths), started, time.perf_counter() - t0, report=report)
        )
        return True

    def _finish(self, outcome: BuildOutcome) -> None:
        """Report a build, then mark it done: ``idle`` is never true before the report."""
        try:
            self._on_result(outcome)
        except Exception:  # a bug in reporting must not stop the builds
            log.exception("could not record a build result")
        finally:
            with self._cond:
                self.building = None
                self._cond.notify_all()

    def shutdown(self, timeout: float) -> bool:
        """Stop taking work; wait up to ``timeout`` s for a build in flight (False: still on)."""
        with self._cond:
            self._stopping = True
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        with self._cond:
            return self._cond.wait_for(lambda: self.building is None, timeout=timeout)
