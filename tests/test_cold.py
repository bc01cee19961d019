"""A cold build (#9): the batched load into an empty store and the process pool change no byte.

The same seeds are built into fresh state and feeds dirs: one row at a time in process (the
path every incremental build takes, and every build before #9), batched in process, batched
with the reading and parsing in worker processes, and batched into PostgreSQL. Every output
file's bytes and every ledger row must be the same; a cold build killed at any moment leaves
whole feeds and an intact store, and the next build finishes it.
"""

from __future__ import annotations

import os
import random
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

from feedsvc import Publisher, load_settings
from feedsvc.build import pool as build_pool
from feedsvc.build.ledger import Ledger
from feedsvc.build.scan import Scanner

from .conftest import SAMPLE, Project, parse_feed, seed_text
from .harness import wait_for
from .test_crash import FEEDSVC, _feed_ids

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PUBLISHED = 43  # 000, 40 numbered, one with a control character removed, one of odd lines


def _seeds(root: Path) -> Path:
    """A small corpus with the cases a cold build must get right, in sub-folders too."""
    seeds = root / "seeds"
    (seeds / "sport").mkdir(parents=True)
    (seeds / "000_98f79bfdbc50e318.txt").write_bytes(SAMPLE.read_bytes())
    for i in range(40):
        folder = seeds / ("sport" if i % 3 == 0 else "")
        lead = f"Meldung Nummer {i} über den Stand der Dinge."
        body = f"Erster Absatz {i}.\n\nZwischentitel\n\nZweiter Absatz mit mehr Text {i}."
        when = f"2024-{i % 12 + 1:02d}"
        (folder / f"{i + 1:03d}_{i + 1:016x}.txt").write_text(seed_text(lead, date=when, body=body))
    (seeds / "100_00000000000000aa.txt").write_text("no date line here\n\nbody")  # an error
    (seeds / "101_00000000000000bb.txt").write_bytes(b"\x00binary")  # an error
    (seeds / "102_0000000000000001.txt").write_text(seed_text("Gleicher Schlüssel."))  # duplicate
    (seeds / "103_00000000000000cc.txt").write_text(seed_text("Mit\x07Steuerzeichen."))  # warning
    # blank lines of spaces, CRLF, a paragraph over two lines: the line-by-line parse's cases
    odd = (
        "date 2024-02 Ein Aufmacher\r\nüber zwei Zeilen.\r\n \t\r\nKurz\r\n\r\n\r\nLang\r\n"
        "er Absatz.\n  "
    )
    (seeds / "104_00000000000000dd.txt").write_text(odd)
    return seeds


def _settings(out: Path, seeds: Path, **more: Any) -> Any:
    return load_settings(
        env={},
        overrides={
            "seeds_dir": seeds,
            "feeds_dir": out / "feeds",
            "state_dir": out / "state",
            "base_url": "https://news.example.org/",
            "category_feeds": True,
            "detect_language": False,
            **more,
        },
    )


def _build(root: Path, seeds: Path, name: str, *, pool: bool, bulk: bool, **more: Any) -> Path:
    out = root / name
    publisher = Publisher(_settings(out, seeds, **more), clock=lambda: NOW)
    publisher.scanner.pool = pool
    publisher.planner.pool = pool  # the article pages too
    Ledger.bulk_load = bulk
    try:
        report = publisher.build()
    finally:
        Ledger.bulk_load = True
    assert report.new == PUBLISHED, report
    assert len(report.errors) == 4, report.errors  # two bad files, two sharing a key
    assert any("removed 1 character" in w for w in report.warnings), report.warnings
    return out


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".tmp" not in p.parts
    }


def _ledger(state: Path) -> dict[str, list[tuple[object, ...]]]:
    db = sqlite3.connect(state / "feedsvc.sqlite3")
    try:
        return {
            "files": db.execute("SELECT * FROM files ORDER BY path").fetchall(),
            "articles": db.execute("SELECT * FROM articles ORDER BY key").fetchall(),
            "members": db.execute("SELECT * FROM members ORDER BY feed, key").fetchall(),
            "outputs": db.execute("SELECT path FROM outputs ORDER BY path").fetchall(),
            "meta": db.execute(
                "SELECT * FROM meta WHERE name NOT IN ('created', 'scan_ns') ORDER BY name"
            ).fetchall(),
            "indexes": db.execute(
                "SELECT name, sql FROM sqlite_schema WHERE type = 'index' ORDER BY name"
            ).fetchall(),
        }
    finally:
        db.close()


@pytest.mark.timeout(180)
def test_cold_build_is_the_same_batched_and_pooled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeds = _seeds(tmp_path)
    plain = _build(tmp_path, seeds, "plain", pool=False, bulk=False)
    batched = _build(tmp_path, seeds, "batched", pool=False, bulk=True)
    pooled: list[str] = []
    real = build_pool.start_method

    def start_method(method: str) -> Callable[[], str]:
        def chosen() -> str:
            pooled.append(real())
            return method

        return chosen

    for method in ("fork", "spawn"):  # the CLI's workers, the daemon's
        monkeypatch.setattr(build_pool, "start_method", start_method(method))  # both pools'
        if method == "fork":
            forked = _build(tmp_path, seeds, "forked", pool=True, bulk=True)
        else:
            spawned = _build(tmp_path, seeds, "spawned", pool=True, bulk=True)
    assert len(pooled) == 4  # both went through the pools: the scan's and the pages'
    expected = _tree(plain / "feeds")
    assert len(expected) > 10
    ledger = _ledger(plain / "state")
    assert len(ledger["articles"]) == PUBLISHED
    for out in (batched, forked, spawned):
        assert _tree(out / "feeds") == expected
        assert _ledger(out / "state") == ledger
    # and the next build of each finds nothing to do: the rows say what the files are
    for out in (plain, batched, forked, spawned):
        again = Publisher(_settings(out, seeds), clock=lambda: NOW).build()
        assert (again.new, again.changed, again.unchanged) == (0, 0, PUBLISHED), again


