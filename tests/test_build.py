"""End to end through the CLI: seeds in a temp dir → feeds parsed back with feedparser."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from feedsvc import Publisher, load_settings
from feedsvc._lock import exclusive
from feedsvc.errors import LockError

from .conftest import SAMPLE, Project, parse_feed, seed_text


def _snapshot(feeds: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(feeds.glob("*.xml"))}


def _entries(parsed: object) -> dict[str, dict[str, str]]:
    return {
        e.id: {"title": e.title, "updated": e.updated, "published": e.published}
        for e in parsed.entries  # type: ignore[attr-defined]
    }


def test_sample_builds_valid_atom_and_rss(project: Project) -> None:
    shutil.copy(SAMPLE, project.seeds)
    result = project.build()
    assert result.exit_code == 0, result.output
    assert "1 article (1 new, 0 changed, 0 deleted, 0 errors)" in result.output
    atom, rss = project.atom(), project.rss()
    assert atom.version == "atom10"
    assert rss.version == "rss20"
    [a], [r] = atom.entries, rss.entries
    assert a.id == r.id == "tag:news.example.org,2024-11-01:98f79bfdbc50e318"
    assert a.title == r.title
    assert a.title.startswith('US-Außenminister Antony Blinken hat eine "harte Antwort"')
    assert a.published == "2024-10-31T23:00:00+00:00"  # 2024-11-01 00:00 in Vienna
    assert r.published == "Thu, 31 Oct 2024 23:00:00 +0000"
    assert "<h2>50.000 Soldaten</h2>" in a.content[0].value
    assert "20. Jänner" in r.content[0].value
    assert a.summary.endswith("angekündigt.")
    assert a.link == r.link == "https://news.example.org/articles/98f79bfdbc50e318.html"
    assert atom.feed.language == "de-AT"
    assert rss.feed.language == "de-AT"
    assert atom.feed.updated == "2024-10-31T23:00:00+00:00"
    assert rss.feed.updated == "Thu, 31 Oct 2024 23:00:00 +0000"  # lastBuildDate from data
    self_links = [link.href for link in atom.feed.links if link.rel == "self"]
    assert self_links == ["https://news.example.org/atom.xml"]
    assert rss.feed.link == "https://news.example.org/"
    assert r.guidislink is False


def test_second_build_changes_no_byte_and_no_mtime(project: Project) -> None:
    shutil.copy(SAMPLE, project.seeds)
    project.write_seed("001_00000000000000aa.txt", seed_text())
    assert project.build().exit_code == 0
    before = _snapshot(project.feeds)
    result = project.build()
    assert result.exit_code == 0
    assert "(unchanged)" in result.output
    assert _snapshot(project.feeds) == before
    # even a touched seed (new mtime, same bytes) rewrites nothing
    os.utime(project.seeds / SAMPLE.name, ns=(1, 1))
    assert project.build().exit_code == 0
    assert _snapshot(project.feeds) == before


def test_edit_moves_updated_keeps_id_and_leaves_others(project: Project) -> None:
    shutil.copy(SAMPLE, project.seeds)
    edited = project.write_seed("001_00000000000000aa.txt", seed_text())
    project.build()
    before = _entries(project.atom())
    edited.write_text(seed_text(body="Ein ganz neuer erster Absatz.\n\nZweiter Absatz."))
    result = project.build()
    assert "0 new, 1 changed" in result.output
    after = _entries(project.atom())
    assert set(after) == set(before)
    changed = "tag:news.example.org,2024-11-01:00000000000000aa"
    assert after[changed]["updated"] > before[changed]["updated"]
    assert after[changed]["published"] == before[changed]["published"]
    others = [k for k in after if k != changed]
    assert [after[k] for k in others] == [before[k] for k in others]
    atom = project.atom()
    [entry] = [e for e in atom.entries if e.id == changed]
    assert "Ein ganz neuer erster Absatz." in entry.content[0].value
    assert atom.feed.updated == after[changed]["updated"]


def test_delete_drops_the_entry(project: Project) -> None:
    shutil.copy(SAMPLE, project.seeds)
    gone = project.write_seed("001_00000000000000aa.txt", seed_text())
    project.build()
    assert len(project.atom().entries) == 2
    gone.unlink()
    result = project.build()
    assert "1 deleted" in result.output
    assert [e.id.rsplit(":", 1)[1] for e in project.rss().entries] == ["98f79bfdbc50e318"]


def test_bad_seed_among_good_ones(project: Project) -> None:
    shutil.copy(SAMPLE, project.seeds)
    project.write_seed("001_00000000000000aa.txt", seed_text())
    project.write_seed("002_00000000000000bb.txt", "kein Datum hier\n\nText.")
    project.write_seed("003_00000000000000cc.txt", seed_text(date="2024-13"))
    result = project.build()
    assert result.exit_code == 1
    seeds = project.seeds
    assert f"{seeds}/002_00000000000000bb.txt:1: no date line" in result.output
    assert f"{seeds}/003_00000000000000cc.txt:1: impossible date '2024-13'" in result.output
    assert "2 articles (2 new, 0 changed, 0 deleted, 2 errors)" in result.output
    assert len(project.atom().entries) == 2
    # the errors stand on the next build too, so cron keeps noticing
    again = project.build()
    assert again.exit_code == 1
    assert "002_00000000000000bb.txt:1: no date line" in again.output


def test_garbage_over_a_valid_seed_keeps_last_valid_version(project: Project) -> None:
    good = project.write_seed("001_00000000000000aa.txt", seed_text("Die gute Fassung."))
    project.build()
    good.write_bytes(b"\xff\xfe half-written \x00 garbage")
    result = project.build()
    assert result.exit_code == 1
    assert "001_00000000000000aa.txt:1: binary file (NUL byte at byte offset 16)" in result.output
    [entry] = project.atom().entries
    assert entry.title == "Die gute Fassung. Erster Absatz mit Inhalt"  # a short lead goes on
    good.write_text(seed_text("Die reparierte Fassung."))
    result = project.build()
    assert result.exit_code == 0
    assert "1 changed" in result.output
    [entry] = project.atom().entries
    assert entry.title == "Die reparierte Fassung. Erster Absatz mit Inhalt"


def test_rename_keeps_the_id(project: Project) -> None:
    old = project.write_seed("notes/meldung.txt", seed_text("Umbenannt wird sie."))
    project.build()
    [before] = project.atom().entries
    old.rename(project.seeds / "notes" / "meldung-neu.txt")
    result = project.build()
    assert result.exit_code == 0, result.output
    [after] = project.atom().entries
    assert after.id == before.id
    assert after.updated == before.updated


def test_duplicate_keys_are_both_reported_and_nothing_is_overwritten(project: Project) -> None:
    project.write_seed("001_00000000000000aa.txt", seed_text("Das Original."))
    project.build()
    project.write_seed("sub/002_00000000000000aa.txt", seed_text("Der Eindringling."))
    result = project.build()
    assert result.exit_code == 1
    assert "001_00000000000000aa.txt:1: duplicate key 00000000000000aa" in result.output
    assert "sub/002_00000000000000aa.txt:1: duplicate key 00000000000000aa" in result.output
    [entry] = project.atom().entries
    assert entry.title == "Das Original. Erster Absatz mit Inhalt"
    (project.seeds / "001_00000000000000aa.txt").unlink()
    result = project.build()
    assert result.exit_code == 0, result.output
    [entry] = project.atom().entries
    assert entry.title == "Der Eindringling. Erster Absatz mit Inhalt"
    assert entry.id == "tag:news.example.org,2024-11-01:00000000000000aa"


def test_symlink_out_of_seeds_is_rejected_in_a_build(project: Project, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(seed_text("Geheim."))
    (project.seeds / "001_00000000000000aa.txt").symlink_to(secret)
    result = project.build()
    assert result.exit_code == 1
    assert "001_00000000000000aa.txt:1: symlink points outside seeds/" in result.output
    assert project.atom().entries == []


def test_max_items_and_newest_first_with_nnn_order(project: Project) -> None:
    for nnn in range(5):
        project.write_seed(f"{nnn:03d}_00000000000000a{nnn}.txt", seed_text(f"Artikel {nnn}."))
    project.write_seed("999_00000000000000ff.txt", seed_text("Älter.", date="2024-10"))
    with project.config.open("a") as f:
        f.write("max_items = 3\n")
    assert project.build().exit_code == 0
    titles = [e.title for e in project.atom().entries]
    assert titles == [f"Artikel {n}. Erster Absatz mit Inhalt" for n in (4, 3, 2)]


def test_failed_write_leaves_store_and_feeds_as_before(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(SAMPLE, project.seeds)
    assert project.build().exit_code == 0
    before = _snapshot(project.feeds)
    project.write_seed("001_00000000000000aa.txt", seed_text("Neu."))

    def disk_full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    result = project.build()
    assert result.exit_code == 1
    assert "disk full (ENOSPC); nothing was published, the previous feeds and store are kept" in (
        result.output
    )
    assert _snapshot(project.feeds) == before
    assert not list(project.feeds.rglob(".*.tmp"))  # temp files live in feeds/.tmp/
    monkeypatch.undo()
    result = project.build()  # the store was rolled back: the file is still new
    assert "2 articles (1 new" in result.output


def test_lock_makes_a_second_writer_wait_then_fail(project: Project) -> None:
    settings = load_settings(config=project.config)
    with (
        exclusive(settings.state_dir / "lock", timeout=1),
        pytest.raises(LockError, match="another feedsvc process"),
    ):
        Publisher(settings).build(lock_timeout=0.2)
    assert Publisher(settings).build().ok


def test_state_is_sqlite_with_the_ledger(project: Project) -> None:
    shutil.copy(SAMPLE, project.seeds)
    project.build()
    db = sqlite3.connect(project.state / "feedsvc.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = db.execute("SELECT key, entry_id, path FROM articles").fetchall()
    assert rows == [
        ("98f79bfdbc50e318", "tag:news.example.org,2024-11-01:98f79bfdbc50e318", SAMPLE.name)
    ]


def test_feeds_parse_cleanly_from_the_public_api(project: Project) -> None:
    shutil.copy(SAMPLE, project.seeds)
    settings = load_settings(config=project.config)
    report = Publisher(settings).build()
    assert report.ok
    assert report.total == 1
    assert report.new == 1
    assert report.written[:3] == report.outputs
    assert {p.name for p in report.written[3:]} == {
        "index.html",
        "feeds.opml",
        "1.html",
        "98f79bfdbc50e318.html",
    }
    assert [p.name for p in report.outputs] == ["atom.xml", "rss.xml", "feed.json"]
    for path in report.outputs[:2]:
        parse_feed(path)


def test_build_named_seeds_only_looks_at_those(project: Project) -> None:
    shutil.copy(SAMPLE, project.seeds)
    named = project.write_seed("001_00000000000000aa.txt", seed_text("Erste Fassung."))
    assert project.build().exit_code == 0
    named.write_text(seed_text("Zweite Fassung."))
    other = project.write_seed("002_00000000000000bb.txt", seed_text("Nicht genannt."))
    result = project.build(str(named))
    assert result.exit_code == 0, result.output
    assert "2 articles (0 new, 1 changed, 0 deleted, 0 errors)" in result.output
    titles = {e.title for e in project.atom().entries}
    assert "Zweite Fassung. Erster Absatz mit Inhalt" in titles
    assert "Nicht genannt" not in titles
    other.unlink()
    named.unlink()
    result = project.build(str(named))
    assert "1 article (0 new, 0 changed, 1 deleted" in result.output
