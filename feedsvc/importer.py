"""``feedsvc import-ids``: keep the entry ids of the publisher a site moves away from.

Readers recognise an entry by its id, so a site that switches to feedsvc would re-deliver its
whole history under our fresh ``tag:`` ids. Here an old Atom, RSS or JSON feed is read into
``OldEntry`` values (``parse_old_feed``, pure), paired with our articles (``match``, pure) and
the pairs are written to the id ledger (``import_ids``), after which feedsvc publishes those
articles under their old ids for good.
"""

from __future__ import annotations

import html
import json
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit, urlunsplit
from urllib.request import Request, urlopen

import feedparser

from ._lock import build_lock
from ._text import nfc
from ._version import __version__
from .build.publisher import LOCK_TIMEOUT, BuildReport, Publisher
from .config import Settings
from .errors import OldFeedError
from .models import Article, Entry, FeedMeta
from .render.feeds import article_link
from .seeds import MONTH_SLOTS, slot
from .store import Store, snapshot_store

FETCH_TIMEOUT = 30.0
MAX_OLD_FEED_BYTES = 64 * 1024 * 1024
MIN_PREFIX_CHARS = 20  # an old title cut with "…" must keep this much to count as a prefix
_ELLIPSES = ("…", "...")
_TAG = re.compile(r"<[^>]*>")  # only up to the last ">": see _strip_tags
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class OldEntry:
    """One entry of the old feed: the id its readers know it by, and what identifies it."""

    id: str
    link: str | None = None
    title: str | None = None
    published: datetime | None = None  # aware


@dataclass(frozen=True, slots=True)
class Conflict:
    """An old entry that cannot be given an article without guessing; nothing is applied."""

    entry: OldEntry
    keys: tuple[str, ...]
    reason: str


A = TypeVar("A", bound=Article)


class Matching(NamedTuple, Generic[A]):
    """``match``'s answer; every distinct old id is in exactly one of the three lists."""

    matches: list[tuple[OldEntry, A]]
    unmatched: list[OldEntry]
    conflicts: list[Conflict]


@dataclass(slots=True)
class ImportReport:
    """What ``import_ids`` did: the pairs written (or, in a dry run, that would be)."""

    matches: list[tuple[OldEntry, Entry]] = field(default_factory=list)
    unmatched: list[OldEntry] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    build: BuildReport | None = None  # the build that rewrote the feeds (not in a dry run)

    @property
    def ok(self) -> bool:
        return not self.unmatched and not self.conflicts


# --- reading the old feed ---------------------------------------------------------------------
def read_old_feed(source: str, *, timeout: float = FETCH_TIMEOUT) -> bytes:
    """The old feed's bytes, from a file path or an http(s) URL (the only I/O of the import)."""
    if source.startswith(("http://", "https://")):
        request = Request(
            source,
            headers={
                "User-Agent": f"feedsvc/{__version__} (import-ids)",
                "Accept": "application/atom+xml, application/rss+xml, application/feed+json, "
                "application/json;q=0.9, application/xml;q=0.9, */*;q=0.8",
            },
        )
        try:
            with urlopen(request, timeout=timeout) as response:
                data: bytes = response.read(MAX_OLD_FEED_BYTES + 1)
        except HTTPError as e:
            e.close()  # the error carries the open response
            raise OldFeedError(source, f"cannot fetch: {e}") from e
        except (URLError, OSError, ValueError) as e:
            raise OldFeedError(source, f"cannot fetch: {e}") from e
    else:
        try:
            with open(source, "rb") as f:
                data = f.read(MAX_OLD_FEED_BYTES + 1)
        except OSError as e:
            raise OldFeedError(source, f"cannot read: {e.strerror or e}") from e
    if len(data) > MAX_OLD_FEED_BYTES:
        raise OldFeedError(source, f"larger than {MAX_OLD_FEED_BYTES} bytes")
    return data


def parse_old_feed(data: bytes, *, source: str) -> list[OldEntry]:
    """Atom, RSS or JSON Feed (1.0, 1.1) bytes → entries, in document order. Pure.

    An entry without an id is known to readers by its link, so the link stands in for it.
    """
    if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return _parse_json_feed(data, source)
    parsed = feedparser.parse(data)
    if not parsed.get("version") and not parsed.entries:
        cause = parsed.get("bozo_exception")
        raise OldFeedError(source, f"not an Atom, RSS or JSON feed ({cause or 'no entries'})")
    entries = []
    for e in parsed.entries:
        title = e.get("title")
        if title and e.get("title_detail", {}).get("type") in (
            "text/html",
            "application/xhtml+xml",
        ):
            title = html.unescape(_strip_tags(title))
        when = e.get("published_parsed") or e.get("updated_parsed")
        entries.append(
            OldEntry(
                id=str(e.get("id") or e.get("link") or ""),
                link=e.get("link") or None,
                title=title or None,
                published=datetime(*when[:6]).replace(tzinfo=UTC) if when else None,
            )
        )
    return entries


