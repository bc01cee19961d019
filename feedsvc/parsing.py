"""Seed files to ``Article``s: ``read_seed`` is the only seed I/O, ``parse_seed`` is pure.

Format (documented in README.md): line 1 is ``date <when> <lead>``; then blank-line separated
paragraphs; a short single-line paragraph without closing punctuation is a subheading.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path

from pydantic import ValidationError

from ._text import find_forbidden, make_title, squash, strip_forbidden
from .errors import SeedParseError, SeedReadError
from .models import Article, Block

_DATE_LINE = re.compile(r"^[ \t]*date[ \t]+(?P<when>\S+)(?:[ \t]+(?P<lead>.*))?$", re.IGNORECASE)
_MONTH = re.compile(r"^(?P<y>\d{4})-(?P<m>\d{1,2})$")
_DAY = re.compile(r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})$")
_NAME = re.compile(r"^(?P<nnn>\d+)_(?P<hex>[0-9a-fA-F]{16})\.[^.]+$")
_NNN = re.compile(r"^(?P<nnn>\d+)(?:[_.-]|$)")
_CLOSERS = "\"'”“’‘»«)]"
_SENTENCE_END = ".!?:;,…"

SUBHEADING_MAX_CHARS = 80
SUBHEADING_MAX_WORDS = 10
MONTH_SLOTS = 28 * 24 * 60  # minutes in the shortest month: NNN never leaves its month
DAY_SLOTS = 24 * 60
BINARY_CONTROL_SHARE = 0.05
MIN_YEAR, MAX_YEAR = 1900, 9000


@dataclass(frozen=True, slots=True)
class RawSeed:
    """A seed's bytes with the size and mtime they were read at."""

    data: bytes
    size: int
    mtime_ns: int


def read_seed(path: Path, *, root: Path, max_bytes: int, display: str | None = None) -> RawSeed:
    """Read one seed safely: regular file, inside ``root``, under ``max_bytes``, not changing."""
    shown = display or str(path)
    try:
        real = path.resolve(strict=True)
        if not real.is_relative_to(root.resolve()):
            raise SeedReadError(shown, 1, f"symlink points outside {root.name}/ (to {real})")
        with real.open("rb") as f:
            before = os.fstat(f.fileno())
            if not stat.S_ISREG(before.st_mode):
                raise SeedReadError(shown, 1, "not a regular file")
            if before.st_size > max_bytes:
                raise SeedReadError(
                    shown, 1, f"file too large: {before.st_size} bytes (limit {max_bytes})"
                )
            data = f.read(max_bytes + 1)
            after = os.fstat(f.fileno())
    except FileNotFoundError as e:
        raise SeedReadError(shown, 1, "file vanished before it could be read") from e
    except IsADirectoryError as e:
        raise SeedReadError(shown, 1, "not a regular file") from e
    except PermissionError as e:
        raise SeedReadError(shown, 1, "permission denied") from e
    except OSError as e:
        raise SeedReadError(shown, 1, f"cannot read: {e.strerror or e}") from e
    if len(data) > max_bytes:
        raise SeedReadError(shown, 1, f"file too large: over {max_bytes} bytes (limit)")
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or len(
        data
    ) != after.st_size:
        raise SeedReadError(shown, 1, "file changed while being read (will retry)")
    return RawSeed(data=data, size=after.st_size, mtime_ns=after.st_mtime_ns)


