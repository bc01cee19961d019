"""Waiting for a site's wake-ups (PostgreSQL ``LISTEN``): what mirrors and builders sleep on.

Imported only for a ``postgresql://`` store. One dedicated autocommit connection listens on the
site's channel (``Dialect.channel``); ``wait`` returns the topics received (``documents``,
``seeds``), or none when the timeout passed first: the caller then polls, so a lost connection
or a missed wake-up costs at most one poll interval. psycopg keeps notifications that arrive
between two ``wait`` calls, so none is lost while the caller works.
"""

from __future__ import annotations

import os
import socket

import psycopg

from ..config import redact_url
from ..errors import StoreError
from .postgres import CONNECT_TIMEOUT, _cause
from .sql import POSTGRES


class Listener:
    """Wake-ups of one site, from the moment it is made."""

    def __init__(self, url: str, *, site_id: str) -> None:
        self.where = redact_url(url)
        self.channel = POSTGRES.channel(site_id)
        try:
            self._conn = psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT,
                application_name=f"feedsvc-listen@{socket.gethostname()}:{os.getpid()}"[:63],
            )
            self._conn.execute(f"LISTEN {self.channel}")
        except psycopg.Error as e:
            raise StoreError(self.where, f"cannot listen: {_cause(e)}") from None

    def wait(self, timeout: float) -> list[str]:
        """The topics of the wake-ups within ``timeout`` seconds (returns at the first)."""
        try:
            return [n.payload for n in self._conn.notifies(timeout=timeout, stop_after=1)]
        except psycopg.Error as e:
            raise StoreError(self.where, f"lost the wake-up connection: {_cause(e)}") from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
