"""The built-in server against slow and hostile clients, and what it tells whom (issue #7).

Real sockets on 127.0.0.1: the server in a thread, raw sockets and http.client as clients.
No timed asserts: a request must be answered (within a generous deadline); the latency
figures beside nginx's live in bench/http_bench.py.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from feedsvc.build.outputs import ATOM_TYPE
from feedsvc.build.publisher import BuildReport
from feedsvc.errors import SeedError
from feedsvc.service.schedule import BuildOutcome
from feedsvc.service.serve import (
    MAX_HEADER_BYTES,
    FeedApp,
    HTTPServer,
    ServeOptions,
)
from feedsvc.service.status import STATUS_LIST_MAX, DaemonStatus
from tests.harness import Daemon, make_site, wait_for
from tests.slowclients import SlowClients, timed_get

ATOM = b'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
HEAD_TIMEOUT = 1.0  # the tests' head deadline (the default is 10 s)


def _feed(n: int = 300) -> bytes:
    entries = b"".join(b"<entry><title>Nummer %d</title></entry>" % i for i in range(n))
    return ATOM + entries + b"</feed>\n"


class Served:
    def __init__(self, feeds: Path, app: FeedApp, port: int) -> None:
        self.feeds, self.app, self.port = feeds, app, port

    def get(
        self, path: str, headers: dict[str, str] | None = None, method: str = "GET"
    ) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp

    def raw(self, data: bytes) -> bytes:
        """Send ``data`` on a new connection; everything the server answers until it closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            with contextlib.suppress(OSError):  # it may answer and close before reading all
                sock.sendall(data)
            chunks = []
            while True:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "atom.xml").write_bytes(_feed())
    app = FeedApp(
        ServeOptions(root=feeds, content_types={"atom.xml": ATOM_TYPE}),
        status=lambda: (True, {"reason": "ok", "pid": 4711}),
    )
    server = HTTPServer(app, host="127.0.0.1", port=0, head_timeout=HEAD_TIMEOUT)
    _, port = server.start()
    try:
        yield Served(feeds, app, port)
    finally:
        server.stop()


# --- item 11: slow clients, header limits -----------------------------------------------------
@pytest.mark.slow
def test_normal_requests_are_answered_while_500_idle_and_50_dripping_connections_are_open(
    served: Served,
) -> None:
    load = SlowClients(served.port, idle=500, drip=50, interval=0.5, max_seconds=60).start()
    try:
        assert load.counts.connect_errors == 0, load.counts
        for _ in range(20):  # each on a new connection, like a feed reader's poll
            status, _ = timed_get(served.port, timeout=10)
            assert status == 200, load.counts
        assert load.open_now >= 500, load.counts  # the load was there all along
        # Dripping clients never finish their head: the deadline ends them, they come back.
        wait_for(lambda: load.counts.closed_by_server >= 50, timeout=HEAD_TIMEOUT + 10)
        status, _ = timed_get(served.port, timeout=10)
        assert status == 200
    finally:
        load.stop()


