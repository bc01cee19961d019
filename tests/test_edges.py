"""Edge cases of the ledger, archives, pages and caches, each once a real defect."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feedsvc import parse_seed
from feedsvc.render.feeds import fit
from feedsvc.service.serve import FileCache

from .conftest import SAMPLE, Project, parse_feed, seed_text


def _hex(n: int) -> str:
    return f"{n:016x}"


def _configure(project: Project, text: str) -> None:
    with project.config.open("a") as f:
        f.write(text)


def test_a_key_whose_id_left_with_a_rename_gets_a_fresh_id(project: Project) -> None:
    first = project.write_seed(f"001_{_hex(1)}.txt", seed_text("Das Original."))
    assert project.build().exit_code == 0
    [before] = project.atom().entries
    first.rename(project.seeds / f"001_{_hex(2)}.txt")  # same content: keeps the id
    assert project.build().exit_code == 0
    shutil.copy(project.seeds / f"001_{_hex(2)}.txt", first)  # the old key comes back
    result = project.build()
    assert result.exit_code == 0, result.output
    ids = sorted(e.id for e in project.atom().entries)
    assert ids == sorted([before.id, before.id + "-2"])
    assert project.build().exit_code == 0  # and the next build is fine too


def test_moving_a_seed_between_folders_keeps_its_page(project: Project) -> None:
    project.write_seed(f"a/001_{_hex(1)}.txt", seed_text("Wandert."))
    assert project.build().exit_code == 0
    (project.seeds / "b").mkdir()
    (project.seeds / f"a/001_{_hex(1)}.txt").rename(project.seeds / f"b/001_{_hex(1)}.txt")
    assert project.build().exit_code == 0
    [entry] = project.atom().entries
    assert (project.feeds / entry.link.removeprefix("https://news.example.org/")).is_file()


def test_an_emptied_last_archive_page_is_removed(project: Project) -> None:
    for n in range(6):
        project.write_seed(f"{n:03d}_{_hex(n)}.txt", seed_text(f"Meldung {n}.", date="2024-01"))
    _configure(project, "max_items = 1\narchive_page_size = 2\n")
    assert project.build().exit_code == 0
    pages = project.feeds / "archive"
    assert sorted(p.name for p in pages.glob("*.xml")) == ["0.xml", "1.xml", "2.xml"]
    # page 2 holds entries 4 (and 3?): delete everything that sits on it
    keys_on_2 = [e.id.rsplit(":", 1)[1] for e in parse_feed(pages / "2.xml").entries]
    for key in keys_on_2:
        next(project.seeds.glob(f"*_{key}.txt")).unlink()
    assert project.build().exit_code == 0
    assert not (pages / "2.xml").exists()
    for page in pages.glob("*.xml"):
        assert not set(keys_on_2) & {e.id.rsplit(":", 1)[1] for e in parse_feed(page).entries}


def test_a_tight_byte_budget_loses_nothing_between_feed_and_archive(project: Project) -> None:
    for n in range(12):
        body = "Ein Absatz. " * (60 + 50 * (n % 4))
        project.write_seed(f"{n:03d}_{_hex(n)}.txt", seed_text(f"Meldung {n}.", body=body))
    _configure(project, "archive_page_size = 3\nmax_feed_bytes = 9000\n")
    assert project.build().exit_code == 0
    seen = [e.id for e in project.atom().entries]
    assert 1 <= len(seen) < 12
    for page in (project.feeds / "archive").glob("*.xml"):
        seen += [e.id for e in parse_feed(page).entries]
    assert len(seen) == len(set(seen)) == 12


def test_a_failed_read_is_retried_even_when_size_and_mtime_stay(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = project.write_seed(f"001_{_hex(1)}.txt", seed_text("Erst gesperrt."))
    real_open = os.open

    def locked(path: object, *args: object, **kwargs: object) -> int:
        if str(path).endswith(seed.name):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", locked)
    result = project.build()
    assert "permission denied" in result.output
    monkeypatch.undo()  # chmod by the admin: neither size nor mtime change
    result = project.build()
    assert result.exit_code == 0, result.output
    assert [e.title for e in project.atom().entries] == ["Erst gesperrt. Erster Absatz mit Inhalt"]


def test_turning_language_detection_off_re_sorts_language_feeds(project: Project) -> None:
    english = "The government presented its budget plan to parliament in Vienna today."
    project.write_seed(f"001_{_hex(1)}.txt", seed_text(english))
    _configure(project, '\n[[feeds]]\nname = "all"\n\n[[feeds]]\nname = "en"\nlanguages = ["en"]\n')
    assert project.build().exit_code == 0
    assert len(parse_feed(project.feeds / "en/atom.xml").entries) == 1
    text = project.config.read_text(encoding="utf-8").replace(
        "[[feeds]]", "detect_language = false\n\n[[feeds]]", 1
    )
    project.config.write_text(text, encoding="utf-8")
    assert project.build().exit_code == 0
    assert parse_feed(project.feeds / "en/atom.xml").entries == []


def test_archive_and_page_switches_remove_what_they_no_longer_want(project: Project) -> None:
    for n in range(5):
        project.write_seed(f"{n:03d}_{_hex(n)}.txt", seed_text(f"Meldung {n}."))
    _configure(project, "max_items = 1\narchive_page_size = 2\n")
    assert project.build().exit_code == 0
    assert list((project.feeds / "archive").glob("*.xml"))
    _configure(project, "archive_page_size = 0\nhtml_pages = false\n")
    text = project.config.read_text(encoding="utf-8").replace("archive_page_size = 2\n", "")
    project.config.write_text(text, encoding="utf-8")
    assert project.build().exit_code == 0
    assert not list((project.feeds / "archive").glob("*.xml"))
    assert not list((project.feeds / "articles").glob("*.html"))
    assert not (project.feeds / "index.html").exists()


def test_the_http_cache_forgets_deleted_and_least_used_files(tmp_path: Path) -> None:
    cache = FileCache(max_files=2)
    files = []
    for n in range(3):
        path = tmp_path / f"{n}.xml"
        path.write_text(f"<x>{n}</x>")
        files.append(str(path))
        assert cache.get(str(path)) is not None
    assert len(cache) == 2
    Path(files[2]).unlink()
    assert cache.get(files[2]) is None
    assert len(cache) == 1


def test_fit_keeps_as_many_entries_as_fit_when_sizes_differ() -> None:
    base = parse_seed(SAMPLE.read_bytes(), source=SAMPLE.name, now=datetime.now(UTC))
    small = [base.model_copy(update={"lead": f"Kurz {n}."}) for n in range(10)]
    big = base.model_copy(update={"lead": "Lang. " * 2000})
    items = [*small, big]

    def render(articles: object) -> bytes:
        return b"".join(a.lead.encode() for a in articles)  # type: ignore[attr-defined]

    data, count = fit(render, items, budget=len(render(small)) + 5)
    assert count == 10
    assert data == render(small)
