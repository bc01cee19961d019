"""Frozen settings, loaded from ``config/feedsvc.toml``, then ``FEEDSVC_*``, then CLI flags.

Relative paths in the TOML file are resolved against the file's directory; relative paths
from the environment or the command line against the current directory.
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._lang import KNOWN_CODES
from .errors import ConfigError
from .models import FORMATS, Format

DEFAULT_CONFIG = Path("config/feedsvc.toml")
ENV_PREFIX = "FEEDSVC_"

DEFAULT_TITLE = "feedsvc news"
DEFAULT_BASE_URL = "http://localhost:8080/"
DEFAULT_LANGUAGE = "de-AT"
DEFAULT_DETECT_LANGUAGE = True
DEFAULT_LANGUAGES = ("de", "en", "fr", "it", "es")
DEFAULT_LANGUAGE_MIN_CONFIDENCE = 0.5
DEFAULT_TIMEZONE = "Europe/Vienna"
DEFAULT_MAX_ITEMS = 50
DEFAULT_MAX_SEED_BYTES = 1024 * 1024
DEFAULT_MAX_FUTURE_DAYS = 2.0
DEFAULT_MAX_DELETE_FRACTION = 0.5
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_SERVE = True
DEFAULT_STATUS_PUBLIC = False
DEFAULT_DEBOUNCE_SECONDS = 0.5
DEFAULT_RESCAN_INTERVAL = 300.0
DEFAULT_CACHE_MAX_AGE = 60
DEFAULT_FEED_TTL_MINUTES = 15
DEFAULT_MAX_FEED_BYTES = 512 * 1024
DEFAULT_ARCHIVE_PAGE_SIZE = 50

PATH_KEYS = ("seeds_dir", "feeds_dir", "state_dir")

Role = Literal["ingest", "build", "serve"]
ROLES: tuple[Role, ...] = ("ingest", "build", "serve")  # `feedsvc run --roles` (#10)


def redact_url(url: str) -> str:
    """``url`` without its password (in the user part, or a ``password=`` parameter)."""
    url = re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^:@/?#]*):[^@/?#]*@", r"\1@", url)
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", url)


class FeedConfig(BaseModel):
    """One ``[[feeds]]`` table: a named feed with a filter (see config/feedsvc.toml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str | None = None
    description: str = ""
    max_items: int | None = Field(default=None, ge=1, le=10_000)
    formats: tuple[Format, ...] = Field(default=FORMATS, min_length=1)
    categories: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None


class CategoryConfig(BaseModel):
    """One ``[[categories]]`` table: how the feed of one folder of seeds/ is shown (#11)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    folder: str = Field(min_length=1)  # the folder's name in seeds/, as written
    name: str | None = None  # shown instead of the folder's name: "<title>: <name>"
    description: str = ""


class Settings(BaseModel):
    """Everything feedsvc can be told; one frozen object passed down by keyword."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = Field(default=DEFAULT_TITLE, min_length=1)
    subtitle: str = "News from feedsvc"
    base_url: str = DEFAULT_BASE_URL
    author_name: str = Field(default="feedsvc", min_length=1)
    author_email: str | None = None
    language: str = Field(default=DEFAULT_LANGUAGE, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    detect_language: bool = DEFAULT_DETECT_LANGUAGE
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    language_min_confidence: float = Field(default=DEFAULT_LANGUAGE_MIN_CONFIDENCE, ge=0, le=1)
    timezone: str = DEFAULT_TIMEZONE
    max_items: int = Field(default=DEFAULT_MAX_ITEMS, ge=1, le=10_000)
    atom_file: str = Field(default="atom.xml", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    rss_file: str = Field(default="rss.xml", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    json_file: str = Field(default="feed.json", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    seeds_dir: Path = Path("seeds")
    feeds_dir: Path = Path("feeds")
    state_dir: Path = Path(".feedsvc")
    # Where the store is: unset, the SQLite file in state_dir; postgresql://... a PostgreSQL
    # database (feedsvc[postgres]). site_id names this site's data and build lock there.
    store_url: str | None = None
    site_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,199}$")
    # This host's name in a shared store (#10): the ingest role records its seeds under it.
    node_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
    seed_pattern: str = Field(default="*.txt", min_length=1)
    max_seed_bytes: int = Field(default=DEFAULT_MAX_SEED_BYTES, ge=64, le=64 * 1024 * 1024)
    max_future_days: float = Field(default=DEFAULT_MAX_FUTURE_DAYS, ge=0)
    # A build that would unpublish more than this share of the articles stops (1: never).
    max_delete_fraction: float = Field(default=DEFAULT_MAX_DELETE_FRACTION, ge=0, le=1)
    # `feedsvc run`: serving, watching and the periodic rescan.
    host: str = Field(default=DEFAULT_HOST, min_length=1)
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    serve: bool = DEFAULT_SERVE
    # What `feedsvc run` does (#10): all three by default; others need store_url (see daemon).
    roles: tuple[Role, ...] = Field(default=ROLES, min_length=1)
    status_public: bool = DEFAULT_STATUS_PUBLIC  # /status (and /healthz's reason) to non-local
    cache_max_age: int = Field(default=DEFAULT_CACHE_MAX_AGE, ge=0, le=365 * 86400)
    # The readers' poll hint (RSS <ttl>, in minutes; 0: none), apart from HTTP's max-age.
    feed_ttl_minutes: int = Field(default=DEFAULT_FEED_TTL_MINUTES, ge=0, le=7 * 24 * 60)
    debounce_seconds: float = Field(default=DEFAULT_DEBOUNCE_SECONDS, ge=0, le=60)
    rescan_interval: float = Field(default=DEFAULT_RESCAN_INTERVAL, ge=1)
    rescan_cron: str | None = None
    # WebSub: the hub to ping after a build that changed a feed (none: no pings).
    websub_hub: str | None = None
    # Subscribers: more feeds, archives, size budget, icons.
    feeds: tuple[FeedConfig, ...] = ()
    category_feeds: bool = False
    categories: tuple[CategoryConfig, ...] = ()
    max_feed_bytes: int = Field(default=DEFAULT_MAX_FEED_BYTES, ge=0)
    archive_page_size: int = Field(default=DEFAULT_ARCHIVE_PAGE_SIZE, ge=0, le=10_000)
    gzip_feeds: bool = True
    html_pages: bool = True
    icon: str | None = None
    logo: str | None = None
    favicon: str | None = None

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http:// or https:// URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("websub_hub")
    @classmethod
    def _websub_hub(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http:// or https:// URL")
        return value.strip()

    @field_validator("store_url")
    @classmethod
    def _store_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        scheme = value.split("://", 1)[0].lower() if "://" in value else ""
        if scheme not in ("postgresql", "postgres"):
            raise ValueError(
                "must be a postgresql://user:password@host:port/database URL, or unset for "
                "the SQLite store in state_dir"
            )
        return value

    @field_validator("roles", mode="before")
    @classmethod
    def _roles(cls, value: Any) -> Any:
        if isinstance(value, str):  # from FEEDSVC_ROLES or --roles: "build,serve"
            value = value.replace(",", " ").split()
        if isinstance(value, list | tuple):
            given = [str(r).strip().lower() for r in value]
            return tuple(r for r in ROLES if r in given) + tuple(r for r in given if r not in ROLES)
        return value  # pydantic reports the type error

    @field_validator("languages", mode="before")
    @classmethod
    def _languages(cls, value: Any) -> Any:
        if isinstance(value, str):  # from FEEDSVC_LANGUAGES: "de,en fr"
            value = value.replace(",", " ").split()
        if not isinstance(value, list | tuple):
            return value  # pydantic reports the type error
        codes = [str(c).strip().lower() for c in value]
        unknown = [c for c in codes if c not in KNOWN_CODES]
        if unknown:
            raise ValueError(
                f"unknown language code(s) {', '.join(map(repr, unknown))}; "
                f"allowed ISO 639-1 codes: {', '.join(sorted(KNOWN_CODES))}"
            )
        return tuple(dict.fromkeys(codes))

    @field_validator("feeds")
    @classmethod
    def _unique_feed_names(cls, value: tuple[FeedConfig, ...]) -> tuple[FeedConfig, ...]:
        names = [f.name for f in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"feed names must be unique; used twice: {', '.join(twice)}")
        if "category" in names or "articles" in names:
            raise ValueError("'category' and 'articles' are reserved folder names in feeds/")
        return value

    @field_validator("icon", "logo", "favicon")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError("must be an IANA time zone such as 'Europe/Vienna' or 'UTC'") from e
        return value

    @field_validator("rescan_cron")
    @classmethod
    def _rescan_cron(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from apscheduler.triggers.cron import CronTrigger  # only needed when it is set

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as e:
            raise ValueError(f"must be a 5-field crontab expression: {e}") from e
        return value.strip()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def site(self) -> str:
        """``site_id``, else derived from an explicit ``base_url`` (host and path), else
        ``default``: what a shared store's data and build lock are keyed by."""
        if self.site_id:
            return self.site_id
        if "base_url" not in self.model_fields_set:
            return "default"
        parts = urlsplit(self.base_url)
        return f"{parts.netloc}{parts.path}".rstrip("/") or "default"

    @property
    def node(self) -> str:
        """``node_name``, else the host name: whose seeds an ingest host reports (#10)."""
        return self.node_name or socket.gethostname()

    @property
    def id_authority(self) -> str:
        """The host used in ``tag:`` entry ids (RFC 4151)."""
        return urlsplit(self.base_url).hostname or "localhost"


def _read_toml(path: Path, *, allow_empty: bool = True) -> dict[str, Any]:
    """The file's settings; relative paths in it resolved against its folder.

    An empty file (no settings at all, comments aside) means "all defaults" at start; with
    ``allow_empty=False`` (a reload) it is refused, since a file truncated by an editor or a
    failed copy would otherwise reset every setting of a running daemon.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError as e:
        raise ConfigError("config", f"file not found: {path}") from e
    except OSError as e:
        raise ConfigError("config", f"cannot read: {e.strerror or e}", source=str(path)) from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        reason = f"not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})"
        raise ConfigError("config", reason, source=str(path)) from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("config", f"not valid TOML: {e}", source=str(path)) from e
    if not data and not allow_empty:
        raise ConfigError("config", "file is empty (no settings)", source=str(path))
    allowed = set(Settings.model_fields)
    for key, value in data.items():
        if key not in allowed:
            raise ConfigError(
                key, f"unknown key (allowed: {', '.join(sorted(allowed))})", source=str(path)
            )
        if isinstance(value, dict):
            raise ConfigError(key, "must be a value, not a table", source=str(path))
    for key in PATH_KEYS:
        if key in data and isinstance(data[key], str):
            data[key] = os.path.normpath(path.parent / data[key])
    return data


def find_config(config: Path | None, env: Mapping[str, str]) -> Path | None:
    """The config file to use: the flag, then ``FEEDSVC_CONFIG``, then ``config/feedsvc.toml``."""
    if config is None and env.get(ENV_PREFIX + "CONFIG"):
        config = Path(env[ENV_PREFIX + "CONFIG"])
    if config is None:
        return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None
    if config.is_dir():
        config = config / "feedsvc.toml"
    return config


def load_settings(
    *,
    config: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    allow_empty: bool = True,
) -> Settings:
    """Merge TOML, environment and flags (later wins) into one validated ``Settings``.

    Only what was given lands in ``Settings.model_fields_set``, so a caller can tell a
    default from an explicit choice (``feedsvc run`` derives ``base_url`` when it is not
    set). ``allow_empty=False`` refuses a config file without settings (used on reload).
    """
    env = os.environ if env is None else env
    path = find_config(config, env)
    values: dict[str, Any] = _read_toml(path, allow_empty=allow_empty) if path else {}
    sources = dict.fromkeys(values, str(path))
    for name in Settings.model_fields:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = raw
            sources[name] = f"environment {ENV_PREFIX}{name.upper()}"
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
            sources[name] = "command line"
    try:
        return Settings(**values)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "config"
        given = err.get("input")
        reason = err["msg"]
        if isinstance(given, str) and key == "store_url":
            given = redact_url(given)
        if not isinstance(given, dict):
            reason += f" (got {given!r})"
        raise ConfigError(key, reason, source=sources.get(key.partition(".")[0])) from e
