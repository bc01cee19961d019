"""Every entry exactly once across a feed's current document and its RFC 5005 archive chain.

The rule: an entry with an archive place is never in a current document (Atom, RSS or JSON);
the current document holds the newest entries without one. When deletions leave the current
document short, the most recently archived entries come back off the top of the archive, so
only the newest archive pages change.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc.build.publisher import Publisher
from feedsvc.config import Settings

from .conftest import Project, parse_feed, seed_text

BASE = "https://news.example.org/"
FH = "{http://purl.org/syndication/history/1.0}"
FOLDERS = ("", "sport/", "kultur/")
CI = bool(os.environ.get("CI"))


def _key(n: int) -> str:
    return f"{n:016x}"


def _key_of(entry_id: str) -> str:
    return entry_id.rsplit(":", 1)[1]


@dataclass
class Chain:
    """One feed as a reader walking its archive sees it."""

    current: list[str]
    pages: list[list[str]] = field(default_factory=list)

    @property
    def all(self) -> list[str]:
        return self.current + [k for page in self.pages for k in page]


def walk(feeds: Path, directory: str = "") -> Chain:
    """Follow prev-archive from ``directory``'s atom.xml; the keys of each document's entries."""
    doc = parse_feed(feeds / directory / "atom.xml")
    chain = Chain([_key_of(e.id) for e in doc.entries])
    seen: set[str] = set()
    while True:
        prev = [link.href for link in doc.feed.get("links", []) if link.rel == "prev-archive"]
        if not prev:
            return chain
        assert prev[0].startswith(BASE + directory + "archive/"), prev[0]
        assert prev[0] not in seen, f"archive chain loops at {prev[0]}"
        seen.add(prev[0])
        path = feeds / prev[0].removeprefix(BASE)
        doc = parse_feed(path)  # well-formed, feedparser finds nothing wrong
        root = ET.parse(path).getroot()
        assert root.find(f"{FH}archive") is not None, path
        current = [link.href for link in doc.feed.links if link.rel == "current"]
        assert current == [BASE + directory + "atom.xml"], path
        chain.pages.append([_key_of(e.id) for e in doc.entries])


def other_formats(feeds: Path, directory: str = "") -> dict[str, list[str]]:
    """The keys in the RSS and JSON current documents."""
    rss = parse_feed(feeds / directory / "rss.xml")
    data = json.loads((feeds / directory / "feed.json").read_text(encoding="utf-8"))
    return {
        "rss": [_key_of(e.id) for e in rss.entries],
        "json": [_key_of(item["id"]) for item in data["items"]],
    }


def check_feed(feeds: Path, directory: str, live: set[str]) -> None:
    """Exactly ``live``, each once; RSS and JSON hold only entries of the current Atom."""
    chain = walk(feeds, directory)
    twice = [k for k, n in Counter(chain.all).items() if n > 1]
    assert not twice, f"{directory or 'main'} feed: {twice} more than once"
    assert set(chain.all) == live, f"{directory or 'main'} feed"
    for fmt, keys in other_formats(feeds, directory).items():
        assert set(keys) <= set(chain.current), f"{directory}{fmt} holds archived entries"


def text_of(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8", "replace")


class Site:
    """A seeds dir and a feeds dir in a temp folder, built by a real ``Publisher``."""

    def __init__(self, root: Path, **config: object) -> None:
        self.seeds = root / "seeds"
        self.feeds = root / "feeds"
        self.seeds.mkdir()
        self.settings = Settings(
            base_url=BASE,
            seeds_dir=self.seeds,
            feeds_dir=self.feeds,
            state_dir=root / "state",
            detect_language=False,
            category_feeds=True,
            max_delete_fraction=1.0,  # random steps may delete most articles on purpose
            **config,  # type: ignore[arg-type]
        )
        self.files: dict[str, Path] = {}  # key -> seed file
        self.deleted: set[str] = set()
        self.writes = 0

    def put(self, n: int, folder: str, day: int) -> None:
        key = _key(n)
        path = self.files.get(key) or self.seeds / f"{folder}{n:03d}_{key}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.writes += 1  # every version's content differs, so no file passes for a rename
        lead = f"Meldung {n} Fassung {self.writes}."
        path.write_text(seed_text(lead, date=f"2024-03-{day:02d}"), encoding="utf-8")
        os.utime(path, ns=(self.writes * 10**9, self.writes * 10**9))
        self.files[key] = path
        self.deleted.discard(key)

    def delete(self, n: int) -> None:
        key = _key(n)
        if key in self.files:
            self.files.pop(key).unlink()
            self.deleted.add(key)

    def build(self) -> None:
        report = Publisher(self.settings).build()
        assert report.ok, report.errors

    def live(self, folder: str = "") -> set[str]:
        return {k for k, p in self.files.items() if not folder or p.parent.name == folder[:-1]}

    def check(self) -> None:
        check_feed(self.feeds, "", self.live())
        for folder in FOLDERS[1:]:
            live = self.live(folder)
            if live:
                check_feed(self.feeds, f"category/{folder}", live)
        outputs = [p for p in self.feeds.rglob("*") if p.is_file() and ".tmp" not in p.parts]
        for key in self.deleted:
            assert not (self.feeds / "articles" / f"{key}.html").exists(), key
            for path in outputs:
                assert key not in text_of(path), f"deleted {key} still in {path}"


# --- examples ---------------------------------------------------------------------------------


def test_deleting_the_newest_entries_refills_the_feed_from_the_archive(project: Project) -> None:
    """The issue's case: delete the 5 newest; the 5 newest archived come back, once each."""
    with project.config.open("a") as f:
        f.write("max_items = 5\narchive_page_size = 4\nmax_feed_bytes = 0\n")
    for n in range(20):
        project.write_seed(
            f"{n:03d}_{_key(n)}.txt", seed_text(f"Nr. {n}", date=f"2024-{n // 2 + 1:02d}")
        )
    assert project.build().exit_code == 0
    before = walk(project.feeds)
    assert len(before.current) == 5
    assert len(before.all) == 20
    pages = {p.name: p.read_bytes() for p in (project.feeds / "archive").glob("*.xml")}
    for key in before.current:
        next(project.seeds.glob(f"*_{key}.txt")).unlink()
    result = project.build()
    assert result.exit_code == 0, result.output
    after = walk(project.feeds)
    assert sorted(after.all) == sorted(set(before.all) - set(before.current))
    assert len(after.all) == len(set(after.all)) == 15
    newest_archived = [k for page in before.pages for k in page][:5]
    assert after.current == newest_archived  # back in the window, off the top of the archive
    for fmt, keys in other_formats(project.feeds).items():
        assert keys == after.current, fmt
    # 15 archived on pages 0-3 before, 10 now: page 3 is gone, page 2 shrank, 0 and 1 stay
    assert not (project.feeds / "archive" / "3.xml").exists()
    for name in ("0.xml", "1.xml"):
        assert (project.feeds / "archive" / name).read_bytes() == pages[name], name


