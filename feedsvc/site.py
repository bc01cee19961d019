"""What a build writes into feeds/: every feed document, its archive, the HTML pages.

The store says what is in each feed; this module decides which files a build must rewrite
(only what the build's changes touch) and writes them atomically. Pure rendering stays in
``render`` and ``pages``; this is the I/O around them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

from . import __version__
from ._atomic import write_atomic
from .config import Settings
from .models import Article, FeedFilter, FeedMeta, FeedSpec, Format, Paging, category_of
from .pages import PageFeed, Site, article_path, render_article, render_index
from .render import fit, render_atom, render_json, render_rss
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
        return bool(self.feeds or self.pages or self.articles or self.removed)


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

    # --- writing -------------------------------------------------------------------------------
    def up_to_date(self, store: Store) -> bool:
        """Nothing changed and every document we wrote last is still there as we left it."""
        if store.get_meta("render_fp") != self.render_fp:
            return False
        recorded: dict[str, list[int] | None] = json.loads(store.get_meta("feeds") or "{}")
        return bool(recorded) and all(_stamp(self.root / p) == s for p, s in recorded.items())

    def write(self, store: Store, changes: Changes) -> list[Path]:
        """Rewrite what ``changes`` touched, or everything when the outputs are not ours."""
        full = not self.up_to_date(store)
        if not full and not changes:
            return []
        self.tmp.mkdir(parents=True, exist_ok=True)
        for stale in self.tmp.iterdir():  # a killed build's temp files; we hold the lock
            stale.unlink(missing_ok=True)
        written: list[Path] = []
        specs = self.specs(store)
        stamps: dict[str, list[int] | None] = {}
        for spec in specs:
            if full or spec.name in changes.feeds:
                written += self._write_feed(store, spec, changes, full)
            for fmt in spec.formats:
                stamps[spec.file(fmt)] = _stamp(self.root / spec.file(fmt))
        page_feeds = [
            PageFeed(
                name=s.name,
                title=s.title,
                description=s.subtitle,
                links={fmt: self.meta.base_url + s.file(fmt) for fmt in s.formats},
            )
            for s in specs
        ]
        if self.settings.html_pages and (full or changes.feeds):
            index = render_index(self.site, page_feeds, store.live_articles(INDEX_ARTICLES))
            written += self._put(INDEX_FILE, index, durable=True)
        if self.settings.html_pages:
            stamps[INDEX_FILE] = _stamp(self.root / INDEX_FILE)
            written += self._write_pages(store, changes, full, page_feeds)
        elif full:
            self._remove_pages(keep=set())
        self._remove_stale(store, stamps)
        store.set_meta("feeds", json.dumps(stamps, sort_keys=True))
        store.set_meta("render_fp", self.render_fp)
        return written

    def _write_feed(self, store: Store, spec: FeedSpec, changes: Changes, full: bool) -> list[Path]:
        budget = self.meta.max_bytes
        meta = self.meta
        articles = store.feed_articles(spec.name, spec.max_items)
        written: list[Path] = []

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
                settled = self._assign(store, spec, count, changes)
                if settled == last:
                    break
                last = settled
            written += self._put(spec.file("atom"), data, durable=True, compress=True)
            self._write_archive(store, spec, last, changes, full)
        renderers: dict[Format, Callable[[Sequence[Article]], bytes]] = {
            "rss": lambda items: render_rss(items, spec, meta),
            "json": lambda items: render_json(items, spec, meta),
        }
        for fmt, render in renderers.items():
            if fmt in spec.formats:
                data, _ = fit(render, articles, budget)
                written += self._put(spec.file(fmt), data, durable=True, compress=True)
        return written

    def _last_page(self, store: Store, spec: FeedSpec) -> int | None:
        size = self.settings.archive_page_size
        seq = store.next_seq(spec.name)
        return (seq - 1) // size if size and seq else None

    def _assign(self, store: Store, spec: FeedSpec, current: int, changes: Changes) -> int | None:
        """Give entries past the feed's first ``current`` an archive place; the newest page.

        Places are handed out once, oldest first, so a full page never changes unless one of
        its own entries is edited or deleted.
        """
        size = self.settings.archive_page_size
        if not size:
            return None
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
            (self.root / spec.archive_file(page)).unlink(missing_ok=True)
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
            (self.root / "articles" / f"{key}.html").unlink(missing_ok=True)
        return written

    def _remove_pages(self, *, keep: set[str]) -> None:
        for page in (self.root / "articles").glob("*.html"):
            if page.stem not in keep:
                page.unlink(missing_ok=True)
        if not self.settings.html_pages:
            (self.root / INDEX_FILE).unlink(missing_ok=True)

    def _put(
        self, rel: str, data: bytes, *, durable: bool = True, compress: bool = False
    ) -> list[Path]:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        written = [path] if write_atomic(path, data, durable=durable, tmp_dir=self.tmp) else []
        self.touched += written
        gz = path.with_name(path.name + ".gz")
        if compress and self.settings.gzip_feeds and (written or _older(gz, path)):
            packed = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
            write_atomic(gz, packed, durable=durable, tmp_dir=self.tmp)
        return written

    def _remove_stale(self, store: Store, stamps: dict[str, list[int] | None]) -> None:
        """Documents of feeds that no longer exist (config change, empty category) go away."""
        before: dict[str, object] = json.loads(store.get_meta("feeds") or "{}")
        for rel in set(before) - set(stamps):
            for path in (self.root / rel, self.root / (rel + ".gz")):
                path.unlink(missing_ok=True)
            folder = (self.root / rel).parent
            if (
                folder != self.root
                and not any(folder.glob("*.xml"))
                and not any(folder.glob("*.json"))
            ):  # the whole feed is gone: its archive goes with it
                for page in (folder / "archive").glob("*.xml"):
                    page.unlink()


def _older(gz: Path, source: Path) -> bool:
    """Whether ``gz`` is missing or older than ``source`` (a build died between the two)."""
    try:
        return gz.stat().st_mtime_ns < source.stat().st_mtime_ns
    except FileNotFoundError:
        return True


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _stamp(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return [st.st_size, st.st_mtime_ns]
