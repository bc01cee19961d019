"""The watcher on its own: a real watchdog observer on tmp_path, batches handed to a list."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedsvc import ConfigError, load_settings
from feedsvc.service.schedule import rescan_trigger
from feedsvc.service.watch import SeedWatcher

from .harness import wait_for

DELAY = 0.2


class Batches:
    def __init__(self) -> None:
        self.items: list[tuple[list[Path], bool]] = []
        self.lock = threading.Lock()

    def __call__(self, paths: list[Path], full: bool) -> None:
        with self.lock:
            self.items.append((paths, full))

    def wait(self, count: int = 1, timeout: float = 3.0) -> list[tuple[list[Path], bool]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.items) >= count:
                    return list(self.items)
            time.sleep(0.02)
        pytest.fail(f"expected {count} batches within {timeout} s, got {self.items}")


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, Batches]]:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    batches = Batches()
    watcher = SeedWatcher(seeds, pattern="*.txt", debounce=DELAY, deliver=batches)
    watcher.start()
    try:
        yield seeds, batches
    finally:
        watcher.stop()


def test_a_move_arrives_as_one_batch_with_both_sides(watched: tuple[Path, Batches]) -> None:
    seeds, batches = watched
    (seeds / "a.txt").write_text("x")
    assert batches.wait(1)[0] == ([seeds / "a.txt"], False)
    os.rename(seeds / "a.txt", seeds / "b.txt")
    assert batches.wait(2)[1] == ([seeds / "a.txt", seeds / "b.txt"], False)


def test_leftovers_and_hidden_paths_never_arrive(watched: tuple[Path, Batches]) -> None:
    seeds, batches = watched
    (seeds / ".hidden").mkdir()
    batches.wait(1)  # a directory appeared: a full rescan is asked for
    batches.items.clear()
    for name in (".x.txt", "y.txt.swp", "y.txt~", "y.tmp", "y.part", ".hidden/z.txt", "n.md"):
        (seeds / name).write_text("x")
    (seeds / "real.txt").write_text("x")
    assert batches.wait(1) == [([seeds / "real.txt"], False)]
    time.sleep(DELAY * 2)
    assert len(batches.items) == 1


def test_a_file_written_in_pieces_arrives_once_it_is_quiet(
    watched: tuple[Path, Batches],
) -> None:
    seeds, batches = watched
    with (seeds / "slow.txt").open("w") as f:
        for _ in range(5):
            f.write("more ")
            f.flush()
            time.sleep(DELAY / 4)
        assert batches.items == []
    assert batches.wait(1) == [([seeds / "slow.txt"], False)]


def test_rescan_schedule_from_config() -> None:
    assert "interval" in str(rescan_trigger(load_settings(overrides={"rescan_interval": 60})))
    cron = load_settings(overrides={"rescan_cron": "*/10 * * * *"})
    assert "cron" in str(rescan_trigger(cron))
    with pytest.raises(ConfigError, match="rescan_cron"):
        load_settings(overrides={"rescan_cron": "every ten minutes"})


def test_a_missing_seeds_dir_is_never_created_and_is_attached_when_it_appears(
    tmp_path: Path,
) -> None:
    seeds = tmp_path / "seeds"
    batches = Batches()
    watcher = SeedWatcher(seeds, pattern="*.txt", debounce=DELAY, deliver=batches, check_every=0.1)
    watcher.start()
    try:
        assert watcher.status.state == "missing"
        assert watcher.status.problem is not None
        assert str(seeds) in watcher.status.problem
        assert not seeds.exists()
        seeds.mkdir()
        assert batches.wait(1) == [([], True)], "a full rescan once it is there"
        assert watcher.status.state == "watching"
        (seeds / "a.txt").write_text("x")
        assert batches.wait(2)[1] == ([seeds / "a.txt"], False)
    finally:
        watcher.stop()


@pytest.mark.parametrize("how", ["rmtree", "rename-away-and-back"])
def test_a_deleted_or_replaced_seeds_dir_is_watched_again(tmp_path: Path, how: str) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    batches = Batches()
    watcher = SeedWatcher(seeds, pattern="*.txt", debounce=DELAY, deliver=batches, check_every=0.1)
    watcher.start()
    try:
        if how == "rmtree":
            shutil.rmtree(seeds)
            seeds.mkdir()
        else:
            os.rename(seeds, tmp_path / "old")
            (tmp_path / "new").mkdir()
            os.rename(tmp_path / "new", seeds)
        wait_for(lambda: watcher.status.reattached, what="the watcher re-attached")
        assert watcher.status.reattached == 1
        assert watcher.status.state == "watching"
        (seeds / "b.txt").write_text("x")
        wait_for(lambda: ([seeds / "b.txt"], False) in batches.items, what="the new seed")
    finally:
        watcher.stop()