def test_an_archived_entry_edited_to_be_newest_stays_in_its_archive_page(
    project: Project,
) -> None:
    with project.config.open("a") as f:
        f.write("max_items = 2\narchive_page_size = 2\nmax_feed_bytes = 0\n")
    for n in range(6):
        project.write_seed(f"{n:03d}_{_key(n)}.txt", seed_text(f"Nr. {n}", date=f"2024-0{n + 1}"))
    assert project.build().exit_code == 0
    project.write_seed(f"000_{_key(0)}.txt", seed_text("Nr. 0 neu", date="2024-12"))
    assert project.build().exit_code == 0
    chain = walk(project.feeds)
    assert len(chain.all) == len(set(chain.all)) == 6
    assert _key(0) not in chain.current


# --- the property -------------------------------------------------------------------------------

NUMBERS = st.integers(0, 11)
OP = st.one_of(
    st.tuples(st.just("put"), NUMBERS, st.sampled_from(FOLDERS), st.integers(1, 28)),
    st.tuples(st.just("delete"), NUMBERS, st.just(""), st.just(0)),
)
STEPS = st.lists(st.lists(OP, min_size=1, max_size=4), min_size=1, max_size=6)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=CI,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    steps=STEPS,
    max_items=st.integers(1, 3),
    page_size=st.integers(1, 3),
    budget=st.sampled_from([0, 0, 2500]),
    initial=st.lists(st.tuples(NUMBERS, st.sampled_from(FOLDERS), st.integers(1, 28)), max_size=8),
)
def test_every_entry_is_reachable_exactly_once_after_any_changes(
    steps: list[list[tuple[str, int, str, int]]],
    max_items: int,
    page_size: int,
    budget: int,
    initial: list[tuple[int, str, int]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        site = Site(
            Path(tmp),
            max_items=max_items,
            archive_page_size=page_size,
            max_feed_bytes=budget,
        )
        for n, folder, day in initial:
            site.put(n, folder, day)
        site.build()
        site.check()
        for step in steps:
            for op, n, folder, day in step:
                if op == "put":
                    site.put(n, folder, day)
                else:
                    site.delete(n)
            site.build()
            site.check()
