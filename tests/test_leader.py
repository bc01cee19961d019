"""One active builder per site on PostgreSQL (#10 part 2, part 5): real daemons, a real server.

Each node is its own site folder (seeds, feeds, state) sharing one store, as hosts would; seeds
are written into every node's seeds folder, as a replicated folder would. Waits are for
conditions (``/status``, the served feed, the log), never for time.
"""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from feedsvc.build.publisher import Publisher
from feedsvc.config import Settings
from feedsvc.errors import LeaderError
from feedsvc.service.leader import Leadership, Timing, leadership_for
from feedsvc.store import open_store
from feedsvc.store.pglock import read_leader

from .conftest import seed_text
from .harness import Daemon, feedsvc, key_of, make_site, seed_name, wait_for, write
from .pg import PgDatabase

pytestmark = pytest.mark.slow
SITE = "leader.example.org"
TAKEOVER = 20.0  # a hang guard for a takeover (the bench measures it): SIGSTOP needs ~3 s


def node(tmp_path: Path, name: str, url: str) -> Path:
    return make_site(tmp_path / name, store_url=url, site_id=SITE)


def add_seed(n: int, *sites: Path) -> None:
    for site in sites:
        write(site / "seeds" / seed_name(n), seed_text(f"Meldung Nummer {n} des Tages."))


def leader_of(d: Daemon) -> dict[str, Any] | None:
    s = d.status()
    return s if s["leading"] and s["leader"]["pid"] == d.proc.pid else None


def ids(d: Daemon) -> dict[str, str]:
    return {key: e.id for key, e in d.entries().items()}


