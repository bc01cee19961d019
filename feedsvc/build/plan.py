"""Stage 3, plan: what one build writes into feeds/, with every archive place settled first.

The ledger left the store with each article in its feeds; here each touched feed's current
document is fitted into the byte budget, entries that no longer fit get their RFC 5005
archive places (``set_seq``, the last store writes of a build), and the result is a ``Plan``:
the documents to write (bytes, or a renderer for the many article and archive pages, so
memory stays flat), the outputs to remove, and every output the store's state says feeds/
holds. The writer (``outputs``) then only writes files.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from itertools import islice
from pathlib import Path
from typing import NamedTuple, Protocol, TypeVar
from urllib.parse import urljoin

from .._version import __version__
from ..config import Settings
from ..errors import PublishError
from ..models import ARCHIVE_SUFFIXES, ARTICLES_DIR, Entry, FeedMeta, FeedSpec, Format, Paging
from ..render.opml import OpmlFeed, render_opml
from ..render.pages import (
    HTML_PAGE_SIZE,
    HTML_PAGES_DIR,
    ArchivePages,
    ArticlePages,
    Listed,
    PageFeed,
    Site,
    html_page_count,
    html_page_path,
    render_index,
)
from ..store import Stamp, Store
from ..store.sql import keyed_entry
from . import fingerprints, pool
from .feeds import FeedSet
from .ledger import Changes
from .outputs import (
    GZIP_SUFFIX,
    INDEX_FILE,
    OPML_FILE,
    PAGES_STAMP,
    Document,
    Pages,
    Spool,
    create_page,
    dir_stamp,
    staged_name,
    unlike_manifest,
    url,
)
from .pool import POOL_WINDOW

INDEX_ARTICLES = 30
# A full build whose page tree is as the last write left it (``PAGES_STAMP``) stats this many
# article pages, the next ones in key order each build (the place kept in the store's meta),
# instead of every one: a page damaged in place (same name, other bytes) is found within
# (pages / PAGE_SAMPLE) full builds; a page removed or added is found by the next one.
PAGE_SAMPLE = 2000
SAMPLE_META = "page_sample_at"
# The same for the archive folders (``archive/``, a category's ``<name>/archive/``) and the
# HTML archive's ``pages/``: while a folder's stamp is as the last write left it (the manifest
# keeps it under "<folder>/"), a full build stats this many of their files, the next ones in
# path order each build (``FOLDER_SAMPLE_META``: how far the last sample went), not all.
FOLDER_SAMPLE = 1000
FOLDER_SAMPLE_META = "folder_sample_at"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # a store older than #8 that never saw an article
# What each HTML archive page showed when it was last planned (a JSON list of digests, page 1
# first): a build renders only the pages whose digest changed, or that were found missing
HTML_META = "html_pages"
# Article pages whose feeds (``members_of_keys``) one query reads, when the site has several;
# and articles read at a time for the pages of an incremental build
MEMBERS_BATCH = 500
PAGE_CHUNK = 100  # article pages a worker makes per task (``StoredPages``): ~25 ms of work


class _Keyed(Protocol):
    @property
    def key(self) -> str: ...


KeyedT = TypeVar("KeyedT", bound=_Keyed)

Output = tuple[str, str, int]  # what writes a file: ("feed", name, 0), ("page", name, n),
# ("article", key, 0), ("html", "", n) (HTML archive page n) or ("index", "", 0)


@dataclass(slots=True)
class Plan:
    """One build's outputs: what to write and remove, and what feeds/ holds afterwards."""

    full: bool
    documents: list[Document] = field(default_factory=list)  # feeds, archive pages, index
    pages: Iterable[Document] = field(default_factory=Pages)  # article pages
    remove: list[str] = field(default_factory=list)
    owned: set[str] = field(default_factory=set)  # every output after this build
    sweep: list[tuple[str, Callable[[Path], bool]]] = field(default_factory=list)
    suspect: set[str] = field(default_factory=set)  # found missing or damaged
    idle: bool = False  # nothing changed and nothing is missing: nothing to write at all
    spool: Spool | None = None  # archive pages rendered while fitted (a full build)
    # the folders whose stamp the manifest keeps (see FOLDER_SAMPLE): True, stamp it again
    # after the write (it was checked, or as the last write left it); False: forget it
    folders: dict[str, bool] = field(default_factory=dict)


def _is_page(path: Path) -> bool:
    return path.suffix == ".html"


