"""Stage 2, ledger: a scan's results applied to the store, by the rules subscribers rely on.

- An entry's id is minted once (a ``tag:`` URI from the key) and never changes: not with the
  title, a rebuild, or a rename (the same content under a new name takes the old id along).
- A key that several files carry is published from the first file only; the others are
  reported as duplicates.
- A seed that turns bad keeps its last good version published; a deleted one is retired
  (unpublished) but its id stays in the ledger, never to be given out again.
- Every article is sorted into its feeds (``FeedSet.feeds_for``); a feed it stays in keeps
  its archive place, so archive pages do not shift.
- A new store adopts the ids (and archive places) feeds/ already published.

``Changes`` is this stage's output besides the store: which feeds, archive pages and pages
the build touched, for the plan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..errors import SeedError
from ..models import Article, Entry
from ..seeds import seed_key
from ..store import STAMPS_META, FileState, Member, NewArticle, Store
from .feeds import FeedSet
from .rows import first_entry_id, new_article
from .scan import FileResult, ScanResult

if TYPE_CHECKING:
    from .adopt import Found

Status = Literal["new", "changed", "unchanged", "deleted", "error"]
MaxDelete = int | Literal["all"] | None
BULK_ROWS = 1000  # files per batch of a cold build's bulk load: memory stays flat


@dataclass(slots=True)
class _Bulk:
    """A cold build's rows not yet written, and the keys it published."""

    files: list[FileState] = field(default_factory=list)
    articles: list[tuple[NewArticle, str]] = field(default_factory=list)  # (row, path)
    keys: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Changes:
    """What a build's store changes mean for feeds/: which feeds, archive pages and pages."""

    page_size: int
    feeds: set[str] = field(default_factory=set)
    pages: set[tuple[str, int]] = field(default_factory=set)
    articles: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    index: bool = False

    def moved(self, key: str, before: Iterable[Member], after: Iterable[str]) -> None:
        """``key`` changed: every feed it was or is in, and every archive page it sat on."""
        for member in before:
            self.feeds.add(member.feed)
            if member.seq is not None and self.page_size:
                self.pages.add((member.feed, member.seq // self.page_size))
        self.feeds.update(after)
        self.articles.add(key)
        self.removed.discard(key)  # moved within seeds/ in this build: its page stays

    def gone(self, key: str, before: Iterable[Member]) -> None:
        self.moved(key, before, ())
        self.articles.discard(key)
        self.removed.add(key)

    def __bool__(self) -> bool:
        return bool(self.feeds or self.pages or self.articles or self.removed or self.index)


def mint_id(store: Store, article: Article, *, authority: str, tz: tzinfo) -> str:
    """A ``tag:`` URI (RFC 4151) from the key; minted once, then kept by the ledger.

    The date is the article's local day in ``tz``; a key whose id a renamed article took
    along gets ``-2``, ``-3``, ... so no id is ever given out twice.
    """
    base = first_entry_id(article, authority=authority, tz=tz)
    candidate, n = base, 1
    while store.has_entry_id(candidate):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def deletion_limit(published: int, max_delete: MaxDelete, fraction: float) -> int | None:
    """How many of ``published`` articles one build may unpublish (None: any number).

    ``max_delete``: a number, "all", or None for the ``fraction`` rule: more than that share
    of the published articles stops the build, but one is always allowed (so a small site
    can still delete its only article, and a single removal never stops).
    """
    if max_delete == "all":
        return None
    if max_delete is not None:
        return max_delete
    return max(1, int(published * fraction))


def duplicate_errors(
    groups: dict[str, list[str]], display: Callable[[str], str]
) -> list[SeedError]:
    """Every file of a key that several files carry, naming the others."""
    errors = []
    for key, paths in groups.items():
        for p in paths:
            others = ", ".join(display(o) for o in paths if o != p)
            errors.append(SeedError(display(p), 1, f"duplicate key {key}: also {others}"))
    return errors


def standing_errors(
    store: Store,
    display: Callable[[str], str],
    duplicates: dict[str, list[str]] | None = None,
) -> list[SeedError]:
    """Every seed whose last read failed, and every duplicate key, sorted by path.

    ``duplicates``: ``store.duplicate_paths()`` as already read in this build (when no file
    row changed since), so the query runs once.
    """
    errors = [SeedError(display(p), line, reason) for p, line, reason in store.errors()]
    if duplicates is None:
        duplicates = store.duplicate_paths()
    errors += duplicate_errors(duplicates, display)
    errors.sort(key=lambda e: (e.path, e.line, e.reason))
    return errors


class Ledger:
    """Applies one build's scan results to ``store``, collecting ``Changes`` for the plan."""

    bulk_load = True  # an empty store is loaded in batches (False: row by row, for a test)

    def __init__(
        self,
        store: Store,
        feeds: FeedSet,
        *,
        now: datetime,
        authority: str,
        tz: tzinfo,
        page_size: int,
        membership_fp: str,
    ) -> None:
        self.store = store
        self.feeds = feeds
        self.now = now
        self.authority = authority
        self.tz = tz
        self.membership_fp = membership_fp
        self.changes = Changes(page_size=page_size)
        self.unpublished: set[str] = set()  # keys live before and not (yet) again
        self._bulk: _Bulk | None = None

    # --- a cold build: an empty store takes every file as new, in batches ----------------------
    def begin_bulk(self) -> bool:
        """Load in batches when the store is empty (a cold build): every lookup would miss.

        Call after adoption (an adopted id is a ledger entry: then no bulk load);
        ``finish_bulk`` must follow the last ``record`` before anything reads the store.
        """
        self._bulk = _Bulk() if self.bulk_load and self.store.is_empty() else None
        if self._bulk is not None:
            self.store.bulk_indexes(built=False)  # built once at the end: see ``finish_bulk``
        return self._bulk is not None

    def finish_bulk(self) -> None:
        """The last rows of a bulk load, then its indexes: the store is ready to be read."""
        if self._bulk is not None:
            self._flush(self._bulk)
            self.store.bulk_indexes(built=True)
            self._bulk = None

    def _flush(self, bulk: _Bulk) -> None:
        """Write the rows a bulk load holds (one ``executemany`` per table)."""
        if bulk.files:
            self.store.add_files(bulk.files)
            bulk.files = []
        if bulk.articles:
            self.store.add_articles(bulk.articles, self.now)
            bulk.articles = []

    def _record_new(self, bulk: _Bulk, result: FileResult) -> Status | None:
        """``record`` for a file of a cold build: new, an error, or a duplicate key.

        A worker may have made the article's row (``rows.py``): then the article itself is
        not even unpacked here.
        """
        rel, row = result.path, result.row
        article = result.article if row is None else None
        if article is not None:  # the ledger is empty: ``mint_id``'s first candidate is free
            row = new_article(article, authority=self.authority, tz=self.tz, feeds=self.feeds)
        key = row.key if row is not None else seed_key(rel)
        bulk.files.append(_file_state(result, key))
        status: Status | None = "error"
        if row is not None and key in bulk.keys:
            status = None  # another file already publishes this key: reported as a duplicate
        elif row is not None:  # (keys are unique here; the UNIQUE constraint still guards ids)
            bulk.keys.add(key)
            bulk.articles.append((row, rel))
            self.changes.moved(key, (), row.feeds)
            status = "new"
        if len(bulk.files) >= BULK_ROWS:
            self._flush(bulk)
        return status

    # --- membership: re-sorting everything when the feeds' definitions changed ---------------
    def needs_resort(self) -> bool:
        """Whether the feeds' definitions changed since the last build (a new store: no)."""
        store = self.store
        if store.get_meta("members_fp") == self.membership_fp:
            return False
        if not store.count_live():  # a fresh store: nothing to re-sort
            store.set_meta("members_fp", self.membership_fp)
            return False
        return True

    def resort(self) -> None:
        """Sort every article into its feeds afresh; archive places are handed out again."""
        store = self.store
        store.clear_members()
        for article in store.iter_live_articles():
            feeds = self.feeds.feeds_for(article)
            store.set_members(article.key, article.published, feeds)
            self.changes.feeds.update(feeds)
        store.force_rerender()
        store.set_meta("members_fp", self.membership_fp)

    # --- one file's outcome ---------------------------------------------------------------------
    def record(self, result: FileResult) -> Status | None:
        """Record one file's outcome; say how its article changed (None: a duplicate key).

        ``unpublished`` collects the keys taken off the feeds and not published again (a
        moved or renamed file's article comes back in the same build).
        """
        if self._bulk is not None:
            if not (result.gone or result.unchanged):
                return self._record_new(self._bulk, result)
            self.finish_bulk()  # not a cold build after all (cannot happen on an empty store)
        store, changes = self.store, self.changes
        rel, article, prev = result.path, result.article, result.prev
        if result.gone:
            key = store.key_at_path(rel)
            if key is not None:
                store.retire(key)  # unpublished, but the ledger keeps its id
                changes.gone(key, store.drop_members(key))
                self.unpublished.add(key)
            store.delete_file(rel)
            return "deleted" if key is not None else None
        if result.unchanged:
            if (
                prev is not None
                and (
                    prev.size,
                    prev.mtime_ns,
                    prev.ctime_ns,
                    prev.inode,
                )
                != result.stamp
            ):
                store.put_file(
                    replace(
                        prev,
                        size=result.size,
                        mtime_ns=result.mtime_ns,
                        ctime_ns=result.ctime_ns,
                        inode=result.inode,
                    )
                )
            return "unchanged"
        key = article.key if article is not None else seed_key(rel)
        store.put_file(_file_state(result, key))
        if article is None:
            return "error"  # the last valid version, if any, stays published
        row = store.article_row(key)
        if (
            row is not None
            and row.path not in (None, rel)
            and row.path in store.paths_with_key(key)
        ):
            return None  # another file already publishes this key: reported as a duplicate
        old_key = store.retired_key(article.content_hash) if row is None else None
        old = store.article_row(old_key) if old_key else None
        status: Status
        if old is not None:  # the same content under a new name keeps its id
            store.forget(old.key)
            self.unpublished.discard(old.key)
            changes.gone(old.key, store.drop_members(old.key))
            entry_id, first_seen, updated, status = (
                old.entry_id,
                old.first_seen,
                old.updated,
                "changed",
            )
        elif row is None:
            entry_id = mint_id(store, article, authority=self.authority, tz=self.tz)
            first_seen, updated, status = self.now, article.published, "new"
        else:
            entry_id, first_seen = row.entry_id, row.first_seen
            same = row.content_hash == article.content_hash
            updated = row.updated if same else max(self.now, article.published)
            status = "new" if row.path is None else ("unchanged" if same else "changed")
        entry = Entry.of(article, entry_id=entry_id, updated=updated)
        store.put_article(entry, path=rel, first_seen=first_seen)
        self.unpublished.discard(key)
        if status != "unchanged":
            feeds = self.feeds.feeds_for(entry)
            changes.moved(key, store.set_members(key, entry.published, feeds), feeds)
        return status

    # --- adoption: a new store takes the ids feeds/ published -----------------------------------
    def adopt(self, found: Found) -> int:
        """Put every entry ``found`` in feeds/ into the ledger; how many were taken."""
        taken = 0
        for entry in found.entries.values():
            if self.store.adopt_entry(
                entry.key, entry.entry_id, published=entry.published, updated=entry.updated
            ):
                taken += 1
        self.store.adoption_done()
        return taken

    def confirm(self, found: Found | None, article: Article | None) -> None:
        """A seed that reads as its adopted entry did keeps that entry's ``updated``."""
        if found is None or article is None:
            return
        seen = found.entries.get(article.key)
        if seen is not None and seen.shows(article):
            self.store.confirm_adopted(article.key, article.content_hash)

    def adopt_places(self, found: Found, feeds_dir: Path) -> None:
        """Adopted entries keep their archive pages, so no archive document changes."""
        size = self.changes.page_size
        if not size or not found.archives:
            return
        store = self.store
        for spec in self.feeds.specs(store):
            folder = (feeds_dir / spec.archive_file(0)).parent
            places = found.places(folder, size)
            for key, seq in (places or {}).items():
                if any(m.feed == spec.name and m.seq is None for m in store.members_of(key)):
                    store.set_seq(spec.name, key, seq)


def _file_state(result: FileResult, key: str) -> FileState:
    """What the store keeps of a file that was read: its stamp, hash and outcome."""
    error = result.error
    return FileState(
        result.path,
        key,
        result.size,
        result.mtime_ns,
        result.file_hash,
        error.reason if error else None,
        error.line if error else None,
        result.warnings,
        result.ctime_ns,
        result.inode,
    )


def record_stamps(
    store: Store, scan: ScanResult, duplicates: dict[str, list[str]] | None = None
) -> bool:
    """After a full scan's results are recorded: keep the digest of its listing in the
    store's meta (``STAMPS_META``) when the store's files are now exactly that listing,
    every one hashed and accepted and no key shared, so the next full scan that lists the
    same can trust it instead of reading and comparing every stored stamp.

    Bound to this scan's start (``scan_ns``, written beside it). Otherwise the entry is left
    as it is: any stamp written since it was made dropped it (``Store.put_file``).
    ``duplicates``: the store's ``duplicate_paths`` when known (nothing recorded since).
    True when the digest this scan trusted still holds: no file's row was written since,
    so the duplicate keys are still none.
    """
    listed = scan.listed
    trusted = (
        listed is not None
        and listed.held is not None
        and store.get_meta(STAMPS_META) == listed.held
    )
    if listed is None or not listed.complete:
        return trusted
    if not trusted and (store.duplicate_paths() if duplicates is None else duplicates):
        return False  # files of a shared key are parsed again by every full scan
    store.set_meta(STAMPS_META, f"{scan.started_ns}:{listed.digest}")
    return trusted
