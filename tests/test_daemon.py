"""``feedsvc run`` end to end: a real daemon subprocess, real files, real HTTP on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest

from .conftest import seed_text
from .harness import (
    Daemon,
    content,
    feedsvc,
    key_of,
    make_site,
    seed_name,
    wait_for,
    write,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon for the tests that only add their own seeds (each uses its own numbers)."""
    daemon = Daemon(make_site(tmp_path_factory.mktemp("shared")))
    try:
        yield daemon
    finally:
        daemon.close()


def in_both(daemon: Daemon, key: str) -> bool:
    return key in daemon.entries("atom.xml") and key in daemon.entries("rss.xml")


def test_a_seed_appears_changes_in_place_and_goes(shared: Daemon) -> None:
    path = shared.seeds / seed_name(1)
    write(path, seed_text("Der Gemeinderat tagt heute.", body="Es geht um das Budget."))
    wait_for(lambda: in_both(shared, key_of(1)), what="new seed in Atom and RSS")
    first = shared.entries()[key_of(1)]
    assert first.title.startswith("Der Gemeinderat tagt heute")
    assert "Budget" in content(first)

    write(path, seed_text("Der Gemeinderat tagt heute.", body="Es geht um die Schulen."))
    shared.served(key_of(1), where=lambda e: e and "Schulen" in content(e))  # Atom and RSS
    assert shared.entries()[key_of(1)].id == first.id

    path.unlink()
    wait_for(lambda: not any(key_of(1) in shared.entries(n) for n in ("atom.xml", "rss.xml")))


def test_moves_in_out_and_within(shared: Daemon) -> None:
    outside = shared.root / "incoming"
    write(outside / seed_name(2), seed_text("Ein Zug fährt ein.", body="Pünktlich."))
    os.rename(outside / seed_name(2), shared.seeds / seed_name(2))  # in
    wait_for(lambda: in_both(shared, key_of(2)), what="moved-in seed")
    entry_id = shared.entries()[key_of(2)].id

    (shared.seeds / "ressort").mkdir()
    moved_path = shared.seeds / "ressort" / seed_name(2)
    os.rename(shared.seeds / seed_name(2), moved_path)  # within, into a subfolder
    # the first folder is the category: the entry shows the move
    in_ressort = wait_for(
        lambda: [t.term for t in shared.entries()[key_of(2)].get("tags", [])] == ["ressort"],
        what="the moved seed's entry in category 'ressort'",
    )
    assert in_ressort
    assert shared.entries()[key_of(2)].id == entry_id

    renamed = shared.seeds / "ressort" / "0002_00000000000000ff.txt"
    os.rename(moved_path, renamed)  # within, to another key: the ledger sees the rename
    moved = wait_for(
        lambda: [e for e in shared.entries().values() if e.link.endswith("00000000000000ff.html")],
        what="the renamed seed published under its new name",
    )
    assert [e.id for e in moved] == [entry_id], "a rename keeps the entry id"

    os.rename(renamed, outside / "weg.txt")  # out
    wait_for(lambda: not any("Pünktlich" in content(e) for e in shared.entries().values()))

    # An editor or transfer tool writing a temp file, then renaming it into place.
    write(shared.seeds / f".{seed_name(3)}.part", seed_text("Atomar geschrieben.", body="Ganz."))
    os.rename(shared.seeds / f".{seed_name(3)}.part", shared.seeds / seed_name(3))
    wait_for(lambda: in_both(shared, key_of(3)), what="renamed-into-place seed")


def test_leftovers_are_ignored(shared: Daemon) -> None:
    for name in (".versteckt.txt", f"{seed_name(4)}.swp", f"{seed_name(4)}~", "x.tmp", "y.part"):
        write(shared.seeds / name, "kein Seed\n")
    write(shared.seeds / seed_name(5), seed_text("Ein echter Seed.", body="Danach."))
    wait_for(lambda: key_of(5) in shared.entries())
    errors = shared.settled()["errors"]
    assert not [e for e in errors if "kein" in e["reason"] or "versteckt" in e["path"]]


