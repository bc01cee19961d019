"""A real nginx on 127.0.0.1 with contrib/nginx-feedsvc.conf over a feeds/ folder.

Shared by tests/test_nginx.py and bench/http_bench.py. nginx runs in the foreground
(``daemon off``) as our child, with its own prefix, config, pid and logs in a temp folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SNIPPET = REPO / "contrib" / "nginx-feedsvc.conf"
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None
)
SNIPPET_ROOT = "root /srv/feedsvc/feeds;"
SNIPPET_UPSTREAM = "http://127.0.0.1:8080"
START_DEADLINE = 10.0


def require_nginx() -> str:
    """nginx's path; skip without it, but fail in CI (where the Makefile installs it)."""
    if NGINX is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is not installed in CI (apt-get install nginx)")
        pytest.skip("nginx is not installed (Debian: apt-get install nginx)")
    return NGINX


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Nginx:
    """nginx serving ``feeds`` with the snippet; ``upstream`` is feedsvc's own port, if any."""

    def __init__(self, binary: str, prefix: Path, feeds: Path, *, upstream: int = 0) -> None:
        self.prefix = prefix
        (prefix / "logs").mkdir(parents=True, exist_ok=True)
        (prefix / "temp").mkdir(exist_ok=True)
        snippet = SNIPPET.read_text(encoding="utf-8")
        assert SNIPPET_ROOT in snippet, "the snippet changed its form"
        assert SNIPPET_UPSTREAM in snippet, "the snippet changed its form"
        snippet = snippet.replace(SNIPPET_ROOT, f"root {feeds};")
        if upstream:
            snippet = snippet.replace(SNIPPET_UPSTREAM, f"http://127.0.0.1:{upstream}")
        (prefix / "feedsvc.conf").write_text(snippet, encoding="utf-8")
        last: str = ""
        for _ in range(5):  # a free port can be taken between the probe and nginx's bind
            self.port = free_port()
            self._write_config()
            self.proc = subprocess.Popen(
                [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )  # fmt: skip
            if self._wait_listening():
                return
            last = self._close()
        raise RuntimeError(f"nginx did not start:\n{last}")

    def _write_config(self) -> None:
        p = self.prefix
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read the temp dirs
        temps = "\n".join(
            f"    {kind}_temp_path {p / 'temp' / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (p / "nginx.conf").write_text(
            f"""{user}daemon off;
worker_processes auto;
pid {p / "nginx.pid"};
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
{temps}
    server {{
        listen 127.0.0.1:{self.port};
        server_name localhost;
        include {p / "feedsvc.conf"};
    }}
}}
""",
            encoding="utf-8",
        )

    def _wait_listening(self) -> bool:
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def _close(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()  # nginx: fast shutdown
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        out = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return out

    def stop(self) -> str:
        """Stop nginx; its error log (stderr)."""
        return self._close()
