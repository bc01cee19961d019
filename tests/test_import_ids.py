"""``feedsvc import-ids``: old feeds written by hand, the real CLI, feeds read back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from feedsvc.cli import main
from feedsvc.config import load_settings
from feedsvc.importer import OldEntry, match, normalize_title, parse_old_feed, titles_match
from feedsvc.models import FeedMeta
from feedsvc.store import SQLiteStore as Store

from .conftest import Project, seed_text, serve_directory

LONG_LEAD = (
    "Nach den schweren Regenfällen der vergangenen Tage haben die Feuerwehren in "
    "Niederösterreich mehr als zweihundert Keller ausgepumpt und zahlreiche Straßen gesperrt."
)
SEEDS = {
    "001_00000000000000a1.txt": seed_text("Der Gemeinderat beschließt das Budget für 2025."),
    "002_00000000000000a2.txt": seed_text(LONG_LEAD, date="2024-11-05"),
    "003_00000000000000a3.txt": seed_text(
        "Die neue Straßenbahnlinie 27 ist eröffnet.", date="2024-10"
    ),
    "004_00000000000000a4.txt": seed_text(
        "Das Museum verlängert die Öffnungszeiten.", date="2024-11-10"
    ),
    "005_00000000000000a5.txt": seed_text(
        "Die Bäckerei schließt nach 80 Jahren.", date="2024-11-12"
    ),
    "006_00000000000000a6.txt": seed_text(
        "Ein neuer Artikel ohne Vorgeschichte.", date="2024-11-14"
    ),
}
UUID = "urn:uuid:6f1c2a9e-3d4b-4c5a-9e8f-0a1b2c3d4e5f"
IMPORTED = {
    "00000000000000a1": "https://old.example.com/?p=101",  # by link
    "00000000000000a2": "https://old.example.com/?p=102",  # by title (ours cut with …) and day
    "00000000000000a3": UUID,  # by title and month (a month-only seed)
}
UNMATCHED = {"https://old.example.com/?p=104", "https://old.example.com/?p=105"}
CONFLICTS = {"https://old.example.com/?p=106", "https://old.example.com/?p=107"}

OLD_ATOM = f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="de">
  <title>Stadtnachrichten</title>
  <id>https://old.example.com/feed/atom/</id>
  <updated>2024-11-22T09:00:00Z</updated>
  <link rel="self" href="https://old.example.com/feed/atom/"/>
  <author><name>Redaktion</name></author>
  <entry>
    <title>Budget 2025 beschlossen</title>
    <id>https://old.example.com/?p=101</id>
    <link rel="alternate" type="text/html" href="HTTPS://News.Example.ORG/articles/00000000000000a1.html/"/>
    <published>2024-11-01T10:00:00+01:00</published>
    <updated>2024-11-01T10:00:00+01:00</updated>
    <summary>Der Gemeinderat hat das Budget beschlossen.</summary>
  </entry>
  <entry>
    <title type="html">{LONG_LEAD}</title>
    <id>https://old.example.com/?p=102</id>
    <link rel="alternate" href="https://old.example.com/2024/11/05/hochwasser-keller/"/>
    <published>2024-11-04T23:30:00Z</published>
    <updated>2024-11-04T23:30:00Z</updated>
  </entry>
  <entry>
    <title>Die neue Straßenbahnlinie „27“ ist eröffnet!</title>
    <id>{UUID}</id>
    <link rel="alternate" href="https://old.example.com/2024/10/17/linie-27/"/>
    <published>2024-10-17T06:00:00+02:00</published>
    <updated>2024-10-18T12:00:00+02:00</updated>
  </entry>
  <entry>
    <title>Das Museum verlängert die Öffnungszeiten</title>
    <id>https://old.example.com/?p=104</id>
    <link rel="alternate" href="https://old.example.com/2024/12/02/museum/"/>
    <published>2024-12-02T09:00:00+01:00</published>
    <updated>2024-12-02T09:00:00+01:00</updated>
  </entry>
  <entry>
    <title>Der Bürgermeister eröffnet den Adventmarkt</title>
    <id>https://old.example.com/?p=105</id>
    <link rel="alternate" href="https://old.example.com/2024/11/22/advent/"/>
    <published>2024-11-22T09:00:00+01:00</published>
    <updated>2024-11-22T09:00:00+01:00</updated>
  </entry>
  <entry>
    <title>Die Bäckerei schließt nach 80 Jahren</title>
    <id>https://old.example.com/?p=106</id>
    <link rel="alternate" href="https://old.example.com/2024/11/12/baeckerei/"/>
    <published>2024-11-12T08:00:00+01:00</published>
    <updated>2024-11-12T08:00:00+01:00</updated>
  </entry>
  <entry>
    <title>die  Bäckerei SCHLIESST nach 80 Jahren</title>
    <id>https://old.example.com/?p=107</id>
    <link rel="alternate" href="https://old.example.com/2024/11/12/baeckerei-2/"/>
    <published>2024-11-12T17:00:00+01:00</published>
    <updated>2024-11-12T17:00:00+01:00</updated>
  </entry>
</feed>
"""

