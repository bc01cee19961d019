"""Adoption: a new (or lost, or restored) store takes the ids and dates feeds/ already published.

The store is the id ledger, but readers know the ids from the feeds, and the feeds carry them:
every Atom document (current feeds, category feeds, RFC 5005 archive pages) and JSON Feed has
each entry's id, ``published``, ``updated`` and its permanent link ``.../articles/<key>.html``.
``read_published`` collects them by key (I/O and parsing only); ``Published.shows`` tells
whether a seed still reads as its entry did, in which case its ``updated`` stays too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from lxml import etree

from ..models import Article
from ..render.feeds import ATOM_NS, HISTORY_NS, article_html
from ..render.jsonfeed import JSON_FEED_VERSION

MAX_DOCUMENT_BYTES = 256 * 1024 * 1024  # far above any feed we write; a guard, not a limit
_LINK = re.compile(r"/articles/(?P<key>[0-9a-f]{16})\.html$")
_ATOM = f"{{{ATOM_NS}}}"


@dataclass(frozen=True, slots=True)
class Published:
    """One entry as feeds/ shows it: enough to give its seed the same id, dates and content."""

    key: str
    entry_id: str
    published: datetime
    updated: datetime
    title: str
    summary: str
    content: str

    def shows(self, article: Article) -> bool:
        """Whether ``article`` reads as this entry did (title, lead, body and date unchanged)."""
        return (self.title, self.summary, self.content, self.published) == (
            article.title,
            article.lead,
            article_html(article),
            article.published,
        )


@dataclass(slots=True)
class Found:
    """``read_published``'s answer: entries by key, and what was skipped (one line each)."""

    entries: dict[str, Published]
    documents: int
    skipped: list[str]
    archives: dict[Path, list[str]]  # RFC 5005 archive pages: the keys on each

    def places(self, folder: Path, page_size: int) -> dict[str, int] | None:
        """key -> archive place for the archive pages in ``folder`` (``<n>.xml``), as written.

        Page ``n``'s entries get places ``n * page_size`` on, so every entry stays on its page
        and the newest page stays as full as it was. None when a page holds more than
        ``page_size`` entries (the setting changed): then places are handed out afresh.
        """
        out: dict[str, int] = {}
        for path, keys in self.archives.items():
            if path.parent != folder or not path.stem.isdigit():
                continue
            if len(keys) > page_size:
                return None
            for i, key in enumerate(keys):
                out[key] = int(path.stem) * page_size + i
        return out


def read_published(feeds_dir: Path) -> Found:
    """Every entry of every Atom document and JSON Feed under ``feeds_dir``, by key.

    A key seen in several documents takes the entry updated last. An id that two keys claim
    stays with the one updated last; the other gets a fresh id (and is listed in ``skipped``).
    """
    found = Found({}, 0, [], {})
    if not feeds_dir.is_dir():
        return found
    for path in sorted(feeds_dir.rglob("*")):
        rel = path.relative_to(feeds_dir)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if path.suffix not in (".xml", ".json"):
            continue
        try:
            document = _read(path)
        except (OSError, ValueError, etree.XMLSyntaxError) as e:
            found.skipped.append(f"{path}: not read ({e})")
            continue
        if document is None:
            continue  # RSS, or a file that is no feed: Atom and JSON Feed carry all we need
        found.documents += 1
        entries, archive = document
        if archive:
            found.archives[path] = [e.key for e in entries]
        for entry in entries:
            have = found.entries.get(entry.key)
            if have is None or entry.updated > have.updated:
                found.entries[entry.key] = entry
    holders: dict[str, Published] = {}
    for entry in sorted(found.entries.values(), key=lambda e: (e.updated, e.key), reverse=True):
        other = holders.setdefault(entry.entry_id, entry)
        if other is not entry:
            del found.entries[entry.key]
            found.skipped.append(
                f"{entry.key}: id {entry.entry_id} is also {other.key}'s; it gets a new id"
            )
    return found


def _read(path: Path) -> tuple[list[Published], bool] | None:
    """A document's entries, and whether it is an RFC 5005 archive page; None: not a feed."""
    data = path.read_bytes()
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"larger than {MAX_DOCUMENT_BYTES} bytes")
    if path.suffix == ".json":
        items = _json_feed(json.loads(data))
        return None if items is None else (items, False)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(data, parser)
    if root.tag != f"{_ATOM}feed":
        return None
    out = []
    for entry in root.iterfind(f"{_ATOM}entry"):
        link = next(
            (
                str(el.get("href", ""))
                for el in entry.iterfind(f"{_ATOM}link")
                if el.get("rel", "alternate") == "alternate"
            ),
            "",
        )
        found = _published(
            link,
            entry.findtext(f"{_ATOM}id"),
            entry.findtext(f"{_ATOM}published"),
            entry.findtext(f"{_ATOM}updated"),
            entry.findtext(f"{_ATOM}title") or "",
            entry.findtext(f"{_ATOM}summary") or "",
            entry.findtext(f"{_ATOM}content") or "",
        )
        if found is not None:
            out.append(found)
    return out, root.find(f"{{{HISTORY_NS}}}archive") is not None


def _json_feed(feed: Any) -> list[Published] | None:
    if not isinstance(feed, dict) or feed.get("version") != JSON_FEED_VERSION:
        return None
    out = []
    for item in feed.get("items") or ():
        if not isinstance(item, dict):
            continue
        found = _published(
            str(item.get("url") or ""),
            item.get("id"),
            item.get("date_published"),
            item.get("date_modified"),
            str(item.get("title") or ""),
            str(item.get("summary") or ""),
            str(item.get("content_html") or ""),
        )
        if found is not None:
            out.append(found)
    return out


def _published(
    link: str,
    entry_id: Any,
    published: Any,
    updated: Any,
    title: str,
    summary: str,
    content: str,
) -> Published | None:
    """An entry of ours (a permanent link to an article page, an id, both dates), or None."""
    m = _LINK.search(link)
    if m is None or not isinstance(entry_id, str) or not entry_id.strip():
        return None
    try:
        first = datetime.fromisoformat(str(published))
        last = datetime.fromisoformat(str(updated))
    except ValueError:
        return None
    if first.tzinfo is None or last.tzinfo is None:
        return None
    last = last if last >= first else first  # keeps the offset the feed was written with
    return Published(m["key"], entry_id, first, last, title, summary, content)
