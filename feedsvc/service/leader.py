"""One active builder per site on PostgreSQL (#10 part 2): promotion, heartbeats, fencing.

Every process that builds against PostgreSQL (``feedsvc run``, ``feedsvc build``) competes for
the site's leadership lock (``store/pglock.py``). The holder is the leader: it heartbeats every
``heartbeat`` s, and its lease runs ``lease`` s from the last heartbeat it sent, shorter than
the ``idle_session_timeout`` the server enforces on the lock's session, so a leader that is
frozen (SIGSTOP, a stuck VM) or cut off has stopped counting itself leader before the server
frees the lock for a standby. It demotes itself (and closes the lock's connection) when a
heartbeat fails, when the lease runs out, or when the store's epoch is no longer its own.

Each promotion bumps the store's ``leader_epoch``. The build checks ``fence`` inside its store
transaction, at its start and right before it writes: a process whose lease ran out, or whose
epoch is not the store's, abandons the build with a ``LeaderError`` and writes nothing. A new
leader first runs a full (catch-up) build (``on_promoted``). Standbys retry the lock every
``retry`` s; while the server is unreachable, they (and a demoted leader) retry with a growing
pause, one log line per new failure.

With SQLite (no ``store_url``) none of this exists: ``leadership_for`` returns None and psycopg
is never imported.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import Settings, redact_url
from ..errors import LeaderError, StoreError
from ..store import Store, open_store, store_path

if TYPE_CHECKING:
    from ..store.pglock import Kind, LeaderLock, LeaderRecord

log = logging.getLogger(__name__)

BUILD_WAIT = 30.0  # s ``feedsvc build`` waits for another one-shot build's lead (as its lock)
BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 15.0)  # s between tries while the server is unreachable


@dataclass(frozen=True, slots=True)
class Timing:
    """The leadership's clock, in seconds: lease < idle_timeout, deadline < lease."""

    heartbeat: float = 0.5  # between a leader's heartbeats
    lease: float = 2.0  # a leader leads this long after the last heartbeat it sent
    idle_timeout: float = 3.0  # the server ends a silent lock session after this
    deadline: float = 1.0  # for one statement on the lock's connection
    retry: float = 0.2  # between a standby's tries for the lock

    def __post_init__(self) -> None:
        if not (self.deadline < self.lease < self.idle_timeout and self.heartbeat < self.lease):
            raise ValueError(f"inconsistent leadership timing: {self}")