OLD_RSS = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>Stadtnachrichten</title>
  <link>https://old.example.com/</link>
  <description>Nachrichten aus der Stadt</description>
  <language>de-AT</language>
  <lastBuildDate>Fri, 22 Nov 2024 08:00:00 +0000</lastBuildDate>
  <item>
    <title>Budget 2025 beschlossen</title>
    <link>https://NEWS.example.org/articles/00000000000000a1.html</link>
    <guid isPermaLink="false">https://old.example.com/?p=101</guid>
    <pubDate>Fri, 01 Nov 2024 09:00:00 +0000</pubDate>
    <description><![CDATA[<p>Der Gemeinderat hat das Budget beschlossen.</p>]]></description>
  </item>
  <item>
    <title>{LONG_LEAD}</title>
    <link>https://old.example.com/2024/11/05/hochwasser-keller/</link>
    <guid isPermaLink="false">https://old.example.com/?p=102</guid>
    <pubDate>Mon, 04 Nov 2024 23:30:00 GMT</pubDate>
  </item>
  <item>
    <title>Die neue Straßenbahnlinie &#8222;27&#8220; ist eröffnet!</title>
    <link>https://old.example.com/2024/10/17/linie-27/</link>
    <guid isPermaLink="false">{UUID}</guid>
    <pubDate>Thu, 17 Oct 2024 04:00:00 +0000</pubDate>
  </item>
  <item>
    <title>Das Museum verlängert die Öffnungszeiten</title>
    <link>https://old.example.com/2024/12/02/museum/</link>
    <guid isPermaLink="false">https://old.example.com/?p=104</guid>
    <pubDate>Mon, 02 Dec 2024 08:00:00 +0000</pubDate>
  </item>
  <item>
    <title>Der Bürgermeister eröffnet den Adventmarkt</title>
    <link>https://old.example.com/2024/11/22/advent/</link>
    <guid isPermaLink="false">https://old.example.com/?p=105</guid>
    <pubDate>Fri, 22 Nov 2024 08:00:00 +0000</pubDate>
  </item>
  <item>
    <title>Die Bäckerei schließt nach 80 Jahren</title>
    <link>https://old.example.com/2024/11/12/baeckerei/</link>
    <guid isPermaLink="false">https://old.example.com/?p=106</guid>
    <pubDate>Tue, 12 Nov 2024 07:00:00 +0000</pubDate>
  </item>
  <item>
    <title>die  Bäckerei SCHLIESST nach 80 Jahren</title>
    <link>https://old.example.com/2024/11/12/baeckerei-2/</link>
    <guid isPermaLink="false">https://old.example.com/?p=107</guid>
    <pubDate>Tue, 12 Nov 2024 16:00:00 +0000</pubDate>
  </item>
