"""HTTP over ``feeds/`` only: validators, 304s, gzip, no traversal. Knows nothing of articles.

``FeedApp`` is an RSGI application: granian (``_http.py``, Rust) parses requests and holds the
connections, and calls it once per complete request. Its hot path, a cached file answered with
200 or 304, is one ``stat``, a dict lookup and a string compare: no request or response objects.
Werkzeug's parsers handle the rare headers (etag lists, dates, Accept-Encoding), their results
cached per header value.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import logging
import math
import os
import stat
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from werkzeug.datastructures import ETags
from werkzeug.http import http_date, parse_accept_header, parse_date, parse_etags
from werkzeug.security import safe_join

from .._digest import content_digest
from .._http import HEAD_TIMEOUT, MAX_CONNECTIONS, MAX_HEADER_BYTES, HTTPServer, connection_limit
from .._version import __version__
from ..build.outputs import GZIP_LEVEL, GZIP_SUFFIX, INDEX_FILE, served_type

__all__ = [
    "HEAD_TIMEOUT",
    "MAX_CONNECTIONS",
    "MAX_HEADER_BYTES",
    "FeedApp",
    "FileCache",
    "HTTPServer",
    "Reply",
    "ServeOptions",
    "connection_limit",
]

log = logging.getLogger(__name__)

GZIP_MIN_BYTES = 256
HEALTH_PATH = "/healthz"
STATUS_PATH = "/status"
SERVER = f"feedsvc/{__version__}"
FORWARDED_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")
MAX_CACHED_FILES = 2048  # article pages are many and cold; feeds are few and hot
MAX_ROUTES = 4096  # request paths known to name a file (several spellings may name one)

StatusFn = Callable[[], tuple[bool, Mapping[str, Any]]]
HeaderFn = Callable[[str], "str | None"]  # a request header by its lower-case name


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What the server is told: the one directory it serves and how to label its files."""

    root: Path
    cache_max_age: int = 60
    content_types: Mapping[str, str] = field(default_factory=dict)
    status_public: bool = False  # /status and the reason in /healthz for every client


class Reply(NamedTuple):
    """A response: status, headers (lower-case names) and body (the server drops it for HEAD)."""

    status: int
    headers: list[tuple[str, str]]  # shared between replies: never changed
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class _Version:
    """One content version of one file, with its validators and its gzip form."""

    stamp: tuple[int, int, int, int]  # (dev, ino, size, mtime_ns) of the bytes below
    data: bytes
    gz: bytes | None  # the build's .gz sibling when it holds these bytes, else made once here
    digest: str
    last_modified: int  # whole seconds since the epoch
    etag: str = ""  # '"digest"', and for the gzip form '"digest-gz"'
    etag_gz: str = ""
    http_date: str = ""  # last_modified as sent in Last-Modified

    @classmethod
    def of(
        cls,
        stamp: tuple[int, int, int, int],
        data: bytes,
        gz: bytes | None,
        digest: str,
        last_modified: int,
    ) -> _Version:
        return cls(
            stamp, data, gz, digest, last_modified,
            etag=f'"{digest}"', etag_gz=f'"{digest}-gz"', http_date=http_date(last_modified),
        )  # fmt: skip


def _stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class FileCache:
    """Bytes and validators per file, re-read only when the file's stat changes.

    ``Last-Modified`` moves forward on every content change, even two within one second
    (HTTP dates have whole seconds): a new version gets ``max(mtime, previous + 1 s)``.
    Unchanged bytes with a new mtime keep their old validators.
    """

    def __init__(self, *, max_files: int = MAX_CACHED_FILES) -> None:
        self._lock = threading.Lock()
        self._versions: OrderedDict[str, _Version] = OrderedDict()  # least recently used first
        self.max_files = max_files

    def __len__(self) -> int:
        return len(self._versions)

    def get(self, path: str) -> _Version | None:
        """The current version of the regular file at ``path`` (already checked), or None."""
        try:
            st = os.stat(path)
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            with self._lock:
                self._versions.pop(path, None)  # deleted: forget it
            return None
        with self._lock:
            known = self._versions.get(path)
            if known is not None:
                self._versions.move_to_end(path)
        if known is not None and known.stamp == _stamp(st):
            return known
        return self._load(path, known)

    def _load(self, path: str, known: _Version | None) -> _Version | None:
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                data = f.read()
        except OSError:
            return None
        stamp = _stamp(st)
        digest = content_digest(data)
        mtime = math.floor(st.st_mtime_ns / 1e9)
        if known is not None and known.digest == digest:
            version = _Version.of(stamp, known.data, known.gz, digest, known.last_modified)
        else:
            last = max(mtime, known.last_modified + 1) if known is not None else mtime
            gz = None
            if not path.endswith(GZIP_SUFFIX):  # a .gz file is served as it is
                gz = _gz_sibling(path, data)
                if gz is None and len(data) >= GZIP_MIN_BYTES:
                    gz = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
            version = _Version.of(stamp, data, gz, digest, last)
        with self._lock:
            current = self._versions.get(path)
            if current is None or current is known or current.stamp != stamp:
                self._versions[path] = version
                self._versions.move_to_end(path)
                while len(self._versions) > self.max_files:  # the feeds stay: they are hot
                    self._versions.popitem(last=False)
            else:
                version = current  # another thread loaded the same bytes first
        return version


