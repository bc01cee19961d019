"""The daemon harness: a real ``feedsvc run`` subprocess on a temp site, and polling waits.

Shared by the daemon, WebSub and newsboat tests and by ``bench/``; waits are for conditions,
never for time. The daemon writes a build's files one after another and records the build in
``/status`` only after the last one, so a test waits for exactly what it asserts: each feed it
reads (``served``), and ``/status`` via ``settled()`` (nothing queued, building or unreported).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import feedparser
import pytest

T = TypeVar("T")
# Hang guards, not speed tests ("within a second or so" is the bench's job): a passing wait
# returns as soon as its condition holds, so only a real hang ever waits this long. 10 s was
# once missed on a 2-core machine running a 100,000-seed build beside the suite.
DEADLINE = 30.0
START_DEADLINE = 45.0  # interpreter start and the first build, on a busy CI machine
BASE_URL = "https://news.example.org/"
FEEDSVC = [sys.executable, "-c", "from feedsvc.cli import main; main()"]
_RUNNING: list[Daemon] = []  # the last daemon started, whose log a failed wait prints


def wait_for(check: Callable[[], T], *, timeout: float = DEADLINE, what: str = "") -> T:
    """Poll ``check`` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            for daemon in _RUNNING:  # the daemon's own account, for the failure report
                print("\n".join(daemon.lines[-60:]), file=sys.stderr)
            pytest.fail(f"not within {timeout:g} s: {what or check} (last: {value!r})")
        time.sleep(0.05)


def seed_name(n: int) -> str:
    return f"{n:04d}_{n:016x}.txt"


def key_of(n: int) -> str:
    return f"{n:016x}"


class Daemon:
    """One ``feedsvc run`` subprocess on a temp site, with its log collected."""

    def __init__(
        self,
        root: Path,
        *args: str,
        serve: bool = True,
        healthy: bool = True,
        start_timeout: float = START_DEADLINE,
    ) -> None:
        self.root = root
        self.lines: list[str] = []
        self.port = 0
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
        cmd = [*FEEDSVC, "run", "--config", str(root / "feedsvc.toml"), "--log-level", "DEBUG"]
        cmd += args
        if serve:
            cmd += ["--port", "0"]
        elif "--no-serve" not in args:
            cmd += ["--no-serve"]  # never the configured port: another program may hold it
        self.proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        _RUNNING[:] = [self]
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self._started(serve=serve, healthy=healthy, timeout=start_timeout)
        except BaseException:
            self.close()  # a daemon that did not start is not left to the garbage collector
            raise

    def _started(self, *, serve: bool, healthy: bool, timeout: float) -> None:
        if serve:
            found = wait_for(self._port, timeout=timeout, what="the listening port")
            self.port = int(found)
            if healthy:
                wait_for(lambda: self.get("/healthz")[0] == 200, timeout=timeout)
            else:  # started, has looked at seeds/, and says why it is not healthy
                wait_for(lambda: self.logged("running (pid"), timeout=timeout)
        else:
            wait_for(lambda: self.logged("full build"), timeout=timeout)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def _port(self) -> str | None:
        assert self.proc.poll() is None, "\n".join(self.lines)
        for line in list(self.lines):
            m = re.search(r"serving .* at http://127\.0\.0\.1:(\d+)/", line)
            if m:
                return m.group(1)
        return None

    def logged(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    @property
    def seeds(self) -> Path:
        return self.root / "seeds"

    def get(
        self, path: str, headers: Mapping[str, str] | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.putrequest("GET", path, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            conn.endheaders()
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()

    def feed(self, name: str = "atom.xml") -> feedparser.FeedParserDict:
        status, _, body = self.get("/" + name)
        assert status == 200, status
        parsed = feedparser.parse(body)
        assert parsed.bozo == 0, parsed.get("bozo_exception")
        return parsed

    def entries(self, name: str = "atom.xml") -> dict[str, Any]:
        """Entries by key (the id's last part)."""
        return {e.id.rsplit(":", 1)[-1]: e for e in self.feed(name).entries}

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.get("/status")[2])
        return data

    def settled(self, timeout: float = DEADLINE) -> dict[str, Any]:
        """``/status`` once every change the daemon has seen is built and reported.

        Wait for the served change first (the daemon must have seen it), then for this.
        """
        return wait_for(
            lambda: (s := self.status())["idle"] and s, timeout=timeout, what="/status settled"
        )

    def served(self, key: str, *names: str, where: Callable[[Any], bool] = bool) -> None:
        """Wait until the entry ``key`` is in each feed ``names`` (Atom and RSS when none)
        and ``where(entry)`` holds in each."""

        def check(name: str) -> bool:
            status, _, body = self.get("/" + name)
            if status != 200:
                return False
            parsed = feedparser.parse(body)
            found = [e for e in parsed.entries if e.id.rsplit(":", 1)[-1] == key]
            return parsed.bozo == 0 and bool(found) and where(found[0])

        for name in names or ("atom.xml", "rss.xml"):
            wait_for(lambda name=name: check(name), what=f"entry {key} as expected in {name}")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM; the exit status, which must come within ``timeout``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.close()
            pytest.fail(f"no exit within {timeout:g} s of SIGTERM:\n" + "\n".join(self.lines))
        self.close()
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def feedsvc(site: Path, command: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Another feedsvc process on the same site, run to its end."""
    return subprocess.run(
        [*FEEDSVC, command, "--config", str(site / "feedsvc.toml"), *args],
        cwd=site, capture_output=True, text=True, timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")},
    )  # fmt: skip


def make_site(root: Path, **config: object) -> Path:
    """A site with an empty seeds/ and feedsvc.toml; a key given as None is left out."""
    (root / "seeds").mkdir(parents=True)
    settings: dict[str, object] = {
        "title": "Testfeed",
        "base_url": BASE_URL,
        "seeds_dir": "seeds",
        "feeds_dir": "feeds",
        "state_dir": "state",
        "debounce_seconds": 0.5,
        **config,
    }
    lines = [f"{k} = {json.dumps(v)}" for k, v in settings.items() if v is not None]
    (root / "feedsvc.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def content(entry: Any) -> str:
    return " ".join(c.value for c in entry.get("content", [])) + entry.get("summary", "")