def _parse_json_feed(data: bytes, source: str) -> list[OldEntry]:
    try:
        feed = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as e:
        raise OldFeedError(source, f"not valid JSON: {e}") from e
    version = feed.get("version") if isinstance(feed, dict) else None
    if not isinstance(version, str) or not version.startswith("https://jsonfeed.org/version/"):
        raise OldFeedError(source, "not a JSON Feed (no 'version': 'https://jsonfeed.org/…')")
    items = feed.get("items")
    if not isinstance(items, list):
        raise OldFeedError(source, "JSON Feed without an 'items' list")
    entries = []
    for item in items:
        if not isinstance(item, dict):
            continue
        url = _text(item.get("url"))
        entries.append(
            OldEntry(
                id=_text(item.get("id")) or url or "",
                link=url,
                title=_text(item.get("title")),
                published=_date(item.get("date_published")) or _date(item.get("date_modified")),
            )
        )
    return entries


def _text(value: Any) -> str | None:
    """JSON Feed strings; some publishers write numeric ids, which readers compare as text."""
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip() if isinstance(value, str | int) else ""
    return text or None


def _date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


# --- matching -----------------------------------------------------------------------------------
def normalize_link(url: str) -> str:
    """Links compared as equal: scheme and host in any case, with or without a trailing slash."""
    parts = urlsplit(url.strip())
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), parts.query, "")
    )


def _strip_tags(text: str) -> str:
    """``text`` without ``<...>`` tags, in linear time.

    ``_TAG`` alone is quadratic on many "<" without a ">" (each scans to the end): past the
    last ">" no tag can end, so only the text up to it is searched; the result is the same.
    """
    end = text.rfind(">") + 1
    return _TAG.sub("", text[:end]) + text[end:]


def normalize_title(title: str) -> tuple[str, bool]:
    """A title for comparison (NFC, case, punctuation and whitespace ignored); was it cut short?"""
    text = nfc(title)[0].strip()  # linear on any title, like the parser's
    cut = text.rstrip('"“”’»«)]').endswith(_ELLIPSES)  # ours may close a quote after the …
    text = nfc(text.casefold())[0]
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return _SPACE.sub(" ", text).strip(), cut


def titles_match(old: str, ours: str) -> bool:
    """Equal, or one cut with "…" (ours at 110 characters) is a word prefix of the other."""
    old_text, old_cut = normalize_title(old)
    our_text, our_cut = normalize_title(ours)
    if not old_text or not our_text:
        return False
    if old_text == our_text:
        return True
    if our_cut and _word_prefix(our_text, old_text):
        return True
    return old_cut and len(old_text) >= MIN_PREFIX_CHARS and _word_prefix(old_text, our_text)


def _word_prefix(prefix: str, text: str) -> bool:
    return text.startswith(prefix) and text[len(prefix) : len(prefix) + 1] in ("", " ")


def month_dated(article: Article, tz: tzinfo) -> bool:
    """Does ``published`` look like a ``YYYY-MM`` seed's: local midnight on the 1st + NNN min?

    A ``YYYY-MM-DD`` seed dated the 1st with a small NNN looks the same and is treated alike.
    """
    position = slot(article.source)
    local = article.published.astimezone(tz)
    first = datetime(local.year, local.month, 1, tzinfo=tz).astimezone(UTC)
    return article.published == first + timedelta(minutes=min(position, MONTH_SLOTS - 1))


def dates_match(old: datetime, article: Article, tz: tzinfo) -> bool:
    """The same local day in ``tz``; for a month-only seed, any day of that month."""
    old_day: date = old.astimezone(tz).date()
    our_day: date = article.published.astimezone(tz).date()
    if old_day == our_day:
        return True
    same_month = (old_day.year, old_day.month) == (our_day.year, our_day.month)
    return same_month and month_dated(article, tz)


