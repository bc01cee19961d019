"""Two store backends, one interface (#10): SQLite and PostgreSQL behave the same.

The store-level tests run on both (``backend`` is parametrized; PostgreSQL gets a fresh schema
per test in the module's database). The end-to-end ones build real sites through the CLI with
``--store-url`` and compare the feeds byte for byte with a SQLite build of the same seeds.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from feedsvc.build.publisher import Publisher
from feedsvc.cli import main
from feedsvc.config import load_settings
from feedsvc.errors import StoreError
from feedsvc.models import Entry
from feedsvc.seeds import parse_seed
from feedsvc.store import SQLiteStore, Store, store_path
from feedsvc.store.base import FileState, Member

from .conftest import SAMPLE, seed_text
from .harness import FEEDSVC, make_site, seed_name, wait_for, write
from .pg import PgDatabase, free_port

Opener = Callable[[], Store]
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
DATA = Path(__file__).parent / "data"


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(request.param)


@pytest.fixture
def opener(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens the same store again each call (SQLite file, or a PostgreSQL schema)."""
    if backend == "sqlite":
        return lambda: SQLiteStore(tmp_path / "state" / "store.sqlite3")
    from feedsvc.store.postgres import PostgresStore

    url = request.getfixturevalue("pg_schema_url")
    return lambda: PostgresStore(url, site_id="news.example.org")


@pytest.fixture
def store(opener: Opener) -> Iterator[Store]:
    with opener() as s:
        yield s


# --- the store itself on both backends --------------------------------------------------------
# Names that sort differently by code point (SQLite's way) than in a natural-language collation.
NAMES = ["B", "a", "Z", "ä", "z", "Å", "é", "\U0001f600", "ab", "a-b", "a_b", "A", "a b"]


def test_every_value_comes_back_as_it_went_in(store: Store) -> None:
    big = 1_732_000_000_123_456_789  # nanoseconds: beyond 32 bits
    state = FileState(
        "sub/ä \\udcff.txt", "k1", 2**40, big, "f" * 64, "bad", 3, ("w1", "w2"), big + 1, 2**62
    )
    with store.transaction():
        store.put_file(state)
        store.set_meta("render_fp", "x" * 100)
        store.record_outputs({"atom.xml": (10, big, 2**50), "gone.xml": (1, 1, 1)})
        store.record_outputs({"gone.xml": None})
    assert store.file_states() == {state.path: state}
    assert store.file_states([state.path, "missing"]) == {state.path: state}
    assert store.errors() == [(state.path, 3, "bad")]
    assert store.get_meta("render_fp") == "x" * 100
    assert store.output_stamps() == {"atom.xml": (10, big, 2**50)}


def _entries(n: int) -> list[Entry]:
    article = parse_seed(seed_text("Ein Satz als Aufmacher.").encode(), source=SAMPLE.name, now=T0)
    return [
        Entry.of(
            article.model_copy(update={"key": f"{i:016x}", "published": T0}),
            entry_id=f"tag:news.example.org,2025:{i}",
            updated=T0,
        )
        for i in range(n)
    ]


def test_text_sorts_by_code_point_on_both(store: Store) -> None:
    """Paths and feed names compare as SQLite compares text: by code point, on both."""
    with store.transaction():
        for name in NAMES:
            store.put_file(FileState(f"{name}.txt", "same", 1, 1, None, "bad", 1, ()))
        store.set_members("0" * 16, T0, [f"category/{name}" for name in NAMES])
    assert [path for path, _, _ in store.errors()] == sorted(f"{n}.txt" for n in NAMES)
    assert store.paths_with_key("same") == sorted(f"{n}.txt" for n in NAMES)
    assert store.duplicate_paths() == {"same": sorted(f"{n}.txt" for n in NAMES)}
    assert store.member_feeds("category/") == sorted(f"category/{n}" for n in NAMES)
    assert store.member_feeds("category/a") == sorted(
        f"category/{n}" for n in NAMES if n.startswith("a")
    )


