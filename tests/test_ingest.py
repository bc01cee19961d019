"""The ingest role on a host of its own (#10 part 3): real daemons, a real PostgreSQL server.

Each host is its own site folder (seeds, feeds, state) with its own ``node_name``, sharing one
store. The ingest host reports its seeds into the store; the builder publishes them beside its
own. The builders' periodic rescan is set to an hour, so only the ``NOTIFY`` wake-up can
explain a seed showing up. Waits are for conditions (the served feed, ``/status``), never time.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedsvc.build.ingest import Ingester
from feedsvc.build.publisher import Publisher
from feedsvc.config import load_settings
from feedsvc.errors import MassDeletionError
from feedsvc.store import open_store

from .conftest import seed_text
from .harness import Daemon, content, key_of, make_site, seed_name, wait_for, write
from .pg import PgDatabase

pytestmark = pytest.mark.slow
SITE = "ingest.example.org"
OUTAGE = 30.0  # a hang guard across a server outage (retries back off: 1, 2, 5 s, ...)


def host(tmp_path: Path, name: str, url: str) -> Path:
    return make_site(
        tmp_path / name, store_url=url, site_id=SITE, node_name=name, rescan_interval=3600
    )


def add_seed(site: Path, n: int, lead: str = "Ein Satz als Aufmacher.") -> Path:
    path = site / "seeds" / seed_name(n)
    write(path, seed_text(lead, body=f"Meldung Nummer {n} des Tages.\n\nZweiter Absatz."))
    return path


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        if d.proc.poll() is None:
            d.proc.send_signal(signal.SIGCONT)
        d.close()


def test_seeds_written_on_an_ingest_host_are_published_edited_and_deleted_by_the_builder(
    tmp_path: Path, pg_db: PgDatabase, daemons: list[Daemon]
) -> None:
    a, b = host(tmp_path, "ingest-a", pg_db.url), host(tmp_path, "builder-b", pg_db.url)
    add_seed(b, 1)
    daemons.append(db := Daemon(b))  # all three roles: its own seeds and the reported ones
    db.served(key_of(1))
    daemons.append(da := Daemon(a, "--roles", "ingest", serve=False))
    status_b = db.settled()
    assert status_b["roles"] == ["ingest", "build", "serve"]

    add_seed(a, 2, "Vom Aufnahmerechner.")
    db.served(key_of(2), where=lambda e: "Vom Aufnahmerechner" in content(e))
    first = db.entries()[key_of(2)].id
    assert first.startswith("tag:news.example.org,")
    assert first.endswith(key_of(2))

    add_seed(a, 2, "Nachgebessert.")  # edited on its host: the same id, the new text
    db.served(key_of(2), where=lambda e: "Nachgebessert" in content(e))
    assert db.entries()[key_of(2)].id == first

    (a / "seeds" / seed_name(2)).unlink()  # deleted on its host: unpublished
    wait_for(lambda: key_of(2) not in db.entries(), what="the deleted seed unpublished")
    assert key_of(1) in db.entries()
    add_seed(a, 2, "Nachgebessert.")  # back again: the id the ledger kept
    db.served(key_of(2))
    assert db.entries()[key_of(2)].id == first

    assert not (a / "feeds").exists()  # an ingest host never writes feeds/
    assert da.logged("full build")
    rescans = [line for line in db.lines if line.endswith("periodic full rescan")]
    assert rescans == []  # the wake-ups did it, not the net


def test_the_same_key_on_two_hosts_is_one_duplicate_naming_both(
    tmp_path: Path, pg_db: PgDatabase, daemons: list[Daemon]
) -> None:
    a, b = host(tmp_path, "ingest-a", pg_db.url), host(tmp_path, "builder-b", pg_db.url)
    add_seed(b, 5, "Auf dem Bauenden.")
    daemons.append(db := Daemon(b))
    db.served(key_of(5))
    first = db.entries()[key_of(5)].id
    daemons.append(Daemon(a, "--roles", "ingest", serve=False))
    add_seed(a, 5, "Auf dem Aufnehmenden.")

    def duplicate() -> list[str]:
        return [e["reason"] for e in db.status()["errors"] if "duplicate key" in e["reason"]]

    reasons = wait_for(duplicate, what="the duplicate reported")
    name = seed_name(5)
    local, remote = str(b / "seeds" / name), f"//ingest-a/{name}"
    assert sorted(e["path"] for e in db.status()["errors"]) == [remote, local]
    assert sorted(reasons) == [
        f"duplicate key {key_of(5)}: also {remote}",
        f"duplicate key {key_of(5)}: also {local}",
    ]
    assert "Bauenden" in content(db.entries()[key_of(5)])  # the first file keeps publishing

    (b / "seeds" / name).unlink()  # the publishing file goes: the other host's takes over
    db.served(key_of(5), where=lambda e: "Aufnehmenden" in content(e))
    assert db.entries()[key_of(5)].id == first
    wait_for(lambda: db.status()["errors"] == [], what="no duplicate any more")


def test_a_builder_without_seeds_of_its_own_builds_what_was_reported(
    tmp_path: Path, pg_db: PgDatabase
) -> None:
    a, b = host(tmp_path, "ingest-a", pg_db.url), host(tmp_path, "builder-b", pg_db.url)
    (b / "seeds").rmdir()  # a builder without the ingest role has no seeds folder
    for n in range(1, 6):
        add_seed(a, n)
    ingest = Ingester(load_settings(config=a / "feedsvc.toml", env={}))
    settings_b = load_settings(config=b / "feedsvc.toml", env={})
    builder = Publisher(settings_b, local=False)
    reported = ingest.build()
    assert (reported.new, reported.total, reported.errors) == (5, 5, [])
    again = ingest.build()
    assert (again.new, again.changed, again.unchanged) == (0, 0, 5)

    built = builder.build()
    assert (built.new, built.total, built.errors) == (5, 5, [])
    assert (b / "feeds" / "atom.xml").is_file()
    assert builder.build().new == 0  # nothing reported since: nothing to do

    write(a / "seeds" / seed_name(3), " date 2024-13 kaputt\n\nText.")
    assert ingest.build([a / "seeds" / seed_name(3)]).changed == 1
    report = builder.build([])
    assert [(e.path, e.line) for e in report.errors] == [(f"//ingest-a/{seed_name(3)}", 1)]
    assert report.total == 5  # a seed that turns bad keeps its last good version published

    for n in range(1, 6):
        (a / "seeds" / seed_name(n)).unlink()
    with pytest.raises(MassDeletionError):  # the guard on the ingest host: nothing reported
        ingest.build()
    with open_store(settings_b) as store:
        assert store.inbox_hosts() == {"ingest-a": 5}
    assert builder.build().total == 5


def test_an_ingest_host_cut_off_from_the_server_retries_and_catches_up(
    tmp_path: Path, pg_db: PgDatabase, daemons: list[Daemon]
) -> None:
    a, b = host(tmp_path, "ingest-a", pg_db.url), host(tmp_path, "builder-b", pg_db.url)
    add_seed(a, 1)
    daemons.append(db := Daemon(b, "--roles", "build,serve"))
    daemons.append(da := Daemon(a, "--roles", "ingest", serve=False))
    db.served(key_of(1))
    status = db.status()
    assert (status["roles"], status["watch"]) == (["build", "serve"], None)  # no seeds of its own

    pg_db.server.stop()
    try:
        add_seed(a, 7, "Während der Störung geschrieben.")
        wait_for(lambda: da.logged("build failed"), timeout=OUTAGE, what="the round fails")
        assert da.proc.poll() is None  # it keeps running, and retries
    finally:
        pg_db.server.start()

    def caught_up() -> bool:
        entry = db.entries().get(key_of(7))
        return entry is not None and "Störung" in content(entry)

    wait_for(caught_up, timeout=OUTAGE, what="the seed written during the outage published")
    assert pg_db.server.password not in "\n".join(da.lines)
    assert not (a / "feeds").exists()