def _gz_sibling(path: str, data: bytes) -> bytes | None:
    """The ``.gz`` the build wrote beside ``path``, if it holds exactly ``data`` (not stale)."""
    sibling = path + GZIP_SUFFIX
    try:
        if not stat.S_ISREG(os.stat(sibling).st_mode):
            return None
        with open(sibling, "rb") as f:
            packed = f.read(len(data) + 1024)  # gzip never grows data by more than this
    except OSError:
        return None
    unpacker = zlib.decompressobj(wbits=31)  # gzip framing
    try:
        unpacked = unpacker.decompress(packed, len(data) + 1)
    except zlib.error:
        return None
    if unpacked == data and unpacker.eof and not unpacker.unused_data:
        return packed
    return None


Headers = list[tuple[str, str]]


class _Variant(NamedTuple):
    """One form of a file (as it is, or gzip-encoded) with its headers for 200 and 304."""

    etag: str
    ok: Headers
    unchanged: Headers
    body: bytes


@dataclass(frozen=True, slots=True)
class _Route:
    """A request path found to name a file inside the root, as it was when last checked.

    Its response headers are made once: the hot path only picks a variant.
    """

    file: str  # the path to stat: inside the root (a symlink in it may lead elsewhere in it)
    version: _Version
    plain: _Variant
    packed: _Variant | None  # for clients that accept gzip, when there is a gzip form

    @classmethod
    def of(cls, file: str, version: _Version, name: str, options: ServeOptions) -> _Route:
        by_name = name.endswith(GZIP_SUFFIX)  # /atom.xml.gz: the Atom document, gzip-encoded
        content_type = served_type(name.removesuffix(GZIP_SUFFIX), options.content_types)
        common = [
            ("last-modified", version.http_date),
            ("cache-control", f"max-age={options.cache_max_age}"),
            ("server", SERVER),
        ]
        if not by_name:
            common.append(("vary", "Accept-Encoding"))

        def variant(etag: str, body: bytes, *encoding: tuple[str, str]) -> _Variant:
            unchanged = [*common, ("etag", etag)]
            ok = [*unchanged, ("content-type", content_type), *encoding]
            return _Variant(etag, ok, unchanged, body)

        gzipped = ("content-encoding", "gzip")
        if by_name:
            return cls(file, version, variant(version.etag, version.data, gzipped), None)
        packed = None
        if version.gz is not None:
            packed = variant(version.etag_gz, version.gz, gzipped)
        return cls(file, version, variant(version.etag, version.data), packed)


def _text(code: int, body: str, *extra: tuple[str, str]) -> Reply:
    headers = [("content-type", "text/plain; charset=utf-8"), ("server", SERVER), *extra]
    return Reply(code, headers, body.encode())


_NOT_FOUND = _text(404, "not found\n")
_METHOD_NOT_ALLOWED = _text(405, "method not allowed: GET and HEAD only\n", ("allow", "GET, HEAD"))
_PRECONDITION_FAILED = _text(412, "precondition failed\n")
_INTERNAL_ERROR = _text(500, "internal server error\n")