def seed_key(source: str) -> str:
    """The stable key: the 16-hex part of ``NNN_<hex>.txt``, else a hash of the relative path."""
    m = _NAME.match(source.rsplit("/", 1)[-1])
    if m:
        return m.group("hex").lower()
    return hashlib.sha256(source.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _position(source: str) -> int:
    m = _NNN.match(source.rsplit("/", 1)[-1])
    return int(m.group("nnn")) if m else 0


def _decode(data: bytes, shown: str) -> str:
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    nul = data.find(b"\x00")
    if nul >= 0:
        raise SeedParseError(
            shown, data.count(b"\n", 0, nul) + 1, f"binary file (NUL byte at byte offset {nul})"
        )
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        offset = e.start + bom
        line = data.count(b"\n", 0, offset) + 1
        raise SeedParseError(
            shown, line, f"invalid UTF-8 at byte offset {offset} (byte 0x{data[offset]:02x})"
        ) from e


def _parse_when(token: str, *, source: str, tz: tzinfo, shown: str) -> datetime:
    """A month, day or ISO 8601 date-time; month and day become a slot ordered by NNN."""
    slot = _position(source)
    m = _MONTH.match(token)
    d = _DAY.match(token)
    try:
        if m:
            year, month = int(m["y"]), int(m["m"])
            start = date(year, month, 1)
            offset = timedelta(minutes=min(slot, MONTH_SLOTS - 1))
        elif d:
            year = int(d["y"])
            start = date(year, int(d["m"]), int(d["d"]))
            offset = timedelta(minutes=min(slot, DAY_SLOTS - 1))
        else:
            when = datetime.fromisoformat(token)
            year = when.year
            if when.tzinfo is None:
                when = when.replace(tzinfo=tz)
    except ValueError as e:
        if m or d or re.match(r"^\d{4}-\d", token):
            raise SeedParseError(shown, 1, f"impossible date {token!r}: {e}") from e
        raise SeedParseError(
            shown,
            1,
            f"invalid date {token!r} (expected YYYY-MM, YYYY-MM-DD or an ISO 8601 date-time)",
        ) from e
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise SeedParseError(
            shown, 1, f"impossible date {token!r}: year outside {MIN_YEAR}..{MAX_YEAR}"
        )
    if m or d:
        when = datetime.combine(start, time(0, 0), tzinfo=tz).astimezone(UTC) + offset
    return when.astimezone(UTC)


def _is_subheading(lines: list[str]) -> bool:
    if len(lines) != 1:
        return False
    text = lines[0]
    bare = text.rstrip(_CLOSERS).rstrip()
    return (
        len(text) <= SUBHEADING_MAX_CHARS
        and len(text.split()) <= SUBHEADING_MAX_WORDS
        and bool(bare)
        and bare[-1] not in _SENTENCE_END
    )


def _paragraphs(lines: list[str]) -> list[tuple[int, list[str]]]:
    """(first line number, lines) per blank-line separated paragraph."""
    out: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for number, line in enumerate(lines, start=1):
        if line.strip():
            if not current:
                start = number
            current.append(line.strip())
        elif current:
            out.append((start, current))
            current = []
    if current:
        out.append((start, current))
    return out


def parse_seed(
    data: bytes,
    *,
    source: str,
    now: datetime,
    tz: tzinfo = UTC,
    language: str = "de",
    max_bytes: int = 1024 * 1024,
    max_future: timedelta = timedelta(days=2),
    display: str | None = None,
) -> Article:
    """Validate one seed's bytes into an ``Article``; every failure is a ``SeedParseError``.

    Pure: the clock comes in as ``now`` (for the future-date limit) so results are repeatable.
    """
    shown = display or source
    if len(data) > max_bytes:
        raise SeedParseError(shown, 1, f"file too large: {len(data)} bytes (limit {max_bytes})")
    if not data.strip():
        raise SeedParseError(shown, 1, "empty file")
    text = _decode(data, shown)
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    warnings: list[str] = []
    bad = find_forbidden(text)
    if bad:
        if len(bad) > max(8, BINARY_CONTROL_SHARE * len(text)):
            raise SeedParseError(shown, 1, f"binary file ({len(bad)} control characters)")
        first = bad[0]
        line = text.count("\n", 0, first) + 1
        warnings.append(
            f"{shown}:{line}: removed {len(bad)} character(s) that XML forbids "
            f"(first U+{ord(text[first]):04X})"
        )
        text = strip_forbidden(text)

    lines = text.split("\n")
    paragraphs = _paragraphs(lines)
    if not paragraphs:
        raise SeedParseError(shown, 1, "empty file")
    first_line_no, first_lines = paragraphs[0]
    match = _DATE_LINE.match(first_lines[0])
    if first_line_no != 1 or not match:
        raise SeedParseError(
            shown,
            first_line_no if first_line_no != 1 else 1,
            "no date line: line 1 must be 'date YYYY-MM <lead sentence>'",
        )
    published = _parse_when(match["when"], source=source, tz=tz, shown=shown)
    if published > now + max_future:
        days = (published - now).total_seconds() / 86400
        raise SeedParseError(
            shown,
            1,
            f"date {match['when']!r} is {days:.1f} days in the future "
            f"(limit: max_future_days = {max_future.total_seconds() / 86400:g})",
        )
    lead = squash(" ".join([match["lead"] or "", *first_lines[1:]]))
    if not lead:
        raise SeedParseError(
            shown, 1, "empty lead: the lead sentence must follow the date on line 1"
        )
    rest = paragraphs[1:]
    if not rest:
        raise SeedParseError(
            shown, len(lines), "no body: expected paragraphs after a blank line below the lead"
        )
    blocks = []
    for index, (_, para) in enumerate(rest):
        heading = index < len(rest) - 1 and _is_subheading(para)
        blocks.append(
            Block(kind="subheading" if heading else "paragraph", text=squash(" ".join(para)))
        )

    digest = hashlib.sha256()
    for piece in (published.isoformat(), lead, *(f"{b.kind}:{b.text}" for b in blocks)):
        digest.update(piece.encode("utf-8"))
        digest.update(b"\x1f")
    words = len(lead.split()) + sum(len(b.text.split()) for b in blocks)
    try:
        return Article(
            key=seed_key(source),
            source=source,
            title=make_title(lead),
            lead=lead,
            body=tuple(blocks),
            published=published,
            updated=published,
            language=language,
            content_hash=digest.hexdigest(),
            word_count=words,
            warnings=tuple(warnings),
        )
    except ValidationError as e:  # a bug in the rules above, reported with the file anyway
        raise SeedParseError(shown, 1, f"invalid article: {e.errors()[0]['msg']}") from e
