"""feedsvc: plain-text news seed files published as Atom, RSS and JSON feeds and HTML pages.

The public face: everything a user of the library needs, in one sorted ``__all__``. No module
of feedsvc imports from here.
"""

from __future__ import annotations

from ._version import __version__
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
