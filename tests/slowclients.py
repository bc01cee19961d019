"""Hostile load for the HTTP tests and bench/http_bench.py: silent and dripping connections.

Everything goes to 127.0.0.1 only, is bounded in count (``idle`` + ``drip`` sockets) and in
time (``max_seconds``), and stops by itself. A socket the server closes is opened again, as an
attacker would, so the load stays at its size for as long as it runs.
"""

from __future__ import annotations

import http.client
import resource
import selectors
import socket
import threading
import time
from dataclasses import dataclass

HOST = "127.0.0.1"
REQUEST_START = b"GET /atom.xml HTTP/1.1\r\nHost: localhost\r\n"


def raise_fd_limit(needed: int) -> None:
    """Raise this process's soft limit of open files to ``needed`` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        top = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))


@dataclass
class LoadCounts:
    opened: int = 0  # connections made, first ones and reopened ones
    closed_by_server: int = 0  # connections the server ended (deadline, idle timeout)
    connect_errors: int = 0  # connections refused or not accepted within the timeout
    lines_sent: int = 0  # header lines the drip clients sent


class SlowClients:
    """``idle`` connections that never send a byte and ``drip`` clients that send a request
    head one header line every ``interval`` seconds, never finishing it."""

    def __init__(
        self,
        port: int,
        *,
        idle: int = 500,
        drip: int = 50,
        interval: float = 5.0,
        max_seconds: float = 120.0,
        connect_timeout: float = 2.0,
    ) -> None:
        self.port = port
        self.idle, self.drip = idle, drip
        self.interval = interval
        self.max_seconds = max_seconds
        self.connect_timeout = connect_timeout
        self.counts = LoadCounts()
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)
        self._lines = 0

    def _open(self, kind: str) -> None:
        try:
            sock = socket.create_connection((HOST, self.port), timeout=self.connect_timeout)
        except OSError:
            self.counts.connect_errors += 1
            return
        sock.setblocking(False)
        self.counts.opened += 1
        if kind == "drip":
            try:
                sock.send(REQUEST_START)
            except OSError:
                sock.close()
                return
        self._selector.register(sock, selectors.EVENT_READ, kind)

    def start(self) -> SlowClients:
        """Open every connection (in this thread), then keep them up in the background."""
        raise_fd_limit(2 * (self.idle + self.drip) + 512)  # both ends when the server is here
        for _ in range(self.idle):
            self._open("idle")
        for _ in range(self.drip):
            self._open("drip")
        self._thread.start()
        return self

    @property
    def open_now(self) -> int:
        return len(self._selector.get_map())

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        next_drip = time.monotonic() + self.interval
        while not self._stop.is_set() and time.monotonic() < deadline:
            timeout = max(0.0, min(next_drip - time.monotonic(), 0.2))
            for key, _ in self._selector.select(timeout):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:  # closed by the server (a 408 or 400 first is fine too)
                    self.counts.closed_by_server += 1
                    self._selector.unregister(sock)
                    sock.close()
                    self._open(str(key.data))
            if time.monotonic() >= next_drip:
                next_drip += self.interval
                self._lines += 1
                line = b"X-Drip-%d: %s\r\n" % (self._lines, b"y" * 20)
                for key in list(self._selector.get_map().values()):
                    if key.data == "drip":
                        sock = key.fileobj
                        assert isinstance(sock, socket.socket)
                        try:
                            sock.send(line)
                            self.counts.lines_sent += 1
                        except OSError:
                            pass  # the reader above notices the close
        self._close_all()

    def _close_all(self) -> None:
        for key in list(self._selector.get_map().values()):
            self._selector.unregister(key.fileobj)
            key.fileobj.close()  # type: ignore[union-attr]

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        else:
            self._close_all()
        self._selector.close()


def timed_get(
    port: int, path: str = "/atom.xml", *, timeout: float = 10.0
) -> tuple[int | None, float]:
    """One request on a new connection: (status or None on failure, seconds taken)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status, time.monotonic() - started
    except OSError:
        return None, time.monotonic() - started
    finally:
        conn.close()
