"""What ``/healthz`` and ``/status`` report: the daemon's builds, its watcher, its main feed."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from .._version import __version__
from ..errors import SeedError
from .logs import log_outcome
from .schedule import BuildOutcome

STATUS_LIST_MAX = 20  # /status lists the first errors and files written, and counts them all


# --- status -----------------------------------------------------------------------------------
def iso(when: datetime | None) -> str | None:
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
        builds: bool = True,  # False: a serve node (#10), healthy by ``probe`` alone
        standby: Callable[[], bool] | None = None,
    ) -> None:
        self.has_builds = builds
        self._lock = threading.Lock()
        self._probe = probe
        self._details = details
        self._standby = standby  # True: another process leads the builds (#10)
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
        log_outcome(outcome, previous, repeated=same_failure)

    def snapshot(self) -> tuple[bool, Mapping[str, Any]]:
        """(healthy, the ``/status`` document)."""
        with self._lock:
            last, last_ok = self.last, self.last_ok
            builds, failed = self.builds, self.failed
        report = last_ok.report if last_ok is not None else None
        problems = self._probe() if self._probe is not None else []
        standby = self._standby is not None and self._standby()
        if (
            not self.has_builds or standby
        ):  # a serve node: its mirror's problems come from ``probe``
            pass
        elif last is None:
            problems.append("starting: no build has finished yet")
        elif last.error is not None:
            problems.append(f"last build failed: {last.error}")
        healthy = not problems
        reason = "; ".join(problems) if problems else "ok (standby)" if standby else "ok"
        errors = report.errors if report is not None else []
        info: dict[str, Any] = {
            "healthy": healthy,
            "reason": reason,
            "problems": problems,
            "version": __version__,
            "pid": os.getpid(),
            "started": iso(self.started),
            "builds": builds,
            "builds_failed": failed,
            "articles": report.total if report is not None else None,
            "error_count": len(errors),
            "errors": [_error_json(e) for e in errors[:STATUS_LIST_MAX]],
            "last_build": None if last is None else _outcome_json(last),
            "last_success": None if last_ok is None else iso(last_ok.started),
        }
        if self._details is not None:
            info.update(self._details())
        return healthy, info


def _outcome_json(outcome: BuildOutcome) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": outcome.kind,
        "paths": outcome.paths,
        "started": iso(outcome.started),
        "seconds": round(outcome.seconds, 4),
        "ok": outcome.ok,
        "error": None if outcome.error is None else str(outcome.error),
    }
    if outcome.report is not None:
        r = outcome.report
        data.update(new=r.new, changed=r.changed, deleted=r.deleted, written=len(r.written))
    return data
