"""A cold build's article pages on the second core (#9): worker processes decode the stored
articles, render the pages and create their files in the stage folder.

The same bytes as pages made in process, whichever way the workers start; the leader's guard
stops them between chunks; a damaged article or a kill stops the build as the sequential path
does, leaving no ``articles/``, no stage and no worker behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from feedsvc import Publisher
from feedsvc.build import plan, pool
from feedsvc.errors import LeaderError

from .conftest import Project, category_corpus, category_settings
from .harness import wait_for
from .test_cold import _left, _tree
from .test_cold_main import _store_article, _stored_article
from .test_crash import FEEDSVC

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SEEDS = 450  # five chunks of pages (``plan.PAGE_CHUNK``)


def _publisher(root: Path, seeds: Path, *, pages_pool: bool, **more: Any) -> Publisher:
    publisher = Publisher(category_settings(root, seeds, **more), clock=lambda: NOW)
    publisher.scanner.pool = False  # the scan in process: only the pages' workers start
    publisher.planner.pool = pages_pool
    return publisher


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The initializers of the worker pools started (``pool.start``), in order."""
    seen: list[str] = []
    real = pool.start

    def start(count: int, initializer: Callable[..., None], *args: Any, **kw: Any) -> Any:
        seen.append(initializer.__name__)
        return real(count, initializer, *args, **kw)

    monkeypatch.setattr(pool, "start", start)
    return seen


