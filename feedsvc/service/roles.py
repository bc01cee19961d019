"""What one ``feedsvc run`` does (#10): ``--roles ingest,build,serve``, all three by default.

- ingest + build: watch the local seeds and publish (the one pipeline, as on one machine);
- serve: answer HTTP; without build, over a folder mirrored from the store (``sync.Mirror``).

Roles other than all three only make sense with a PostgreSQL store (``store_url``): with
SQLite there is no other host to share the work with. Ingest apart from build (seed state
recorded per source host, the builder woken by ``NOTIFY``) is not built yet.
"""

from __future__ import annotations

from ..config import ROLES, Settings
from ..errors import ConfigError

SUPPORTED = (
    ("ingest", "build", "serve"),  # everything, as on one machine
    ("ingest", "build"),  # a builder whose feeds/ others serve
    ("serve",),  # a serve node: mirrors the documents from the store and serves them
)


def check_roles(settings: Settings) -> tuple[str, ...]:
    """The roles of ``settings``, or ``ConfigError`` naming what is possible."""
    roles = settings.roles
    if roles == ROLES:
        return roles
    if settings.store_url is None:
        raise ConfigError(
            "roles",
            f"{','.join(roles)} needs a shared store: set store_url (PostgreSQL); with the "
            "SQLite store one process does all three (ingest,build,serve)",
        )
    if roles not in SUPPORTED:
        ways = "; ".join(",".join(r) for r in SUPPORTED)
        raise ConfigError(
            "roles",
            f"{','.join(roles)} is not possible yet (ingest apart from build is not built); "
            f"use one of: {ways}",
        )
    return roles


def builds(settings: Settings) -> bool:
    """Whether this process watches the seeds and publishes."""
    return "build" in settings.roles


def mirrors(settings: Settings) -> bool:
    """Whether this process serves documents it does not build: a mirror of the store."""
    return "build" not in settings.roles and "serve" in settings.roles
