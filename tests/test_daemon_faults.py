"""``feedsvc run`` under operator mistakes and slow builds: real daemon, real files, real HTTP.

Each test is one fault of issue #7 that used to lose content, stop publishing unseen, or
crash the daemon: a missing or re-created seeds folder, a lost main feed, a bad config on
SIGHUP, a long build at SIGTERM, ``--port 0`` links, file lists in the log.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .conftest import seed_text
from .harness import (
    BASE_URL,
    Daemon,
    feedsvc,
    key_of,
    make_site,
    seed_name,
    wait_for,
    write,
)

pytestmark = pytest.mark.slow

SLOW_BUILD_SEEDS = 3000  # a cold build of these takes seconds


def healthz(daemon: Daemon) -> tuple[int, str]:
    code, _, body = daemon.get("/healthz")
    return code, body.decode("utf-8")


def rewrite_config(site: Path, **changes: str) -> None:
    """Set ``key = "value"`` lines in the site's feedsvc.toml, replacing the old ones."""
    config = site / "feedsvc.toml"
    lines = [
        line
        for line in config.read_text(encoding="utf-8").splitlines()
        if line.split("=")[0].strip() not in changes
    ]
    lines += [f'{k} = "{v}"' for k, v in changes.items()]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- 1: a missing seeds folder is never created, never read as "everything deleted" ----------
