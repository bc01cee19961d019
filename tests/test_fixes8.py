"""Bugs found while restructuring the build into stages (#8), each seen through the CLI.

Every test here failed on the code before #8 (run against that tree).
"""

from __future__ import annotations

import re
import shutil

from click.testing import CliRunner

from feedsvc.cli import main

from .conftest import SAMPLE, Project, parse_feed, seed_text


def _configure(project: Project, text: str) -> None:
    with project.config.open("a", encoding="utf-8") as f:
        f.write(text)


# --- 2: a page shows the day in the site's time zone -------------------------------------------
def test_pages_show_the_local_day_of_a_month_dated_seed(project: Project) -> None:
    """The bundled sample (``date 2024-11``) is 2024-10-31T23:00Z: Vienna's 1 November."""
    _configure(project, 'timezone = "Europe/Vienna"\n')
    shutil.copy(SAMPLE, project.seeds)
    assert project.build().exit_code == 0
    key = SAMPLE.stem.split("_")[1]
    page = (project.feeds / "articles" / f"{key}.html").read_text(encoding="utf-8")
    times = re.findall(r'<time datetime="([^"]+)">([^<]+)</time>', page)
    assert times == [("2024-11-01T00:00:00+01:00", "2024-11-01")]
    index = (project.feeds / "index.html").read_text(encoding="utf-8")
    assert '<time datetime="2024-11-01T00:00:00+01:00">2024-11-01</time>' in index
    assert "2024-10-31" not in page + index
    [entry] = parse_feed(project.feeds / "atom.xml").entries
    assert entry.published == "2024-10-31T23:00:00+00:00", "feeds keep UTC"


# --- 3: an empty feed is not dated 1970 --------------------------------------------------------
def test_a_feed_emptied_by_deletions_keeps_a_date_from_the_store(project: Project) -> None:
    project.write_seed("001_00000000000000aa.txt", seed_text())
    assert project.build().exit_code == 0
    first = parse_feed(project.feeds / "atom.xml").feed.updated
    (project.seeds / "001_00000000000000aa.txt").unlink()
    assert project.build("--max-delete", "all").exit_code == 0
    feed = parse_feed(project.feeds / "atom.xml")
    assert feed.entries == []
    assert not feed.feed.updated.startswith("1970"), feed.feed.updated
    assert feed.feed.updated >= first
    rss = (project.feeds / "rss.xml").read_bytes()
    assert b"1970" not in rss
    before = (project.feeds / "atom.xml").read_bytes()
    assert project.build().exit_code == 0
    assert (project.feeds / "atom.xml").read_bytes() == before, "never the clock: same bytes"


def test_a_new_site_without_seeds_is_not_dated_1970(project: Project) -> None:
    assert project.build().exit_code == 0
    assert not parse_feed(project.feeds / "atom.xml").feed.updated.startswith("1970")


# --- 4: the summary says which feed's documents were written -----------------------------------
def test_the_summary_says_when_only_an_archive_page_changed(project: Project) -> None:
    _configure(project, "max_items = 1\narchive_page_size = 2\nhtml_pages = false\n")
    for n in range(3):
        project.write_seed(
            f"{n:03d}_{n:016x}.txt", seed_text(f"Meldung {n}.", date="2024-0" + str(n + 1))
        )
    assert project.build().exit_code == 0
    oldest = project.seeds / f"000_{0:016x}.txt"
    oldest.write_text(seed_text("Meldung 0.", date="2024-01", body="Neu.\n\nGanz neu."))
    result = project.build()
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    assert "(unchanged; wrote feed all: 3 archive pages; 3 .gz files)" in line, line


# --- 5: check -v warns like build -v; one seed is "1 seed" -------------------------------------
def test_check_verbose_prints_the_warnings_build_verbose_prints(project: Project) -> None:
    project.write_seed("001_00000000000000aa.txt", " date 2024-11 Ok.\n\nText mit \x07 Glocke.")
    built = project.build("-v")
    checked = CliRunner().invoke(main, ["check", "-v", "--config", str(project.config)])
    warning = "removed 1 character(s) that XML forbids"
    assert warning in built.output
    assert warning in checked.output, checked.output
    assert "1 seed checked, 0 errors" in checked.output
