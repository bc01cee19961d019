"""``make system-deps`` waits for a busy apt instead of failing (a stand-in apt-get on PATH)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("make") is None,
    reason="system-deps installs only as root, with make",
)

APT_GET = """#!/bin/sh
# A stand-in for apt-get: `update` finds the lists lock held BUSY times, then succeeds.
echo "$*" >> "{log}"
case " $* " in
  *" update "*)
    n=$(cat "{count}" 2>/dev/null || echo 0); echo $((n + 1)) > "{count}"
    if [ "$n" -lt {busy} ]; then
      echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 1 (apt-get)" >&2
      echo "E: Unable to lock directory /var/lib/apt/lists/" >&2
      exit 100
    fi
    [ -n "{fail}" ] && {{ echo "E: {fail}" >&2; exit 100; }}
    exit 0;;
esac
exit 0
"""


def system_deps(tmp_path: Path, *, busy: int, fail: str = "") -> tuple[int, str, list[str]]:
    stub = tmp_path / "bin"
    stub.mkdir()
    log, count = tmp_path / "apt.log", tmp_path / "count"
    script = APT_GET.format(log=log, count=count, busy=busy, fail=fail)
    (stub / "apt-get").write_text(script)
    (stub / "apt-get").chmod(0o755)
    result = subprocess.run(
        ["make", "-s", "-C", str(REPO), "system-deps", "SYSTEM_CMDS=feedsvc-no-such-tool",
         "APT_RETRY=1"],
        env={**os.environ, "PATH": f"{stub}:{os.environ['PATH']}"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    calls = log.read_text().splitlines() if log.exists() else []
    return result.returncode, result.stdout + result.stderr, calls


def test_system_deps_waits_while_apt_holds_its_locks(tmp_path: Path) -> None:
    code, output, calls = system_deps(tmp_path, busy=2)
    assert code == 0, output
    assert "waiting" in output
    updates = [c for c in calls if " update" in c]
    installs = [c for c in calls if " install " in c]
    assert len(updates) == 3, calls
    assert len(installs) == 1, calls
    assert all("DPkg::Lock::Timeout=600" in c for c in calls), "install waits for dpkg's lock"
    assert {"nginx", "postgresql"} <= set(installs[0].split())


def test_system_deps_installs_postgresql_when_its_programs_are_missing(tmp_path: Path) -> None:
    stub = tmp_path / "bin"
    stub.mkdir()
    log = tmp_path / "apt.log"
    (stub / "apt-get").write_text(f'#!/bin/sh\necho "$*" >> "{log}"\n')
    (stub / "apt-get").chmod(0o755)
    result = subprocess.run(
        ["make", "-s", "-C", str(REPO), "system-deps", "SYSTEM_CMDS=sh",
         f"PG_INITDB={tmp_path}/no-such-postgresql/bin/initdb"],
        env={**os.environ, "PATH": f"{stub}:{os.environ['PATH']}"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "missing: postgresql" in result.stdout
    installs = [c for c in log.read_text().splitlines() if " install " in c]
    assert len(installs) == 1
    assert "postgresql" in installs[0].split()


def test_system_deps_fails_at_once_on_other_apt_errors(tmp_path: Path) -> None:
    code, output, calls = system_deps(tmp_path, busy=0, fail="Failed to fetch")
    assert code != 0
    assert "Failed to fetch" in output
    assert not [c for c in calls if " install " in c]