def _is_html_page(path: Path) -> bool:
    return path.suffix == ".html" and path.stem.isdigit()


def _is_archive_page(path: Path) -> bool:
    """An archive page in any format, or its ``.gz``: ``<n>.xml``, ``<n>.rss.gz``, ..."""
    name = path.name.removesuffix(GZIP_SUFFIX)
    stem, _, suffix = name.partition(".")
    return stem.isdigit() and suffix in ARCHIVE_SUFFIXES.values()


class Planner:
    """Plans the outputs of one set of settings."""

    # A full build keeps the archive pages it rendered while fitting them (``Spool``), to be
    # written without rendering again; False renders each when it is written (the path of
    # incremental builds; a test compares the two)
    render_once: bool = True
    # Whether a full build's article pages are made by worker processes (``StoredPages``):
    # None decides by size and load (``pool.workers``, FEEDSVC_POOL=1/0); True/False: always/never
    pool: bool | None = None

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
            ttl_minutes=settings.feed_ttl_minutes or None,
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
        self._spool: Spool | None = None

    def main_outputs(self) -> list[str]:
        """The first feed's documents, relative to feeds/: what the CLI names in its summary."""
        spec = self.feeds.main
        return [spec.file(fmt) for fmt in spec.formats]

    # --- the outputs the store's state says feeds/ holds --------------------------------------
    def owned(
        self, store: Store, specs: Sequence[FeedSpec], *, pages: bool = True
    ) -> dict[str, Output]:
        """Every file the store's state says feeds/ holds, and what writes it.

        ``pages=False``: all but the article pages (one per article: an incremental build
        names the few it touches itself).
        """
        out: dict[str, Output] = {}
        gzipped = self.settings.gzip_feeds
        for spec in specs:
            for fmt in spec.formats:
                out[spec.file(fmt)] = ("feed", spec.name, 0)
                if gzipped:
                    out[spec.file(fmt) + ".gz"] = ("feed", spec.name, 0)
            last = self._last_page(store, spec) if "atom" in spec.formats else None
            for page in range(-1 if last is None else last, -1, -1):
                for fmt in spec.formats:
                    out[spec.archive_file(page, fmt)] = ("page", spec.name, page)
                    if gzipped:
                        out[spec.archive_file(page, fmt) + GZIP_SUFFIX] = ("page", spec.name, page)
        if self.settings.html_pages:
            out[INDEX_FILE] = ("index", "", 0)
            out[OPML_FILE] = ("index", "", 0)
            for page in range(1, html_page_count(store.count_live()) + 1):
                out[html_page_path(page)] = ("html", "", page)
            for key in store.live_keys() if pages else ():
                out[f"{ARTICLES_DIR}/{key}.html"] = ("article", key, 0)
        return out

    def _check(
        self,
        owned: dict[str, Output],
        manifest: dict[str, Stamp],
        changes: Changes,
        suspect: set[str],
        html: set[int],
    ) -> None:
        """What is missing or not as we left it (one stat each) is written again (HTML
        archive pages: their numbers go to ``html``)."""
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
            elif kind == "html":
                html.add(page)
                changes.index = True
            else:
                changes.index = True

    # --- the plan -------------------------------------------------------------------------------
    def plan(self, store: Store, changes: Changes, *, check_all: bool = True) -> Plan:
        """Settle archive places for what ``changes`` touched and list the documents to write.

        Everything is planned when the outputs are not ours (new settings, no manifest), and
        anything missing or damaged in feeds/ is planned again: every output (``check_all``,
        a full build), or else (an incremental build, whose cost must not grow with the
        corpus) the feed documents, the index and the archive and article pages it touches.
        """
        self._empty_date = None
        specs = self.feeds.specs(store)
        touched = sorted(changes.articles | changes.removed)
        # every output but the article pages, and the page tree's own stamp
        manifest = store.output_stamps(skip_folder=ARTICLES_DIR)
        tree = store.output_stamps([PAGES_STAMP]).get(PAGES_STAMP)
        full = store.get_meta("render_fp") != self.render_fp or not manifest
        html = self.settings.html_pages
        now = dir_stamp(os.fspath(self.root / ARTICLES_DIR)) if html else None
        # The page tree as the last write left it: no page can be missing (see PAGES_STAMP)
        sampled = check_all and html and not full and tree is not None and tree == now
        sample: list[str] = []
        if sampled:  # a rotating sample of the pages, and those this build touches
            sample = self._page_sample(store)
            pages = {f"{ARTICLES_DIR}/{key}.html" for key in (*sample, *touched)}
            manifest |= store.output_stamps(sorted(pages))
        elif check_all:  # every page is stat'ed
            manifest = store.output_stamps()
            manifest.pop(PAGES_STAMP, None)
        else:  # the article pages this build touches, and every other output
            manifest |= store.output_stamps(f"{ARTICLES_DIR}/{key}.html" for key in touched)
        # the folders' own stamps (FOLDER_SAMPLE): none of them is an output to check
        recorded = {rel: manifest.pop(rel) for rel in [r for r in manifest if r.endswith("/")]}
        folders = {
            folder: dir_stamp(os.fspath(self.root / folder)) for folder in self._folders(specs)
        }
        plan = Plan(full=full)
        # a folder found as the last write left it, or checked whole, is stamped after the write
        plan.folders = {f: full or check_all or recorded.get(f) == st for f, st in folders.items()}
        plan.folders |= {f: False for f in recorded if f not in folders}  # a feed now gone
        redo: set[int] = set()  # HTML archive pages found missing or damaged
        if not full:
            owned = self.owned(store, specs, pages=check_all and not sampled)
            if not check_all:
                owned = {
                    rel: out
                    for rel, out in owned.items()
                    if out[0] != "page" or (out[1], out[2]) in changes.pages
                }
            if not check_all or sampled:
                for key in (*changes.articles, *sample):
                    owned[f"{ARTICLES_DIR}/{key}.html"] = ("article", key, 0)
            checked = (
                self._folder_sample(store, owned, manifest, folders, recorded)
                if check_all
                else owned
            )
            self._check(checked, manifest, changes, plan.suspect, redo)
            # nothing to write; but a full check of a page tree (or a folder) found whole takes
            # its stamp again (an empty write), so the next builds can sample
            restamp = check_all and any(recorded.get(f) != st for f, st in folders.items())
            if not changes and not (check_all and html and tree != now) and not restamp:
                plan.idle = True
                return plan
        # A full build renders each archive page once, while fitting it, and keeps the bytes
        # for the writer (an incremental build fits few pages, and may move entries back)
        spooled = full and self.render_once
        self._spool = plan.spool = Spool(self.settings.state_dir) if spooled else None
        try:
            for spec in specs:
                if full or spec.name in changes.feeds:
                    self._plan_feed(store, spec, changes, plan)
        finally:
            self._spool = None  # the plan's documents hold it while they are written
        page_feeds = [
            PageFeed(
                name=s.name,
                title=s.title,
                # only a feed's own description: the site's is in the index's header
                description="" if s.subtitle == self.site.subtitle else s.subtitle,
                links={fmt: url(self.meta.base_url, s.file(fmt)) for fmt in s.formats},
            )
            for s in specs
        ]
        if html and (full or changes.feeds or changes.index):
            archive, newest = self._html_archive(
                store, page_feeds, plan.spool, full=full, redo=redo
            )
            index = render_index(
                self.site,
                page_feeds,
                store.live_articles(INDEX_ARTICLES),
                opml=url(self.meta.base_url, OPML_FILE),
                archive_page=newest,
            )
            plan.documents.append(Document(INDEX_FILE, partial(bytes, index), "index"))
            opml = self._opml(store, specs)
            plan.documents.append(Document(OPML_FILE, partial(bytes, opml), "opml"))
            plan.documents += archive
        if html:
            plan.pages = self._pages(store, changes, full, page_feeds)
            plan.remove += [f"{ARTICLES_DIR}/{key}.html" for key in sorted(changes.removed)]
        elif full:
            plan.remove += [INDEX_FILE, OPML_FILE]
            plan.sweep.append((f"{HTML_PAGES_DIR}/", _is_html_page))
        every = full or (check_all and not sampled)
        plan.owned = set(self.owned(store, specs, pages=every))
        if not every:  # as the manifest read above: the article pages this build touches
            plan.owned |= {f"{ARTICLES_DIR}/{a.key}.html" for a in store.articles(touched)}
            plan.owned |= {f"{ARTICLES_DIR}/{key}.html" for key in sample}
        plan.remove += sorted(set(manifest) - plan.owned)  # feeds, pages and archives gone
        if full:  # files no build of ours would write now (deleted while we were not looking)
            plan.sweep.append((f"{ARTICLES_DIR}/", _is_page))
            plan.sweep.append((f"{HTML_PAGES_DIR}/", _is_html_page))
            for spec in specs:
                if "atom" in spec.formats:
                    folder = spec.archive_file(0).rpartition("/")[0] + "/"
                    plan.sweep.append((folder, _is_archive_page))
        return plan

    def _folders(self, specs: Sequence[FeedSpec]) -> list[str]:
        """The folders of many outputs whose stamps the manifest keeps (see FOLDER_SAMPLE)."""
        folders = [
            spec.archive_file(0).rpartition("/")[0] + "/"
            for spec in specs
            if "atom" in spec.formats
        ]
        if self.settings.html_pages:
            folders.append(f"{HTML_PAGES_DIR}/")
        return sorted(set(folders))

    def _folder_sample(
        self,
        store: Store,
        owned: dict[str, Output],
        manifest: dict[str, Stamp],
        folders: dict[str, Stamp | None],
        recorded: dict[str, Stamp],
    ) -> dict[str, Output]:
        """``owned`` without the files of the folders found as the last write left them (no
        file created, removed or renamed in them since: their stamps as recorded), but for
        the next ``FOLDER_SAMPLE`` of those in path order (a file damaged in place is found
        within (files / FOLDER_SAMPLE) full builds). A file the manifest does not know is
        never left out: it is written."""
        whole = {f for f, st in folders.items() if st is not None and recorded.get(f) == st}
        if not whole:
            return owned
        inside = sorted(
            rel for rel in owned if rel[: rel.rfind("/") + 1] in whole and rel in manifest
        )
        if len(inside) <= FOLDER_SAMPLE:
            return owned
        held = store.get_meta(FOLDER_SAMPLE_META) or "0"
        at = int(held) % len(inside) if held.isdigit() else 0
        end = at + FOLDER_SAMPLE
        store.set_meta(FOLDER_SAMPLE_META, str(end % len(inside)))
        sample = set(inside[at:end]) | set(inside[: max(0, end - len(inside))])  # wraps round
        skipped = set(inside) - sample
        return {rel: out for rel, out in owned.items() if rel not in skipped}

    def _page_sample(self, store: Store) -> list[str]:
        """The next ``PAGE_SAMPLE`` live keys in key order, from where the last sample ended.

        Read along the key index (``live_keys_after``): a few thousand rows, not every key.
        """
        if store.count_live() <= PAGE_SAMPLE:
            return sorted(store.live_keys())
        picked = store.live_keys_after(store.get_meta(SAMPLE_META) or "", PAGE_SAMPLE)
        if len(picked) < PAGE_SAMPLE:  # wrap around
            picked += store.live_keys_after("", PAGE_SAMPLE - len(picked))
        store.set_meta(SAMPLE_META, picked[-1])
        return picked

    def _opml(self, store: Store, specs: Sequence[FeedSpec]) -> bytes:
        """``feeds.opml``: every feed, dated by the newest article's content (never "now")."""
        feeds = [
            OpmlFeed(
                title=s.title,
                description=s.subtitle,
                language=s.language or self.site.language,
                links={fmt: url(self.meta.base_url, s.file(fmt)) for fmt in s.formats},
            )
            for s in specs
        ]
        html_url = url(self.meta.base_url, INDEX_FILE)
        newest = store.live_articles(1)
        modified = newest[0].updated if newest else self._empty_feed_date(store)
        return render_opml(self.site.title, feeds, html_url=html_url, modified=modified)

    def _html_archive(
        self,
        store: Store,
        feeds: list[PageFeed],
        spool: Spool | None,
        *,
        full: bool,
        redo: set[int],
    ) -> tuple[list[Document], int]:
        """The HTML archive pages (#11) that changed, and the number of the newest page.

        Every live article, numbered from the oldest (``live_listing``: date, first seen,
        key, from one index), ``HTML_PAGE_SIZE`` a page; a page's head links the main feed
        only. Each page's digest (its number, whether a newer page exists, and its articles'
        dates, keys and content hashes: all it shows that is not in ``render_fp``, the title
        being part of the content) is kept in the store (``HTML_META``); only the pages whose
        digest changed, or that ``redo`` names (found missing or damaged), are rendered (their
        titles read in SQL, no article validated), or every page when ``full``. A new article
        then renders the newest page only; an edit (of the title, or of anything: the content
        hash changes) its own page; a deletion or a backdated article the pages from its place
        on. The pages wait in ``spool`` when there is one (a full build), not in memory.
        """
        listed = store.live_listing()
        pages = html_page_count(len(listed))
        before: list[str] = [] if full else json.loads(store.get_meta(HTML_META) or "[]")
        digests: list[str] = []
        main = [f for f in feeds if f.name == self.feeds.main.name]
        docs: list[Document] = []
        archive = ArchivePages(self.site, main)
        for page in range(1, pages + 1):
            first = (page - 1) * HTML_PAGE_SIZE
            rows = listed[first : first + HTML_PAGE_SIZE]
            digest = hashlib.blake2b(f"{page}\0{page < pages}".encode(), digest_size=12)
            for published, _, key, content_hash in rows:
                digest.update(f"\0{published}\0{key}\0{content_hash}".encode())
            digests.append(digest.hexdigest())
            if page not in redo and page <= len(before) and before[page - 1] == digests[-1]:
                continue
            titles = store.titles(key for _, _, key, _ in rows)
            chunk = [
                # ``Article.page``
                Listed(titles[key], f"{ARTICLES_DIR}/{key}.html", datetime.fromisoformat(when))
                for when, _, key, _ in reversed(rows)
            ]
            data = archive.render(chunk, page, pages)
            rel = html_page_path(page)
            if spool is not None:
                spool.put(rel, data)
                docs.append(Document(rel, partial(spool.get, rel), "index"))
            else:
                docs.append(Document(rel, partial(bytes, data), "index"))
        if digests != before:
            store.set_meta(HTML_META, json.dumps(digests))
        return docs, pages

    def _empty_feed_date(self, store: Store) -> datetime:
        """What an empty feed is dated with: the newest date the store knows (never "now")."""
        if self._empty_date is None:
            self._empty_date = store.newest_date() or EPOCH
        return self._empty_date

    def _plan_feed(self, store: Store, spec: FeedSpec, changes: Changes, plan: Plan) -> None:
        budget = self.meta.max_bytes
        size = self.settings.archive_page_size
        archived = bool(size) and "atom" in spec.formats
        articles = store.feed_articles(spec.name, spec.max_items)
        taken: dict[str, int] = {}
        if archived and len(articles) < spec.max_items:
            # Deletions left the window short: the most recently archived entries come back
            # off the top of the archive, so only its newest pages change.
            for key, seq in store.last_archived(spec.name, spec.max_items - len(articles)):
                taken[key] = seq
                changes.pages.add((spec.name, seq // size))
            if taken:
                store.set_seqs(spec.name, ((key, None) for key in taken))
                articles = store.feed_articles(spec.name, spec.max_items)
        empty = None if articles else self._empty_feed_date(store)
        from ..render.feeds import fit  # feedgen and lxml: only for a feed that changed

        def render(fmt: Format, prev: int | None) -> Callable[[Sequence[Entry]], bytes]:
            paging = Paging(
                self_file=spec.file(fmt),
                prev_archive=spec.archive_file(prev, fmt) if prev is not None else None,
            )
            return partial(self._render, fmt, spec, paging, empty)

        docs: dict[Format, bytes] = {}
        if archived:
            # The prev-archive links take bytes, and what does not fit goes to the archive:
            # settle both together (archive places only grow, so this ends quickly). Every
            # format's current document holds the same entries, the most that fit in all.
            last = self._last_page(store, spec)
            while True:
                fitted = {fmt: fit(render(fmt, last), articles, budget) for fmt in spec.formats}
                count = min(n for _, n in fitted.values())
                settled = self._assign(store, spec, articles, count, taken, changes)
                if settled == last:
                    break
                last = settled
            for fmt, (data, n) in fitted.items():
                docs[fmt] = data if n == count else render(fmt, last)(articles[:count])
        else:
            for fmt in spec.formats:
                docs[fmt], _ = fit(render(fmt, None), articles, budget)
        for fmt in spec.formats:  # in the spec's order, as before
            plan.documents.append(
                Document(
                    spec.file(fmt),
                    partial(bytes, docs[fmt]),
                    "feed",
                    spec.name,
                    fmt,
                    compress=True,
                )
            )
        if archived:
            self._plan_archive(store, spec, last, changes, plan)

    def _render(
        self,
        fmt: Format,
        spec: FeedSpec,
        paging: Paging,
        updated: datetime | None,
        items: Sequence[Entry],
    ) -> bytes:
        """One feed document or archive page in ``fmt``."""
        from ..render.feeds import render_atom, render_rss
        from ..render.jsonfeed import render_json

        if fmt == "atom":
            return render_atom(items, spec, self.meta, paging=paging, updated=updated)
        if fmt == "rss":
            return render_rss(items, spec, self.meta, paging=paging, updated=updated)
        return render_json(items, spec, self.meta, paging=paging)

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
        its own entries is edited or deleted. A page is full when it holds
        ``archive_page_size`` entries or when the next entry would take it, in any format,
        over ``max_feed_bytes`` (#11); that entry starts the next page (its place skips to
        the page's first). A page holds at least one entry, however large. An entry
        ``taken`` back from the archive for this window that did not fit after all returns
        to the place it had.
        """
        size = self.settings.archive_page_size
        if not size:
            return None
        back = [(a.key, taken.pop(a.key)) for a in window[current:] if a.key in taken]
        if back:
            store.set_seqs(spec.name, back)
        pending = store.unarchived_after(spec.name, current)
        if not pending:
            return self._last_page(store, spec)
        spool = self._spool if not taken else None  # an entry put back changes a page
        seq = store.next_seq(spec.name)
        guess = size  # a page takes about as many as the one before it
        loaded: dict[str, Entry] = {}
        while pending:
            page = seq // size
            room = (page + 1) * size - seq
            held = store.archived(spec.name, page * size, seq) if seq % size else []
            if any(k not in loaded for k in pending[:room]):  # a page's worth at a time
                loaded = {e.key: e for e in store.articles(pending[:size])}
            new = [loaded[k] for k in pending[:room]]
            take = self._fitting(spec, page, held, new, guess)
            if take == 0:  # the open page is full by bytes: the next entry starts a new page
                seq = (page + 1) * size
                continue
            guess = take
            if spool is not None:
                for fmt, data in self._page_bytes(spec, page, held, new[:take]).items():
                    spool.put(spec.archive_file(page, fmt), data)
            store.set_seqs(spec.name, zip(pending[:take], range(seq, seq + take), strict=True))
            # the entry after the last taken did not fit (a page's size only grows with its
            # entries): the page is full by bytes, the next entry starts the next page
            seq = seq + take if take == len(new) else (page + 1) * size
            changes.pages.add((spec.name, page))
            pending = pending[take:]
        return self._last_page(store, spec)

    def _page_bytes(
        self, spec: FeedSpec, page: int, held: list[Entry], new: list[Entry]
    ) -> dict[Format, bytes]:
        """Archive page ``page`` holding ``held`` and ``new``, in every format."""
        items = sorted([*held, *new], key=lambda e: (e.published, e.key), reverse=True)
        return {
            fmt: self._render(fmt, spec, self._paging(spec, page, fmt), None, items)
            for fmt in spec.formats
        }

    def _fitting(
        self, spec: FeedSpec, page: int, held: list[Entry], new: list[Entry], guess: int
    ) -> int:
        """How many of ``new`` (oldest first) page ``page`` takes beside ``held``: the most
        whose page stays within the byte budget in every format (one at least when empty).

        A page's size only grows with its entries, so the answer is searched from ``guess``
        (the count of the page before): doubling steps bracket it, halving finds it. A probe
        sizes the page without writing it (#9): its head's length and its entries' (each
        written once, kept with the article: ``document_size``).
        """
        from ..render import feeds, jsonfeed

        budget = self.meta.max_bytes
        if budget is None or not new:
            return len(new)
        pagings = {fmt: self._paging(spec, page, fmt) for fmt in spec.formats}
        heads: dict[Format, dict[tuple[int, int], int]] = {fmt: {} for fmt in spec.formats}
        json_head = (
            jsonfeed.json_head_size(spec, self.meta, pagings["json"]) if ("json" in pagings) else 0
        )

        def size(fmt: Format, items: Sequence[Entry]) -> int:
            if fmt == "json":
                return jsonfeed.document_size(items, spec, self.meta, pagings[fmt], json_head)
            return feeds.document_size(fmt, items, spec, self.meta, pagings[fmt], heads[fmt])

        def fits(n: int) -> bool:
            items = sorted([*held, *new[:n]], key=lambda e: (e.published, e.key), reverse=True)
            return all(size(fmt, items) <= budget for fmt in spec.formats)

        count = len(new)
        start = min(max(guess, 1), count)
        step = 1
        if fits(start):
            low, high = start, count + 1  # fits(low); count + 1 stands for "does not fit"
            while low < count:
                probe = min(low + step, count)
                if not fits(probe):
                    high = probe
                    break
                low, step = probe, step * 2
        else:
            low, high = 0, start  # fits(0) stands for "nothing taken"
            while high > 1:
                probe = max(high - step, 1)
                if fits(probe):
                    low = probe
                    break
                high, step = probe, step * 2
        while high - low > 1:
            middle = (low + high) // 2
            if fits(middle):
                low = middle
            else:
                high = middle
        return max(low, 0 if held else 1)

    @staticmethod
    def _paging(spec: FeedSpec, page: int, fmt: Format) -> Paging:
        return Paging(
            self_file=spec.archive_file(page, fmt),
            prev_archive=spec.archive_file(page - 1, fmt) if page else None,
            current=spec.file(fmt),
            archive=True,
        )

    def _plan_archive(
        self, store: Store, spec: FeedSpec, last: int | None, changes: Changes, plan: Plan
    ) -> None:
        """The archive pages that changed, in every format; pages past the newest are removed."""
        top = -1 if last is None else last
        if plan.full:
            pages: list[int] = list(range(top + 1))
        else:
            dirty = {p for f, p in changes.pages if f == spec.name}
            pages = sorted(p for p in dirty if p <= top)
            # emptied by deletions: nothing of a deleted article stays public
            for p in sorted(dirty):
                if p > top:
                    for fmt in spec.formats:
                        plan.remove.append(spec.archive_file(p, fmt))
                        plan.remove.append(spec.archive_file(p, fmt) + GZIP_SUFFIX)
        spool = plan.spool
        for page in pages:
            for fmt in spec.formats:
                rel = spec.archive_file(page, fmt)
                render: Callable[[], bytes]
                if spool is not None and rel in spool:  # rendered while it was fitted
                    render = partial(spool.get, rel)
                else:
                    render = partial(self._archive_page, store, spec, page, fmt)
                plan.documents.append(
                    Document(
                        rel,
                        render,
                        "archive",
                        spec.name,
                        fmt,
                        compress=True,
                    )
                )

    def _archive_page(self, store: Store, spec: FeedSpec, page: int, fmt: Format) -> bytes:
        """One archive page in ``fmt``, rendered when it is written (reads the store only)."""
        size = self.settings.archive_page_size
        entries = store.archived(spec.name, page * size, (page + 1) * size)
        return self._render(fmt, spec, self._paging(spec, page, fmt), None, entries)

    def _pages(self, store: Store, changes: Changes, full: bool, feeds: list[PageFeed]) -> Pages:
        """One HTML page per published article, at the permanent link its entries carry.

        Every page (``full``, or each one found missing: feeds/ was lost) may be made by
        worker processes (``StoredPages``)."""
        keys = sorted(changes.articles)
        if full or (len(keys) >= pool.POOL_MIN and keys == sorted(store.live_keys())):
            return StoredPages(self, store, feeds)
        return Pages(self._documents(store, feeds, keys))

    def _documents(
        self, store: Store, feeds: list[PageFeed], keys: list[str] | None = None
    ) -> Iterator[Document]:
        """The pages of ``keys`` (None: every published article), read when iterated,
        ``MEMBERS_BATCH`` articles at a time (every page of a site whose feeds/ was lost may
        be planned again: memory stays flat)."""
        articles: Iterable[Entry] = (
            store.iter_live_articles()
            if keys is None
            else (
                article
                for at in range(0, len(keys), MEMBERS_BATCH)
                for article in store.articles(keys[at : at + MEMBERS_BATCH])
            )
        )
        pages = ArticlePages(self.site)
        for article, linked in _linked(articles, store, feeds, self.feeds.main.name):
            page = pages.render(article, linked)
            yield Document(article.page, partial(bytes, page), "article", durable=False)


def _linked(
    articles: Iterable[KeyedT], store: Store, feeds: list[PageFeed], main: str
) -> Generator[tuple[KeyedT, list[PageFeed]]]:
    """Each of ``articles`` (anything with a ``key``) with the feeds its page links: the
    main feed and those it is in (``members_of_keys``, ``MEMBERS_BATCH`` keys a query),
    in ``feeds``' order."""
    only = [f for f in feeds if f.name == main] if len(feeds) == 1 else None
    if only:  # one feed (the main one): every page links it, no query
        for article in articles:
            yield article, only
        return
    rest = iter(articles)
    while chunk := list(islice(rest, MEMBERS_BATCH)):
        members = store.members_of_keys(a.key for a in chunk)
        for article in chunk:
            names = {m.feed for m in members.get(article.key, ())} | {main}
            yield article, [feed for feed in feeds if feed.name in names]


class _Row(NamedTuple):
    """An article as stored (``Store.iter_live_rows``): what a page worker decodes."""

    key: str
    raw: str | bytes


class StoredPages(Pages):
    """Every article page of a full build, from the store's rows.

    Iterated: rendered here one at a time. ``create`` (a fresh tree): with enough pages and
    a free core (``pool.workers``, the scan's policy) worker processes decode the stored
    JSON, render and create the files; this process reads the rows and the feeds each page
    links and hands them out in chunks of ``PAGE_CHUNK``, in key order (as iterated), at most
    ``POOL_WINDOW`` chunks per worker in flight.
    """

    def __init__(self, planner: Planner, store: Store, feeds: list[PageFeed]) -> None:
        super().__init__()
        self._planner = planner
        self._store = store
        self._feeds = feeds

    def __iter__(self) -> Iterator[Document]:
        return self._planner._documents(self._store, self._feeds)

    def create(
        self, prefix: str, guard: Callable[[], None] | None
    ) -> Generator[tuple[str, Stamp]] | None:
        count = self._store.count_live()
        workers = pool.workers(count, self._planner.pool)
        if not count or not workers:
            return None
        return self._pooled(workers, prefix, guard)

    def _pooled(
        self, workers: int, prefix: str, guard: Callable[[], None] | None
    ) -> Generator[tuple[str, Stamp]]:
        feeds, store = self._feeds, self._store
        index = {id(feed): n for n, feed in enumerate(feeds)}
        rows = (_Row(key, raw) for key, raw in store.iter_live_rows())
        linked = _linked(rows, store, feeds, self._planner.feeds.main.name)
        tasks = (
            (prefix, [(row.key, row.raw, tuple(index[id(f)] for f in to)) for row, to in chunk])
            for chunk in iter(lambda: list(islice(linked, PAGE_CHUNK)), [])
        )
        executor = pool.start(workers, _start_pages, (self._planner.site, feeds))
        done = pool.in_order(
            executor, _page_chunk, tasks, window=POOL_WINDOW * workers, before=guard
        )
        from concurrent.futures.process import BrokenProcessPool  # loaded with the pool

        try:
            for created, damaged in done:
                yield from created
                if damaged is not None:
                    raise store.damaged(damaged)
        except BrokenProcessPool as e:  # killed (the OOM killer?) or crashed
            raise PublishError(
                f"{prefix.rstrip('/')}: a worker process making the article pages died; "
                "nothing was published, the previous feeds and store are kept"
            ) from e
        finally:  # however it ends: the workers stopped (before the stage is removed), the
            # store's cursor closed (while the store is open)
            for generator in (done, tasks, linked, rows):
                generator.close()


# --- the worker side of ``StoredPages.create`` --------------------------------------------------
_PAGES: tuple[ArticlePages, list[PageFeed]] | None = None
_LINKED: dict[tuple[int, ...], list[PageFeed]] = {}  # one list per set: the pages' shape cache


def _start_pages(site: Site, feeds: list[PageFeed], parent: int) -> None:
    """A page worker's set-up; ``parent``: the build's pid (it may be gone already)."""
    global _PAGES
    _PAGES = (ArticlePages(site), feeds)
    _LINKED.clear()
    pool.watch_parent(parent)


def _page_chunk(
    prefix: str, chunk: list[tuple[str, str | bytes, tuple[int, ...]]]
) -> tuple[list[tuple[str, Stamp]], str | None]:
    """Each article of ``chunk`` (key, stored JSON, the feeds its page links) decoded,
    rendered and created as ``prefix`` + its file name: (page, stamp) of each, and what is
    wrong with the first damaged article (the pages after it are not made)."""
    assert _PAGES is not None, "the pool's initializer did not run"
    pages, feeds = _PAGES
    out: list[tuple[str, Stamp]] = []
    for key, raw, at in chunk:
        try:
            article = keyed_entry(key, raw)
        except ValueError as e:
            return out, str(e)
        linked = _LINKED.get(at)
        if linked is None:
            linked = _LINKED[at] = [feeds[n] for n in at]
        rel = article.page
        out.append((rel, create_page(prefix + staged_name(rel), pages.render(article, linked))))
    return out, None