</channel>
</rss>
"""

OLD_JSON = f"""{{
  "version": "https://jsonfeed.org/version/1",
  "title": "Stadtnachrichten",
  "home_page_url": "https://old.example.com/",
  "feed_url": "https://old.example.com/feed/json/",
  "items": [
    {{
      "id": "https://old.example.com/?p=101",
      "url": "https://news.example.org/articles/00000000000000a1.html/",
      "title": "Budget 2025 beschlossen",
      "content_html": "<p>Der Gemeinderat hat das Budget beschlossen.</p>",
      "date_published": "2024-11-01T10:00:00+01:00"
    }},
    {{
      "id": "https://old.example.com/?p=102",
      "url": "https://old.example.com/2024/11/05/hochwasser-keller/",
      "title": "{LONG_LEAD}",
      "content_text": "Keller ausgepumpt.",
      "date_published": "2024-11-05T00:30:00+01:00"
    }},
    {{
      "id": "{UUID}",
      "url": "https://old.example.com/2024/10/17/linie-27/",
      "title": "Die neue Straßenbahnlinie \\u201e27\\u201c ist eröffnet!",
      "content_text": "Linie 27.",
      "date_published": "2024-10-17T06:00:00+02:00",
      "date_modified": "2024-10-18T12:00:00+02:00"
    }},
    {{
      "id": "https://old.example.com/?p=104",
      "url": "https://old.example.com/2024/12/02/museum/",
      "title": "Das Museum verlängert die Öffnungszeiten",
      "content_text": "Länger offen.",
      "date_published": "2024-12-02T09:00:00+01:00"
    }},
    {{
      "id": "https://old.example.com/?p=105",
      "url": "https://old.example.com/2024/11/22/advent/",
      "title": "Der Bürgermeister eröffnet den Adventmarkt",
      "content_text": "Advent.",
      "date_published": "2024-11-22T09:00:00+01:00"
    }},
    {{
      "id": "https://old.example.com/?p=106",
      "url": "https://old.example.com/2024/11/12/baeckerei/",
      "title": "Die Bäckerei schließt nach 80 Jahren",
      "content_text": "Bäckerei.",
      "date_published": "2024-11-12T08:00:00+01:00"
    }},
    {{
      "id": "https://old.example.com/?p=107",
      "url": "https://old.example.com/2024/11/12/baeckerei-2/",
      "title": "die  Bäckerei SCHLIESST nach 80 Jahren",
      "content_text": "Bäckerei, nochmals.",
      "date_published": "2024-11-12T17:00:00+01:00"
    }}
  ]
}}
"""

OLD_FEEDS = {"atom": ("old-atom.xml", OLD_ATOM), "rss": ("old-rss.xml", OLD_RSS),
             "json": ("old-feed.json", OLD_JSON)}  # fmt: skip


def import_ids(project: Project, source: str | Path, *args: str) -> Result:
    return CliRunner().invoke(
        main, ["import-ids", str(source), "--config", str(project.config), *args]
    )


def write_seeds(project: Project) -> None:
    for name, text in SEEDS.items():
        project.write_seed(name, text)


def write_old(project: Project, fmt: str) -> Path:
    name, text = OLD_FEEDS[fmt]
    path = project.root / name
    path.write_text(text, encoding="utf-8")
    return path


def ids_by_key(project: Project) -> dict[str, dict[str, str]]:
    """Every published feed's ids, by the key in each entry's link."""

    def key(link: str) -> str:
        return link.rsplit("/", 1)[-1].removesuffix(".html")

    feed = json.loads((project.feeds / "feed.json").read_text(encoding="utf-8"))
    return {
        "atom": {key(e.link): e.id for e in project.atom().entries},
        "rss": {key(e.link): e.id for e in project.rss().entries},
        "json": {key(i["url"]): i["id"] for i in feed["items"]},
    }


def assert_imported(project: Project, minted: dict[str, str]) -> None:
    for fmt, ids in ids_by_key(project).items():
        assert set(ids) == {name[4:20] for name in SEEDS}, fmt
        for key, entry_id in ids.items():
            assert entry_id == IMPORTED.get(key, minted[key]), (fmt, key)


def store_ids(project: Project) -> dict[str, str | None]:
    with Store(project.state / "feedsvc.sqlite3") as store:
        return {a.key: a.entry_id for a in store.live_articles()}


def snapshot(project: Project) -> dict[str, tuple[bytes, int]]:
    files = (p for p in project.feeds.rglob("*") if p.is_file())
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_old_ids_are_kept_for_matched_entries(project: Project, fmt: str) -> None:
    write_seeds(project)
    assert project.build().exit_code == 0
    minted = {k: v for k, v in store_ids(project).items() if v is not None}
    assert all(v.startswith("tag:news.example.org,") for v in minted.values())

    result = import_ids(project, write_old(project, fmt), "-v")
    assert result.exit_code == 1, result.output  # two unmatched, two in conflict
    lines = result.output.splitlines()
    assert lines[-1] == "3 matched, 2 unmatched, 2 conflicts"
    for key, old_id in IMPORTED.items():
        assert f"{old_id} → {key}" in lines
    assert "unmatched: https://old.example.com/?p=104 Das Museum verlängert die Öffnungszeiten" in (
        lines
    )
    assert (
        "unmatched: https://old.example.com/?p=105 Der Bürgermeister eröffnet den Adventmarkt"
        in (lines)
    )
    conflicts = [line for line in lines if line.startswith("conflict: ")]
    assert {line.split()[1] for line in conflicts} == CONFLICTS
    assert all("00000000000000a5 is also claimed by" in line for line in conflicts)
    assert_imported(project, minted)

    again = project.build()  # a rebuild keeps them and has nothing to write
    assert again.exit_code == 0
    assert "(unchanged)" in again.output
    assert_imported(project, minted)

    before = snapshot(project)
    rerun = import_ids(project, write_old(project, fmt))  # idempotent
    assert rerun.output.splitlines()[-1] == "3 matched, 2 unmatched, 2 conflicts"
    assert {n: b for n, (b, _) in snapshot(project).items()} == {
        n: b for n, (b, _) in before.items()
    }

    # an edited seed (new title too) keeps its imported id
    project.write_seed(
        "002_00000000000000a2.txt",
        seed_text("Die Feuerwehr zieht Bilanz nach dem Hochwasser.", date="2024-11-05",
                  body="Mehr als zweihundert Keller wurden ausgepumpt."),
    )  # fmt: skip
    assert project.build().exit_code == 0
    assert_imported(project, minted)
    entry = next(e for e in project.atom().entries if e.link.endswith("00000000000000a2.html"))
    assert entry.title == "Die Feuerwehr zieht Bilanz nach dem Hochwasser"
    assert "zweihundert Keller wurden" in entry.content[0].value


def test_dry_run_changes_nothing(project: Project) -> None:
    write_seeds(project)
    assert project.build().exit_code == 0
    ids, files = store_ids(project), snapshot(project)

    result = import_ids(project, write_old(project, "atom"), "--dry-run", "-v")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "3 matched, 2 unmatched, 2 conflicts (dry run: nothing changed)"
    )
    assert f"{UUID} → 00000000000000a3" in result.output
    assert store_ids(project) == ids
    assert snapshot(project) == files


def test_import_before_the_first_build_never_publishes_fresh_ids(project: Project) -> None:
    """The move-in order: seeds first, then import-ids; the first feeds already carry old ids."""
    write_seeds(project)
    old = write_old(project, "rss")
    dry = import_ids(project, old, "--dry-run")
    assert dry.output.splitlines()[-1].startswith("3 matched, 2 unmatched, 2 conflicts")
    assert not project.state.exists()
    assert list(project.feeds.iterdir()) == []

    assert import_ids(project, old).exit_code == 1
    minted = {k: v for k, v in store_ids(project).items() if v is not None}
    assert_imported(project, minted)


def test_all_matched_exits_0_and_a_taken_id_is_a_conflict(project: Project) -> None:
    write_seeds(project)
    assert project.build().exit_code == 0
    taken = store_ids(project)["00000000000000a6"]
    old = project.root / "old.json"
    items: list[dict[str, Any]] = [
        {"id": "https://old.example.com/?p=101", "title": "Budget 2025 beschlossen",
         "url": "https://news.example.org/articles/00000000000000a1.html"},
    ]  # fmt: skip
    old.write_text(json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items}))
    ok = import_ids(project, old)
    assert (ok.exit_code, ok.output) == (0, "1 matched, 0 unmatched, 0 conflicts\n")

    items.append(
        {"id": taken, "title": "Das Museum verlängert die Öffnungszeiten",
         "date_published": "2024-11-10T12:00:00+01:00"}
    )  # fmt: skip
    old.write_text(json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items}))
    result = import_ids(project, old)
    assert result.exit_code == 1
    assert f"conflict: {taken} Das Museum verlängert die Öffnungszeiten: id already used by " in (
        result.output
    )
    assert store_ids(project)["00000000000000a4"] != taken


@pytest.fixture
def old_site(tmp_path: Path) -> Iterator[str]:
    """The old publisher's feeds, served on 127.0.0.1 from a thread."""
    root = tmp_path / "old-site"
    root.mkdir()
    (root / "feed.xml").write_text(OLD_ATOM, encoding="utf-8")
    with serve_directory(root) as url:
        yield url