def test_a_dripping_client_is_cut_at_the_head_deadline_however_often_it_sends(
    served: Served,
) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(b"GET /atom.xml HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed = False
        n = 0
        while time.monotonic() - started < HEAD_TIMEOUT + 8:  # bounded: never forever
            try:
                sock.sendall(b"X-Drip-%d: y\r\n" % n)  # far more often than any read timeout
            except OSError:
                closed = True
                break
            n += 1
            sock.settimeout(0.2)
            try:
                if sock.recv(1024) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
            except ConnectionResetError:  # closed with our unread lines pending: a reset
                closed = True
                break
        assert closed, f"still open after {time.monotonic() - started:.1f} s and {n} lines"


def test_a_silent_connection_is_closed_at_the_head_deadline(served: Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=HEAD_TIMEOUT + 8) as sock:
        assert sock.recv(1024) == b""  # closed by the server, not by our timeout


def test_a_64_kib_header_gets_431_and_a_normal_one_200(served: Served) -> None:
    big = b"GET /atom.xml HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"
    answer = served.raw(big)
    assert re.match(rb"HTTP/1\.[01] 431 ", answer), answer[:200]
    many = b"".join(b"X-Many-%d: %s\r\n" % (i, b"b" * 100) for i in range(200))  # 20 KiB
    answer = served.raw(b"GET /atom.xml HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert re.match(rb"HTTP/1\.[01] 431 ", answer), answer[:200]
    fits = b"X-Fits: " + b"c" * (MAX_HEADER_BYTES - 200) + b"\r\n"
    answer = served.raw(
        b"GET /atom.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + fits + b"\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


def test_a_304_keeps_the_connection_open(served: Served) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    try:
        conn.request("GET", "/atom.xml")
        first = conn.getresponse()
        first.read()
        etag = first.headers["ETag"]
        conn.request("GET", "/atom.xml", headers={"If-None-Match": etag})
        again = conn.getresponse()
        again.read()
        assert again.status == 304
        assert not again.will_close, again.headers
        assert conn.sock is not None  # the same connection serves the next request
        conn.request("GET", "/atom.xml", headers={"If-None-Match": etag})
        assert conn.getresponse().status == 304
    finally:
        conn.close()


def test_more_than_100_header_lines_get_431_however_short(served: Served) -> None:
    many = b"".join(b"X-Short-%d: y\r\n" % i for i in range(120))  # 2 KiB in all
    answer = served.raw(b"GET /atom.xml HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert re.match(rb"HTTP/1\.[01] 431 ", answer), answer[:200]


def test_a_kept_alive_connection_silent_after_its_answer_is_closed_at_the_head_deadline(
    served: Served,
) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=HEAD_TIMEOUT + 8) as sock:
        sock.sendall(b"HEAD /atom.xml HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        assert sock.recv(1024) == b""  # closed by the server, not by our timeout


def _tasks() -> set[str]:
    return set(os.listdir("/proc/self/task"))  # this process's threads, Python's or not


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_stop_returns_only_when_the_servers_own_threads_are_gone(tmp_path: Path) -> None:
    """A thread of granian's still ending at interpreter exit would abort the process."""
    (tmp_path / "atom.xml").write_bytes(_feed())
    before = _tasks()
    server = HTTPServer(FeedApp(ServeOptions(root=tmp_path)), host="127.0.0.1", port=0)
    _, port = server.start()
    assert timed_get(port)[0] == 200
    assert _tasks() - before  # the server's threads: ours and granian's (Rust)
    server.stop()
    assert not _tasks() - before
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_stop_with_silent_and_dripping_connections_open_ends_in_time(tmp_path: Path) -> None:
    (tmp_path / "atom.xml").write_bytes(_feed())
    server = HTTPServer(FeedApp(ServeOptions(root=tmp_path)), host="127.0.0.1", port=0)
    _, port = server.start()  # the default 10 s head deadline: longer than a stop may take
    load = SlowClients(port, idle=100, drip=20, interval=0.5, max_seconds=60).start()
    try:
        assert timed_get(port)[0] == 200
        stopping = threading.Thread(target=server.stop)
        stopping.start()
        stopping.join(timeout=5)  # the daemon's whole stop has 5 s
        assert not stopping.is_alive()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        load.stop()


@pytest.mark.slow
def test_the_daemon_exits_0_on_sigterm_with_hostile_connections_open(tmp_path: Path) -> None:
    daemon = Daemon(make_site(tmp_path))
    load = SlowClients(daemon.port, idle=500, drip=50, interval=0.5, max_seconds=60).start()
    try:
        assert daemon.get("/healthz")[0] == 200
        assert daemon.stop(timeout=5.0) == 0  # not 134 (SIGABRT at exit), within 5 s
    finally:
        load.stop()
        daemon.close()


# --- item 12: .gz, If-Modified-Since, /status -------------------------------------------------
def test_atom_xml_gz_is_atom_with_content_encoding_gzip(served: Served) -> None:
    data = _feed()
    packed = gzip.compress(data, mtime=0)
    (served.feeds / "atom.xml.gz").write_bytes(packed)
    reply = served.get("/atom.xml.gz")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == ATOM_TYPE
    assert reply.headers["Content-Encoding"] == "gzip"
    head = served.get("/atom.xml.gz", method="HEAD")
    assert int(head.headers["Content-Length"]) == len(packed)


def test_the_builds_gz_sibling_is_served_as_it_is_and_a_stale_one_never(served: Served) -> None:
    data = _feed(2000)
    sibling = gzip.compress(data, compresslevel=1, mtime=0)  # not what the server would make
    assert sibling != gzip.compress(data, compresslevel=6, mtime=0)
    (served.feeds / "atom.xml").write_bytes(data)
    (served.feeds / "atom.xml.gz").write_bytes(sibling)
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    conn.request("GET", "/atom.xml", headers={"Accept-Encoding": "gzip"})
    reply = conn.getresponse()
    body = reply.read()
    conn.close()
    assert reply.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in reply.headers["Vary"]
    assert body == sibling
    # A sibling left from an earlier build (it holds other bytes) is not served.
    newer = _feed(2001)
    (served.feeds / "atom.xml").write_bytes(newer)
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    conn.request("GET", "/atom.xml", headers={"Accept-Encoding": "gzip"})
    reply = conn.getresponse()
    assert gzip.decompress(reply.read()) == newer
    conn.close()


def test_if_modified_since_in_the_future_gets_the_document(served: Served) -> None:
    first = served.get("/atom.xml")
    future = format_datetime(datetime.now(UTC) + timedelta(days=3), usegmt=True)
    reply = served.get("/atom.xml", headers={"If-Modified-Since": future})
    assert reply.status == 200
    same = served.get("/atom.xml", headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert same.status == 304


def test_status_is_for_local_clients_only_and_healthz_says_only_ok_to_others(
    served: Served,
) -> None:
    assert served.get("/status").status == 200  # loopback
    proxied = served.get("/status", headers={"X-Forwarded-For": "198.51.100.7"})
    assert proxied.status == 404  # a proxy on this host asking for someone else
    remote = "192.0.2.7:40000"  # another host: no socket of ours can come from there
    assert served.app.respond("GET", "/status", {}.get, remote).status == 404
    health = served.app.respond("GET", "/healthz", {}.get, remote)
    assert (health.status, health.body) == (200, b"ok\n")
    served.app.configure(
        ServeOptions(root=served.feeds, content_types={"atom.xml": ATOM_TYPE}, status_public=True)
    )
    public = served.app.respond("GET", "/status", {}.get, remote)
    assert public.status == 200
    assert json.loads(public.body) == {"reason": "ok", "pid": 4711}


def test_status_lists_the_first_errors_and_counts_them_all(tmp_path: Path) -> None:
    status = DaemonStatus()
    errors = [SeedError(f"seeds/bad-{n:06d}.txt", 1, "missing title") for n in range(1000)]
    report = BuildReport(
        total=3, errors=errors, written=[tmp_path / f"{n}.html" for n in range(5000)]
    )
    status.record(BuildOutcome("full", 1000, datetime.now(UTC), 1.0, report=report))
    app = FeedApp(ServeOptions(root=tmp_path), status=status.snapshot)
    server = HTTPServer(app, host="127.0.0.1", port=0)
    _, port = server.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/status")
        body = conn.getresponse().read()
        conn.close()
    finally:
        server.stop()
    info = json.loads(body)
    assert info["error_count"] == 1000
    assert len(info["errors"]) == STATUS_LIST_MAX
    assert info["errors"][0]["path"] == "seeds/bad-000000.txt"
    assert info["last_build"]["written"] == 5000  # a count, never the list of files
    assert len(body) < 10_000
