"""feedsvc: plain-text news seed files published as Atom, RSS and JSON feeds and HTML pages.

The public face: everything a user of the library needs, in one sorted ``__all__``. No module
of feedsvc imports from here. The names load on first use (PEP 562), so ``import feedsvc.cli``
(and ``feedsvc --version``) does not pay for pydantic, the store, feedgen or Jinja.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .build.publisher import BuildReport, Publisher
    from .config import Settings, load_settings
    from .errors import (
        ConfigError,
        FeedsvcError,
        LockError,
        MassDeletionError,
        OldFeedError,
        PublishError,
        SeedError,
        SeedParseError,
        SeedPathError,
        SeedReadError,
        SeedsDirError,
        ServeError,
    )
    from .importer import import_ids
    from .models import Article, Block, Entry, FeedSpec
    from .seeds import parse_seed, read_seed

# name → the module that defines it (relative to the package)
_HOMES = {
    "Article": ".models",
    "Block": ".models",
    "BuildReport": ".build.publisher",
    "ConfigError": ".errors",
    "Entry": ".models",
    "FeedSpec": ".models",
    "FeedsvcError": ".errors",
    "LockError": ".errors",
    "MassDeletionError": ".errors",
    "OldFeedError": ".errors",
    "PublishError": ".errors",
    "Publisher": ".build.publisher",
    "SeedError": ".errors",
    "SeedParseError": ".errors",
    "SeedPathError": ".errors",
    "SeedReadError": ".errors",
    "SeedsDirError": ".errors",
    "ServeError": ".errors",
    "Settings": ".config",
    "import_ids": ".importer",
    "load_settings": ".config",
    "parse_seed": ".seeds",
    "read_seed": ".seeds",
}

__all__ = [
    "Article",
    "Block",
    "BuildReport",
    "ConfigError",
    "Entry",
    "FeedSpec",
    "FeedsvcError",
    "LockError",
    "MassDeletionError",
    "OldFeedError",
    "PublishError",
    "Publisher",
    "SeedError",
    "SeedParseError",
    "SeedPathError",
    "SeedReadError",
    "SeedsDirError",
    "ServeError",
    "Settings",
    "__version__",
    "import_ids",
    "load_settings",
    "parse_seed",
    "read_seed",
]


def __getattr__(name: str) -> Any:
    """Import the home of a public name on first use and keep it here (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
