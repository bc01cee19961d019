"""A builder's ear for its ingest hosts (#10): ``NOTIFY`` topic ``seeds`` → a build.

Ingest hosts report their seeds into the store and wake the site's listeners at commit. A
builder on PostgreSQL listens (``store.open_listener``) on a thread of its own and asks its
rebuilder for a build at each such wake-up. A lost connection is logged once and opened again
with backoff; the periodic rescan is the net under lost wake-ups.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..config import Settings
from ..errors import FeedsvcError
from ..store import open_listener
from ..store.inbox import WAKE_SEEDS

log = logging.getLogger(__name__)

WAIT_SECONDS = 0.5  # one wait for a wake-up: how soon ``stop`` is seen
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)  # after a lost connection, then every last one


class SeedWakeups:
    """Calls ``on_seeds`` whenever an ingest host reported changed seeds (a thread)."""

    def __init__(self, settings: Settings, on_seeds: Callable[[], None]) -> None:
        self.settings = settings
        self.on_seeds = on_seeds
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="feedsvc-wakeups", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                with open_listener(self.settings) as listener:
                    if self.error is not None:  # what was reported meanwhile is built now
                        log.info("listening for ingest hosts again")
                        self.on_seeds()
                    self.error, failures = None, 0
                    while not self._stop.is_set():
                        if WAKE_SEEDS in listener.wait(WAIT_SECONDS):
                            self.on_seeds()
            except FeedsvcError as e:
                if str(e) != self.error:
                    log.error("wake-ups from ingest hosts lost, retrying: %s", e)
                self.error = str(e)
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                self._stop.wait(delay)