def feed_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def lock_sessions(db: PgDatabase) -> list[int]:
    """Backends of leadership lock connections (``feedsvc-leader@host:pid``)."""
    with db.server.admin() as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s"
            " AND application_name LIKE 'feedsvc-leader@%%'",
            (db.name,),
        ).fetchall()
    return [int(r[0]) for r in rows]


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Daemons a test started: resumed (if stopped) and ended whatever happened."""
    started: list[Daemon] = []
    yield started
    for d in started:
        if d.proc.poll() is None:
            d.proc.send_signal(signal.SIGCONT)
        d.close()


def test_sqlite_has_no_leadership(tmp_path: Path) -> None:
    settings = Settings(seeds_dir=tmp_path / "seeds", state_dir=tmp_path / "state")
    assert leadership_for(settings) is None


def test_one_leader_builds_and_a_standby_is_healthy(
    tmp_path: Path, pg_db: PgDatabase, daemons: list[Daemon]
) -> None:
    a, b = node(tmp_path, "a", pg_db.url), node(tmp_path, "b", pg_db.url)
    add_seed(1, a, b)
    daemons.append(da := Daemon(a))
    status = wait_for(lambda: leader_of(da), timeout=TAKEOVER, what="a leads")
    assert status["leader"]["epoch"] == 1
    assert status["leader"]["host"] == socket.gethostname()
    assert status["store"] == {"backend": "postgresql", "url": pg_db.url.replace(
        f":{pg_db.server.password}@", "@")}  # fmt: skip
    assert pg_db.server.password not in json.dumps(status)
    da.served(key_of(1))

    daemons.append(db := Daemon(b))
    wait_for(lambda: db.status()["leader"] is not None, what="b sees the leader")
    code, _, body = db.get("/healthz")
    assert (code, body) == (200, b"ok (standby)\n")
    status = db.status()
    assert not status["leading"]
    assert status["role"] == "standby"
    assert status["leader"]["pid"] == da.proc.pid
    assert status["leader"]["epoch"] == 1
    add_seed(2, a, b)
    da.served(key_of(2))
    db.settled()
    assert not (b / "feeds" / "atom.xml").exists()  # a standby never builds
    assert not db.logged("full build")
    assert not db.logged("incremental build")


def test_takeover_after_kill_9_with_a_catch_up_build(
    tmp_path: Path, pg_db: PgDatabase, daemons: list[Daemon]
) -> None:
    a, b = node(tmp_path, "a", pg_db.url), node(tmp_path, "b", pg_db.url)
    for n in (1, 2, 3):
        add_seed(n, a, b)
    daemons.append(da := Daemon(a))
    wait_for(lambda: leader_of(da), timeout=TAKEOVER, what="a leads")
    da.served(key_of(3))
    before = ids(da)
    daemons.append(db := Daemon(b))
    wait_for(lambda: db.status()["leader"] is not None, what="b sees the leader")

    da.proc.kill()
    da.proc.wait()
    add_seed(4, a, b)  # while nobody leads: only the new leader's catch-up build sees it
    status = wait_for(lambda: leader_of(db), timeout=TAKEOVER, what="b takes over")
    assert status["leader"]["epoch"] == 2
    db.served(key_of(4))
    after = ids(db)
    assert {k: after[k] for k in before} == before  # the same ids from the shared ledger
    wait_for(lambda: db.logged("full build"), what="the catch-up build")


def test_a_stopped_leader_that_wakes_up_is_fenced_and_publishes_nothing(
    tmp_path: Path, pg_db: PgDatabase, daemons: list[Daemon]
) -> None:
    a, b = node(tmp_path, "a", pg_db.url), node(tmp_path, "b", pg_db.url)
    add_seed(1, a, b)
    daemons.append(da := Daemon(a))
    wait_for(lambda: leader_of(da), timeout=TAKEOVER, what="a leads")
    da.served(key_of(1))
    da.settled()
    daemons.append(db := Daemon(b))
    wait_for(lambda: db.status()["leader"] is not None, what="b sees the leader")

    published = feed_files(a / "feeds")
    da.proc.send_signal(signal.SIGSTOP)
    wait_for(lambda: leader_of(db), timeout=TAKEOVER, what="b takes over from a frozen a")
    add_seed(2, a, b)  # a's watcher has it queued when it wakes up
    db.served(key_of(2))
    da.proc.send_signal(signal.SIGCONT)

    def demoted() -> bool:
        s = da.status()
        return not s["leading"] and s["leader"] is not None and s["leader"]["epoch"] == 2

    wait_for(demoted, timeout=TAKEOVER, what="a knows it is a standby now")
    wait_for(lambda: da.logged("no longer the leader"), what="a says it stepped down")
    da.settled()
    assert feed_files(a / "feeds") == published  # not one byte written after the takeover
    code, _, body = da.get("/healthz")
    assert (code, body) == (200, b"ok (standby)\n")


def test_a_build_fenced_out_in_its_transaction_writes_nothing(
    tmp_path: Path, pg_db: PgDatabase
) -> None:
    site = node(tmp_path, "a", pg_db.url)
    add_seed(1, site)
    settings = Settings(
        store_url=pg_db.url,
        site_id=SITE,
        seeds_dir=site / "seeds",
        feeds_dir=site / "feeds",
        state_dir=site / "state",
    )
    patient = Timing(heartbeat=1, lease=600, idle_timeout=1200, deadline=10)  # never runs out
    old = Leadership(settings, timing=patient)
    assert old.try_promote()
    assert old.epoch == 1
    (lock_session,) = lock_sessions(pg_db)
    assert pg_db.server.terminate(lock_session)  # as the server's idle timeout would
    new = Leadership(settings)
    assert new.try_promote()
    assert new.epoch == 2
    assert old.leading  # by its own clock: only the store's epoch can stop it

    with pytest.raises(LeaderError, match="fenced out: this process led with epoch 1"):
        Publisher(settings, fence=old.fence).build()
    assert not (site / "feeds").exists()
    assert not old.leading
    with open_store(settings) as store:
        assert store.count_live() == 0  # the ledger work rolled back with the build

    report = Publisher(settings, fence=new.fence).build()
    assert report.new == 1
    assert (site / "feeds" / "atom.xml").is_file()
    new.stop()
    old.stop()


def test_feedsvc_build_is_refused_while_a_daemon_leads(
    tmp_path: Path, pg_db: PgDatabase, daemons: list[Daemon]
) -> None:
    a, b = node(tmp_path, "a", pg_db.url), node(tmp_path, "b", pg_db.url)
    add_seed(1, a, b)
    daemons.append(da := Daemon(a))
    wait_for(lambda: leader_of(da), timeout=TAKEOVER, what="a leads")

    done = feedsvc(b, "build")
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert f"on host {socket.gethostname()} (pid {da.proc.pid}, epoch 1" in line
    assert "stop that daemon to build by hand" in line
    assert not (b / "feeds").exists()

    assert da.stop() == 0  # gives the lead up
    done = feedsvc(b, "build")
    assert done.returncode == 0, done.stderr
    assert (b / "feeds" / "atom.xml").is_file()
    with pg_db.connect() as conn:
        (value,) = conn.execute("SELECT value FROM meta WHERE name = 'leader'").fetchone()
    assert json.loads(value)["epoch"] == 2
    assert json.loads(value)["kind"] == "build"


def test_a_daemon_rides_out_a_server_outage_and_catches_up(
    tmp_path: Path, pg_db: PgDatabase, daemons: list[Daemon]
) -> None:
    a = node(tmp_path, "a", pg_db.url)
    add_seed(1, a)
    daemons.append(da := Daemon(a))
    wait_for(lambda: leader_of(da), timeout=TAKEOVER, what="a leads")
    da.served(key_of(1))
    da.settled()
    published = feed_files(a / "feeds")

    pg_db.server.stop()
    add_seed(2, a)

    def unhealthy() -> str | None:
        code, _, body = da.get("/healthz")
        text = body.decode()
        return text if code == 503 and "store unreachable" in text else None

    reason = wait_for(unhealthy, timeout=TAKEOVER, what="/healthz says the store is gone")
    assert "store unreachable" in reason
    assert pg_db.server.password not in reason
    redacted = pg_db.url.replace(f":{pg_db.server.password}@", "@")
    assert redacted in reason
    wait_for(lambda: da.logged("next in 2 s"), timeout=TAKEOVER, what="a third try")
    assert da.proc.poll() is None
    assert feed_files(a / "feeds") == published  # nothing half published meanwhile
    code, _, _ = da.get("/atom.xml")
    assert code == 200  # still serving

    pg_db.server.start()
    wait_for(lambda: leader_of(da), timeout=TAKEOVER, what="a leads again")
    da.served(key_of(2))
    tries = [line for line in da.lines if "leader election: " in line]
    errors = [line for line in tries if " ERROR " in line]
    assert 1 <= len(errors) < len(tries), errors  # a line per new failure, not one per retry
    assert da.logged(f"store {redacted} reachable again")


def test_the_lock_connection_keeps_the_url_s_own_options(
    tmp_path: Path, pg_schema_url: str
) -> None:
    """A URL with ``options=-csearch_path=…`` (a schema per site): the leader record is there."""
    settings = Settings(store_url=pg_schema_url, site_id=SITE, state_dir=tmp_path / "state")
    leadership = Leadership(settings)
    try:
        assert leadership.try_promote()
        assert leadership.status()["leader"]["epoch"] == 1
        with open_store(settings) as store:
            assert read_leader(store) is not None
    finally:
        leadership.stop()
