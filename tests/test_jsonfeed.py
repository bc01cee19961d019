"""JSON Feed 1.1 beside Atom and RSS: valid against the spec, same ids, dates and content."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from typing import Literal

from pydantic import AnyUrl, AwareDatetime, BaseModel, ConfigDict, Field

from .conftest import SAMPLE, Project, seed_text


class _Strict(BaseModel):
    # JSON Feed allows extensions only as keys starting with "_"; we emit none.
    model_config = ConfigDict(extra="forbid", strict=False)


class JsonAuthor(_Strict):
    name: str = Field(min_length=1)
    url: str | None = None


class JsonItem(_Strict):
    id: str = Field(min_length=1)
    url: AnyUrl
    title: str = Field(min_length=1)
    summary: str
    content_html: str = Field(min_length=1)
    date_published: AwareDatetime
    date_modified: AwareDatetime
    language: str


class JsonFeed(_Strict):
    """The JSON Feed 1.1 top level (https://jsonfeed.org/version/1.1), as we write it."""

    version: Literal["https://jsonfeed.org/version/1.1"]
    title: str = Field(min_length=1)
    home_page_url: AnyUrl
    feed_url: AnyUrl
    description: str
    authors: list[JsonAuthor] = Field(min_length=1)
    language: str
    items: list[JsonItem]


def _load(project: Project) -> JsonFeed:
    raw = (project.feeds / "feed.json").read_bytes()
    return JsonFeed.model_validate(json.loads(raw))


def test_json_feed_is_valid_and_matches_atom_and_rss(project: Project) -> None:
    shutil.copy(SAMPLE, project.seeds)
    project.write_seed("001_00000000000000aa.txt", seed_text("Zweiter <b>Artikel</b> & mehr."))
    result = project.build()
    assert result.exit_code == 0, result.output
    assert "feeds/feed.json" in result.output
    feed = _load(project)
    assert str(feed.feed_url) == "https://news.example.org/feed.json"
    atom, rss = project.atom(), project.rss()
    assert [i.id for i in feed.items] == [e.id for e in atom.entries] == [e.id for e in rss.entries]
    for item, entry in zip(feed.items, atom.entries, strict=True):
        assert item.title == entry.title
        assert item.summary == entry.summary
        assert item.content_html == entry.content[0].value
        assert item.date_published == datetime.fromisoformat(entry.published)
        assert item.date_modified == datetime.fromisoformat(entry.updated)
        assert str(item.url) == entry.link
    assert feed.items[0].summary == "Zweiter <b>Artikel</b> & mehr."
    assert "&lt;b&gt;Artikel&lt;/b&gt; &amp; mehr." in feed.items[0].content_html


def test_json_feed_is_rewritten_only_when_something_changed(project: Project) -> None:
    shutil.copy(SAMPLE, project.seeds)
    project.build()
    path = project.feeds / "feed.json"
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    project.build()
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    (project.seeds / SAMPLE.name).unlink()
    project.build()
    assert _load(project).items == []
