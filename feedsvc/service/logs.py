"""Logging for ``feedsvc run``: text or JSON lines on stderr, and the one line per build."""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

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


def log_outcome(
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
