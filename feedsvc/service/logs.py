"""Logging for ``feedsvc run``: text or JSON lines on stderr, and the one line per build."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ..build.outputs import summarize
from ..errors import FeedsvcError
from .schedule import BuildOutcome

log = logging.getLogger("feedsvc.service")  # the one line per build

LOG_NAMES = 20  # file or feed names in one log line at most
LogFormat = Literal["text", "json"]


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


def _names(paths: Sequence[Path], limit: int = LOG_NAMES) -> str:
    shown = ", ".join(p.name for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def log_outcome(
    outcome: BuildOutcome,
    previous: BuildOutcome | None,
    *,
    repeated: bool = False,
) -> None:
    """One line per build at INFO (counts, and which feed got which documents); files at DEBUG.

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
    articles = "article" if report.total == 1 else "articles"
    log.log(
        level,
        "%s build: %d %s (%d new, %d changed, %d deleted, %d errors)%s in %.3f s",
        outcome.kind,
        report.total,
        articles,
        report.new,
        report.changed,
        report.deleted,
        len(report.errors),
        f", wrote {len(written)} files: {summarize(report.files, limit=LOG_NAMES)}"
        if written
        else "",
        outcome.seconds,
    )
    if written and log.isEnabledFor(logging.DEBUG):
        log.debug("wrote %s", _names(written))