def test_feeds_and_archive_places_are_the_same_on_both(store: Store) -> None:
    entries = _entries(12)
    with store.transaction():
        for i, entry in enumerate(entries):
            store.put_article(entry, path=f"{i}.txt", first_seen=T0)
            store.set_members(entry.key, T0, ["all"])
    keys = sorted(e.key for e in entries)
    assert [e.key for e in store.feed_articles("all", 100)] == keys[::-1]
    assert [e.key for e in store.live_articles(3)] == keys[::-1][:3]
    assert [e.key for e in store.iter_live_articles()] == keys
    assert store.feed_articles("all", 1) == [entries[-1]]
    assert store.unarchived_after("all", 5) == keys[:7]
    with store.transaction():
        for seq, key in enumerate(store.unarchived_after("all", 5)):
            store.set_seq("all", key, seq)
    assert store.next_seq("all") == 7
    assert store.last_archived("all", 2) == [(keys[6], 6), (keys[5], 5)]
    assert [e.key for e in store.archived("all", 0, 3)] == keys[:3][::-1]
    assert store.newest_date() == T0
    assert store.count_live() == 12
    with store.transaction():
        store.retire(keys[0])
    assert store.retired_key(entries[0].content_hash) == keys[0]
    assert store.has_entry_id(entries[0].entry_id)
    assert store.count_live() == 11


def test_archive_places_and_feeds_in_batches_are_the_same_on_both(store: Store) -> None:
    """``set_seqs`` places many keys at once (None: back in the current document), as
    ``set_seq`` one at a time; ``members_of_keys`` reads the feeds of many keys (more than
    one query's 500) as ``members_of`` reads them one key at a time."""
    keys = [f"{i:016x}" for i in range(1203)]
    with store.transaction():
        for i, key in enumerate(keys):
            feeds = ["all", *(["category/a"] if i % 3 == 0 else []), *(["b"] if i % 5 else [])]
            store.set_members(key, T0 + timedelta(minutes=i), feeds)
        store.set_seqs("all", ((key, seq) for seq, key in enumerate(keys[:600])))
        store.set_seqs("all", [(keys[599], None), (keys[598], None)])
        store.set_seqs("b", [])
    assert store.next_seq("all") == 598
    assert store.last_archived("all", 2) == [(keys[597], 597), (keys[596], 596)]
    assert store.unarchived_after("all", 0) == keys[598:]
    wanted = [*keys[::-1], "ffffffffffffffff"]  # a key in no feed is left out
    found = store.members_of_keys(wanted)
    assert sorted(found) == sorted(keys)
    for key in keys:
        assert sorted(found[key], key=str) == sorted(store.members_of(key), key=str)
    assert found[keys[3]] == [Member("all", 3), Member("b", None), Member("category/a", None)]
    assert store.members_of_keys([]) == {}


def test_the_live_listing_and_titles_read_in_sql_are_the_same_on_both(store: Store) -> None:
    """``live_listing`` (#9): (published, first_seen, key, content_hash) of the live articles,
    by date, then first seen, then key; ``titles``: as the article has them (JSON escapes,
    quotes, non-ASCII), read in SQL; retired articles left out of both."""
    entries = _entries(5)
    titles = ['Zwei "Anführungs" zeichen', "Ünïcödé \U0001f600", "a\\b / c", "Line\tTab", "x"]
    dated = [T0, LATER, T0, T0, T0 - timedelta(days=1)]
    seen = [T0, T0, T0 + timedelta(seconds=1), T0, T0]
    with store.transaction():
        for i, entry in enumerate(entries):
            article = entry.model_copy(update={"title": titles[i], "published": dated[i]})
            store.put_article(article, path=f"{i}.txt", first_seen=seen[i])
        store.retire(entries[3].key)
    listing = store.live_listing()
    assert [key for _, _, key, _ in listing] == [
        entries[4].key,  # the oldest date
        entries[0].key,  # T0, first seen at T0
        entries[2].key,  # T0, first seen a second later
        entries[1].key,  # the newest date
    ]
    published, first_seen, _, content_hash = listing[-1]
    assert datetime.fromisoformat(published) == LATER
    assert datetime.fromisoformat(first_seen) == T0
    assert content_hash == entries[1].content_hash
    keys = [e.key for e in entries]
    assert store.titles(keys) == {keys[i]: titles[i] for i in (0, 1, 2, 4)}
    assert store.titles(keys[i] for i in range(5) for _ in range(30)) == store.titles(keys)


def test_a_transaction_is_all_or_nothing(store: Store) -> None:
    def killed() -> None:
        with store.transaction():
            store.set_meta("half", "1")
            raise RuntimeError("killed mid-build")

    def refused() -> None:
        with store.transaction():
            store.set_meta("half", "1")
            store.set_meta("null", None)  # type: ignore[arg-type]  # NOT NULL: a driver error

    with pytest.raises(RuntimeError):
        killed()
    assert store.get_meta("half") is None
    with pytest.raises(StoreError, match=r"NOT NULL|not-null"):
        refused()
    assert store.get_meta("half") is None