def test_a_missing_seeds_dir_keeps_the_feeds_until_it_is_back(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    for n in (1, 2):
        write(site / "seeds" / seed_name(n), seed_text(f"Meldung {n}.", body="Text."))
    assert feedsvc(site, "build").returncode == 0
    atom = (site / "feeds" / "atom.xml").read_bytes()
    away = site / "seeds.away"
    os.rename(site / "seeds", away)  # e.g. a mount that is not there yet

    daemon = Daemon(site, healthy=False)
    try:
        code, reason = healthz(daemon)
        assert code == 503
        assert f"{site / 'seeds'} is missing" in reason, reason
        wait_for(lambda: daemon.status()["builds_failed"] >= 2, what="a retry of the build")
        assert not (site / "seeds").exists(), "the daemon must never create seeds/"
        assert set(daemon.entries()) == {key_of(1), key_of(2)}, "the old feeds are served"
        assert (site / "feeds" / "atom.xml").read_bytes() == atom
        errors = [line for line in daemon.lines if " ERROR " in line]
        assert len(errors) <= 2, errors  # the watcher's line and the first failed build's

        write(away / seed_name(3), seed_text("Kam dazu, während es fehlte.", body="Neu."))
        os.rename(away, site / "seeds")
        daemon.served(key_of(3))
        wait_for(lambda: healthz(daemon)[0] == 200, what="healthy once seeds/ is back")
        status = daemon.settled()
        assert status["watch"]["state"] == "watching"
        assert status["watch"]["reattached"] == 1
        assert set(daemon.entries()) == {key_of(1), key_of(2), key_of(3)}
    finally:
        assert daemon.stop() == 0


def test_sighup_to_a_missing_seeds_dir_keeps_the_feeds(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    write(site / "seeds" / seed_name(1), seed_text("Bleibt veröffentlicht.", body="Text."))
    daemon = Daemon(site)
    try:
        rewrite_config(site, seeds_dir="seedz")  # a typo
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "seedz" in healthz(daemon)[1], what="the typo named in /healthz")
        assert healthz(daemon)[0] == 503
        assert not (site / "seedz").exists(), "the daemon must never create seeds/"
        assert set(daemon.entries()) == {key_of(1)}
        assert daemon.proc.poll() is None
    finally:
        assert daemon.stop() == 0


# --- 5: seeds/ deleted and made again under the running daemon ---------------------------------
def test_seeds_deleted_and_recreated_is_watched_again(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    first = seed_text("Vor dem Löschen.", body="Alt.")
    write(site / "seeds" / seed_name(1), first)
    daemon = Daemon(site)
    try:
        shutil.rmtree(daemon.seeds)
        daemon.seeds.mkdir()
        write(daemon.seeds / seed_name(1), first)
        write(daemon.seeds / seed_name(2), seed_text("Nach dem Neuanlegen.", body="Neu."))
        daemon.served(key_of(2))
        write(daemon.seeds / seed_name(3), seed_text("Noch eine danach.", body="Auch."))
        daemon.served(key_of(3))  # within seconds, not at the 300 s rescan: watched again
        status = daemon.settled()
        assert status["watch"]["state"] == "watching"
        assert status["watch"]["reattached"] >= 1
        wait_for(lambda: daemon.logged("re-attached"), what="the re-attach logged")
        assert healthz(daemon)[0] == 200
    finally:
        assert daemon.stop() == 0


# --- 6: /healthz while the main feed is missing on disk --------------------------------------
def test_healthz_is_unhealthy_while_the_main_feed_is_missing(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    write(site / "seeds" / seed_name(1), seed_text("Ein Artikel.", body="Text."))
    daemon = Daemon(site)
    try:
        (site / "feeds" / "atom.xml").unlink()
        code, reason = healthz(daemon)
        assert code == 503
        assert "atom.xml" in reason, reason
        write(site / "seeds" / seed_name(2), seed_text("Der nächste Build.", body="Repariert."))
        daemon.served(key_of(2), "atom.xml")
        wait_for(lambda: healthz(daemon)[0] == 200, what="healthy once atom.xml is back")
    finally:
        assert daemon.stop() == 0


# --- 10: config reload ---------------------------------------------------------------------------
def test_reload_refuses_a_non_utf8_or_empty_config_and_keeps_the_running_one(
    tmp_path: Path,
) -> None:
    site = make_site(tmp_path, max_items=1)
    for n in (1, 2):
        write(site / "seeds" / seed_name(n), seed_text(f"Meldung {n}.", date=f"2024-1{n}"))
    config = site / "feedsvc.toml"
    good = config.read_bytes()
    daemon = Daemon(site)
    try:
        assert daemon.feed().feed.title == "Testfeed"
        assert len(daemon.entries()) == 1

        config.write_bytes(good + 'subtitle = "Caf\xe9"\n'.encode("latin-1"))
        daemon.signal(signal.SIGHUP)
        refused = wait_for(
            lambda: [line for line in daemon.lines if "not UTF-8" in line],
            what="the non-UTF-8 config refused",
        )
        assert str(config) in refused[0]
        assert "Traceback" not in "\n".join(daemon.lines)

        config.write_bytes(b"")  # truncated, e.g. by an editor mid-save
        daemon.signal(signal.SIGHUP)
        refused = wait_for(
            lambda: [line for line in daemon.lines if "empty" in line and "not reloaded" in line],
            what="the empty config refused",
        )
        assert str(config) in refused[0]
        assert daemon.proc.poll() is None
        assert healthz(daemon)[0] == 200
        assert daemon.feed().feed.title == "Testfeed"
        assert len(daemon.entries()) == 1, "max_items = 1 still applies"

        config.write_bytes(good.replace(b"max_items = 1", b"max_items = 5"))
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: len(daemon.entries()) == 2, what="a good config is reloaded")
    finally:
        assert daemon.stop() == 0


def test_build_with_a_non_utf8_config_is_one_line_and_exit_1(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    (site / "feedsvc.toml").write_bytes(b'title = "M\xfcnchen"\n')
    result = feedsvc(site, "build")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "feedsvc.toml" in lines[0]
    assert "not UTF-8" in lines[0]


def test_an_empty_config_at_start_means_the_defaults(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    (site / "feedsvc.toml").write_bytes(b"")
    write(site / "seeds" / seed_name(1), seed_text("Mit Standardwerten.", body="Text."))
    result = feedsvc(site, "build")
    assert result.returncode == 0, result.stderr
    assert (site / "feeds" / "atom.xml").is_file()


# --- 14: the log names feeds and counts files -------------------------------------------------
def test_the_build_log_counts_files_and_never_lists_them(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    for n in range(60):
        write(site / "seeds" / seed_name(n), seed_text(f"Meldung {n}.", body=f"Text {n}."))
    daemon = Daemon(site)  # logs at DEBUG
    try:
        line = wait_for(
            lambda: next((x for x in list(daemon.lines) if "full build:" in x), None),
            what="the INFO build line",
        )
        assert "63 HTML pages" in line, line  # 60 articles, the index, 2 pages of all (#11)
        assert "feed all: atom.xml, rss.xml, feed.json" in line, line  # which feed (#8)
        assert ".html" not in line, "no file list at INFO"
        assert len(line) < 400, line
        detail = wait_for(  # logged after the INFO line: wait for it, the reader may lag
            lambda: next(
                (x for x in list(daemon.lines) if " DEBUG " in x and ": wrote " in x), None
            ),
            what="the DEBUG line with the file names",
        )
        assert detail.count(".html") <= 20
        assert "more" in detail
    finally:
        assert daemon.stop() == 0


# --- 15: --port 0 without base_url --------------------------------------------------------------
def test_port_0_without_base_url_links_to_the_served_address(tmp_path: Path) -> None:
    site = make_site(tmp_path, base_url=None)
    write(site / "seeds" / seed_name(1), seed_text("Ein Link, der geht.", body="Text."))
    daemon = Daemon(site)
    try:
        entry = daemon.entries()[key_of(1)]
        assert entry.link.startswith(f"http://127.0.0.1:{daemon.port}/"), entry.link
        assert daemon.get(urlsplit(entry.link).path)[0] == 200, "the link is served"
        rss = daemon.entries("rss.xml")[key_of(1)]
        assert rss.link == entry.link
    finally:
        assert daemon.stop() == 0


def test_an_explicit_base_url_is_kept_with_port_0(tmp_path: Path) -> None:
    site = make_site(tmp_path)  # base_url = BASE_URL
    write(site / "seeds" / seed_name(1), seed_text("Öffentliche Adresse.", body="Text."))
    daemon = Daemon(site)
    try:
        assert daemon.entries()[key_of(1)].link.startswith(BASE_URL)
    finally:
        assert daemon.stop() == 0


# --- 2: SIGTERM during a long build ---------------------------------------------------------
def add_batch(daemon: Daemon, numbers: range, folder: str) -> None:
    """Seeds written elsewhere, then renamed into seeds/ in one step (one full rescan)."""
    staging = daemon.root / "staging" / folder
    for n in numbers:
        write(staging / seed_name(n), seed_text(f"Meldung {n} aus dem Rathaus.", body="."))
    os.rename(staging, daemon.seeds / folder)


def test_sigterm_during_a_build_that_cannot_finish_exits_in_time(tmp_path: Path) -> None:
    """A build waiting for another writer (a long ``feedsvc build`` from cron) is abandoned."""
    site = make_site(tmp_path)
    write(site / "seeds" / seed_name(1), seed_text("Schon da.", body="Text."))
    daemon = Daemon(site)
    try:
        fd = os.open(site / "state" / "lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # another build holds the state directory
            write(site / "seeds" / seed_name(2), seed_text("Wartet auf die Sperre.", body="."))
            wait_for(lambda: daemon.status()["building"], what="the build waiting for the lock")
            assert daemon.get("/atom.xml")[0] == 200, "still serving during the build"
            started = time.monotonic()
            assert daemon.stop(timeout=5.0) == 0  # fails the test when it takes longer
            assert time.monotonic() - started < 5.0
            assert daemon.logged("abandoning the build in flight")
        finally:
            os.close(fd)
    finally:
        daemon.close()
    daemon = Daemon(site)
    try:
        daemon.served(key_of(2))  # the next start catches up
    finally:
        assert daemon.stop() == 0


def test_sigterm_during_a_cpu_bound_build_of_thousands_of_seeds(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    write(site / "seeds" / seed_name(0), seed_text("Schon da.", body="Text."))
    daemon = Daemon(site)
    try:
        add_batch(daemon, range(1, SLOW_BUILD_SEEDS + 1), "batch")
        wait_for(
            lambda: (b := daemon.status()["building"]) and b["kind"] == "full",
            what="the long build under way",
            timeout=10,
        )
        assert daemon.get("/atom.xml")[0] == 200, "still serving during the build"
        assert healthz(daemon)[0] == 200
        started = time.monotonic()
        assert daemon.stop(timeout=5.0) == 0  # fails the test when it takes longer
        assert time.monotonic() - started < 5.0
    finally:
        daemon.close()

    daemon = Daemon(site, start_timeout=60)  # healthy only after the catch-up build
    try:
        assert daemon.settled()["articles"] == SLOW_BUILD_SEEDS + 1
    finally:
        assert daemon.stop() == 0
