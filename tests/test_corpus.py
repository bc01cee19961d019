"""The real corpus (German news in seed format): 400 files built, every entry checked."""

from __future__ import annotations

import html
import shutil
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from .conftest import Project

pytestmark = pytest.mark.slow

SUBSET = 400
VIENNA = ZoneInfo("Europe/Vienna")


def test_corpus_subset_every_entry_checked(project: Project, corpus_dir: Path) -> None:
    files = sorted(corpus_dir.iterdir())[:SUBSET]
    for f in files:
        shutil.copy(f, project.seeds)
    with project.config.open("a") as cfg:
        cfg.write(f"max_items = {SUBSET}\nmax_feed_bytes = 0\n")
    result = project.build()
    assert result.exit_code == 0, result.output
    assert f"{SUBSET} articles ({SUBSET} new, 0 changed, 0 deleted, 0 errors)" in result.output
    atom, rss = project.atom(), project.rss()
    assert len(atom.entries) == len(rss.entries) == SUBSET
    keys = {f.name.split("_")[1].removesuffix(".txt") for f in files}
    atom_ids = [e.id for e in atom.entries]
    assert len(set(atom_ids)) == SUBSET
    assert atom_ids == [e.id for e in rss.entries]
    assert {i.rsplit(":", 1)[1] for i in atom_ids} == keys
    published = []
    for a, r in zip(atom.entries, rss.entries, strict=True):
        assert a.title == r.title
        assert 0 < len(a.title) <= 110
        assert "\n" not in a.title
        when = datetime.fromisoformat(a.published)
        assert datetime(2022, 12, 31, tzinfo=UTC) <= when < datetime(2025, 1, 1, tzinfo=UTC)
        assert parsedate_to_datetime(r.published) == when
        assert a.updated == a.published  # never edited since first seen
        assert a.content[0].value.startswith("<p><strong>")
        assert a.summary
        assert a.summary == html.unescape(r.summary)  # RSS description is escaped HTML
        published.append(when)
    assert published == sorted(published, reverse=True)
    # each file's month from its date line survives into the feed (Vienna local time)
    by_key = {e.id.rsplit(":", 1)[1]: e for e in atom.entries}
    for f in files[:50]:
        month = f.read_text(encoding="utf-8").split()[1]
        entry = by_key[f.name.split("_")[1].removesuffix(".txt")]
        local = datetime.fromisoformat(entry.published).astimezone(VIENNA)
        assert local.strftime("%Y-%m") == month
    # a rebuild is a no-op
    again = project.build()
    assert "(unchanged)" in again.output
