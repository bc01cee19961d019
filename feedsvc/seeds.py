"""Seed files: which files are seeds, reading one safely, and parsing it into an ``Article``.

Naming: ``is_seed_name`` and ``list_seeds`` say which files are seeds; ``seed_key`` and
``slot`` read a seed's name (``NNN_<16 hex>.txt``: the key, and the ``NNN`` slot that orders
seeds of one month or day). ``read_seed`` is the only seed I/O; ``parse_seed`` is pure.

Format (documented in README.md): line 1 is ``date <when> <lead>``; then blank-line separated
paragraphs; a short single-line paragraph without closing punctuation is a subheading.
"""

from __future__ import annotations

import errno
import fnmatch
import functools
import hashlib
import os
import re
import stat
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import chain
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ._lang import MAX_CHARS as DETECT_MAX_CHARS
from ._lang import detect_language
from ._text import (
    MAX_MARKS,
    always_nfc,
    find_forbidden,
    make_title,
    nfc,
    squash,
    strip_forbidden,
)
from .errors import SeedParseError, SeedReadError, SeedsDirError
from .models import Article, blocks, trusted

# Possessive (``*+``, ``++``): a token the line cannot end with fails once, not once per
# shorter prefix of it (the same matches, 15 times faster on a 1 MiB line).
_DATE_LINE = re.compile(
    r"^[ \t]*+date[ \t]++(?P<when>\S++)(?:[ \t]++(?P<lead>.*))?$", re.IGNORECASE
)
_MONTH = re.compile(r"^(?P<y>\d{4})-(?P<m>\d{1,2})$")
_DAY = re.compile(r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})$")
_NAME = re.compile(r"^(?P<nnn>\d+)_(?P<hex>[0-9a-fA-F]{16})\.[^.]+$")
_NNN = re.compile(r"^(?P<nnn>\d+)(?:[_.-]|$)")
# Bytes that can start a character XML forbids: C0 controls and DEL directly; C1 controls and
# U+FFFE/U+FFFF only behind these lead bytes. ``bytes.translate`` finds them at C speed.
_PLAIN_BYTES = bytes(range(0x20, 0x7F)) + b"\t\n\r" + bytes(range(0x80, 0x100))
# Printable ASCII and LF: a seed without anything else but printable characters and no double
# space (``_clean_chars``) needs no CR, forbidden-character or whitespace work.
_ASCII_TEXT = bytes(range(0x20, 0x7F)) + b"\n"
_CLOSERS = "\"'”“’‘»«)]"
# A paragraph break: a line end, then one or more blank lines (whitespace only; ``\s`` is the
# whitespace of ``str.strip``). Possessive, so each character is looked at a bounded number
# of times.
_BREAK = re.compile(r"\n(?:[^\S\n]*+\n)++")
# The same on the bytes of a clean seed (``_clean_chars``: its only whitespace is " " and LF,
# where bytes and str agree on what whitespace is); a bytes pattern runs faster.
_BREAK_BYTES = re.compile(rb"\n(?:[^\S\n]*+\n)++")
_DOUBLE_SPACE = re.compile(b"  ")  # searched for faster than ``b"  " in data``
# What the content hash writes before a block's text, as bytes (``_clean_split``)
_KIND_BYTES = {"paragraph": b"\x1fparagraph:", "subheading": b"\x1fsubheading:"}
_SENTENCE_END = ".!?:;,…"

SUBHEADING_MAX_CHARS = 80
SUBHEADING_MAX_WORDS = 10
# A seed is one article (the corpus's longest has 73 blocks). Each block costs a few µs here
# and more in every later stage, so 175,000 one-word paragraphs in 1 MiB are refused at once.
MAX_BLOCKS = 10_000
MONTH_SLOTS = 28 * 24 * 60  # minutes in the shortest month: NNN never leaves its month
DAY_SLOTS = 24 * 60
BINARY_CONTROL_SHARE = 0.05
MIN_YEAR, MAX_YEAR = 1900, 9000
IGNORED_SUFFIXES = (".swp", ".swx", "~", ".tmp", ".part", ".crdownload")