@pytest.mark.timeout(180)
def test_pooled_pages_are_the_sequential_pages_byte_for_byte(
    tmp_path: Path, started: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several feeds (each page links those its article is in), forked and spawned workers:
    every file under feeds/ as in process, and the stamps the workers sent are the files'
    (the next build finds every page as recorded and writes nothing)."""
    seeds = category_corpus(tmp_path, SEEDS)
    trees = {}
    for name, pages_pool, method in (
        ("plain", False, None),
        ("forked", True, "fork"),
        ("spawned", True, "spawn"),
    ):
        if method is not None:
            monkeypatch.setattr(pool, "start_method", lambda m=method: m)
        publisher = _publisher(tmp_path / name, seeds, pages_pool=pages_pool)
        report = publisher.build()
        assert report.new == SEEDS, report
        trees[name] = _tree(tmp_path / name / "feeds")
        again = publisher.build()
        assert list(again.written) == [], again.written
    assert started == ["_start_pages", "_start_pages"], "the pooled builds used page workers"
    pages = [rel for rel in trees["plain"] if rel.startswith("articles/")]
    assert len(pages) == SEEDS
    assert trees["forked"] == trees["plain"]
    assert trees["spawned"] == trees["plain"]
    assert not list((tmp_path / "forked" / "feeds" / ".tmp").iterdir())


@pytest.mark.timeout(120)
def test_the_leaders_guard_stops_the_page_workers_between_chunks(
    tmp_path: Path, started: list[str]
) -> None:
    """#10: a leader whose lease runs out while its pages are made writes no more: the
    guard is asked before each chunk, and the stage goes with the build."""
    seeds = category_corpus(tmp_path, SEEDS)
    publisher = _publisher(tmp_path, seeds, pages_pool=True)
    asked: list[int] = []

    def guard() -> None:
        asked.append(1)
        if len(asked) == 3:
            raise LeaderError("test", "the lease ran out during the build")

    publisher.writer.guard = guard
    with pytest.raises(LeaderError):
        publisher.build()
    assert started == ["_start_pages"]
    feeds = tmp_path / "feeds"
    assert not (feeds / "articles").exists(), "no page of the abandoned build is served"
    assert not (feeds / ".tmp" / "articles").exists()
    assert not (feeds / "atom.xml").exists()


def _damaged_site(project: Project, corpus_dir: Path, name: str) -> tuple[Project, str]:
    """A built site with an old article spoiled in the store, its pages removed and a new
    author: the next build renders every page (a full build) into a fresh tree."""
    site = Project(project.root.parent / name)
    shutil.copytree(project.root, site.root)
    files = sorted(corpus_dir.iterdir())
    with site.config.open("a") as f:
        f.write("archive_page_size = 0\n")  # no archive page reads the article back first
    for path in files:
        shutil.copy(path, site.seeds)
    assert site.build().exit_code == 0
    db = sqlite3.connect(site.state / "feedsvc.sqlite3")
    try:  # the oldest article: in no feed's window and not on the index
        (key,) = db.execute("SELECT key FROM articles ORDER BY published, key").fetchone()
    finally:
        db.close()
    stored = json.loads(_stored_article(site, key))
    stored["body"][0] = {"kind": "heading", "text": "Ein Absatz."}
    _store_article(site, key, json.dumps(stored))
    shutil.rmtree(site.feeds / "articles")
    with site.config.open("a") as f:  # a render setting: every output is made again
        f.write('author_name = "Jemand"\n')
    return site, key


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_damaged_article_stops_the_page_workers_with_the_sequential_error(
    project: Project, corpus_dir: Path, started: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker that decodes it sends back what is wrong; the build stops with the one
    line the sequential path prints, no ``articles/`` and no stage left."""
    sequential, key = _damaged_site(project, corpus_dir, "sequential")
    pooled, _ = _damaged_site(project, corpus_dir, "pooled")
    monkeypatch.setenv("FEEDSVC_POOL", "0")
    expected = sequential.build()
    assert started == []
    monkeypatch.setenv("FEEDSVC_POOL", "1")
    result = pooled.build()
    assert started == ["_start_pages"]
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1, result.output
    assert f"article {key} does not validate" in result.output, result.output
    assert result.output.replace(str(pooled.root), "") == expected.output.replace(
        str(sequential.root), ""
    )
    assert not (pooled.feeds / "articles").exists()
    assert not (pooled.feeds / ".tmp" / "articles").exists()


def _kill_at_work(proc: subprocess.Popen[bytes], staged: Path, mark: str, *, worker: bool) -> None:
    """SIGKILL the build ``proc`` (or one of its page workers) once pages are staged while
    its page workers run (processes of this test's builds other than ``proc``)."""
    try:
        wait_for(
            lambda: (
                proc.poll() is not None
                or (staged.is_dir() and any(staged.iterdir()) and len(_left(mark)) >= 2)
            ),
            timeout=120,
            what="pages staged while page workers run",
        )
        assert proc.poll() is None, "the build ended without page workers seen at work"
        if worker:
            os.kill(max(set(_left(mark)) - {proc.pid}), signal.SIGKILL)
            proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigkill_of_a_page_worker_or_of_the_build_leaves_no_pages_and_no_worker(
    project: Project, corpus_dir: Path
) -> None:
    """A page worker killed (the OOM killer): the build stops with one line, nothing
    published, no stage. The build killed: its workers exit too. Then the next build
    finishes the job, byte for byte as an uninterrupted one."""
    for f in sorted(corpus_dir.iterdir()):
        shutil.copy(f, project.seeds)
    reference = Project(project.root.parent / "reference")
    shutil.copytree(project.root, reference.root)
    mark = f"test-pagepool-{os.getpid()}-{time.time_ns()}"  # in every worker's environment
    env = {**os.environ, "FEEDSVC_POOL": "1", "TEST_COLD_MARK": mark}
    subprocess.run(
        [*FEEDSVC, "build", "--config", str(reference.config), "-q"],
        check=True,
        capture_output=True,
        env=env,
    )
    staged = project.feeds / ".tmp" / "articles"
    cmd = [*FEEDSVC, "build", "--config", str(project.config), "-q"]

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _kill_at_work(proc, staged, mark, worker=True)
    assert proc.stderr is not None
    with proc.stderr:
        said = proc.stderr.read().decode()
    assert proc.returncode == 1, said
    assert said.count("\n") == 1, said
    assert "a worker process making the article pages died; nothing was published" in said
    assert not (project.feeds / "articles").exists()
    assert not staged.exists()
    assert not (project.feeds / "atom.xml").exists()
    wait_for(lambda: not _left(mark), timeout=10, what="the other page workers to exit")

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _kill_at_work(proc, staged, mark, worker=False)
    wait_for(lambda: not _left(mark), timeout=10, what="the killed build's page workers to exit")
    assert not (project.feeds / "articles").exists()

    subprocess.run(cmd, check=True, capture_output=True, env=env)
    assert _tree(project.feeds) == _tree(reference.feeds)
    assert not staged.exists()


def test_page_work_is_decided_as_the_scans_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """One policy (``pool.workers``): small work in process, FEEDSVC_POOL=1/0 forces it,
    an explicit setting wins over the environment."""
    monkeypatch.delenv("FEEDSVC_POOL", raising=False)
    assert pool.workers(10) == 0
    assert pool.workers(10, True) >= 2
    monkeypatch.setenv("FEEDSVC_POOL", "1")
    assert pool.workers(1) >= 2
    assert pool.workers(1, False) == 0
    monkeypatch.setenv("FEEDSVC_POOL", "0")
    assert pool.workers(1_000_000) == 0
    assert plan.PAGE_CHUNK < SEEDS


def test_a_build_decides_by_the_load_it_found_not_by_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The scan's workers and the build's main process raise the load average: the page
    stage, minutes later, decides by the load the build found at its first look."""
    monkeypatch.delenv("FEEDSVC_POOL", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(pool, "_found", None)
    looks = iter([0.2, 2.5])  # idle, then busy with this build's own processes
    monkeypatch.setattr(pool, "load", lambda: next(looks))
    assert pool.workers(pool.POOL_MIN) == 2  # the scan: the first look
    assert pool._found is not None
    found_at, found = pool._found
    monkeypatch.setattr(pool, "_found", (found_at - 120, found))  # two minutes later
    assert pool.workers(pool.POOL_MIN) == 2  # the pages
    monkeypatch.setattr(pool, "_found", (found_at - pool.LOAD_MEMORY - 1, found))
    assert pool.workers(pool.POOL_MIN) == 0  # another build, later: it looks again


@pytest.mark.timeout(180)
def test_the_pages_of_a_lost_feeds_folder_are_read_a_batch_at_a_time(
    tmp_path: Path, started: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """feeds/ deleted, the store kept: every page is planned again (an incremental build
    that finds them missing), and its articles are read ``MEMBERS_BATCH`` at a time, not
    all at once (at 100,000 articles that was gigabytes)."""
    from feedsvc.store.sqlite import SQLiteStore

    seeds = category_corpus(tmp_path, 1100)
    publisher = _publisher(tmp_path, seeds, pages_pool=False, archive_page_size=0)
    assert publisher.build().new == 1100
    before = _tree(tmp_path / "feeds")
    shutil.rmtree(tmp_path / "feeds")
    asked: list[int] = []
    real = SQLiteStore.articles

    def articles(self: SQLiteStore, keys: Any) -> Any:
        keys = list(keys)
        asked.append(len(keys))
        return real(self, keys)

    monkeypatch.setattr(SQLiteStore, "articles", articles)
    report = publisher.build()
    assert len(report.repaired) > 1100, report
    assert _tree(tmp_path / "feeds") == before
    assert sum(asked) >= 1100
    assert max(asked) <= plan.MEMBERS_BATCH, asked

    # every page missing is every page: with enough of them, the page workers make them
    monkeypatch.setattr(pool, "POOL_MIN", 1000)
    publisher.planner.pool = True
    shutil.rmtree(tmp_path / "feeds")
    asked.clear()
    publisher.build()
    assert started == ["_start_pages"]
    assert asked == [], "the workers decode the stored articles themselves"
    assert _tree(tmp_path / "feeds") == before