class FeedApp:
    """The RSGI application: GET and HEAD of files in ``root``, ``/healthz`` and ``/status``.

    It runs in the server's event loop thread. A file is read there on its first request and
    after each change (feeds are bounded in size and local); every other answer comes from
    memory after one ``stat``.
    """

    def __init__(self, options: ServeOptions, *, status: StatusFn | None = None) -> None:
        self.options = options
        self._status = status
        self._cache = FileCache()
        self._routes: dict[str, _Route] = {}

    def configure(self, options: ServeOptions) -> None:
        """Take new options (SIGHUP); requests in flight finish with the old ones."""
        self.options = options
        self._routes = {}

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        try:
            path = scope.path
            if path in (HEALTH_PATH, STATUS_PATH):  # the only answers that need the peer
                reply = self.respond(scope.method, path, scope.headers.get, scope.client)
            else:
                reply = self.respond(scope.method, path, scope.headers.get)
        except Exception:
            log.exception("HTTP %s %r failed", scope.method, scope.path)
            reply = _INTERNAL_ERROR
        if reply.status == 304:
            protocol.response_empty(304, reply.headers)
        else:
            protocol.response_bytes(reply.status, reply.headers, reply.body)

    def respond(self, method: str, path: str, header: HeaderFn, client: str = "") -> Reply:
        """The reply to ``method path`` (path percent-decoded) from ``client`` ("host:port")."""
        if method not in ("GET", "HEAD"):
            return _METHOD_NOT_ALLOWED
        if path in (HEALTH_PATH, STATUS_PATH):
            return self._health(header, client, json_body=path == STATUS_PATH)
        route = self._route(path)
        if route is None:
            return _NOT_FOUND
        return self._file(route, header)

    def _health(self, header: HeaderFn, client: str, *, json_body: bool) -> Reply:
        """``/healthz`` for everyone (the reason only locally); ``/status`` only locally.

        "Locally" means a loopback client that is not a proxy forwarding someone else's
        request, or any client with ``status_public``.
        """
        local = self.options.status_public or _is_local(client, header)
        if json_body and not local:
            return _NOT_FOUND  # pid, paths and errors are the operator's business
        healthy, info = (True, {}) if self._status is None else self._status()
        code = 200 if healthy else 503
        if json_body:
            body = json.dumps(info, indent=2, ensure_ascii=False) + "\n"
            content_type = "application/json; charset=utf-8"
        else:
            reason = "ok" if healthy else "unhealthy"
            if local:
                reason = str(info.get("reason") or reason)
            body, content_type = reason + "\n", "text/plain; charset=utf-8"
        headers = [
            ("content-type", content_type),
            ("cache-control", "no-store"),
            ("server", SERVER),
        ]
        return Reply(code, headers, body.encode())

    def _route(self, path: str) -> _Route | None:
        """The file ``path`` names, checked in full only when new or changed on disk.

        A known route is trusted while ``stat`` through it finds the very bytes that were
        read when it was checked (same device, inode, size and mtime); anything else (a new
        file, a swapped symlink, a write) goes through the full check again.
        """
        routes = self._routes
        known = routes.get(path)
        if known is not None:
            try:
                if _stamp(os.stat(known.file)) == known.version.stamp:
                    return known
            except OSError:
                pass
        options = self.options
        found = _resolve(options.root, path)
        version = None if found is None else self._cache.get(found[1])
        if found is None or version is None:
            routes.pop(path, None)
            return None
        route = _Route.of(found[0], version, found[2], options)
        if len(routes) >= MAX_ROUTES:
            routes.clear()  # many spellings of few files, or a crawler: start over
        routes[path] = route
        return route

    def _file(self, route: _Route, header: HeaderFn) -> Reply:
        chosen = route.plain
        if route.packed is not None and _accepts_gzip(header("accept-encoding")):
            chosen = route.packed
        code = _precondition(header, chosen.etag, route.version)
        if code == 200:
            return Reply(200, chosen.ok, chosen.body)
        if code == 304:
            return Reply(304, chosen.unchanged)
        return _PRECONDITION_FAILED


def _resolve(root_path: Path, path: str) -> tuple[str, str, str] | None:
    """(path in root, real path, name) of the regular file ``path`` names, or None.

    Never outside the root: no ``..``, no hidden or temp file, no symlink leading out.
    """
    name = path.lstrip("/")
    if not name or name.endswith("/"):
        name += INDEX_FILE  # a folder's index.html; never a listing
    if "\\" in name or "\x00" in name:
        return None
    if any(part.startswith(".") for part in name.split("/")):
        return None  # hidden files, temp files of atomic writes, '..'
    root = os.fspath(root_path)
    joined = safe_join(root, name)
    if joined is None:
        return None
    real_root = os.path.realpath(root)
    real = os.path.realpath(joined)
    if os.path.commonpath([real_root, real]) != real_root or real == real_root:
        return None  # a symlink that leads out of feeds/
    return joined, real, name


def _precondition(header: HeaderFn, etag: str, version: _Version) -> int:
    """200, 304 or 412 for a GET or HEAD, in the order of RFC 9110 13.2.2."""
    modified = version.last_modified
    wanted = header("if-match")
    if wanted is not None:
        if wanted != etag and not _etags(wanted).contains(etag[1:-1]):  # strong comparison
            return 412
    else:
        before = header("if-unmodified-since")
        if before is not None:
            date = _date(before)
            if date is not None and modified > date:
                return 412
    cached = header("if-none-match")
    if cached is not None:  # then If-Modified-Since is not looked at
        return 304 if cached == etag or _etags(cached).contains_weak(etag[1:-1]) else 200
    since = header("if-modified-since")
    if since is None:
        return 200
    date = modified if since == version.http_date else _date(since)
    # A date in the future is invalid (RFC 9110 13.1.3). Our own Last-Modified may run a few
    # seconds ahead of the clock (it moves forward on every change): a date we sent stays valid.
    if date is None or date > max(time.time(), modified):
        return 200
    return 304 if modified <= date else 200


@lru_cache(maxsize=256)
def _accepts_gzip(value: str | None) -> bool:
    return value is not None and parse_accept_header(value).quality("gzip") > 0


@lru_cache(maxsize=256)
def _date(value: str) -> int | None:
    parsed = parse_date(value)
    return None if parsed is None else math.floor(parsed.timestamp())


@lru_cache(maxsize=256)
def _etags(value: str) -> ETags:
    return parse_etags(value)


def _is_local(client: str, header: HeaderFn) -> bool:
    if any(header(name) is not None for name in FORWARDED_HEADERS):
        return False  # a reverse proxy on this host, asking for a client elsewhere
    host = client.rpartition(":")[0].strip("[]")  # "127.0.0.1:5000", "[::1]:5000"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a Unix socket or no peer: not known to be local
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback
