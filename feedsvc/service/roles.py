"""What one ``feedsvc run`` does (#10): ``--roles ingest,build,serve``, all three by default.

- ingest + build: watch the local seeds and publish (the one pipeline, as on one machine);
- ingest alone: watch the local seeds and report them into the store (``build/ingest.py``),
  waking the builder; no ledger, no feeds;
- build without ingest: no seeds folder of its own; build what ingest hosts report;
- serve: answer HTTP; without build, over a folder mirrored from the store (``sync.Mirror``).

Roles other than all three only make sense with a PostgreSQL store (``store_url``): with
SQLite there is no other host to share the work with. A builder on PostgreSQL always builds
the seeds ingest hosts reported too (``build/remote.py``), beside its own when it has ingest.
"""

from __future__ import annotations

from ..config import ROLES, Settings
from ..errors import ConfigError

SUPPORTED = (
    ("ingest", "build", "serve"),  # everything, as on one machine
    ("ingest", "build"),  # a builder whose feeds/ others serve
    ("ingest",),  # an ingest host: its seeds reported into the store for the builder
    ("build", "serve"),  # a builder of what ingest hosts report, serving its feeds/
    ("build",),  # the same, its feeds/ served by others
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
        raise ConfigError("roles", f"{','.join(roles)} is not possible; use one of: {ways}")
    return roles


def builds(settings: Settings) -> bool:
    """Whether this process publishes (leads the site's builds, or stands by to)."""
    return "build" in settings.roles


def reads_seeds(settings: Settings) -> bool:
    """Whether this process watches a seeds folder of its own."""
    return "ingest" in settings.roles


def ingests_apart(settings: Settings) -> bool:
    """Whether this process reports its seeds to a builder elsewhere (ingest without build)."""
    return "ingest" in settings.roles and "build" not in settings.roles


def mirrors(settings: Settings) -> bool:
    """Whether this process serves documents it does not build: a mirror of the store."""
    return "build" not in settings.roles and "serve" in settings.roles