@dataclass(frozen=True, slots=True)
class RawSeed:
    """A seed's bytes with the stat they were read at (what change detection compares)."""

    data: bytes
    size: int
    mtime_ns: int
    ctime_ns: int = 0
    inode: int = 0


def printable_path(path: str | Path) -> str:
    """A path as shown in messages and stored: valid UTF-8, on one line.

    Bytes that are not UTF-8 (``os.fsdecode`` keeps them as surrogates) become ``\\xNN``, control
    characters and line separators ``\\n``, ``\\x1b``, ``\\u2028``; anything else is kept as is.
    """
    text = os.fspath(path)
    if text.isprintable():
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that no file name decoded to
        raw = text.encode("utf-8", "backslashreplace")
    text = raw.decode("utf-8", "backslashreplace")
    # repr escapes exactly what is not printable: "\n", "\x1b", "\u2028"
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def name_problem(rel: str) -> str:
    """Why a path cannot be a seed's name ('' when it can)."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8; rename the file"
    if any(unicodedata.category(c) == "Cc" for c in rel):
        return "file name contains a control character; rename the file"
    return ""


def stored_path(rel: str) -> str:
    """The store's name for a seed path: itself, or escaped when it cannot be a seed's name.

    A name with bytes that are not UTF-8 or with control characters is one rejected seed,
    recorded under its escaped form: nothing unencodable ever reaches the store or a feed.
    """
    return rel if rel.isprintable() or not name_problem(rel) else printable_path(rel)


def os_reason(error: OSError) -> str:
    """An OS error as a short reason without the path (the message names the path itself)."""
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, NotADirectoryError):
        return "not a folder"
    return f"cannot read: {error.strerror or error}"


def is_seed_name(name: str, pattern: str) -> bool:
    """Seed files match the pattern; hidden files and editor or transfer leftovers never do."""
    return (
        not name.startswith(".")
        and not name.endswith(IGNORED_SUFFIXES)
        and fnmatch.fnmatchcase(name, pattern)
    )


def require_seeds_dir(seeds: Path) -> None:
    """Raise ``SeedsDirError`` unless the seeds folder exists and is a folder we can list."""
    try:
        st = os.stat(seeds)
    except FileNotFoundError as e:
        raise SeedsDirError(printable_path(seeds), "seeds folder does not exist") from e
    except OSError as e:
        raise SeedsDirError(printable_path(seeds), os_reason(e)) from e
    if not stat.S_ISDIR(st.st_mode):
        raise SeedsDirError(printable_path(seeds), "not a folder")


Stamped = tuple[str, int, int, int, int]  # (path, size, mtime_ns, ctime_ns, inode)


@dataclass(slots=True)
class Listing:
    """Every seed under a folder (``walk_seeds``: in the folders' own order, unsorted) and,
    when asked, the stat of every seed whose stat worked, as ``Store.file_stamps`` gives them.
    Only a printable name is its own stored name (``stored_path``), so only such a stat can
    match a stored one; the others are looked at one by one (the scan's ``scan_one``)."""

    seeds: list[str] = field(default_factory=list)
    stamped: list[Stamped] = field(default_factory=list)


def _seed_test(pattern: str) -> Callable[[str], bool]:
    """``is_seed_name`` for one pattern, without fnmatch's per-call cost where the pattern
    is ``*`` and a plain suffix (the default ``*.txt``): the same answers, a third of the time."""
    tail = pattern[1:]
    if pattern.startswith("*") and not any(c in tail for c in "*?[]"):
        return lambda name: (
            name.endswith(tail) and not name.startswith(".") and not name.endswith(IGNORED_SUFFIXES)
        )
    return lambda name: is_seed_name(name, pattern)


def walk_seeds(seeds: Path, pattern: str, *, stats: bool = False) -> Listing:
    """Every seed file under ``seeds``, with each one's stat taken on the way (``stats``).

    The rules: a seed's name matches ``is_seed_name`` (hidden files and editor or transfer
    leftovers never do); sub-folders are walked, except hidden ones and symlinked ones; a
    symlink to a file, even a dangling one, is listed (``read_seed`` judges it); an entry
    whose type cannot be known is taken for a file. A folder that cannot be listed raises
    ``SeedsDirError``: its files are never taken for deleted. A sub-folder that vanished
    while it was walked is gone, like its files.

    One ``scandir`` per folder, each stat relative to the folder's fd (one path component
    to resolve; ``DirEntry.stat`` caches nothing that could be stale: it is taken once,
    here). A seed whose stat fails is listed without one.
    """
    require_seeds_dir(seeds)
    root = os.path.normpath(seeds)
    is_seed = _seed_test(pattern)
    found = Listing()
    seeds_out, stamped = found.seeds, found.stamped
    folders = [("", root)]
    while folders:
        base, folder = folders.pop()
        try:
            fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError as e:
            if isinstance(e, FileNotFoundError) and folder != root:
                continue  # a sub-folder removed while walking: its files are gone
            raise SeedsDirError(printable_path(folder), os_reason(e)) from e
        try:  # the fd stays open while its entries are looked at: their stats use it
            with os.scandir(fd) as entries:
                for entry in entries:
                    name = entry.name
                    try:
                        is_dir = entry.is_dir()
                        linked = is_dir and entry.is_symlink()
                    except OSError:
                        is_dir = linked = False  # as os.walk takes it: a file
                    if is_dir:
                        if not name.startswith(".") and not linked:
                            folders.append((f"{base}{name}/", os.path.join(folder, name)))
                        continue
                    if not is_seed(name):
                        continue
                    rel = base + name
                    seeds_out.append(rel)
                    if stats:
                        try:
                            st = entry.stat()
                        except OSError:
                            continue
                        stamped.append((rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
        except OSError as e:
            if isinstance(e, FileNotFoundError) and folder != root:
                continue
            raise SeedsDirError(printable_path(folder), os_reason(e)) from e
        finally:
            os.close(fd)
    return found


def list_seeds(seeds: Path, pattern: str) -> list[str]:
    """Every seed file under ``seeds``, sorted (``walk_seeds``' rules)."""
    return sorted(walk_seeds(seeds, pattern).seeds)


def read_seed(
    path: str | Path, *, root: Path, max_bytes: int, display: str | None = None
) -> RawSeed:
    """Read one seed safely: regular file, inside ``root``, under ``max_bytes``, not changing.

    A regular file costs an ``open``, two ``fstat`` and one ``read``: the open's
    ``O_NOFOLLOW`` is the symlink check, and only a symlink (``ELOOP``) is resolved and its
    target checked against ``root``.
    """
    shown = display or str(path)
    path = os.fspath(path)
    # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat below rejects it.
    # O_NOFOLLOW: a symlink is never opened as such; it is resolved and checked first.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        inside = _real_dir(os.fspath(root))
        parent = os.path.dirname(path)
        if parent != os.fspath(root) and os.path.normpath(parent) != os.path.normpath(root):
            parent = os.path.realpath(parent)  # sub-folders are resolved every time
        real = os.path.join(_real_dir(parent), os.path.basename(path))
        if not real.startswith(inside):  # a symlinked sub-folder
            raise SeedReadError(
                shown, 1, f"symlink points outside {root.name}/ (to {printable_path(real)})"
            )
        try:
            fd = os.open(real, flags)
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            fd = _open_link(real, flags, inside=inside, root=root, shown=shown)
        try:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                raise SeedReadError(shown, 1, "not a regular file")
            if before.st_size > max_bytes:
                raise SeedReadError(
                    shown, 1, f"file too large: {before.st_size} bytes (limit {max_bytes})"
                )
            data = _read_all(fd, min(before.st_size, max_bytes) + 1)
            after = os.fstat(fd)
        finally:
            os.close(fd)
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
    return RawSeed(data, after.st_size, after.st_mtime_ns, after.st_ctime_ns, after.st_ino)


def _open_link(real: str, flags: int, *, inside: str, root: Path, shown: str) -> int:
    """Open what the symlink ``real`` points to, if that is inside ``root`` (``inside``)."""
    target = os.path.realpath(real, strict=True)
    if not target.startswith(inside):
        raise SeedReadError(
            shown, 1, f"symlink points outside {root.name}/ (to {printable_path(target)})"
        )
    try:
        return os.open(target, flags)
    except OSError as e:
        if e.errno == errno.ELOOP:  # resolved, so a symlink here was swapped in after the check
            raise SeedReadError(shown, 1, "file was replaced by a symlink while read") from e
        raise


def _read_all(fd: int, limit: int) -> bytes:
    """Up to ``limit`` bytes from ``fd``: one ``read`` for a file that is not changing."""
    data = os.read(fd, limit)
    if not data or len(data) >= limit:
        return data
    parts = [data]
    size = len(data)
    while size < limit:
        more = os.read(fd, limit - size)
        if not more:
            break
        parts.append(more)
        size += len(more)
    return b"".join(parts)


@functools.lru_cache(maxsize=256)
def _real_dir(directory: str) -> str:
    """A directory resolved (symlinks and all), with a trailing separator for prefix checks.

    Cached for the seeds root only (callers resolve sub-folders themselves, every time).
    """
    return os.path.join(os.path.realpath(directory or "."), "")


# Another host's seed, as the builder names it (#10, the ingest role): ``//host/rel``. A path
# relative to seeds/ never starts with "/", so the two kinds of names never meet.
REMOTE_PREFIX = "//"


def remote_path(host: str, rel: str) -> str:
    """The builder's name for the seed ``rel`` of the ingest host ``host``."""
    return f"{REMOTE_PREFIX}{host}/{rel}"


def is_remote(path: str) -> bool:
    """Whether a stored path names another host's seed (``remote_path``)."""
    return path.startswith(REMOTE_PREFIX)


def split_remote(path: str) -> tuple[str, str]:
    """``remote_path``'s (host, rel) back from its name."""
    host, _, rel = path[len(REMOTE_PREFIX) :].partition("/")
    return host, rel


def seed_key(source: str) -> str:
    """The stable key: the 16-hex part of ``NNN_<hex>.txt``, else a hash of the relative path.

    Another host's seed has the key it has there (the host is not part of it), so the same
    key on two hosts is a duplicate.
    """
    if is_remote(source):
        source = split_remote(source)[1]
    m = _NAME.match(source.rsplit("/", 1)[-1])
    if m:
        return m.group("hex").lower()
    return hashlib.sha256(source.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def slot(source: str) -> int:
    """The ``NNN`` a seed's file name starts with (0 without one): its order in a month or day.

    A ``YYYY-MM`` seed is dated ``NNN`` minutes after the month's first local midnight (at
    most ``MONTH_SLOTS - 1``), a ``YYYY-MM-DD`` seed ``NNN`` minutes into its day.
    """
    m = _NNN.match(source.rsplit("/", 1)[-1])
    return int(m.group("nnn")) if m else 0


def _may_have_forbidden(data: bytes) -> bool:
    """A fast pre-check so clean files skip the character-by-character scan."""
    return bool(data.translate(None, _PLAIN_BYTES)) or b"\xc2" in data or b"\xef\xbf" in data


def _line_at(data: bytes, offset: int) -> int:
    """The 1-based line of a byte offset, counting CRLF, CR and LF line ends alike."""
    head = data[:offset]
    return head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n") + 1


def _decode(data: bytes, shown: str) -> str:
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    nul = data.find(b"\x00")
    if nul >= 0:
        raise SeedParseError(
            shown, _line_at(data, nul), f"binary file (NUL byte at byte offset {nul})"
        )
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        offset = e.start + bom
        line = _line_at(data, offset)
        raise SeedParseError(
            shown, line, f"invalid UTF-8 at byte offset {offset} (byte 0x{data[offset]:02x})"
        ) from e


def _parse_when(token: str, *, source: str, tz: tzinfo, shown: str) -> datetime:
    """A month, day or ISO 8601 date-time; month and day become a slot ordered by NNN."""
    try:  # only a short token can be a month or a day: no long one is kept in the cache
        span = _slot_span(token, tz) if len(token) <= len("YYYY-MM-DD") else None
    except (ValueError, OverflowError) as e:  # 9999-12-31: no next day to cap at
        raise SeedParseError(shown, 1, f"impossible date {token!r}: {e}") from e
    if span is not None:
        first, last, slots = span
        return min(first + timedelta(minutes=min(slot(source), slots - 1)), last)
    try:
        when = datetime.fromisoformat(token)
    except (ValueError, OverflowError) as e:
        if re.match(r"^\d{4}-\d", token):
            raise SeedParseError(shown, 1, f"impossible date {token!r}: {e}") from e
        raise SeedParseError(
            shown,
            1,
            f"invalid date {token!r} (expected YYYY-MM, YYYY-MM-DD or an ISO 8601 date-time)",
        ) from e
    if not MIN_YEAR <= when.year <= MAX_YEAR:
        raise SeedParseError(
            shown, 1, f"impossible date {token!r}: year outside {MIN_YEAR}..{MAX_YEAR}"
        )
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.astimezone(UTC)


@functools.lru_cache(maxsize=1024)
def _slot_span(token: str, tz: tzinfo) -> tuple[datetime, datetime, int] | None:
    """A month's or a day's first and last minute in UTC and its number of slots; None when
    ``token`` is neither.

    Cached: a corpus has a few hundred months and days, and matching the token and the time
    zone arithmetic were 7 % of a parse. Capped a minute before the next local midnight: a
    23-hour DST day stays one day. Raises ``ValueError`` (not cached) for an impossible date,
    a year outside ``MIN_YEAR..MAX_YEAR`` included.
    """
    if m := _MONTH.match(token):
        year, month = int(m["y"]), int(m["m"])
        start = date(year, month, 1)
        end = date(year + month // 12, month % 12 + 1, 1)
        slots = MONTH_SLOTS
    elif d := _DAY.match(token):
        year = int(d["y"])
        start = date(year, int(d["m"]), int(d["d"]))
        end = start + timedelta(days=1)
        slots = DAY_SLOTS
    else:
        return None
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(f"year outside {MIN_YEAR}..{MAX_YEAR}")
    first = datetime.combine(start, time(0, 0), tzinfo=tz).astimezone(UTC)
    last = datetime.combine(end, time(0, 0), tzinfo=tz).astimezone(UTC) - timedelta(minutes=1)
    return first, last, slots


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


def _paragraphs(lines: list[str], limit: int) -> list[tuple[int, list[str]]]:
    """(first line number, lines) per blank-line separated paragraph: the first ``limit``."""
    out: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if text:
            if not current:
                if len(out) == limit:
                    break
                start = number
            current.append(text)
        elif current:
            out.append((start, current))
            current = []
    if current:
        out.append((start, current))
    return out


def _clean_chars(data: bytes) -> str | None:
    """A clean seed's characters other than printable ASCII and LF; None if it is not clean.

    Clean: its only whitespace is single spaces and LFs, and all else is printable. Then no CR
    is to be replaced, no character XML forbids is there (all are unprintable) and a one-line
    paragraph not starting or ending in a space is its own squash: checked once for the whole
    seed at C speed (``isprintable`` per paragraph was 10 % of a parse). The bytes left by
    deleting printable ASCII and LF are whole UTF-8 sequences, a few % of a text; whether they
    can all be NFC in any context (``always_nfc``) is checked on them alone.
    """
    try:
        odd = data.translate(None, _ASCII_TEXT).decode()
    except UnicodeDecodeError:  # not UTF-8: ``_decode`` says where
        return None
    return odd if odd.isprintable() and not _DOUBLE_SPACE.search(data) else None


def _squashed(chunks: list[str], clean: bool) -> list[str]:
    """``squash`` of each chunk; most paragraphs are one line, which in a clean seed
    (``_clean_chars``) is its own squash unless it starts or ends in a space."""
    if not clean:
        return [" ".join(chunk.split()) for chunk in chunks]
    return [
        chunk
        if chunk[0] != " " and chunk[-1] != " " and "\n" not in chunk
        else " ".join(chunk.split())
        for chunk in chunks
    ]


def _chunks(text: str) -> list[str] | None:
    """The paragraphs of a well-formed seed as raw text, at C speed; None when it is not one.

    Well-formed: line 1 is not blank, there is a lead and at least one body paragraph and at
    most ``MAX_BLOCKS``. Each chunk holds the lines of one paragraph (none blank; the last may
    end in whitespace), so ``" ".join(chunk.split())`` is what ``_paragraphs`` + ``squash``
    make of it. Anything else (None) goes the line-by-line way, which names the line.
    """
    end = text.find("\n")
    if not (text if end < 0 else text[:end]).strip():
        return None
    chunks = _BREAK.split(text)
    if not chunks[-1].strip():
        chunks.pop()
    if not 2 <= len(chunks) <= MAX_BLOCKS + 1:
        return None
    return chunks


def _clean_split(data: bytes) -> tuple[str, list[str], list[bytes], list[bytes]] | None:
    """``_chunks`` + ``_squashed`` of a clean seed (``_clean_chars``) in NFC, done on its bytes:
    line 1 and the lines after it up to the first break (str), the body's paragraphs
    squashed (str, and as the bytes they were decoded from, for the content hash), and the
    raw paragraphs (bytes); None when it is not well-formed or not UTF-8 (the general path
    then names the line).

    Exactly what the str path makes: the breaks and the whitespace squashed are ASCII (a
    clean seed has no other whitespace), so each piece decodes to the str path's piece, and
    the pieces are valid UTF-8 exactly when the whole is. No decoding of the whole text, no
    encoding of the hashed one (a fifth of a parse). Most seeds are one-line paragraphs
    between empty lines: their lines alternate, and ``bytes.split`` and slices find that at
    C speed (``_BREAK_BYTES`` and a squash per paragraph cost twice as much).
    """
    lines = data.split(b"\n")
    chunks = lines[0::2]  # line 1, then every other line
    if (
        2 <= len(chunks) <= MAX_BLOCKS + 1
        and not any(lines[1::2])
        and all(chunks)
        and b" " not in chunks
    ):  # one-line paragraphs between empty lines (most seeds): each one is its own strip()
        rest = chunks[1:]
        squashed = list(map(bytes.strip, rest))
    else:
        end = data.find(b"\n")
        if not (data if end < 0 else data[:end]).strip():
            return None
        chunks = _BREAK_BYTES.split(data)
        if not chunks[-1].strip():
            chunks.pop()
        if not 2 <= len(chunks) <= MAX_BLOCKS + 1:
            return None
        rest = chunks[1:]
        squashed = [
            chunk
            if chunk[0] != 32 and chunk[-1] != 32 and b"\n" not in chunk
            else b" ".join(chunk.split())
            for chunk in rest
        ]
    try:
        return chunks[0].decode(), list(map(bytes.decode, squashed)), squashed, rest
    except UnicodeDecodeError:
        return None


def _article_language(
    lead: str,
    texts: list[str],
    default: str,
    candidates: tuple[str, ...],
    min_conf: float,
) -> str:
    """Detect on the lead + first paragraphs, bounded so a long seed costs no more."""
    if len(candidates) < 2:
        return default
    parts = [lead]
    size = len(lead)
    for text in texts:
        if size >= DETECT_MAX_CHARS:
            break
        parts.append(text)
        size += len(text) + 1
    return detect_language(
        " ".join(parts), default=default, candidates=candidates, min_confidence=min_conf
    )


def _first_paragraph(pairs: list[tuple[str, str]]) -> str:
    """The text a short lead's title may go on with: the first block, if it is a paragraph."""
    return pairs[0][1] if pairs and pairs[0][0] == "paragraph" else ""


def _valid_as_built(fields: dict[str, Any], texts: list[str]) -> bool:
    """Whether validating what ``parse_seed`` built as an ``Article`` can only pass.

    The rest holds by construction: the key is 16 hex digits (``seed_key``), the hash 64, the
    date aware, the lead and every block non-empty, no character XML forbids left in the text
    (stripped above). What is not obvious is checked here; anything else goes through
    ``Article.model_validate``, which names the rule a bug broke.
    """
    title, language = fields["title"], fields["language"]
    printable = title.isprintable() or not find_forbidden(title)
    return bool(title) and printable and len(language) >= 2 and all(texts)


def parse_seed(
    data: bytes,
    *,
    source: str,
    now: datetime,
    tz: tzinfo = UTC,
    language: str = "de",
    languages: tuple[str, ...] = (),
    language_min_confidence: float = 0.5,
    max_bytes: int = 1024 * 1024,
    max_future: timedelta = timedelta(days=2),
    display: str | None = None,
) -> Article:
    """Validate one seed's bytes into an ``Article``; every failure is a ``SeedParseError``.

    Pure: the clock comes in as ``now`` (for the future-date limit) so results are repeatable.
    ``language`` is the article's language unless ``languages`` (the candidates; empty: no
    detection) lets the lead and first paragraphs be detected as another with at least
    ``language_min_confidence``.
    """
    shown = display or source
    if len(data) > max_bytes:
        raise SeedParseError(shown, 1, f"file too large: {len(data)} bytes (limit {max_bytes})")
    if not data or data.isspace():  # not ``data.strip()``, which copies the whole file
        raise SeedParseError(shown, 1, "empty file")
    odd = _clean_chars(data)
    split = _clean_split(data) if odd is not None and always_nfc(odd) else None
    warnings: list[str] = []
    texts_bytes: list[bytes] | None = None  # the body's texts as UTF-8, when split as bytes
    chunks: list[str] | None = None
    if split is None:  # the general path: the text made XML-safe and NFC, then split
        text = _decode(data, shown)
        clean = odd is not None
        if not clean and "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        bad = find_forbidden(text) if not clean and _may_have_forbidden(data) else []
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
        # After stripping (which may join two runs of marks), so the text stored is NFC.
        before = text
        text, run = (text, -1) if odd is not None and always_nfc(odd) else nfc(text)
        if run >= 0:
            line = before.count("\n", 0, run) + 1
            warnings.append(
                f"{shown}:{line}: more than {MAX_MARKS} combining marks in a row; "
                f"U+034F inserted after every {MAX_MARKS} (Unicode stream-safe text)"
            )

        chunks = _chunks(text)
    too_few_or_many: SeedParseError | None = None  # raised after the lead's checks, as before
    if split is not None:  # the common case: a clean seed split as bytes (``_clean_split``)
        head, texts, texts_bytes, raw = split
        line_one, _, more = head.partition("\n")
        match = _DATE_LINE.match(line_one.strip())
        if not match:
            raise SeedParseError(
                shown, 1, "no date line: line 1 must be 'date YYYY-MM <lead sentence>'"
            )
        lead_words = f"{match['lead'] or ''} {more}"
        # a one-line paragraph of a clean seed squashed is its own ``strip()``
        singles = [
            (i, t)
            for i, t in enumerate(texts)
            if len(t) <= SUBHEADING_MAX_CHARS and b"\n" not in raw[i]
        ]
    elif chunks is not None:  # paragraphs split at C speed
        line_one, _, more = chunks[0].partition("\n")
        match = _DATE_LINE.match(line_one.strip())
        if not match:
            raise SeedParseError(
                shown, 1, "no date line: line 1 must be 'date YYYY-MM <lead sentence>'"
            )
        lead_words = f"{match['lead'] or ''} {more}"
        rest = chunks[1:]
        texts = _squashed(rest, clean)
        # one-line paragraphs that may be subheadings (``len(texts[i])`` checked below)
        singles = [
            (i, rest[i].strip())
            for i, t in enumerate(texts)
            if len(t) <= SUBHEADING_MAX_CHARS and "\n" not in rest[i]
        ]
    else:
        lines = text.split("\n")
        paragraphs = _paragraphs(lines, limit=MAX_BLOCKS + 2)  # the lead, the body, one more
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
        lead_words = " ".join([match["lead"] or "", *first_lines[1:]])
        body = paragraphs[1:]
        if not body:
            too_few_or_many = SeedParseError(
                shown, len(lines), "no body: expected paragraphs after a blank line below the lead"
            )
        elif len(body) > MAX_BLOCKS:
            too_few_or_many = SeedParseError(
                shown,
                body[MAX_BLOCKS][0],
                f"too many paragraphs: more than {MAX_BLOCKS} (a seed is one article)",
            )
        texts = [squash(" ".join(para)) for _, para in body]
        singles = [(i, para[0]) for i, (_, para) in enumerate(body) if len(para) == 1]
    published = _parse_when(match["when"], source=source, tz=tz, shown=shown)
    if published > now + max_future:
        days = (published - now).total_seconds() / 86400
        raise SeedParseError(
            shown,
            1,
            f"date {match['when']!r} is {days:.1f} days in the future "
            f"(limit: max_future_days = {max_future.total_seconds() / 86400:g})",
        )
    lead = squash(lead_words)
    if not lead:
        raise SeedParseError(
            shown, 1, "empty lead: the lead sentence must follow the date on line 1"
        )
    if too_few_or_many is not None:
        raise too_few_or_many
    kinds = ["paragraph"] * len(texts)
    last = len(texts) - 1
    for index, only in singles:  # a subheading is one short line, never the last block
        if index < last and len(texts[index]) <= SUBHEADING_MAX_CHARS and _is_subheading([only]):
            kinds[index] = "subheading"
    pairs = list(zip(kinds, texts, strict=True))
    # "<when>\x1f<lead>\x1f<kind>:<text>\x1f<kind>:<text>...", hashed at once
    if texts_bytes is not None:  # the same bytes, the texts not encoded again
        hashed_bytes = b"".join(
            [
                f"{published.isoformat()}\x1f{lead}".encode(),
                # "\x1f<kind>:" and the text, block by block, at C speed
                *chain.from_iterable(
                    zip(map(_KIND_BYTES.__getitem__, kinds), texts_bytes, strict=True)
                ),
            ]
        )
    else:
        hashed = [published.isoformat(), lead, *map("{}:{}".format, kinds, texts)]
        hashed_bytes = "\x1f".join(hashed).encode()
    fields = {
        "key": seed_key(source),
        "source": source,
        "title": make_title(lead, more=_first_paragraph(pairs)),
        "lead": lead,
        "body": (),  # set below, as ``Block``s or for validation
        "published": published,
        "updated": published,
        "language": _article_language(lead, texts, language, languages, language_min_confidence),
        "content_hash": hashlib.sha256(hashed_bytes).hexdigest(),
        "warnings": tuple(warnings),
    }
    if _valid_as_built(fields, texts):  # what validation would check, known by construction
        fields["body"] = blocks(pairs)
        return trusted(Article, fields)
    fields["body"] = [{"kind": kind, "text": block} for kind, block in pairs]
    try:
        return Article.model_validate(fields)
    except ValidationError as e:  # a bug in the rules above, reported with the file anyway
        raise SeedParseError(shown, 1, f"invalid article: {e.errors()[0]['msg']}") from e
