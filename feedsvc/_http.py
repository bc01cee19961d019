"""An HTTP/1.1 server in this process: granian (Rust, hyper) running an RSGI app in a thread.

Why granian (issue #7): parsing requests and walking connections happen in Rust, outside the
GIL, so 500 silent sockets or a build holding the GIL cost the Python side nothing; only a
complete request calls the app. hyper supplies the limits against slow and hostile clients: a
total deadline for a request head (``header_read_timeout``, which also ends a connection that
never sends a byte or stays silent between requests), 431 above ``max_buffer_size`` or 100
header lines, and a connection limit (granian's ``backpressure``: connections open at once;
more wait in the listen backlog).

granian runs here through its embedding API (``granian.server.embed``): one worker, an asyncio
loop in our thread, so the app reads this process's state (the daemon's ``/status``). We bind
the socket ourselves, so port 0 gives the real port before ``start()`` returns, and hand
granian a duplicate of its descriptor, which granian closes when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import resource
import socket
import threading
import time
from collections.abc import Awaitable
from typing import Any, Protocol

from granian._granian import SocketHolder
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server.embed import Server

from .errors import ServeError

log = logging.getLogger(__name__)

# Limits against slow and hostile clients (README, "Serving").
HEAD_TIMEOUT = 10.0  # seconds for a whole request head, from connect or after the last response
MAX_HEADER_BYTES = 16 * 1024  # request line and headers together; more: 431
MAX_CONNECTIONS = 1000  # open at once; more wait in the backlog (fewer if RLIMIT_NOFILE is low)
FD_RESERVE = 100  # descriptors kept for the store, the feeds and the watcher
LISTEN_BACKLOG = 1024  # connections the kernel queues before we accept them
SHUTDOWN_TIMEOUT = 1.0  # seconds for the requests in flight at stop() (the daemon has 4.5 s in all)
TASKS = "/proc/self/task"  # Linux: this process's threads, each with its name in "comm"

# granian reconfigures logging when a server is made; "incremental" only sets its own level,
# so the daemon's handlers stay as they are. Its messages reach ours through propagation.
_GRANIAN_LOGGING: dict[str, Any] = {
    "version": 1,
    "incremental": True,
    "formatters": {},
    "handlers": {},
    "loggers": {},
}


class RSGIApp(Protocol):
    """An RSGI application: granian calls ``__rsgi__`` once per complete request."""

    def __rsgi__(self, scope: Any, protocol: Any) -> Awaitable[None]: ...


class _Embedded(Server):
    """granian's embedded server on a socket we bound (its own would hide port 0's port)."""

    def __init__(self, app: RSGIApp, listener: socket.socket, **options: Any) -> None:
        self._listener = listener
        super().__init__(app, **options)

    def _init_shared_socket(self) -> None:
        fd = os.dup(self._listener.fileno())  # granian's from here on: it closes it at the end
        self._ssp = None
        self._shd = SocketHolder(fd, False, LISTEN_BACKLOG)  # type: ignore[call-arg,assignment]


_serial = itertools.count(1)


def _name_this_thread(name: str) -> None:
    """Name the calling thread (Linux); the threads it starts inherit the name."""
    try:
        with open(f"{TASKS}/{threading.get_native_id()}/comm", "w", encoding="ascii") as f:
            f.write(name)
    except OSError:
        pass  # no /proc: stop() cannot wait for granian's threads, only for ours


def _named_threads(name: str) -> int:
    try:
        tasks = os.listdir(TASKS)
    except OSError:
        return 0
    count = 0
    for task in tasks:
        try:
            with open(f"{TASKS}/{task}/comm", encoding="ascii", errors="replace") as f:
                count += f.read().strip() == name
        except OSError:
            pass  # ended meanwhile
    return count


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed: a quarter less CPU per request than asyncio's own loop."""
    try:
        import uvloop
    except ImportError:  # e.g. on Windows, which uvloop does not support
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def connection_limit() -> int:
    """``MAX_CONNECTIONS``, or fewer when the process may not open that many files."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(16, min(MAX_CONNECTIONS, soft - FD_RESERVE))


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )
    except (OSError, UnicodeError) as e:
        raise ServeError(f"cannot listen on {host}:{port}: {e}") from e
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError as e:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {e}") from e
    return sock


class HTTPServer:
    """granian serving ``app`` on ``host:port`` from a thread of this process."""

    def __init__(
        self,
        app: RSGIApp,
        *,
        host: str,
        port: int,
        head_timeout: float = HEAD_TIMEOUT,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        self._app = app
        self._host, self._port = host, port
        self._head_timeout = head_timeout
        self._max_header_bytes = max_header_bytes
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: _Embedded | None = None
        self._name = f"feedsvc-http{next(_serial) % 100}"  # at most 15 characters

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the real port once started with port 0."""
        if self._listener is None:
            return self._host, self._port
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> tuple[str, int]:
        """Bind and serve in a thread; a bind failure is a ``ServeError``."""
        listener = _bind(self._host, self._port)
        try:
            server = _Embedded(
                self._app,
                listener,
                address=self._host,
                port=listener.getsockname()[1],
                interface=Interfaces.RSGI,
                http=HTTPModes.http1,
                websockets=False,
                backlog=LISTEN_BACKLOG,
                backpressure=connection_limit(),
                http1_settings=HTTP1Settings(
                    header_read_timeout=max(1, round(self._head_timeout * 1000)),
                    keep_alive=True,
                    max_buffer_size=max(8192, self._max_header_bytes),
                ),
                log_level=LogLevels.error,
                log_dictconfig=_GRANIAN_LOGGING,
            )
        except Exception as e:
            listener.close()
            raise ServeError(f"cannot serve on {self._host}:{self._port}: {e}") from e
        started = threading.Event()
        server.on_startup(started.set)
        self._listener, self._server = listener, server
        self._thread = threading.Thread(target=self._run, name="feedsvc-http", daemon=True)
        self._thread.start()
        if not started.wait(SHUTDOWN_TIMEOUT * 5) or not self._thread.is_alive():
            self.stop()
            raise ServeError(f"cannot serve on {self._host}:{self._port}: granian did not start")
        return self.address

    def _run(self) -> None:
        server = self._server
        assert server is not None
        _name_this_thread(self._name)  # and so granian's Rust threads, started from here
        loop = _new_loop()
        self._loop = loop
        try:
            loop.run_until_complete(server.serve())
        except Exception:  # the server died: say so; the daemon's health shows it too
            log.exception("HTTP server stopped")
        finally:
            loop.close()

    def stop(self) -> None:
        """Stop accepting; let the requests in flight finish, up to ``SHUTDOWN_TIMEOUT``.

        Then wait for granian's own threads too: one that is still ending when the
        interpreter exits takes the process down with SIGABRT (CPython ends a thread that
        takes the GIL during finalization, and Rust cannot unwind through that). Connections
        still sending a request head at the deadline are left to time out; they hold no
        request and no Python object.
        """
        server, loop, thread = self._server, self._loop, self._thread
        if server is not None and loop is not None and thread is not None and thread.is_alive():
            deadline = time.monotonic() + SHUTDOWN_TIMEOUT
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: it has stopped
                loop.call_soon_threadsafe(server.stop)
            thread.join(SHUTDOWN_TIMEOUT)
            while _named_threads(self._name) and time.monotonic() < deadline:
                time.sleep(0.005)
            if thread.is_alive():
                log.debug("HTTP server: connections still open at stop are left to time out")
        if self._listener is not None:
            self._listener.close()
        self._server = self._loop = self._thread = None
