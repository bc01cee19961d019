"""HTTP over ``feeds/`` only: validators, 304s, gzip, no traversal. Knows nothing of articles.

Werkzeug supplies the HTTP semantics (conditional requests, header parsing, ``safe_join``);
cheroot, a production threaded WSGI server, puts them on a socket.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import math
import mimetypes
import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cheroot.wsgi import Server
from werkzeug.security import safe_join
from werkzeug.wrappers import Request, Response

from . import __version__
from .errors import ServeError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)

ATOM_TYPE = "application/atom+xml; charset=utf-8"
RSS_TYPE = "application/rss+xml; charset=utf-8"
JSON_FEED_TYPE = "application/feed+json; charset=utf-8"
GZIP_MIN_BYTES = 256
GZIP_LEVEL = 6
HEALTH_PATH = "/healthz"
STATUS_PATH = "/status"
SERVER_THREADS = 8
SHUTDOWN_TIMEOUT = 1
SERVER = f"feedsvc/{__version__}"

StatusFn = Callable[[], tuple[bool, Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What the server is told: the one directory it serves and how to label its files."""

    root: Path
    cache_max_age: int = 60
    content_types: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Version:
    """One content version of one file, with its validators and its gzip form."""

    stamp: tuple[int, int, int, int]  # (dev, ino, size, mtime_ns) of the bytes below
    data: bytes
    gz: bytes | None
    digest: str
    last_modified: int  # whole seconds since the epoch


INDEX_FILE = "index.html"
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
            if len(data) >= GZIP_MIN_BYTES:
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
        response.headers["Server"] = SERVER
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
        healthy, info = (True, {}) if self._status is None else self._status()
        code = 200 if healthy else 503
        if json_body:
            body = json.dumps(info, indent=2, ensure_ascii=False) + "\n"
            response = Response(body, status=code, content_type="application/json; charset=utf-8")
        else:
            reason = str(info.get("reason") or ("ok" if healthy else "unhealthy"))
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
        use_gzip = version.gz is not None and request.accept_encodings.quality("gzip") > 0
        body = version.gz if use_gzip and version.gz is not None else version.data
        response = Response(body, content_type=_content_type(name, options.content_types))
        response.set_etag(version.digest + ("-gz" if use_gzip else ""))
        response.last_modified = datetime.fromtimestamp(version.last_modified, UTC)
        response.headers["Cache-Control"] = f"max-age={options.cache_max_age}"
        response.headers["Vary"] = "Accept-Encoding"
        if use_gzip:
            response.headers["Content-Encoding"] = "gzip"
        return response.make_conditional(request)


def _content_type(name: str, known: Mapping[str, str]) -> str:
    folder, _, base = name.rpartition("/")
    if base in known:
        return known[base]
    if (folder == "archive" or folder.endswith("/archive")) and base.endswith(".xml"):
        return ATOM_TYPE  # RFC 5005 archive pages are Atom documents
    guessed, _ = mimetypes.guess_type(base)
    if guessed is None:
        return "application/octet-stream"
    if guessed.startswith("text/") or guessed.endswith(("xml", "json")):
        return f"{guessed}; charset=utf-8"
    return guessed


def _text(code: int, body: str) -> Response:
    return Response(body, status=code, content_type="text/plain; charset=utf-8")


def _not_found() -> Response:
    return _text(404, "not found\n")


class _Server(Server):
    """cheroot, with its messages sent to our log rather than straight to stderr."""

    def error_log(self, msg: str = "", level: int = 20, traceback: bool = False) -> None:
        log.log(level, "%s", msg, exc_info=traceback)


class HTTPServer:
    """A cheroot server running a WSGI app in a background thread."""

    def __init__(self, app: FeedApp, *, host: str, port: int) -> None:
        self._server = _Server(
            (host, port),
            app,
            numthreads=SERVER_THREADS,
            server_name=host,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
        )
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the real port once started with port 0."""
        host, port = self._server.bind_addr[:2]
        return str(host), int(port)

    def start(self) -> tuple[str, int]:
        """Bind and serve in a thread; a bind failure is a ``ServeError``."""
        try:
            self._server.prepare()
        except OSError as e:
            host, port = self.address
            raise ServeError(f"cannot listen on {host}:{port}: {e}") from e
        self._thread = threading.Thread(target=self._serve, name="feedsvc-http", daemon=True)
        self._thread.start()
        return self.address

    def _serve(self) -> None:
        try:
            self._server.serve()
        except Exception:  # the listener died: say so; the daemon's health shows it too
            log.exception("HTTP server stopped")

    def stop(self) -> None:
        self._server.stop()
        if self._thread is not None:
            self._thread.join(timeout=SHUTDOWN_TIMEOUT + 1)