def test_a_slowly_written_seed_is_never_published_half(shared: Daemon) -> None:
    path = shared.seeds / seed_name(6)
    chunks = [
        " date 2024-11 Langsam geschrieben.\n\nErster Absatz.\n",
        "\nZweiter Absatz.\n",
        "\nDritter Absatz.\n",
        "\nVierter Absatz.\n",
        "\nLetzter Absatz, jetzt vollständig.\n",
    ]
    seen_half = []
    with path.open("w", encoding="utf-8") as f:
        for chunk in chunks:  # pauses well under the 0.5 s debounce
            f.write(chunk)
            f.flush()
            entry = shared.entries().get(key_of(6))
            if entry is not None:
                seen_half.append(content(entry))
            time.sleep(0.1)
    wait_for(lambda: "vollständig" in content(shared.entries().get(key_of(6), {})))
    assert seen_half == []
    assert not [e for e in shared.settled()["errors"] if e["path"].endswith(seed_name(6))]


def test_a_half_written_update_keeps_the_last_good_version(shared: Daemon) -> None:
    path = shared.seeds / seed_name(7)
    write(path, seed_text("Erste Fassung.", body="Alter Text."))
    wait_for(lambda: key_of(7) in shared.entries())
    with path.open("w", encoding="utf-8") as f:
        f.write(" date 2024-11 Zweite Fassung.\n")  # no body yet: not a valid seed
        f.flush()
        wait_for(
            lambda: [e for e in shared.status()["errors"] if e["path"].endswith(seed_name(7))],
            what="the half file reported",
        )
        assert "Alter Text" in content(shared.entries()[key_of(7)]), "last good version stays"
        f.write("\nNeuer Text.\n")
    wait_for(lambda: "Neuer Text" in content(shared.entries().get(key_of(7), {})))
    wait_for(
        lambda: not [e for e in shared.status()["errors"] if e["path"].endswith(seed_name(7))],
        what="no error left behind",
    )


def test_http_validators_gzip_and_traversal(shared: Daemon) -> None:
    write(shared.seeds / seed_name(8), seed_text("Für den Cache.", body="Inhalt."))
    wait_for(lambda: key_of(8) in shared.entries())
    _, headers, _ = shared.get("/atom.xml")
    assert headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert headers["Cache-Control"] == "max-age=60"
    again = shared.get("/atom.xml", {"If-None-Match": headers["ETag"]})
    assert again[0] == 304
    since = shared.get("/atom.xml", {"If-Modified-Since": headers["Last-Modified"]})
    assert since[0] == 304
    _, zheaders, zbody = shared.get("/rss.xml", {"Accept-Encoding": "gzip"})
    assert zheaders["Content-Encoding"] == "gzip"
    assert feedparser.parse(gzip.decompress(zbody)).bozo == 0
    assert shared.get("/rss.xml")[1]["Content-Type"] == "application/rss+xml; charset=utf-8"
    status, jheaders, jbody = shared.get("/feed.json")
    assert status == 200
    assert jheaders["Content-Type"] == "application/feed+json; charset=utf-8"
    assert json.loads(jbody)["version"] == "https://jsonfeed.org/version/1.1"
    for path in ("/../feedsvc.toml", "/%2e%2e/feedsvc.toml", "/..%2ffeedsvc.toml", "/articles/"):
        assert shared.get(path)[0] == 404, path
    status, hheaders, page = shared.get("/")  # the HTML index behind every feed's alternate link
    assert status == 200
    assert hheaders["Content-Type"] == "text/html; charset=utf-8"
    assert b'type="application/atom+xml"' in page

    write(shared.seeds / seed_name(9), seed_text("Neu im Feed.", body="Mehr."))
    wait_for(lambda: key_of(9) in shared.entries())
    status, newer, _ = shared.get("/atom.xml", {"If-None-Match": headers["ETag"]})
    assert status == 200
    assert newer["ETag"] != headers["ETag"]


def test_a_bad_seed_is_reported_and_the_daemon_carries_on(shared: Daemon) -> None:
    write(shared.seeds / seed_name(10), "kein Datum hier\n\nText.\n")
    error = wait_for(
        lambda: [e for e in shared.status()["errors"] if e["path"].endswith(seed_name(10))]
    )
    assert error[0]["line"] == 1
    assert "date" in error[0]["reason"]
    assert shared.get("/healthz")[0] == 200  # a bad seed is not a failed build
    write(shared.seeds / seed_name(10), seed_text("Repariert.", body="Gut."))
    wait_for(lambda: key_of(10) in shared.entries())
    assert not [e for e in shared.settled()["errors"] if e["path"].endswith(seed_name(10))]