def test_a_store_newer_than_the_code_is_refused(opener: Opener) -> None:
    with opener() as s, s.transaction():
        s.set_meta("schema", "5")
    with pytest.raises(StoreError, match=r"schema 5, newer than this feedsvc knows \(4\)"):
        opener()
    # and nothing was downgraded: still refused
    with pytest.raises(StoreError, match="newer than this feedsvc knows"):
        opener()


def test_an_older_store_is_migrated_on_both(
    backend: str, opener: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    with opener() as s, s.transaction():
        s.put_file(FileState("a.txt", "a", 1, 2, "h", None, None, ()))
    module = importlib.import_module(f"feedsvc.store.{backend}")
    monkeypatch.setattr(module, "SCHEMA_VERSION", "5")
    monkeypatch.setattr(
        module,
        "MIGRATIONS",
        {5: "ALTER TABLE files ADD COLUMN extra_ns INTEGER NOT NULL DEFAULT 7"},
    )
    with opener() as s:
        assert s.get_meta("schema") == "5"
        assert list(s.file_states()) == ["a.txt"]
        assert s._db.execute("SELECT extra_ns FROM files").fetchone()[0] == 7  # type: ignore[attr-defined]
    monkeypatch.setattr(module, "SCHEMA_VERSION", "7")
    monkeypatch.setattr(module, "MIGRATIONS", {7: "SELECT 1"})
    with pytest.raises(StoreError, match="no migration from schema 5 to 6"):
        opener()


# --- the whole program on PostgreSQL ----------------------------------------------------------
def _corpus(seeds: Path) -> None:
    """The sample seed, the parser's edge cases and a few dated ones in category folders."""
    shutil.copy(SAMPLE, seeds)
    for i, path in enumerate(sorted(DATA.glob("*.txt")), start=1):
        (seeds / seed_name(i)).write_bytes(path.read_bytes())
    for i in range(40, 70):
        folder = _folder(i)
        day = (datetime(2024, 1, 1) + timedelta(days=i)).strftime("%Y-%m-%d")
        write(seeds / f"{folder}{seed_name(i)}", seed_text(f"Meldung {i} des Tages.", date=day))


def _folder(i: int) -> str:
    return ("sport/", "politik/", "")[i % 3]


SITE = {"category_feeds": True, "max_items": 5, "archive_page_size": 4}


def _run(
    site: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FEEDSVC, *args, "--config", str(site / "feedsvc.toml")],
        cwd=site,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")},
            **(env or {}),
        },
    )