@pytest.mark.timeout(180)
def test_cold_build_into_postgresql_is_the_same(tmp_path: Path, pg_schema_url: str) -> None:
    """The bulk load's SQL (store/sql.py) on the other backend: the same feeds."""
    seeds = _seeds(tmp_path)
    plain = _build(tmp_path, seeds, "plain", pool=False, bulk=False)
    pg = _build(tmp_path, seeds, "pg", pool=False, bulk=True, store_url=pg_schema_url)
    assert _tree(pg / "feeds") == _tree(plain / "feeds")


def test_the_pool_is_used_when_asked_and_by_size_when_a_core_is_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scanner = Scanner(_settings(tmp_path, tmp_path))
    monkeypatch.delenv("FEEDSVC_POOL", raising=False)
    assert scanner.pool_workers(10) == 0  # small: in process
    monkeypatch.setenv("FEEDSVC_POOL", "0")
    assert scanner.pool_workers(1_000_000) == 0
    monkeypatch.setenv("FEEDSVC_POOL", "1")
    assert scanner.pool_workers(1) >= 2
    scanner.pool = False  # the attribute wins over the environment
    assert scanner.pool_workers(1_000_000) == 0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigkill_mid_cold_build_then_the_next_build_finishes_it(
    project: Project, corpus_dir: Path
) -> None:
    """A cold build (bulk load, pool forced on) killed at any moment: no feed or a whole one,
    an intact store that is empty or complete, no worker left behind, and the next build
    ends byte for byte where an uninterrupted one does."""
    for f in sorted(corpus_dir.iterdir())[:700]:
        shutil.copy(f, project.seeds)
    mark = f"test-cold-{os.getpid()}-{time.time_ns()}"  # in the environment of every worker
    env = {**os.environ, "FEEDSVC_POOL": "1", "TEST_COLD_MARK": mark}
    cmd = [*FEEDSVC, "build", "--config", str(project.config), "-q"]
    reference = project.root.parent / "reference"
    shutil.copytree(project.root, reference)
    ref_cmd = [*FEEDSVC, "build", "--config", str(reference / "config" / "feedsvc.toml"), "-q"]
    started = time.perf_counter()
    subprocess.run(ref_cmd, check=True, capture_output=True, env=env)
    full = time.perf_counter() - started
    after = _feed_ids(reference / "feeds")

    rng = random.Random(9)
    kills = 0
    for _ in range(6):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(rng.uniform(0.05, max(0.1, full)))  # a random moment, not a wait for a state
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        for name in ("atom.xml", "rss.xml"):  # each one absent or whole, never half-written
            if (project.feeds / name).exists():
                ids = [e.id for e in parse_feed(project.feeds / name).entries]
                assert ids == after[name]
        store = project.state / "feedsvc.sqlite3"
        if store.exists():
            db = sqlite3.connect(store)
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            live = db.execute("SELECT COUNT(*) FROM articles WHERE path IS NOT NULL").fetchone()
            db.close()
            assert live[0] in (0, 700)
            if live[0] == 700:
                break
    assert kills >= 1, "the build always finished before the kill: the test proved nothing"
    wait_for(lambda: not _left(mark), timeout=10, what="the killed builds' workers to exit")
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    assert _feed_ids(project.feeds) == after
    assert _tree(project.feeds) == _tree(reference / "feeds")


def _left(mark: str) -> list[int]:
    """Processes of this test's builds still running (forked or spawned workers carry the
    build's environment, ``mark`` included)."""
    needle = f"TEST_COLD_MARK={mark}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


PIECES = [
    "date 2024-05 Ein Aufmacher.",
    "date 2024-05",
    "date 2024-13 x",
    "\n",
    "\n\n",
    " \n",
    "\t\n",
    "\u3000\n",
    "\x0b",
    "\u2028",
    "\u00a0",
    "Zwischentitel",
    "Ein Satz mit Punkt.",
    "  weit   auseinander  ",
    "\r\n",
    "\r",
    "\x07",
    "a" * 90,
    "Wort " * 12,
    "„Zitat“",
    "\n \n \n",
]


def test_paragraphs_split_at_c_speed_are_those_of_the_line_by_line_parse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``parse_seed``'s fast split (``_chunks``) against its line-by-line path on odd texts:
    the same article, or the same error at the same line."""
    from feedsvc import seeds
    from feedsvc.errors import SeedError

    def parse(data: bytes) -> object:
        try:
            return seeds.parse_seed(data, source="001_00000000000000aa.txt", now=NOW)
        except SeedError as e:
            return (e.line, e.reason)

    rng = random.Random(9)
    texts = []
    for _ in range(3000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 12)))
        if rng.random() < 0.8:
            text = "date 2024-05 Aufmacher." + rng.choice(["\n\n", "\n", " \n\n", "\n \n"]) + text
        texts.append(text.encode())
    fast = [parse(t) for t in texts]
    assert sum(1 for f in fast if not isinstance(f, tuple)) > 1000  # mostly articles
    monkeypatch.setattr(seeds, "_chunks", lambda text: None)  # every text line by line
    assert [parse(t) for t in texts] == fast