def test_a_burst_of_500_files_gives_a_few_builds(tmp_path: Path) -> None:
    daemon = Daemon(make_site(tmp_path, max_items=50))
    try:
        before = daemon.status()["builds"]
        staging = tmp_path / "staging"
        staging.mkdir()
        for n in range(500):
            write(staging / seed_name(n), seed_text(f"Meldung Nummer {n}.", body=f"Text {n}."))
        for n in range(500):
            os.rename(staging / seed_name(n), daemon.seeds / seed_name(n))
        wait_for(lambda: daemon.status()["articles"] == 500, timeout=10, what="500 articles")
        status = daemon.settled()  # (the feeds were written before /status said 500)
        assert len(daemon.feed("atom.xml").entries) == 50
        assert len(daemon.feed("rss.xml").entries) == 50
        builds = status["builds"] - before
        assert 1 <= builds <= 20, f"{builds} builds for 500 files"
        assert status["error_count"] == 0
    finally:
        daemon.close()


def test_sigterm_exits_0_and_the_next_start_catches_up(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    write(site / "seeds" / seed_name(1), seed_text("Bleibt, wird geändert.", body="Alt."))
    write(site / "seeds" / seed_name(2), seed_text("Wird gelöscht.", body="Weg."))
    daemon = Daemon(site)
    try:
        assert set(daemon.entries()) == {key_of(1), key_of(2)}
        first_id = daemon.entries()[key_of(1)].id

        second = feedsvc(site, "run", "--port", "0")
        assert second.returncode == 1
        assert "already running" in second.stderr

        build = feedsvc(site, "build")
        assert build.returncode == 0, build.stderr

        started = time.monotonic()
        assert daemon.stop() == 0
        assert time.monotonic() - started < 5
    finally:
        daemon.close()

    write(site / "seeds" / seed_name(1), seed_text("Bleibt, wird geändert.", body="Neu."))
    (site / "seeds" / seed_name(2)).unlink()
    write(site / "seeds" / seed_name(3), seed_text("Kam dazu.", body="Frisch."))
    daemon = Daemon(site)
    try:
        entries = wait_for(lambda: daemon.entries() if len(daemon.entries()) == 2 else None)
        assert set(entries) == {key_of(1), key_of(3)}
        assert entries[key_of(1)].id == first_id
        assert "Neu" in content(entries[key_of(1)])
    finally:
        assert daemon.stop() == 0


def test_a_failed_build_is_retried_and_sighup_reloads(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    daemon = Daemon(site)
    try:
        feeds = site / "feeds"
        shutil.rmtree(feeds)
        feeds.write_text("kein Verzeichnis\n")  # the next build cannot write the feeds
        write(site / "seeds" / seed_name(1), seed_text("Erster Versuch.", body="Scheitert."))
        status = wait_for(
            lambda: (s := daemon.status())["builds_failed"] >= 1 and s, what="a failed build"
        )
        assert daemon.get("/healthz")[0] == 503
        assert status["last_build"]["ok"] is False
        assert "feeds" in status["last_build"]["error"]
        assert daemon.proc.poll() is None

        feeds.unlink()
        write(site / "seeds" / seed_name(2), seed_text("Zweiter Versuch.", body="Klappt."))
        wait_for(lambda: daemon.get("/healthz")[0] == 200, what="healthy at the next trigger")
        assert set(daemon.entries()) == {key_of(1), key_of(2)}, "the failed change was kept"

        config = site / "feedsvc.toml"
        config.write_text(config.read_text() + "max_items = 1\n", encoding="utf-8")
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: len(daemon.entries()) == 1, what="max_items = 1 after SIGHUP")
        assert daemon.proc.poll() is None
    finally:
        assert daemon.stop() == 0


def test_no_serve_still_builds(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    daemon = Daemon(site, "--no-serve", "--log-format", "json", serve=False)
    try:
        write(site / "seeds" / seed_name(1), seed_text("Ohne Server.", body="Nur Dateien."))
        atom = site / "feeds" / "atom.xml"
        wait_for(lambda: atom.is_file() and key_of(1) in atom.read_text(encoding="utf-8"))
        records = [json.loads(line) for line in list(daemon.lines) if line.startswith("{")]
        assert any("not serving" in r["message"] for r in records)
        assert {"time", "level", "logger", "message"} <= set(records[0])
    finally:
        assert daemon.stop() == 0
