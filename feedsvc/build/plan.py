"""Stage 3, plan: what one build writes into feeds/, with every archive place settled first.

The ledger left the store with each article in its feeds; here each touched feed's current
document is fitted into the byte budget, entries that no longer fit get their RFC 5005
archive places (``set_seq``, the last store writes of a build), and the result is a ``Plan``:
the documents to write (bytes, or a renderer for the many article and archive pages, so
memory stays flat), the outputs to remove, and every output the store's state says feeds/
holds. The writer (``outputs``) then only writes files.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from urllib.parse import urljoin

from .._version import __version__
from ..config import Settings
from ..models import ARTICLES_DIR, Entry, FeedMeta, FeedSpec, Format, Paging
from ..render.feeds import fit, render_atom, render_rss
from ..render.jsonfeed import render_json
from ..render.pages import ArticlePages, PageFeed, Site, render_index
from ..store import Stamp, Store
from . import fingerprints
from .feeds import FeedSet
from .ledger import Changes
from .outputs import INDEX_FILE, Document, unlike_manifest, url

INDEX_ARTICLES = 30
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # a store older than #8 that never saw an article

Output = tuple[str, str, int]  # what writes a file: ("feed", name, 0), ("page", name, n),
# ("article", key, 0) or ("index", "", 0)


@dataclass(slots=True)
class Plan:
    """One build's outputs: what to write and remove, and what feeds/ holds afterwards."""

    full: bool
    documents: list[Document] = field(default_factory=list)  # feeds, archive pages, index
    pages: Iterator[Document] = field(default_factory=lambda: iter(()))  # article pages
    remove: list[str] = field(default_factory=list)
    owned: set[str] = field(default_factory=set)  # every output after this build
    sweep: list[tuple[str, Callable[[Path], bool]]] = field(default_factory=list)
    suspect: set[str] = field(default_factory=set)  # found missing or damaged
    idle: bool = False  # nothing changed and nothing is missing: nothing to write at all


def _is_page(path: Path) -> bool:
    return path.suffix == ".html"


def _is_archive_page(path: Path) -> bool:
    return path.suffix == ".xml" and path.stem.isdigit()


