"""Losing the store loses nothing readers know: a new store adopts what feeds/ published (#7).

Real builds through the CLI, a real ``import-ids``, real renames and edits; the store is then
deleted (with its WAL) the way an operator would, and the rebuilt feeds are read back.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from feedsvc.cli import main

from .conftest import Project, seed_text

ATOM = "{http://www.w3.org/2005/Atom}"
OLD_ID = "https://old.example.com/?p=7"


def _entries(feeds: Path) -> dict[str, dict[str, str]]:
    """key -> id, published, updated of every entry in every Atom document under feeds/."""
    out: dict[str, dict[str, str]] = {}
    for path in sorted(feeds.rglob("*.xml")):
        root = etree.parse(str(path)).getroot()
        if root.tag != f"{ATOM}feed":
            continue
        for entry in root.iterfind(f"{ATOM}entry"):
            links = [
                a for a in entry.iterfind(f"{ATOM}link") if a.get("rel", "alternate") == "alternate"
            ]
            key = links[0].get("href", "").rsplit("/", 1)[-1].removesuffix(".html")
            seen = {
                "id": entry.findtext(f"{ATOM}id") or "",
                "published": entry.findtext(f"{ATOM}published") or "",
                "updated": entry.findtext(f"{ATOM}updated") or "",
            }
            assert out.setdefault(key, seen) == seen, f"{key} differs between documents"
    return out


def _files(feeds: Path) -> dict[str, bytes]:
    return {
        p.relative_to(feeds).as_posix(): p.read_bytes()
        for p in sorted(feeds.rglob("*"))
        if p.is_file() and ".tmp" not in p.parts
    }


def _lose_store(project: Project) -> None:
    for suffix in ("", "-wal", "-shm"):
        (project.state / f"feedsvc.sqlite3{suffix}").unlink(missing_ok=True)


def _key(n: int) -> str:
    return f"{n:016x}"


@pytest.fixture
def history(project: Project, tmp_path: Path) -> Project:
    """A site with a past: archive pages, category feeds, a rename, an imported id, an edit."""
    with project.config.open("a", encoding="utf-8") as f:
        f.write("max_items = 3\narchive_page_size = 2\ncategory_feeds = true\n")
    for n in range(1, 10):
        folder = "politik/" if n % 2 else ""
        project.write_seed(
            f"{folder}{n:03d}_{_key(n)}.txt",
            seed_text(f"Meldung Nummer {n} aus der Stadt.", date=f"2024-{n:02d}-03"),
        )
    assert project.build().exit_code == 0
    # an id from the site's previous publisher
    old = tmp_path / "old.xml"
    old.write_text(
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>alt</title><id>x</id>'
        "<updated>2024-01-01T00:00:00Z</updated><entry><title>t</title>"
        f"<id>{OLD_ID}</id><link rel='alternate' "
        f"href='https://news.example.org/articles/{_key(7)}.html'/>"
        "<updated>2024-01-01T00:00:00Z</updated></entry></feed>",
        encoding="utf-8",
    )
    imported = CliRunner().invoke(main, ["import-ids", str(old), "--config", str(project.config)])
    assert imported.exit_code == 0, imported.output
    # a renamed file keeps its id, which now differs from the one its new name would get
    os.rename(
        project.seeds / f"politik/003_{_key(3)}.txt",
        project.seeds / f"politik/003_{_key(0x33)}.txt",
    )
    # an edit: `updated` moves to the time of the build that saw it
    project.write_seed(
        f"004_{_key(4)}.txt",
        seed_text("Meldung Nummer 4 aus der Stadt, berichtigt.", date="2024-04-03"),
    )
    assert project.build().exit_code == 0
    return project


def test_a_lost_store_is_rebuilt_with_the_published_ids_and_dates(history: Project) -> None:
    before = _entries(history.feeds)
    files = _files(history.feeds)
    assert before[_key(7)]["id"] == OLD_ID
    assert before[_key(0x33)]["id"].endswith(f":{_key(3)}")  # the id from before the rename
    assert before[_key(4)]["updated"] != before[_key(4)]["published"]

    _lose_store(history)
    result = history.build()

    assert result.exit_code == 0, result.output
    assert f"adopted {len(before)} ids from" in result.output
    assert _entries(history.feeds) == before
    after = _files(history.feeds)  # byte for byte, archive pages and .gz included
    assert [name for name in files if after.get(name) != files[name]] == []
    assert after.keys() == files.keys()
    again = history.build()  # the ledger is whole again: nothing to adopt, nothing to write
    assert "adopted" not in again.output
    assert "(unchanged)" in again.output


def test_an_emptied_store_file_is_a_lost_store_too(history: Project) -> None:
    before = _entries(history.feeds)
    for suffix in ("-wal", "-shm"):
        (history.state / f"feedsvc.sqlite3{suffix}").unlink(missing_ok=True)
    (history.state / "feedsvc.sqlite3").write_bytes(b"")  # `: > feedsvc.sqlite3`
    result = history.build()
    assert result.exit_code == 0, result.output
    assert _entries(history.feeds) == before


def test_what_changed_while_the_store_was_lost_is_published_rightly(history: Project) -> None:
    before = _entries(history.feeds)
    _lose_store(history)
    history.write_seed(
        f"politik/001_{_key(1)}.txt",  # edited meanwhile: same id, a new `updated`
        seed_text("Meldung Nummer 1 aus der Stadt, ergänzt.", date="2024-01-03"),
    )
    history.write_seed(  # new meanwhile: a fresh id, unlike every adopted one
        f"010_{_key(10)}.txt", seed_text("Meldung Nummer 10 aus der Stadt.", date="2024-10-03")
    )
    (history.seeds / f"002_{_key(2)}.txt").unlink()  # deleted meanwhile: gone from the feeds

    result = history.build()

    assert result.exit_code == 0, result.output
    after = _entries(history.feeds)
    assert after[_key(1)]["id"] == before[_key(1)]["id"]
    assert after[_key(1)]["updated"] > before[_key(1)]["updated"]
    assert _key(2) not in after
    ids = [e["id"] for e in after.values()]
    assert len(ids) == len(set(ids))
    for key in set(before) - {_key(1), _key(2)}:
        assert after[key] == before[key], key
    # the deleted article's id stays in the ledger: back again, it is the same entry
    history.write_seed(
        f"002_{_key(2)}.txt", seed_text("Meldung Nummer 2 aus der Stadt.", date="2024-02-03")
    )
    assert history.build().exit_code == 0
    assert _entries(history.feeds)[_key(2)]["id"] == before[_key(2)]["id"]