def test_old_feed_from_a_url(project: Project, old_site: str) -> None:
    write_seeds(project)
    result = import_ids(project, old_site + "feed.xml", "--timeout", "5")
    assert result.output.splitlines()[-1] == "3 matched, 2 unmatched, 2 conflicts"
    missing = import_ids(project, old_site + "nowhere.xml")
    assert missing.exit_code == 1
    assert missing.output.count("\n") == 1
    assert "nowhere.xml: cannot fetch: HTTP Error 404" in missing.output


def test_not_a_feed_is_one_line_and_exit_1(project: Project, tmp_path: Path) -> None:
    for name, text in [("notes.txt", "just some notes\n"), ("x.json", '{"items": []}')]:
        (tmp_path / name).write_text(text)
        result = import_ids(project, tmp_path / name)
        assert result.exit_code == 1
        assert result.output.count("\n") == 1
        assert result.output.startswith(f"Error: {tmp_path / name}: not a")
    gone = import_ids(project, tmp_path / "missing.xml")
    assert "missing.xml: cannot read: No such file or directory" in gone.output


def test_titles_compare_without_case_punctuation_or_our_cut() -> None:
    assert normalize_title("Die „Bäckerei“ am  Eck!") == ("die bäckerei am eck", False)
    assert titles_match("DIE BÄCKEREI AM ECK SCHLIESST", "Die Bäckerei am Eck schließt")
    cut = LONG_LEAD.index(" Keller")
    assert titles_match(LONG_LEAD, LONG_LEAD[:cut] + " …")
    assert not titles_match(LONG_LEAD, LONG_LEAD[: cut - 2] + "…")  # not at a word boundary
    assert titles_match(LONG_LEAD[:cut] + "...", LONG_LEAD)  # the old title cut short
    assert not titles_match("Wien baut", "Wien baut aus")  # no cut: no prefix match


def test_an_entry_that_fits_two_articles_is_a_conflict(project: Project) -> None:
    project.write_seed("001_00000000000000b1.txt", seed_text("Die Sitzung ist vertagt."))
    project.write_seed("002_00000000000000b2.txt", seed_text("Die Sitzung ist vertagt!"))
    assert project.build().exit_code == 0
    settings = load_settings(config=project.config)
    with Store(project.state / "feedsvc.sqlite3") as store:
        articles = store.live_articles()
    old = parse_old_feed(
        b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "x",'
        b' "title": "Die Sitzung ist vertagt", "date_published": "2024-11-20T10:00:00Z"}]}',
        source="old.json",
    )
    assert old == [OldEntry("x", None, "Die Sitzung ist vertagt", old[0].published)]
    meta = FeedMeta(base_url=settings.base_url, author_name="a", language="de",
                    generator_version="0")  # fmt: skip
    found = match(old, articles, meta, settings.tz)
    assert (found.matches, found.unmatched) == ([], [])
    assert [(c.entry.id, c.keys) for c in found.conflicts] == [
        ("x", ("00000000000000b1", "00000000000000b2"))
    ]
