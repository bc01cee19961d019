"""feedsvc: plain-text news seed files published as Atom 1.0 and RSS 2.0 feeds."""

from __future__ import annotations

from ._version import __version__
from .config import Settings, load_settings
from .core import BuildReport, Publisher
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
from .models import Article, Block, FeedSpec
from .seeds import parse_seed, read_seed

__all__ = [
    "Article",
    "Block",
    "BuildReport",
    "ConfigError",
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