class Leadership:
    """This process's part in its site's leader election (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        kind: Kind = "run",
        on_promoted: Callable[[LeaderRecord], None] | None = None,
        timing: Timing | None = None,
    ) -> None:
        assert settings.store_url is not None
        self.settings = settings
        self._prepared = False  # the store's tables exist (the first connection opens it once)
        self.url = settings.store_url
        self.where = redact_url(settings.store_url)
        self.site = settings.site
        self.kind: Kind = kind
        self.timing = timing or Timing()
        self._on_promoted = on_promoted
        self._mutex = threading.Lock()
        self._lock: LeaderLock | None = None
        self._epoch: int | None = None
        self._lease_until = 0.0
        self._record: LeaderRecord | None = None  # the store's leader, as last seen
        self._since: float | None = None  # monotonic time of the promotion
        self.problem: str | None = None  # the server is unreachable: why
        self.promotions = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- state -----------------------------------------------------------------------------------
    @property
    def leading(self) -> bool:
        """Promoted, and the lease has not run out (checked against the monotonic clock)."""
        with self._mutex:
            return self._epoch is not None and time.monotonic() < self._lease_until

    @property
    def epoch(self) -> int | None:
        with self._mutex:
            return self._epoch

    def status(self) -> dict[str, Any]:
        """The ``/status`` part: whether this node leads, and the leader the store names."""
        with self._mutex:
            record, epoch = self._record, self._epoch
            leading = epoch is not None and time.monotonic() < self._lease_until
        leader = None
        if record is not None:
            leader = {
                "epoch": record.epoch,
                "host": record.host,
                "pid": record.pid,
                "kind": record.kind,
                "since": record.since,
            }
        return {
            "leading": leading,
            "role": "leader" if leading else "standby",
            "leader": leader,
            "promotions": self.promotions,
        }

    def _demote(self, reason: str) -> None:
        with self._mutex:
            epoch, self._epoch, self._lease_until = self._epoch, None, 0.0
        if epoch is not None:
            log.warning(
                "no longer the leader of site %r (epoch %d): %s; not building until promoted again",
                self.site,
                epoch,
                reason,
            )

    # -- fencing ---------------------------------------------------------------------------------
    def fence(self, store: Store) -> None:
        """Raise ``LeaderError`` unless this process still leads: called by a build inside its
        store transaction (under the build lock, which a promotion takes too)."""
        from ..store.pglock import read_leader

        epoch = self.epoch
        if epoch is None or not self.leading:
            self._demote("its lease ran out")
            raise LeaderError(
                self.site,
                "this process no longer leads the builds (its lease ran out); "
                "build abandoned, nothing written",
            )
        record = read_leader(store)
        if record is None or record.epoch != epoch:
            now = "no leader" if record is None else record.describe()
            self._demote(f"fenced out: the store names {now}")
            raise LeaderError(
                self.site,
                f"fenced out: this process led with epoch {epoch}, but the store names {now}; "
                "build abandoned, nothing written",
                leader=None if record is None else record.describe(),
            )
        if not self.leading:  # the lease ran out while the store answered
            self._demote("its lease ran out")
            raise LeaderError(
                self.site, "the lease ran out during the build; build abandoned, nothing written"
            )

    def guard(self) -> None:
        """Before each file a build writes: raise ``LeaderError`` once the lease ran out.

        Only the clock, no round trip: a leader stopped (SIGSTOP) in the middle of writing
        wakes up past its lease and writes no further file.
        """
        if not self.leading:
            self._demote("its lease ran out while writing")
            raise LeaderError(
                self.site,
                "this process lost the lead while writing the feeds (its lease ran out); "
                "build abandoned, the store is kept as it was",
            )

    # -- one step --------------------------------------------------------------------------------
    def _connect(self) -> LeaderLock:
        from ..store.pglock import LeaderLock

        if not self._prepared:  # creates or migrates the tables; refuses another site's store
            with open_store(self.settings):
                self._prepared = True
        if self._lock is None:
            t = self.timing
            self._lock = LeaderLock(
                self.url, site_id=self.site, idle_timeout=t.idle_timeout, deadline=t.deadline
            )
        return self._lock

    def _drop(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()  # the server frees a session lock with its session

    def try_promote(self) -> bool:
        """Take the lock if free and become the leader; False: another process holds it.

        Raises ``StoreError`` when the server cannot be reached (the connection is dropped).
        """
        try:
            lock = self._connect()
            started = time.monotonic()
            got, record = lock.try_lock()
            with self._mutex:
                self._record = record
            if not got:
                return False
            record = lock.promote(kind=self.kind)  # may wait for a frozen leader's build
            started = time.monotonic()
            lock.heartbeat()  # the lease runs from a round trip sent now, not before the wait
        except StoreError:
            self._drop()
            raise
        with self._mutex:
            self._record = record
            self._epoch = record.epoch
            self._lease_until = started + self.timing.lease
            self._since = time.monotonic()
        self.promotions += 1
        log.info("leader of site %r now (epoch %d, store %s)", self.site, record.epoch, self.where)
        if self._on_promoted is not None:
            self._on_promoted(record)
        return True

    def _beat(self) -> None:
        """One heartbeat of the leader: renews the lease, or demotes."""
        lock = self._lock
        assert lock is not None
        sent = time.monotonic()
        try:
            record = lock.heartbeat()
        except StoreError as e:
            self._demote(f"heartbeat failed: {e}")
            self._drop()
            raise
        with self._mutex:
            self._record = record
            epoch = self._epoch
        if epoch is None:  # fenced meanwhile (by a build)
            self._drop()
            return
        if record is None or record.epoch != epoch:
            now = "no leader" if record is None else record.describe()
            self._demote(f"fenced out: the store names {now}")
            self._drop()
            return
        with self._mutex:
            if time.monotonic() >= self._lease_until:
                expired = True
            else:
                expired = False
                self._lease_until = sent + self.timing.lease
        if expired:
            self._demote("its lease ran out before the heartbeat came back")
            self._drop()

    # -- the loop --------------------------------------------------------------------------------
    def start(self) -> None:
        """Compete (standby) or heartbeat (leader) in a thread until ``stop``."""
        self._thread = threading.Thread(target=self._loop, name="feedsvc-leader", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        failures, last_error = 0, ""
        while not self._stop.is_set():
            try:
                if self.epoch is not None:
                    self._beat()
                    if self.epoch is None and self.kind == "build":
                        return  # a one-shot build that lost the lead never takes it again
                    pause = self.timing.heartbeat
                else:
                    if self._lock is not None and self._lock.held:
                        self._drop()  # fenced by a build: give the lock up now
                    if self.kind == "build" and self.promotions:
                        return
                    pause = self.timing.heartbeat if self.try_promote() else self.timing.retry
                if failures:
                    log.info("store %s reachable again", self.where)
                failures, last_error = 0, ""
                self.problem = None
            except StoreError as e:
                self.problem = f"store unreachable: {e}"
                pause = BACKOFF[min(failures, len(BACKOFF) - 1)]
                failures += 1
                level = logging.DEBUG if str(e) == last_error else logging.ERROR
                log.log(level, "leader election: %s (try %d; next in %g s)", e, failures, pause)
                last_error = str(e)
            except Exception:  # a bug here must not end the daemon's election for good
                log.exception("leader election failed")
                self._demote("an unexpected error")
                self._drop()
                pause = BACKOFF[-1]
            self._stop.wait(pause)

    def acquire(self, wait: float = BUILD_WAIT) -> LeaderRecord:
        """Become the leader for a one-shot build, or raise ``LeaderError``.

        A daemon that leads refuses at once (it builds every change itself); another one-shot
        build is waited for up to ``wait`` s, as the state-directory lock is.
        """
        deadline = time.monotonic() + wait
        while True:
            if self.try_promote():
                with self._mutex:
                    assert self._record is not None
                    return self._record
            with self._mutex:
                record = self._record
            if record is not None and record.kind == "run":
                raise LeaderError(
                    self.site,
                    f"{record.describe()} leads the builds and builds every change itself; "
                    "not building (stop that daemon to build by hand)",
                    leader=record.describe(),
                )
            if time.monotonic() >= deadline:
                who = record.describe() if record is not None else "another process"
                raise LeaderError(
                    self.site,
                    f"{who} leads the builds; waited {wait:g} s",
                    leader=None if record is None else record.describe(),
                )
            time.sleep(self.timing.retry)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop competing; a leader gives the lock up (a standby can take over at once)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._demote_quietly()
        lock = self._lock
        if lock is not None and (self._thread is None or not self._thread.is_alive()):
            with suppress(StoreError):
                lock.release()
            self._drop()

    def _demote_quietly(self) -> None:
        with self._mutex:
            self._epoch, self._lease_until = None, 0.0


def leadership_for(
    settings: Settings,
    *,
    on_promoted: Callable[[LeaderRecord], None] | None = None,
    timing: Timing | None = None,
) -> Leadership | None:
    """The daemon's leadership for a PostgreSQL store; None for SQLite (one builder anyway)."""
    if settings.store_url is None:
        return None
    return Leadership(settings, kind="run", on_promoted=on_promoted, timing=timing)


@contextmanager
def build_leadership(settings: Settings) -> Iterator[Leadership | None]:
    """``feedsvc build``'s lead (its ``fence`` and ``guard`` for the ``Publisher``), held for
    the build.

    None with SQLite. With PostgreSQL, raises ``LeaderError`` naming the leader's host and pid
    when a daemon leads the site (exit status 1; see ``Leadership.acquire``).
    """
    if settings.store_url is None:
        yield None
        return
    leadership = Leadership(settings, kind="build")
    try:
        leadership.acquire()
        leadership.start()
        yield leadership
    finally:
        leadership.stop()


def store_status(settings: Settings) -> dict[str, Any]:
    """The ``/status`` part naming the store: its backend and URL (no password) or file."""
    if settings.store_url is not None:
        return {"backend": "postgresql", "url": redact_url(settings.store_url)}
    return {"backend": "sqlite", "path": str(store_path(settings.state_dir))}
