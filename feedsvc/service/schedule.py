"""The one rebuild job (apscheduler 3), and the periodic full rescan that backs up the watcher.

Changes are requested, never built directly: ``request()`` adds paths to a pending set and arms
the rebuild job unless it is already armed or running. The running job keeps taking whatever
is pending until nothing is, so a burst of 1,000 files costs a handful of builds, and two
builds never run at once (``max_instances=1``, ``coalesce=True`` guard the same).

A build that fails (any exception, e.g. a ``SeedsDirError`` for a missing seeds folder or a
``PublishError``) keeps its work pending and is tried again after a growing pause (1 s up to
a minute), or at once on the next change; the feeds on disk stay as the last good build left
them.
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
RETRY_JOB = "retry"
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
    """Runs ``Publisher.build`` on a background scheduler, one build at a time."""

    def __init__(self, publisher: Publisher, *, on_result: Callable[[BuildOutcome], None]) -> None:
        self._publisher = publisher
        self._on_result = on_result
        self._cond = threading.Condition()
        self._paths: set[Path] = set()
        self._full = False
        self._armed = False
        self._running = False
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

    def _retry(self) -> None:
        """After a failed build: build what is still pending (unless a change did already)."""
        self.request()

    def _periodic(self) -> None:
        log.info("periodic full rescan")
        self.request(full=True)

    @property
    def pending(self) -> int:
        """Changed paths (and a full rescan) waiting for a build, the one in flight included."""
        with self._cond:
            running = self.building.paths if self.building is not None else 0
            return len(self._paths) + int(self._full) + running

    @property
    def idle(self) -> bool:
        """Nothing pending, armed or running: every build asked for has been reported."""
        with self._cond:
            return not (self._paths or self._full or self._armed or self._running)

    def request(self, paths: Iterable[Path] = (), *, full: bool = False) -> None:
        """Queue changed paths (or a full rescan) and make sure the rebuild job will run."""
        with self._cond:
            self._paths.update(paths)
            self._full = self._full or full
            if self._armed or self._stopping or not (self._paths or self._full):
                return
            self._armed = True
        self._arm()

    def _arm(self, delay: timedelta = timedelta(0)) -> None:
        self._scheduler.add_job(
            self._run,
            "date",
            run_date=datetime.now(UTC) + delay,
            id=REBUILD_JOB,
            name="rebuild",
            replace_existing=True,
            max_instances=1,
            coalesce=True,
        )

    def _skipped(self, event: JobSubmissionEvent) -> None:
        """Armed while the last run was returning: try again once it has returned."""
        if event.job_id != REBUILD_JOB:
            return
        with self._cond:
            if self._stopping or not self._armed:
                return
        self._arm(RETRY_SKIPPED)

    def _run(self) -> None:
        """The rebuild job: build whatever is pending until nothing is."""
        with self._cond:
            self._running = True
        try:
            while self._build_once():
                pass
        finally:
            with self._cond:
                self._running = False
                self._cond.notify_all()

    def _build_once(self) -> bool:
        """One build of what is pending; False when there is nothing left (or it failed)."""
        with self._cond:
            if self._stopping or not (self._paths or self._full):
                self._armed = False
                return False
            paths, full = sorted(self._paths), self._full
            self._paths, self._full = set(), False
            publisher = self._publisher
            started = datetime.now(UTC)
            kind: Literal["full", "incremental"] = "full" if full else "incremental"
            self.building = Building(kind, len(paths), started)
        t0 = time.perf_counter()
        try:
            if not publisher.seeds.is_dir():  # never read a missing folder as "all deleted"
                raise SeedsDirError(publisher.seeds, "the seeds directory is missing")
            report = publisher.build(None if full else paths)
        except Exception as e:
            seconds = time.perf_counter() - t0
            with self._cond:  # keep the work for the retry or the next trigger
                self._paths.update(paths)
                self._full = self._full or full
                self._armed = False
                self.building = None
                pause = RETRY_BACKOFF[min(self._failures, len(RETRY_BACKOFF) - 1)]
                self._failures += 1
                stopping = self._stopping
            if not stopping:  # (the scheduler's own lock is never taken under ours)
                self._scheduler.add_job(
                    self._retry,
                    "date",
                    run_date=datetime.now(UTC) + timedelta(seconds=pause),
                    id=RETRY_JOB,
                    name="retry",
                    replace_existing=True,
                )
            self._report(BuildOutcome(kind, len(paths), started, seconds, error=e))
            return False
        with self._cond:
            self._failures = 0
            self.building = None
        outcome = BuildOutcome(kind, len(paths), started, time.perf_counter() - t0, report=report)
        self._report(outcome)
        return True

    def _report(self, outcome: BuildOutcome) -> None:
        try:
            self._on_result(outcome)
        except Exception:  # a bug in reporting must not stop the builds
            log.exception("could not record a build result")

    def shutdown(self, timeout: float) -> bool:
        """Stop taking work; wait up to ``timeout`` s for a build in flight (False: still on)."""
        with self._cond:
            self._stopping = True
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        with self._cond:
            return self._cond.wait_for(lambda: not self._running, timeout=timeout)
