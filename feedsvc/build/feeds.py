"""Which feeds exist: the configured ones, then one per category, and which articles each takes.

Pure rules over the settings (and, for category feeds, the store's membership): the ledger
uses ``feeds_for`` to sort an article into its feeds, the plan uses ``specs`` to write them.
"""

from __future__ import annotations

import re

from ..config import Settings
from ..models import Article, FeedFilter, FeedSpec, category_of
from ..store import Store

ROOT_FEED = "all"
CATEGORY_PREFIX = "category/"


def slug(text: str) -> str:
    """A folder name for a category: lower case, ``[a-z0-9_-]`` only."""
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")


class FeedSet:
    """The feeds of one set of settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.configured = self._configured_specs()

    @property
    def main(self) -> FeedSpec:
        """The first configured feed: what the CLI names and ``/healthz`` checks."""
        return self.configured[0]

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
                    # the main feed keeps the site's title ("all" is no name for readers)
                    "title": f.title
                    or (s.title if f.name == ROOT_FEED else f"{s.title}: {f.name}"),
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
            shown = {slug(c.folder): c for c in s.categories}
            for name in store.member_feeds(CATEGORY_PREFIX):
                config = shown.get(name.removeprefix(CATEGORY_PREFIX))
                folder = config.name if config and config.name else self._folder(store, name)
                specs.append(
                    FeedSpec(
                        name=name,
                        title=f"{s.title}: {folder}",
                        subtitle=config.description
                        if config and config.description
                        else s.subtitle,
                        max_items=s.max_items,
                        directory=f"{name}/",
                        atom_file=s.atom_file,
                        rss_file=s.rss_file,
                        json_file=s.json_file,
                    )
                )
        return specs

    @staticmethod
    def _folder(store: Store, name: str) -> str:
        """The category's folder as written (``Etat``), from its newest article's path."""
        newest = store.feed_articles(name, 1)
        category = category_of(newest[0].source) if newest else None
        return category or name.removeprefix(CATEGORY_PREFIX)

    def feeds_for(self, article: Article) -> list[str]:
        """The names of the feeds ``article`` belongs in (pure: filters and its folder)."""
        tz = self.settings.tz
        names = [s.name for s in self.configured if s.filter.matches(article, tz)]
        category = category_of(article.source)
        if self.settings.category_feeds and category and slug(category):
            names.append(CATEGORY_PREFIX + slug(category))
        return names
