"""A build killed at any moment leaves store and feeds as before or after it, never between."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import Project, parse_feed

pytestmark = pytest.mark.slow

FEEDSVC = [sys.executable, "-c", "from feedsvc.cli import main; main()"]


def _feed_ids(feeds: Path) -> dict[str, list[str]]:
    return {
        name: [e.id for e in parse_feed(feeds / name).entries] for name in ("atom.xml", "rss.xml")
    }


def test_sigkill_mid_build_never_leaves_a_half_state(project: Project, corpus_dir: Path) -> None:
    files = sorted(corpus_dir.iterdir())
    first, second = files[:300], files[300:700]
    for f in first:
        shutil.copy(f, project.seeds)
    cmd = [*FEEDSVC, "build", "--config", str(project.config), "-q"]
    subprocess.run(cmd, check=True, capture_output=True)
    before = _feed_ids(project.feeds)
    for f in second:
        shutil.copy(f, project.seeds)
    # the completed build with all 700, computed in a copy, is the "after" state
    reference = project.root.parent / "reference"
    shutil.copytree(project.root, reference)
    ref_cmd = [*FEEDSVC, "build", "--config", str(reference / "config" / "feedsvc.toml"), "-q"]
    started = time.perf_counter()
    subprocess.run(ref_cmd, check=True, capture_output=True)
    full = time.perf_counter() - started
    after = _feed_ids(reference / "feeds")
    assert after != before

    rng = random.Random(4)
    kills = 0
    for _ in range(8):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, max(0.1, full)))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        now = _feed_ids(project.feeds)
        for name in now:  # each feed file is whole: the old one or the new one
            assert now[name] in (before[name], after[name])
        db = sqlite3.connect(project.state / "feedsvc.sqlite3")
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        live = db.execute("SELECT COUNT(*) FROM articles WHERE path IS NOT NULL").fetchone()[0]
        db.close()
        assert live in (300, 700)
        if live == 700:
            break
    assert kills >= 1, "the build always finished before the kill: the test proved nothing"
    # and the next build completes to exactly the state of an uninterrupted one
    subprocess.run(cmd, check=True, capture_output=True)
    assert _feed_ids(project.feeds) == after
    assert not list(project.feeds.rglob(".*.tmp"))  # temp files live in feeds/.tmp/
