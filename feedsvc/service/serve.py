"""HTTP over ``feeds/`` only: validators, 304s, gzip, no traversal. Knows nothing of articles.

Werkzeug supplies the HTTP semantics (conditional requests, header parsing, ``safe_join``);
waitress puts them on a socket. waitress was chosen over cheroot (issue #7): cheroot reads each
request head in one of its worker threads, so 500 silent sockets or 50 clients sending a header
line every 5 s take every thread, and its header limit answers 413. waitress reads in one I/O
thread (poll) and hands only complete requests to the workers, and answers 431 above
``MAX_HEADER_BYTES``; the total deadline for a request head (``HEAD_TIMEOUT``) is added here.
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import json
import logging
import math
import os
import resource
import socket
import stat
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import BaseWSGIServer, TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher, WSGITask
from werkzeug.security import safe_join
from werkzeug.wrappers import Request, Response

from .._version import __version__
from ..build.outputs import GZIP_LEVEL, GZIP_SUFFIX, INDEX_FILE, served_type
from ..errors import ServeError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)
_queue_log = logging.getLogger(__name__ + ".queue")
_queue_log.setLevel(logging.ERROR)

GZIP_MIN_BYTES = 256
HEALTH_PATH = "/healthz"
STATUS_PATH = "/status"
SERVER = f"feedsvc/{__version__}"
FORWARDED_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")

# Limits against slow and hostile clients (README, "Serving").
SERVER_THREADS = 8  # run the app only; reading and writing sockets is the I/O thread's
LISTEN_BACKLOG = 1024  # connections the kernel queues before we accept them
MAX_CONNECTIONS = 1000  # open at once; more wait in the backlog (fewer if RLIMIT_NOFILE is low)
FD_RESERVE = 100  # descriptors kept for the store, the feeds and the watcher
HEAD_TIMEOUT = 10.0  # seconds for a whole request head, from connect or from its first byte
IDLE_TIMEOUT = 30  # seconds a kept-alive connection may stay silent between requests
MAX_HEADER_BYTES = 16 * 1024  # request line and headers together; more: 431
MAX_BODY_BYTES = 1024  # GET and HEAD carry none; a larger body: 413
SHUTDOWN_TIMEOUT = 1

StatusFn = Callable[[], tuple[bool, Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What the server is told: the one directory it serves and how to label its files."""

    root: Path
    cache_max_age: int = 60
    content_types: Mapping[str, str] = field(default_factory=dict)
    status_public: bool = False  # /status and the reason in /healthz for every client


@dataclass(frozen=True, slots=True)
class _Version:
    """One content version of one file, with its validators and its gzip form."""

    stamp: tuple[int, int, int, int]  # (dev, ino, size, mtime_ns) of the bytes below
    data: bytes
    gz: bytes | None  # the build's .gz sibling when it holds these bytes, else made once here
    digest: str
    last_modified: int  # whole seconds since the epoch


MAX_CACHED_FILES = 2048  # article pages are many and cold; feeds are few and hot


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
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            known = self._versions.get(path)
            if known is not None:
                self._versions.move_to_end(path)
        if known is not None and known.stamp == key:
            return known
        return self._load(path, known)

    def _load(self, path: str, known: _Version | None) -> _Version | None:
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                data = f.read()
        except OSError:
            return None
        stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        digest = hashlib.sha256(data).hexdigest()[:32]
        mtime = math.floor(st.st_mtime_ns / 1e9)
        if known is not None and known.digest == digest:
            version = _Version(stamp, known.data, known.gz, digest, known.last_modified)
        else:
            last = max(mtime, known.last_modified + 1) if known is not None else mtime
            gz = None
            if not path.endswith(GZIP_SUFFIX):  # a .gz file is served as it is
                gz = _gz_sibling(path, data)
                if gz is None and len(data) >= GZIP_MIN_BYTES:
                    gz = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
            version = _Version(stamp, data, gz, digest, last)
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