def _outputs(feeds: Path) -> dict[str, bytes]:
    return {
        p.relative_to(feeds).as_posix(): p.read_bytes()
        for p in sorted(feeds.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_a_postgres_build_gives_the_same_feeds_as_a_sqlite_build(
    tmp_path: Path, pg_schema_url: str
) -> None:
    one = make_site(tmp_path / "sqlite", **SITE)
    two = make_site(tmp_path / "pg", **SITE)
    for site in (one, two):
        _corpus(site / "seeds")
    assert _run(one, "build").returncode in (0, 1)
    built = _run(two, "build", "--store-url", pg_schema_url)
    assert built.returncode in (0, 1), built.stderr
    assert not store_path(two / "state").exists()  # the store is in PostgreSQL
    assert len(_outputs(one / "feeds")) > 20
    assert _outputs(two / "feeds") == _outputs(one / "feeds")
    # an edit and a deletion (at one fixed time, as "updated" is the build's clock): the same
    for site, url in ((one, None), (two, pg_schema_url)):
        write(site / "seeds" / seed_name(41), seed_text("Neu geschrieben.", date="2024-02-10"))
        (site / "seeds" / _folder(42) / seed_name(42)).unlink()
        settings = load_settings(config=site / "feedsvc.toml", env={}, overrides={"store_url": url})
        report = Publisher(settings, clock=lambda: LATER).build()
        assert (report.changed, report.deleted) == (1, 1)
    assert _outputs(two / "feeds") == _outputs(one / "feeds")


def test_a_sqlite_build_never_imports_psycopg(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site")
    shutil.copy(SAMPLE, site / "seeds")
    code = (
        "import sys\nfrom feedsvc.cli import main\n"
        "try:\n    main(['build', '--config', 'feedsvc.toml'])\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "print(sorted(m for m in sys.modules if m.startswith('psycopg')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=site, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _one_line(result: subprocess.CompletedProcess[str], *parts: str, secret: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    for part in parts:
        assert part in result.stderr, result.stderr
    assert secret not in result.stderr + result.stdout


def test_bad_urls_are_one_line_naming_the_url_without_its_password(
    tmp_path: Path, pg_module_db: PgDatabase
) -> None:
    site = make_site(tmp_path / "site")
    shutil.copy(SAMPLE, site / "seeds")
    good = pg_module_db.url
    secret = good.split(":")[2].split("@")[0]
    host_db = good.split("@", 1)[1]
    cases = {
        "wrong password": (good.replace(secret, "Wr0ngSecret"), "password authentication failed"),
        "unreachable": (
            f"postgresql://feedsvc:Wr0ngSecret@127.0.0.1:{free_port()}/x",
            "cannot connect",
        ),
        "malformed": ("postgresql://feedsvc:Wr0ngSecret@127.0.0.1:notaport/x", "cannot connect"),
        "no database": (good.rsplit("/", 1)[0] + "/no_such_db", 'database "no_such_db"'),
    }
    for url, why in cases.values():
        shown = url.replace(":Wr0ngSecret@", "@").replace(f":{secret}@", "@")
        result = _run(site, "build", "--store-url", url)
        _one_line(result, shown, why, secret="Wr0ngSecret")
        _one_line(result, secret=secret)
    _one_line(
        _run(site, "build", "--store-url", f"mysql://feedsvc:Wr0ngSecret@{host_db}"),
        "store_url",
        "postgresql://",
        secret="Wr0ngSecret",
    )


def _migrate(site: Path, url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return _run(site, "migrate-store", "--to", url, env=env)


@pytest.mark.slow
def test_migrate_store_keeps_every_id_and_running_it_twice_is_harmless(
    tmp_path: Path, pg_schema_url: str
) -> None:
    site = make_site(tmp_path / "site", **SITE)
    _corpus(site / "seeds")
    _run(site, "build")
    (
        site / "seeds" / _folder(43) / seed_name(43)
    ).unlink()  # a retired entry: its id must come along too
    _run(site, "build")
    with SQLiteStore(store_path(site / "state")) as s:
        ledger = s.dump("articles")
        files = s.dump("files")
    before = _outputs(site / "feeds")

    first = _migrate(site, pg_schema_url)
    assert first.returncode == 0, first.stderr
    assert f"copied {len(ledger[1])} ledger entries" in first.stdout
    assert pg_schema_url.split("@")[0].split(":")[2] not in first.stdout
    second = _migrate(site, pg_schema_url)
    assert second.returncode == 0, second.stderr
    assert "already holds this store" in second.stdout
    assert "nothing copied" in second.stdout

    from feedsvc.store.postgres import PostgresStore

    with PostgresStore(pg_schema_url, site_id="news.example.org") as pg:
        assert pg.dump("articles") == ledger
        assert pg.dump("files") == files
    built = _run(site, "build", "--store-url", pg_schema_url)
    assert "(unchanged)" in built.stdout, built.stdout + built.stderr
    assert _outputs(site / "feeds") == before


def test_migrate_store_refuses_another_sites_data(tmp_path: Path, pg_schema_url: str) -> None:
    ours = make_site(tmp_path / "ours")
    theirs = make_site(tmp_path / "theirs", site_id="other-site")
    for site in (ours, theirs):
        shutil.copy(SAMPLE, site / "seeds")
        _run(site, "build")
    assert _migrate(theirs, pg_schema_url).returncode == 0
    refused = _migrate(ours, pg_schema_url)
    _one_line(
        refused, "holds the store of site 'other-site'", secret=":" + pg_schema_url.split(":")[2]
    )
    # same site_id, another ledger (another SQLite store of its own): refused too
    clash = make_site(tmp_path / "clash", site_id="other-site")
    write(clash / "seeds" / SAMPLE.name, seed_text("Ganz anders.", date="2023-01-05"))
    _run(clash, "build")
    _one_line(_migrate(clash, pg_schema_url), "another ledger", secret="@@")
    # nothing changed in the target: the first site still builds from it unchanged
    built = _run(theirs, "build", "--store-url", pg_schema_url)
    assert "(unchanged)" in built.stdout, built.stdout + built.stderr


def test_two_builders_of_one_site_never_write_at_once(pg_schema_url: str) -> None:
    """The second transaction waits on the first's advisory lock (pg_advisory_xact_lock)."""
    from feedsvc.store.postgres import PostgresStore

    order: list[str] = []
    with (
        PostgresStore(pg_schema_url, site_id="a") as first,
        PostgresStore(pg_schema_url, site_id="a") as second,
    ):
        with first.transaction():
            first.set_meta("who", "first")

            def build() -> None:
                with second.transaction():
                    order.append("second")
                    second.set_meta("who", "second")

            thread = threading.Thread(target=build)
            thread.start()
            wait_for(
                lambda: (
                    first._db.execute(  # type: ignore[attr-defined]
                        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    ).fetchone()[0]
                    == 1
                ),
                what="the second builder waits for the lock",
            )
            order.append("first")
        thread.join(timeout=10)
        assert order == ["first", "second"]
        assert second.get_meta("who") == "second"


def test_cli_help_names_store_url_and_migrate_store() -> None:
    for command in (["build", "--help"], ["run", "--help"], ["migrate-store", "--help"]):
        result: Result = CliRunner().invoke(main, command)
        assert result.exit_code == 0
        assert ("--store-url" in result.output) or ("--to" in result.output)


def test_a_dry_run_of_import_ids_leaves_a_postgres_store_alone(
    tmp_path: Path, pg_schema_url: str
) -> None:
    site = make_site(tmp_path / "site", store_url=pg_schema_url)
    shutil.copy(SAMPLE, site / "seeds")
    assert _run(site, "build").returncode == 0
    old = site / "old.xml"
    atom = (site / "feeds" / "atom.xml").read_text(encoding="utf-8")
    old.write_text(re.sub(r"<id>tag:[^<]*</id>", "<id>urn:old:1</id>", atom), encoding="utf-8")
    from feedsvc.store.postgres import PostgresStore

    with PostgresStore(pg_schema_url, site_id="news.example.org") as pg:
        before = {name: pg.dump(name) for name in ("meta", "articles", "outputs")}
    result = _run(site, "import-ids", str(old), "--dry-run")
    assert "1 matched" in result.stdout, result.stdout + result.stderr
    with PostgresStore(pg_schema_url, site_id="news.example.org") as pg:
        assert {name: pg.dump(name) for name in ("meta", "articles", "outputs")} == before
    assert _run(site, "store", "check").stderr.count("pg_dump") == 1


@pytest.mark.slow
@pytest.mark.parametrize("when", [1, 2])  # at the start of the build; right before it writes
def test_a_server_that_drops_a_build_mid_way_loses_nothing_and_the_next_build_catches_up(
    tmp_path: Path, pg_schema_url: str, when: int
) -> None:
    """The server ends the build's session mid-build (as a restart or a failover would):
    one line naming the URL without its password, nothing committed, and the next build ends
    where a build that was never cut off ends (the same feeds as SQLite's)."""
    import psycopg

    one = make_site(tmp_path / "sqlite", **SITE)
    two = make_site(tmp_path / "pg", **SITE)
    for site in (one, two):
        _corpus(site / "seeds")
    assert _run(one, "build").returncode in (0, 1)
    assert _run(two, "build", "--store-url", pg_schema_url).returncode in (0, 1)
    for site in (one, two):  # an edit and a new seed, published by the next build
        write(site / "seeds" / seed_name(41), seed_text("Neu geschrieben.", date="2024-02-10"))
        write(site / "seeds" / seed_name(80), seed_text("Ganz neu.", date="2024-03-10"))
    calls = []

    def cut(store: Store) -> None:
        calls.append(store)
        if len(calls) == when:
            with psycopg.connect(pg_schema_url, autocommit=True) as admin:
                ended = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND application_name LIKE 'feedsvc@%'"
                ).fetchall()
            assert ended == [(True,)]  # the build's one session

    settings = load_settings(
        config=two / "feedsvc.toml", env={}, overrides={"store_url": pg_schema_url}
    )
    with pytest.raises(StoreError) as failed:
        Publisher(settings, clock=lambda: LATER, fence=cut).build()
    line = str(failed.value)
    secret = pg_schema_url.split(":")[2].split("@")[0]
    assert "\n" not in line
    assert secret not in line
    assert pg_schema_url.replace(f":{secret}@", "@").split("?")[0] in line
    # nothing was committed: the next build sees the same two changes and publishes them
    report = Publisher(settings, clock=lambda: LATER).build()
    assert (report.new, report.changed) == (1, 1), report
    sqlite = load_settings(config=one / "feedsvc.toml", env={})
    Publisher(sqlite, clock=lambda: LATER).build()
    assert _outputs(two / "feeds") == _outputs(one / "feeds")