def match(
    old_entries: Iterable[OldEntry], articles: Sequence[A], meta: FeedMeta, tz: tzinfo
) -> Matching[A]:
    """Pair old entries with articles: by permanent link, else by title and date.

    Each article and each old id is paired at most once. An old entry that fits several
    articles, or an article that several old ids claim, is a conflict: listed, never guessed.
    """
    by_link: dict[str, list[A]] = {}
    for article in articles:
        by_link.setdefault(normalize_link(article_link(article, meta)), []).append(article)

    def candidates(entry: OldEntry) -> list[A]:
        if entry.link:
            linked = by_link.get(normalize_link(entry.link))
            if linked:
                return linked
        if not entry.title or entry.published is None:
            return []
        title, when = entry.title, entry.published
        return [a for a in articles if titles_match(title, a.title) and dates_match(when, a, tz)]

    groups: dict[str, list[OldEntry]] = {}  # the same id twice in one feed is one old entry
    for entry in old_entries:
        groups.setdefault(entry.id, []).append(entry)

    unmatched: list[OldEntry] = []
    conflicts: list[Conflict] = []
    claims: dict[str, list[tuple[OldEntry, A]]] = {}
    for old_id, entries in groups.items():
        found = {a.key: a for e in entries for a in candidates(e)}
        if not old_id:
            unmatched.append(entries[0])  # nothing to carry over: readers had no id for it
        elif not found:
            unmatched.append(entries[0])
        elif len(found) > 1:
            keys = tuple(sorted(found))
            conflicts.append(Conflict(entries[0], keys, f"fits {len(keys)} articles"))
        else:
            (article,) = found.values()
            claims.setdefault(article.key, []).append((entries[0], article))

    matches: list[tuple[OldEntry, A]] = []
    for key, claimed in claims.items():
        if len(claimed) == 1:
            matches.append(claimed[0])
            continue
        for entry, _ in claimed:
            others = ", ".join(e.id for e, _ in claimed if e is not entry)
            conflicts.append(Conflict(entry, (key,), f"{key} is also claimed by {others}"))
    return Matching(matches, unmatched, conflicts)


# --- applying ---------------------------------------------------------------------------------
def import_ids(
    settings: Settings,
    source: str,
    *,
    dry_run: bool = False,
    timeout: float = FETCH_TIMEOUT,
    lock_timeout: float = LOCK_TIMEOUT,
) -> ImportReport:
    """Read the old feed at ``source``, record matched old ids, then rebuild the feeds.

    The store first learns the current seeds in a build whose feeds go to a scratch
    directory, so nothing is published under fresh ids before the old ones are in. The ids
    are written under the state-dir lock in one transaction; a dry run does all of it on a
    scratch copy of the store and changes nothing.
    """
    entries = parse_old_feed(read_old_feed(source, timeout=timeout), source=source)
    publisher = Publisher(settings)
    report = ImportReport()
    with tempfile.TemporaryDirectory(prefix="feedsvc-import-") as tmp:
        scratch = Path(tmp)
        update: dict[str, Path | None] = {"feeds_dir": scratch / "feeds"}
        if dry_run:  # on a scratch SQLite copy of the store, whichever backend it is
            update["state_dir"] = scratch / "state"
            update["store_url"] = None
            snapshot_store(settings, scratch / "state")
        work = Publisher(
            settings.model_copy(update=update),
            clock=publisher.clock,
            adopt_from=settings.feeds_dir,  # a new store takes the published ids first
        )
        work.build(lock_timeout=lock_timeout)
        with (
            build_lock(work.settings.state_dir, timeout=lock_timeout),
            work.open_store() as store,
            store.transaction(),
        ):
            articles = store.live_articles()
            found = match(entries, articles, _link_meta(settings), settings.tz)
            report.unmatched = found.unmatched
            report.conflicts = list(found.conflicts)
            _apply(store, found.matches, articles, report)
            store.force_rerender()  # the scratch build's feeds are not the real ones
    if not dry_run:
        report.build = publisher.build(lock_timeout=lock_timeout)
    return report


def _apply(
    store: Store,
    matches: list[tuple[OldEntry, Entry]],
    articles: Sequence[Entry],
    report: ImportReport,
) -> None:
    holders = {a.entry_id: a.key for a in articles}
    for entry, article in matches:
        if article.entry_id == entry.id:
            report.matches.append((entry, article))
            continue
        holder = holders.get(entry.id)
        if holder is not None:
            reason = f"id already used by {holder}"
            report.conflicts.append(Conflict(entry, (article.key, holder), reason))
            continue
        if not store.replace_entry_id(article.key, entry.id):
            reason = "id already used by a deleted article in the store"
            report.conflicts.append(Conflict(entry, (article.key,), reason))
            continue
        holders.pop(article.entry_id, None)
        holders[entry.id] = article.key
        report.matches.append((entry, article))


def _link_meta(settings: Settings) -> FeedMeta:
    """What ``article_link`` needs to know: our permanent links live under ``base_url``."""
    return FeedMeta(
        base_url=settings.base_url,
        author_name=settings.author_name,
        language=settings.language,
        generator_version=__version__,
    )
