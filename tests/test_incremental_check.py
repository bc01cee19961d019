"""What a build checks in feeds/ (#9): a full build every output, ``build SEED`` what it touches.

A full build stats every output against the manifest (at 100k articles: 100k pages). An
incremental build (``build SEED``, the daemon's) must cost the same whatever the corpus size:
it checks the feed documents, the index and the pages it writes, and leaves the rest to the
next full build.
"""

from __future__ import annotations

from pathlib import Path

from .conftest import Project, seed_text


def _site(project: Project, n: int = 4) -> list[Path]:
    seeds = [
        project.write_seed(f"{i:03d}_{i:016x}.txt", seed_text(f"Meldung {i}.", date=f"2024-0{i}"))
        for i in range(1, n + 1)
    ]
    assert project.build().exit_code == 0
    return seeds


def _page(project: Project, n: int) -> Path:
    return project.feeds / "articles" / f"{n:016x}.html"


def test_build_seed_repairs_the_main_feed_and_its_own_page(project: Project) -> None:
    seeds = _site(project)
    (project.feeds / "atom.xml").unlink()
    _page(project, 2).write_text("damaged")
    seeds[1].write_text(seed_text("Meldung 2, neu.", date="2024-02"), encoding="utf-8")

    result = project.build(str(seeds[1]))

    assert result.exit_code == 0, result.output
    assert (project.feeds / "atom.xml").is_file()
    assert "Meldung 2, neu." in _page(project, 2).read_text(encoding="utf-8")


def test_build_seed_leaves_other_pages_to_the_next_full_build(project: Project) -> None:
    seeds = _site(project)
    good = _page(project, 3).read_bytes()
    _page(project, 3).write_text("damaged")
    seeds[0].write_text(seed_text("Meldung 1, neu.", date="2024-01"), encoding="utf-8")

    assert project.build(str(seeds[0])).exit_code == 0
    assert _page(project, 3).read_text() == "damaged", "not looked at: its cost is the corpus"

    result = project.build()

    assert result.exit_code == 0, result.output
    assert "repaired 1 missing or damaged outputs" in result.output
    assert _page(project, 3).read_bytes() == good


def test_build_seed_of_a_deleted_seed_removes_its_page_only(project: Project) -> None:
    seeds = _site(project)
    seeds[2].unlink()

    assert project.build(str(seeds[2])).exit_code == 0

    assert not _page(project, 3).exists()
    assert all(_page(project, n).is_file() for n in (1, 2, 4))
    assert project.build().output.count("(unchanged)") == 1  # the manifest is whole