class FeedApp:
    """The WSGI application: GET and HEAD of files in ``root``, ``/healthz`` and ``/status``."""

    def __init__(self, options: ServeOptions, *, status: StatusFn | None = None) -> None:
        self.options = options
        self._status = status
        self._cache = FileCache()

    def configure(self, options: ServeOptions) -> None:
        """Take new options (SIGHUP); requests in flight finish with the old ones."""
        self.options = options

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        response = self.respond(request)
        return response(environ, start_response)

    def respond(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            response = _text(405, "method not allowed: GET and HEAD only\n")
            response.headers["Allow"] = "GET, HEAD"
            return response
        path = request.path
        if path in (HEALTH_PATH, STATUS_PATH):
            return self._health(request, json_body=path == STATUS_PATH)
        return self._file(request, path)

    def _health(self, request: Request, *, json_body: bool) -> Response:
        """``/healthz`` for everyone (the reason only locally); ``/status`` only locally.

        "Locally" means a loopback client that is not a proxy forwarding someone else's
        request, or any client with ``status_public``.
        """
        local = self.options.status_public or _is_local(request)
        if json_body and not local:
            return _not_found()  # pid, paths and errors are the operator's business
        healthy, info = (True, {}) if self._status is None else self._status()
        code = 200 if healthy else 503
        if json_body:
            body = json.dumps(info, indent=2, ensure_ascii=False) + "\n"
            response = Response(body, status=code, content_type="application/json; charset=utf-8")
        else:
            reason = "ok" if healthy else "unhealthy"
            if local:
                reason = str(info.get("reason") or reason)
            response = _text(code, reason + "\n")
        response.headers["Cache-Control"] = "no-store"
        return response

    def _file(self, request: Request, path: str) -> Response:
        options = self.options
        name = path.lstrip("/")
        if not name or name.endswith("/"):
            name += INDEX_FILE  # a folder's index.html; never a listing
        if "\\" in name or "\x00" in name:
            return _not_found()
        if any(part.startswith(".") for part in name.split("/")):
            return _not_found()  # hidden files, temp files of atomic writes, '..'
        root = os.fspath(options.root)
        joined = safe_join(root, name)
        if joined is None:
            return _not_found()
        real_root = os.path.realpath(root)
        real = os.path.realpath(joined)
        if os.path.commonpath([real_root, real]) != real_root or real == real_root:
            return _not_found()  # a symlink that leads out of feeds/
        version = self._cache.get(real)
        if version is None:
            return _not_found()
        if name.endswith(GZIP_SUFFIX):  # /atom.xml.gz: the Atom document, gzip-encoded
            packed, negotiated = True, False
            body, etag = version.data, version.digest
            content_type = served_type(name.removesuffix(GZIP_SUFFIX), options.content_types)
        else:
            packed = version.gz is not None and request.accept_encodings.quality("gzip") > 0
            negotiated = True
            body = version.gz if packed and version.gz is not None else version.data
            etag = version.digest + ("-gz" if packed else "")
            content_type = served_type(name, options.content_types)
        response = Response(body, content_type=content_type)
        response.set_etag(etag)
        modified = datetime.fromtimestamp(version.last_modified, UTC)
        response.last_modified = modified
        response.headers["Cache-Control"] = f"max-age={options.cache_max_age}"
        if negotiated:
            response.headers["Vary"] = "Accept-Encoding"
        if packed:
            response.headers["Content-Encoding"] = "gzip"
        return response.make_conditional(_valid_dates(request, modified))


def _valid_dates(request: Request, modified: datetime) -> Request:
    """The request without an ``If-Modified-Since`` in the future (RFC 9110 13.1.3: invalid).

    Our own ``Last-Modified`` may run a few seconds ahead of the clock (it moves forward on
    every change), so a date up to it is one we sent and stays valid.
    """
    since = request.if_modified_since
    if since is None or since <= max(datetime.now(UTC), modified):
        return request
    environ = dict(request.environ)
    del environ["HTTP_IF_MODIFIED_SINCE"]
    return Request(environ)


def _is_local(request: Request) -> bool:
    if any(name in request.headers for name in FORWARDED_HEADERS):
        return False  # a reverse proxy on this host, asking for a client elsewhere
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False  # a Unix socket or no peer: not known to be local
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _text(code: int, body: str) -> Response:
    return Response(body, status=code, content_type="text/plain; charset=utf-8")


def _not_found() -> Response:
    return _text(404, "not found\n")


class _Task(WSGITask):
    """waitress's WSGI task, keeping the connection open after a 304.

    waitress closes an HTTP/1.1 connection after any response without ``Content-Length``,
    including 304 and 204, which have no body to delimit; a poller revalidating its feeds
    would open a new connection for each 304.
    """

    _bodiless = False

    def build_response_header(self) -> bytes:
        request = cast("HTTPRequestParser", self.request)  # (the stub says Error)
        keep = request.headers.get("CONNECTION", "").lower() != "close"
        self._bodiless = not self.has_body and self.version == "1.1" and keep
        try:
            return super().build_response_header()
        finally:
            self._bodiless = False

    def set_close_on_finish(self) -> None:
        if not self._bodiless:
            super().set_close_on_finish()


class _Channel(HTTPChannel):
    """One client connection; knows since when its request has been arriving."""

    task_class = _Task

    def __init__(
        self,
        server: BaseWSGIServer,
        sock: socket.socket,
        addr: Any,
        adj: Adjustments,
        map: dict[int, Any] | None = None,
    ) -> None:
        super().__init__(server, sock, addr, adj, map)
        self.head_started: float | None = self.creation_time  # a silent connection counts too

    def received(self, data: bytes) -> bool:
        if self.head_started is None:  # the first byte of the next request on a kept-alive one
            self.head_started = time.time()
        try:
            return super().received(data)
        finally:
            if self.request is None:  # the request is complete (or there is none yet)
                self.head_started = None


class _Trigger(Protocol):
    def pull_trigger(self, thunk: Callable[[], None] | None = None) -> None: ...


class _Server(TcpWSGIServer):
    """waitress, with a deadline for the whole request, not only between two reads.

    waitress reads requests in its I/O thread and hands only complete ones to the worker
    threads, so slow clients cost a socket, never a thread; its own ``channel_timeout`` is
    reset by every byte, so a client dripping a header line every few seconds would be kept
    forever. Here a request (or a silent connection's first one) gets ``HEAD_TIMEOUT`` in all.
    """

    channel_class = _Channel
    head_timeout = HEAD_TIMEOUT

    def maintenance(self, now: float) -> None:  # waitress passes time.time()
        super().maintenance(now)  # type: ignore[arg-type]  # (the stub says int)
        cutoff = now - self.head_timeout
        channels = cast("dict[int, HTTPChannel]", self.active_channels)  # (the stub is wrong)
        for channel in list(channels.values()):
            started = getattr(channel, "head_started", None)
            if started is not None and started < cutoff and not channel.requests:
                channel.will_close = True  # closed by the I/O loop at its next turn


def connection_limit() -> int:
    """``MAX_CONNECTIONS``, or fewer when the process may not open that many files."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(16, min(MAX_CONNECTIONS, soft - FD_RESERVE))


class HTTPServer:
    """waitress running a WSGI app: one I/O thread for every socket, workers for the app."""

    def __init__(
        self, app: FeedApp, *, host: str, port: int, head_timeout: float = HEAD_TIMEOUT
    ) -> None:
        self._app = app
        self._host, self._port = host, port
        self._head_timeout = head_timeout
        self._server: _Server | None = None
        self._map: dict[int, Any] = {}  # every socket of the server, for the I/O loop
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the real port once started with port 0."""
        if self._server is None or self._server.socket is None:
            return self._host, self._port
        host, port = self._server.socket.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> tuple[str, int]:
        """Bind and serve in a thread; a bind failure is a ``ServeError``."""
        try:
            adj = Adjustments(
                host=self._host,
                port=self._port,
                ident=SERVER,
                threads=SERVER_THREADS,
                backlog=LISTEN_BACKLOG,
                connection_limit=connection_limit(),
                channel_timeout=IDLE_TIMEOUT,
                cleanup_interval=1,
                max_request_header_size=MAX_HEADER_BYTES,
                max_request_body_size=MAX_BODY_BYTES,
                asyncore_use_poll=True,  # select() stops at 1024 descriptors
                expose_tracebacks=False,
                clear_untrusted_proxy_headers=False,  # kept: they mark a proxied request
            )
        except ValueError as e:
            raise ServeError(f"cannot listen on {self._host}:{self._port}: {e}") from e
        socket_map: dict[int, Any] = {}
        self._map = socket_map
        dispatcher = ThreadedTaskDispatcher()
        dispatcher.queue_logger = _queue_log  # "task queue depth" under load: not a warning
        dispatcher.set_thread_count(SERVER_THREADS)
        try:
            self._server = _Server(self._app, map=socket_map, dispatcher=dispatcher, adj=adj)
            self._server.head_timeout = self._head_timeout
        except OSError as e:
            dispatcher.shutdown(timeout=SHUTDOWN_TIMEOUT)
            wasyncore.close_all(socket_map)
            raise ServeError(f"cannot listen on {self._host}:{self._port}: {e}") from e
        self._thread = threading.Thread(target=self._serve, name="feedsvc-http", daemon=True)
        self._thread.start()
        return self.address

    def _serve(self) -> None:
        assert self._server is not None
        try:
            self._server.run()
        except Exception:  # the listener died: say so; the daemon's health shows it too
            log.exception("HTTP server stopped")

    def stop(self) -> None:
        """Let the requests in flight finish, then close every connection and the threads."""
        server = self._server
        if server is None:
            return
        # Workers first: a finishing task wakes the I/O loop through the trigger, so the
        # trigger must outlive them.
        server.task_dispatcher.shutdown(timeout=SHUTDOWN_TIMEOUT)
        done = threading.Event()

        def close_all() -> None:  # runs in the I/O thread: wasyncore is not thread-safe
            wasyncore.close_all(self._map)
            done.set()

        if self._thread is not None and self._thread.is_alive():
            cast("_Trigger", server.trigger).pull_trigger(close_all)  # (the stub says int)
            done.wait(SHUTDOWN_TIMEOUT)
            self._thread.join(timeout=SHUTDOWN_TIMEOUT)
        else:
            wasyncore.close_all(self._map)