class Planner:
    """Plans the outputs of one set of settings."""

    def __init__(self, settings: Settings, feeds: FeedSet | None = None) -> None:
        self.settings = settings
        self.root = settings.feeds_dir
        self.feeds = feeds or FeedSet(settings)
        self.configured = self.feeds.configured
        base = settings.base_url
        self.meta = FeedMeta(
            base_url=base,
            author_name=settings.author_name,
            author_email=settings.author_email,
            language=settings.language,
            generator_version=__version__,
            hub_url=settings.websub_hub,
            icon=urljoin(base, settings.icon) if settings.icon else None,
            logo=urljoin(base, settings.logo) if settings.logo else None,
            favicon=urljoin(base, settings.favicon) if settings.favicon else None,
            ttl_minutes=max(1, math.ceil(settings.cache_max_age / 60)),
            max_bytes=settings.max_feed_bytes or None,
        )
        self.site = Site(
            title=settings.title,
            subtitle=settings.subtitle,
            base_url=base,
            language=settings.language,
            generator_version=__version__,
            timezone=settings.timezone,
        )
        self.membership_fp = fingerprints.membership(settings, self.configured)
        self.render_fp = fingerprints.render(
            settings, self.meta, self.site, self.membership_fp, __version__
        )
        self._empty_date: datetime | None = None

    def main_outputs(self) -> list[str]:
        """The first feed's documents, relative to feeds/: what the CLI names in its summary."""
        spec = self.feeds.main
        return [spec.file(fmt) for fmt in spec.formats]

    # --- the outputs the store's state says feeds/ holds --------------------------------------
    def owned(self, store: Store, specs: Sequence[FeedSpec]) -> dict[str, Output]:
        """Every file the store's state says feeds/ holds, and what writes it."""
        out: dict[str, Output] = {}
        gzipped = self.settings.gzip_feeds
        for spec in specs:
            for fmt in spec.formats:
                out[spec.file(fmt)] = ("feed", spec.name, 0)
                if gzipped:
                    out[spec.file(fmt) + ".gz"] = ("feed", spec.name, 0)
            last = self._last_page(store, spec) if "atom" in spec.formats else None
            for page in range(-1 if last is None else last, -1, -1):
                out[spec.archive_file(page)] = ("page", spec.name, page)
        if self.settings.html_pages:
            out[INDEX_FILE] = ("index", "", 0)
            for key in store.live_keys():
                out[f"{ARTICLES_DIR}/{key}.html"] = ("article", key, 0)
        return out

    def _check(
        self,
        owned: dict[str, Output],
        manifest: dict[str, Stamp],
        changes: Changes,
        suspect: set[str],
    ) -> None:
        """What is missing or not as we left it (one stat each) is written again."""
        redo, damaged = unlike_manifest(self.root, owned, manifest)
        suspect |= damaged
        for rel in redo:
            kind, name, page = owned[rel]
            if kind == "feed":
                changes.feeds.add(name)
            elif kind == "page":
                changes.feeds.add(name)
                changes.pages.add((name, page))
            elif kind == "article":
                changes.articles.add(name)
            else:
                changes.index = True

    # --- the plan -------------------------------------------------------------------------------
    def plan(self, store: Store, changes: Changes) -> Plan:
        """Settle archive places for what ``changes`` touched and list the documents to write.

        Everything is planned when the outputs are not ours (new settings, no manifest), and
        anything missing or damaged in feeds/ is planned again.
        """
        self._empty_date = None
        specs = self.feeds.specs(store)
        manifest = store.output_stamps()
        full = store.get_meta("render_fp") != self.render_fp or not manifest
        plan = Plan(full=full)
        if not full:
            self._check(self.owned(store, specs), manifest, changes, plan.suspect)
            if not changes:
                plan.idle = True
                return plan
        for spec in specs:
            if full or spec.name in changes.feeds:
                self._plan_feed(store, spec, changes, plan)
        page_feeds = [
            PageFeed(
                name=s.name,
                title=s.title,
                description=s.subtitle,
                links={fmt: url(self.meta.base_url, s.file(fmt)) for fmt in s.formats},
            )
            for s in specs
        ]
        html = self.settings.html_pages
        if html and (full or changes.feeds or changes.index):
            index = render_index(self.site, page_feeds, store.live_articles(INDEX_ARTICLES))
            plan.documents.append(Document(INDEX_FILE, partial(bytes, index), "index"))
        if html:
            plan.pages = self._pages(store, changes, full, page_feeds)
            plan.remove += [f"{ARTICLES_DIR}/{key}.html" for key in sorted(changes.removed)]
        elif full:
            plan.remove.append(INDEX_FILE)
        owned = self.owned(store, specs)
        plan.owned = set(owned)
        plan.remove += sorted(set(manifest) - plan.owned)  # feeds, pages and archives gone
        if full:  # files no build of ours would write now (deleted while we were not looking)
            plan.sweep.append((f"{ARTICLES_DIR}/", _is_page))
            for spec in specs:
                if "atom" in spec.formats:
                    folder = spec.archive_file(0).rpartition("/")[0] + "/"
                    plan.sweep.append((folder, _is_archive_page))
        return plan

    def _empty_feed_date(self, store: Store) -> datetime:
        """What an empty feed is dated with: the newest date the store knows (never "now")."""
        if self._empty_date is None:
            self._empty_date = store.newest_date() or EPOCH
        return self._empty_date

    def _plan_feed(self, store: Store, spec: FeedSpec, changes: Changes, plan: Plan) -> None:
        budget = self.meta.max_bytes
        meta = self.meta
        size = self.settings.archive_page_size
        archived = bool(size) and "atom" in spec.formats
        articles = store.feed_articles(spec.name, spec.max_items)
        taken: dict[str, int] = {}
        if archived and len(articles) < spec.max_items:
            # Deletions left the window short: the most recently archived entries come back
            # off the top of the archive, so only its newest pages change.
            for key, seq in store.last_archived(spec.name, spec.max_items - len(articles)):
                store.set_seq(spec.name, key, None)
                taken[key] = seq
                changes.pages.add((spec.name, seq // size))
            if taken:
                articles = store.feed_articles(spec.name, spec.max_items)
        count = len(articles)
        empty = None if articles else self._empty_feed_date(store)

        def atom(prev: str | None) -> Callable[[Sequence[Entry]], bytes]:
            paging = Paging(self_file=spec.file("atom"), prev_archive=prev)
            return lambda items: render_atom(items, spec, meta, paging=paging, updated=empty)

        def document(fmt: Format, data: bytes) -> Document:
            return Document(
                spec.file(fmt), partial(bytes, data), "feed", spec.name, fmt, compress=True
            )

        if "atom" in spec.formats:
            # The prev-archive link takes bytes, and what does not fit goes to the archive:
            # settle both together (archive places only grow, so this ends quickly).
            last = self._last_page(store, spec)
            while True:
                prev = spec.archive_file(last) if last is not None else None
                data, count = fit(atom(prev), articles, budget)
                settled = self._assign(store, spec, articles, count, taken, changes)
                if settled == last:
                    break
                last = settled
            plan.documents.append(document("atom", data))
            self._plan_archive(store, spec, last, changes, plan)
        current = articles[:count] if archived else articles  # never an archived entry
        renderers: dict[Format, Callable[[Sequence[Entry]], bytes]] = {
            "rss": lambda items: render_rss(items, spec, meta, updated=empty),
            "json": lambda items: render_json(items, spec, meta),
        }
        for fmt, render in renderers.items():
            if fmt in spec.formats:
                data, _ = fit(render, current, budget)
                plan.documents.append(document(fmt, data))

    def _last_page(self, store: Store, spec: FeedSpec) -> int | None:
        size = self.settings.archive_page_size
        seq = store.next_seq(spec.name)
        return (seq - 1) // size if size and seq else None

    def _assign(
        self,
        store: Store,
        spec: FeedSpec,
        window: Sequence[Entry],
        current: int,
        taken: dict[str, int],
        changes: Changes,
    ) -> int | None:
        """Give entries past the feed's first ``current`` an archive place; the newest page.

        Places are handed out once, oldest first, so a full page never changes unless one of
        its own entries is edited or deleted. An entry ``taken`` back from the archive for this
        window that did not fit after all returns to the place it had.
        """
        size = self.settings.archive_page_size
        if not size:
            return None
        for article in window[current:]:
            if article.key in taken:
                store.set_seq(spec.name, article.key, taken.pop(article.key))
        seq = store.next_seq(spec.name)
        for key in store.unarchived_after(spec.name, current):
            store.set_seq(spec.name, key, seq)
            changes.pages.add((spec.name, seq // size))
            seq += 1
        return self._last_page(store, spec)

    def _plan_archive(
        self, store: Store, spec: FeedSpec, last: int | None, changes: Changes, plan: Plan
    ) -> None:
        """The archive pages that changed; pages past the newest one are removed."""
        top = -1 if last is None else last
        if plan.full:
            pages: list[int] = list(range(top + 1))
        else:
            dirty = {p for f, p in changes.pages if f == spec.name}
            pages = sorted(p for p in dirty if p <= top)
            # emptied by deletions: nothing of a deleted article stays public
            plan.remove += [spec.archive_file(p) for p in sorted(dirty) if p > top]
        for page in pages:
            plan.documents.append(
                Document(
                    spec.archive_file(page),
                    partial(self._archive_page, store, spec, page),
                    "archive",
                    spec.name,
                    "atom",
                )
            )

    def _archive_page(self, store: Store, spec: FeedSpec, page: int) -> bytes:
        """One RFC 5005 archive page, rendered when it is written (reads the store only)."""
        size = self.settings.archive_page_size
        paging = Paging(
            self_file=spec.archive_file(page),
            prev_archive=spec.archive_file(page - 1) if page else None,
            current=spec.file("atom"),
            archive=True,
        )
        entries = store.archived(spec.name, page * size, (page + 1) * size)
        return render_atom(entries, spec, self.meta, paging=paging)

    def _pages(
        self, store: Store, changes: Changes, full: bool, feeds: list[PageFeed]
    ) -> Iterator[Document]:
        """One HTML page per published article, at the permanent link its entries carry."""
        articles = store.iter_live_articles() if full else store.articles(sorted(changes.articles))
        pages = ArticlePages(self.site, feeds)
        for article in articles:
            page = pages.render(article)
            yield Document(article.page, partial(bytes, page), "article", durable=False)
