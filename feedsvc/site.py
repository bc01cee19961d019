"""What a build writes into feeds/: every feed document, its archive, the HTML pages.

The store says what is in each feed; this module decides which files a build must rewrite
(what the build's changes touch, and any output that is missing or not as the last build left
it, by one stat against the store's manifest) and writes them atomically. Pure rendering
stays in ``render`` and ``pages``; this is the I/O around them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

from ._atomic import write_atomic
from ._version import __version__
from .config import Settings
from .models import Article, FeedFilter, FeedMeta, FeedSpec, Format, Paging, category_of
from .render.feeds import fit, render_atom, render_rss
from .render.jsonfeed import render_json
from .render.pages import PageFeed, Site, article_path, render_article, render_index
from .store import Member, Store

ROOT_FEED = "all"
CATEGORY_PREFIX = "category/"
INDEX_FILE = "index.html"
INDEX_ARTICLES = 30
GZIP_LEVEL = 6  # level 9 costs three times the time for 2 % less
TMP_DIR = ".tmp"  # temp files of atomic writes; hidden, so never served


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


Stamp = tuple[int, int, int]  # (size, mtime_ns, inode) of an output, from one stat
Output = tuple[str, str, int]  # what writes a file: ("feed", name, 0), ("page", name, n),
# ("article", key, 0) or ("index", "", 0)


@dataclass(frozen=True, slots=True)
class Written:
    """What one build did to feeds/: the files it wrote, and which of them were repairs."""

    paths: list[Path] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # relative to feeds/, sorted


def slug(text: str) -> str:
    """A folder name for a category: lower case, ``[a-z0-9_-]`` only."""
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")


class SiteWriter:
    """Writes feeds/ from the store for one set of settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.feeds_dir
        self.tmp = settings.feeds_dir / TMP_DIR
        self.touched: list[Path] = []  # every file written since the caller cleared it
        # one build's bookkeeping, reset by ``write``
        self._suspect: set[str] = set()  # outputs not as the manifest says we left them
        self._repaired: list[str] = []  # those of them this build wrote again
        self._stamps: dict[str, Stamp | None] = {}  # for the manifest; None: removed
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
        )
        self.configured = self._configured_specs()
        self.membership_fp = _fingerprint(
            json.dumps([s.model_dump(mode="json") for s in self.configured]),
            str(settings.category_feeds),
            settings.timezone,
            str(settings.archive_page_size),
            # an article's language can change without its content: re-sort when these do
            settings.language,
            str(settings.detect_language),
            ",".join(settings.languages),
            repr(settings.language_min_confidence),
        )
        self.render_fp = _fingerprint(
            __version__,
            self.meta.model_dump_json(),
            self.site.model_dump_json(),
            str(settings.gzip_feeds),
            str(settings.html_pages),
            self.membership_fp,
        )

    # --- which feeds exist -------------------------------------------------------------------
    def _configured_specs(self) -> list[FeedSpec]:
        s = self.settings
        base = FeedSpec(
            title=s.title, atom_file=s.atom_file, rss_file=s.rss_file, json_file=s.json_file
        )
        if not s.feeds:
            return [
                base.model_copy(
                    update={"name": ROOT_FEED, "subtitle": s.subtitle, "max_items": s.max_items}
                )
            ]
        return [
            base.model_copy(
                update={
                    "name": f.name,
                    "title": f.title or f"{s.title}: {f.name}",
                    "subtitle": f.description or s.subtitle,
                    "max_items": f.max_items or s.max_items,
                    "formats": f.formats,
                    "directory": "" if f.name == ROOT_FEED else f"{f.name}/",
                    "language": f.languages[0] if len(f.languages) == 1 else None,
                    "filter": FeedFilter(
                        categories=f.categories,
                        languages=f.languages,
                        keywords=f.keywords,
                        since=f.since,
                        until=f.until,
                    ),
                }
            )
            for f in s.feeds
        ]

    def specs(self, store: Store) -> list[FeedSpec]:
        """The configured feeds, then one per category that has articles (when asked for)."""
        specs = list(self.configured)
        if self.settings.category_feeds:
            s = self.settings
            for name in store.member_feeds(CATEGORY_PREFIX):
                folder = name.removeprefix(CATEGORY_PREFIX)
                specs.append(
                    FeedSpec(
                        name=name,
                        title=f"{s.title}: {folder}",
                        subtitle=s.subtitle,
                        max_items=s.max_items,
                        directory=f"{name}/",
                        atom_file=s.atom_file,
                        rss_file=s.rss_file,
                        json_file=s.json_file,
                    )
                )
        return specs

    def feeds_for(self, article: Article) -> list[str]:
        """The names of the feeds ``article`` belongs in (pure: filters and its folder)."""
        tz = self.settings.tz
        names = [s.name for s in self.configured if s.filter.matches(article, tz)]
        category = category_of(article.source)
        if self.settings.category_feeds and category and slug(category):
            names.append(CATEGORY_PREFIX + slug(category))
        return names

    def main_outputs(self) -> list[Path]:
        """The first feed's documents: what the CLI names in its summary line."""
        spec = self.configured[0]
        return [self.root / spec.file(fmt) for fmt in spec.formats]

    # --- the outputs a build owns, and checking them --------------------------------------------
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
                out[f"articles/{key}.html"] = ("article", key, 0)
        return out

    def _check(
        self, owned: dict[str, Output], manifest: dict[str, Stamp], changes: Changes
    ) -> None:
        """One stat per output: what is missing or not as we left it is written again.

        An output the manifest does not know yet (new in this build) is simply written.
        """
        root = os.path.join(self.root, "")  # plain strings: pathlib costs more than the stat
        for rel, (kind, name, page) in owned.items():
            recorded = manifest.get(rel)
            if recorded is not None and _stat(root + rel) == recorded:
                continue
            if recorded is not None:
                self._suspect.add(rel)
            if kind == "feed":
                changes.feeds.add(name)
            elif kind == "page":
                changes.feeds.add(name)
                changes.pages.add((name, page))
            elif kind == "article":
                changes.articles.add(name)
            else:
                changes.index = True

    # --- writing -------------------------------------------------------------------------------
    def write(self, store: Store, changes: Changes) -> Written:
        """Rewrite what ``changes`` touched and what is missing or damaged in feeds/.

        Everything is written when the outputs are not ours (new settings, no manifest).
        """
        self._suspect, self._repaired, self._stamps = set(), [], {}
        specs = self.specs(store)
        manifest = store.output_stamps()
        full = store.get_meta("render_fp") != self.render_fp or not manifest
        if not full:
            self._check(self.owned(store, specs), manifest, changes)
            if not changes:
                return Written()
        self.tmp.mkdir(parents=True, exist_ok=True)
        for stale in self.tmp.iterdir():  # a killed build's temp files; we hold the lock
            stale.unlink(missing_ok=True)
        written: list[Path] = []
        for spec in specs:
            if full or spec.name in changes.feeds:
                written += self._write_feed(store, spec, changes, full)
        page_feeds = [
            PageFeed(
                name=s.name,
                title=s.title,
                description=s.subtitle,
                links={fmt: self.meta.base_url + s.file(fmt) for fmt in s.formats},
            )
            for s in specs
        ]
        if self.settings.html_pages and (full or changes.feeds or changes.index):
            index = render_index(self.site, page_feeds, store.live_articles(INDEX_ARTICLES))
            written += self._put(INDEX_FILE, index, durable=True)
        if self.settings.html_pages:
            written += self._write_pages(store, changes, full, page_feeds)
        elif full:
            self._remove_pages(keep=set())
        owned = self.owned(store, specs)
        for rel in sorted(set(manifest) - set(owned)):  # feeds, pages and archives gone
            self._remove(rel)
        if full:
            for rel in sorted(set(owned) - set(self._stamps)):  # written by an earlier build
                self._stamps[rel] = _stamp(self.root / rel)
        store.record_outputs(self._stamps)
        store.set_meta("render_fp", self.render_fp)
        return Written(written, sorted(self._repaired))

    def _write_feed(self, store: Store, spec: FeedSpec, changes: Changes, full: bool) -> list[Path]:
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
        written: list[Path] = []
        count = len(articles)

        def atom(prev: str | None) -> Callable[[Sequence[Article]], bytes]:
            paging = Paging(self_file=spec.file("atom"), prev_archive=prev)
            return lambda items: render_atom(items, spec, meta, paging=paging)

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
            written += self._put(spec.file("atom"), data, durable=True, compress=True)
            self._write_archive(store, spec, last, changes, full)
        current = articles[:count] if archived else articles  # never an archived entry
        renderers: dict[Format, Callable[[Sequence[Article]], bytes]] = {
            "rss": lambda items: render_rss(items, spec, meta),
            "json": lambda items: render_json(items, spec, meta),
        }
        for fmt, render in renderers.items():
            if fmt in spec.formats:
                data, _ = fit(render, current, budget)
                written += self._put(spec.file(fmt), data, durable=True, compress=True)
        return written

    def _last_page(self, store: Store, spec: FeedSpec) -> int | None:
        size = self.settings.archive_page_size
        seq = store.next_seq(spec.name)
        return (seq - 1) // size if size and seq else None

    def _assign(
        self,
        store: Store,
        spec: FeedSpec,
        window: Sequence[Article],
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

    def _write_archive(
        self, store: Store, spec: FeedSpec, last: int | None, changes: Changes, full: bool
    ) -> None:
        """Write the archive pages that changed; remove pages past the newest one."""
        size = self.settings.archive_page_size
        top = -1 if last is None else last
        if full:
            pages: Iterable[int] = range(top + 1)
            stale = [p for p in self._archive_pages(spec) if p > top]
        else:
            dirty = {p for f, p in changes.pages if f == spec.name}
            pages = sorted(p for p in dirty if p <= top)
            stale = [p for p in dirty if p > top]
        for page in stale:  # emptied by deletions: nothing of a deleted article stays public
            self._remove(spec.archive_file(page))
        for page in pages:
            paging = Paging(
                self_file=spec.archive_file(page),
                prev_archive=spec.archive_file(page - 1) if page else None,
                current=spec.file("atom"),
                archive=True,
            )
            entries = store.archived(spec.name, page * size, (page + 1) * size)
            self._put(spec.archive_file(page), render_atom(entries, spec, self.meta, paging=paging))

    def _archive_pages(self, spec: FeedSpec) -> list[int]:
        folder = self.root / spec.archive_file(0)
        return [int(p.stem) for p in folder.parent.glob("*.xml") if p.stem.isdigit()]

    def _write_pages(
        self, store: Store, changes: Changes, full: bool, feeds: list[PageFeed]
    ) -> list[Path]:
        """One HTML page per published article, at the permanent link its entries carry."""
        articles = store.iter_live_articles() if full else store.articles(sorted(changes.articles))
        written: list[Path] = []
        live: set[str] = set()
        for article in articles:
            page = render_article(self.site, article, feeds)
            written += self._put(article_path(article), page, durable=False)
            live.add(article.key)
        if full:  # pages no build of ours would write now (deleted while we were not looking)
            self._remove_pages(keep=live)
        for key in sorted(changes.removed):
            self._remove(f"articles/{key}.html")
        return written

    def _remove_pages(self, *, keep: set[str]) -> None:
        for page in (self.root / "articles").glob("*.html"):
            if page.stem not in keep:
                self._remove(f"articles/{page.name}")
        if not self.settings.html_pages:
            self._remove(INDEX_FILE)

    def _put(
        self, rel: str, data: bytes, *, durable: bool = True, compress: bool = False
    ) -> list[Path]:
        """Write ``rel`` (and its ``.gz``) unless it already holds ``data``; record its stamp."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        written = [path] if write_atomic(path, data, durable=durable, tmp_dir=self.tmp) else []
        self.touched += written
        self._stamps[rel] = _stamp(path)
        if written and rel in self._suspect:
            self._repaired.append(rel)
        if compress and self.settings.gzip_feeds:
            gz_rel = rel + ".gz"
            gz = self.root / gz_rel
            if written or gz_rel in self._suspect or _older(gz, path):
                packed = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
                if write_atomic(gz, packed, durable=durable, tmp_dir=self.tmp):
                    self.touched.append(gz)
                    if gz_rel in self._suspect:
                        self._repaired.append(gz_rel)
            self._stamps[gz_rel] = _stamp(gz)
        return written

    def _remove(self, rel: str) -> None:
        """Remove an output we wrote, and forget it."""
        (self.root / rel).unlink(missing_ok=True)
        self._stamps[rel] = None


def _older(gz: Path, source: Path) -> bool:
    """Whether ``gz`` is missing or older than ``source`` (a build died between the two)."""
    try:
        return gz.stat().st_mtime_ns < source.stat().st_mtime_ns
    except FileNotFoundError:
        return True


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _stamp(path: Path) -> Stamp | None:
    return _stat(os.fspath(path))


def _stat(path: str) -> Stamp | None:
    """One stat: enough to see a file removed, replaced or written to since we left it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)
