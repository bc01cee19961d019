"""Documents in the store, served from any host (#10, part 4), and the serve role (part 3).

A PostgreSQL builder records each document it publishes; ``feedsvc sync`` and a serve-only
daemon (``feedsvc run --roles serve``) mirror them into a folder of their own, and a server
over that folder answers exactly as the builder's own: same bytes, ETag and Last-Modified.
With SQLite nothing is recorded (the one-machine build stays as it was).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from feedsvc._digest import content_digest
from feedsvc.build.publisher import Publisher
from feedsvc.config import ROLES, load_settings
from feedsvc.errors import StoreError
from feedsvc.store import SQLiteStore, Store, StoredDocument, open_store
from feedsvc.store.documents import SERIAL

from .conftest import SAMPLE, seed_text
from .harness import FEEDSVC, Daemon, feedsvc, make_site, seed_name, wait_for, write
from .pg import PgServer

Opener = Callable[[], Store]
SITE = {"category_feeds": True, "max_items": 3, "archive_page_size": 2}
SITE_ID = "news.example.org"


# --- the store's side, on both backends ----------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    if request.param == "sqlite":
        return lambda: SQLiteStore(tmp_path / "state" / "store.sqlite3")
    from feedsvc.store.postgres import PostgresStore

    url = request.getfixturevalue("pg_schema_url")
    return lambda: PostgresStore(url, site_id=SITE_ID)


@pytest.fixture
def store(opener: Opener) -> Iterator[Store]:
    with opener() as s:
        yield s


def _doc(path: str, data: bytes, modified_ns: int) -> StoredDocument:
    return StoredDocument(path, data, content_digest(data), modified_ns)


def test_documents_are_stored_fetched_and_deleted_alike_on_both(store: Store) -> None:
    binary = bytes(range(256)) * 3  # a .gz is bytes, NULs included
    with store.transaction():
        assert store.documents_serial() == 0
        serial = store.record_documents(
            [_doc("atom.xml", b"<feed/>", 1_700_000_000_123_456_789), _doc("a.xml.gz", binary, 5)],
            [],
        )
    assert serial == store.documents_serial() == 1
    refs = store.document_refs()
    assert refs["atom.xml"].size == 7
    assert refs["atom.xml"].modified_ns == 1_700_000_000_123_456_789
    [gz] = store.documents([refs["a.xml.gz"]])
    assert gz.data == binary
    assert gz.etag == content_digest(binary)
    with store.transaction():
        store.record_documents([_doc("atom.xml", b"<feed>2</feed>", 6)], ["a.xml.gz"])
    assert set(store.document_refs()) == {"atom.xml"}
    assert store.documents_serial() == 2
    # a fetch by an old ETag finds nothing: the mirror knows a publish overtook it
    assert list(store.documents([refs["atom.xml"]])) == []
    with store.transaction():  # nothing given: nothing changes, no new serial
        assert store.record_documents([], []) == 2


def test_a_sqlite_build_records_no_documents(tmp_path: Path) -> None:
    """The table is there (one schema), but a one-machine build neither reads its files
    back nor writes a row: ``keeps_documents`` is False for SQLite."""
    site = make_site(tmp_path / "site", **SITE)
    _corpus(site / "seeds", 6)
    settings = load_settings(config=site / "feedsvc.toml", env={})
    Publisher(settings).build()
    db = sqlite3.connect(site / "state" / "feedsvc.sqlite3")
    try:
        assert db.execute("SELECT COUNT(*) FROM documents").fetchone() == (0,)
        assert db.execute("SELECT value FROM meta WHERE name = ?", (SERIAL,)).fetchone() is None
    finally:
        db.close()


# --- a PostgreSQL builder records what it published ------------------------------------------
def _corpus(seeds: Path, n: int, *, start: int = 1) -> None:
    for i in range(start, start + n):
        folder = ("sport/", "politik/", "")[i % 3]
        day = f"2024-02-{i:02d}"
        write(seeds / f"{folder}{seed_name(i)}", seed_text(f"Meldung {i} des Tages.", date=day))


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below ``root`` but hidden ones: its bytes and mtime."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not any(p.startswith(".") for p in rel.split("/")):
            out[rel] = (path.read_bytes(), path.stat().st_mtime_ns)
    return out


def _pg_site(tmp_path: Path, url: str, name: str = "site") -> Path:
    return make_site(tmp_path / name, store_url=url, site_id=SITE_ID, **SITE)


def _stored(url: str) -> dict[str, tuple[bytes, int]]:
    from feedsvc.store.postgres import PostgresStore

    with PostgresStore(url, site_id=SITE_ID) as store:
        refs = store.document_refs()
        docs = list(store.documents(list(refs.values())))
    assert len(docs) == len(refs)
    for doc in docs:
        assert doc.etag == content_digest(doc.data)
    return {d.path: (d.data, d.modified_ns) for d in docs}


def test_a_postgres_publish_records_its_documents_and_drops_removed_ones(
    tmp_path: Path, pg_schema_url: str
) -> None:
    site = _pg_site(tmp_path, pg_schema_url)
    _corpus(site / "seeds", 9)
    (site / "seeds" / SAMPLE.name).write_bytes(SAMPLE.read_bytes())
    settings = load_settings(config=site / "feedsvc.toml", env={})
    Publisher(settings).build()
    feeds = _tree(site / "feeds")
    assert len(feeds) > 20
    assert any(p.endswith(".gz") for p in feeds)
    assert _stored(pg_schema_url) == feeds  # bytes and modified times, every file
    # an edit and a deletion: the changed documents, the removed page gone, same as feeds/
    write(site / "seeds" / seed_name(4), seed_text("Neu geschrieben.", date="2024-02-04"))
    (site / "seeds" / "sport" / seed_name(3)).unlink()
    with open_store(settings) as store:
        before = store.document_refs()
    Publisher(settings).build()
    after = _tree(site / "feeds")
    assert _stored(pg_schema_url) == after
    assert set(before) - set(after)  # the deleted article's page, dropped from the store too
    with open_store(settings) as store:
        unchanged = [p for p, ref in store.document_refs().items() if before.get(p) == ref]
        assert unchanged  # pages of other articles were not written again
        assert store.documents_serial() == 2


def test_a_new_version_in_the_same_second_is_dated_a_second_later(
    tmp_path: Path, pg_schema_url: str
) -> None:
    """As a server does for two versions within one second, but once, in the store and the
    file alike, so every host sends the same Last-Modified."""
    site = _pg_site(tmp_path, pg_schema_url)
    _corpus(site / "seeds", 2)
    settings = load_settings(config=site / "feedsvc.toml", env={})
    Publisher(settings).build()
    atom = site / "feeds" / "atom.xml"
    first = atom.stat().st_mtime_ns
    _corpus(site / "seeds", 1, start=3)
    Publisher(settings).build()
    second = atom.stat().st_mtime_ns
    assert second // 10**9 > first // 10**9
    assert _stored(pg_schema_url)["atom.xml"][1] == second


def test_a_store_moved_from_sqlite_gets_every_document_at_its_first_build(
    tmp_path: Path, pg_schema_url: str
) -> None:
    """``migrate-store`` copies no documents (SQLite has none); the first PostgreSQL build,
    though it has nothing to write, records every output of the manifest."""
    site = make_site(tmp_path / "site", site_id=SITE_ID, **SITE)
    _corpus(site / "seeds", 6)
    assert feedsvc(site, "build").returncode == 0
    moved = feedsvc(site, "migrate-store", "--to", pg_schema_url)
    assert moved.returncode == 0, moved.stderr
    before = _tree(site / "feeds")
    built = feedsvc(site, "build", "--store-url", pg_schema_url)
    assert built.returncode == 0, built.stderr
    assert "unchanged" in built.stdout
    assert _tree(site / "feeds") == before
    assert _stored(pg_schema_url) == before


def test_sync_mirrors_the_documents_atomically_and_removes_strays(
    tmp_path: Path, pg_schema_url: str
) -> None:
    site = _pg_site(tmp_path, pg_schema_url)
    _corpus(site / "seeds", 7)
    assert feedsvc(site, "build").returncode == 0
    mirror = tmp_path / "mirror"
    (mirror / "old").mkdir(parents=True)
    (mirror / "old" / "stray.html").write_text("not published")
    done = feedsvc(site, "sync", "--feeds", str(mirror))
    assert done.returncode == 0, done.stderr
    assert _tree(mirror) == _tree(site / "feeds")
    assert "removed" in done.stdout
    again = feedsvc(site, "sync", "--feeds", str(mirror))
    assert " 0 written, 0 removed" in again.stdout, again.stdout
    assert not list((mirror / ".tmp").iterdir())  # no temp file left


def test_sync_watch_follows_each_publish_and_stops_on_sigterm(
    tmp_path: Path, pg_schema_url: str
) -> None:
    site = _pg_site(tmp_path, pg_schema_url)
    _corpus(site / "seeds", 3)
    assert feedsvc(site, "build").returncode == 0
    mirror = tmp_path / "mirror"
    config = str(site / "feedsvc.toml")
    proc = subprocess.Popen(
        [*FEEDSVC, "sync", "--watch", "--feeds", str(mirror), "--config", config],
        cwd=site, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")},
    )  # fmt: skip
    try:
        wait_for(lambda: _tree(mirror) == _tree(site / "feeds"), what="the first round")
        _corpus(site / "seeds", 2, start=4)
        assert feedsvc(site, "build").returncode == 0
        wait_for(lambda: _tree(mirror) == _tree(site / "feeds"), what="the publish mirrored")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert "SIGTERM received, stopping" in out


def test_sync_refuses_paths_outside_its_folder_and_says_what_failed_in_one_line(
    tmp_path: Path, pg_schema_url: str
) -> None:
    from feedsvc.store.postgres import PostgresStore

    site = _pg_site(tmp_path, pg_schema_url)
    _corpus(site / "seeds", 1)
    assert feedsvc(site, "build").returncode == 0
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    done = feedsvc(site, "sync", "--feeds", str(not_a_folder))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "keeps what it had" in done.stderr
    with PostgresStore(pg_schema_url, site_id=SITE_ID) as store, store.transaction():
        store.record_documents([_doc("../escaped.html", b"x", 1)], [])
    done = feedsvc(site, "sync", "--feeds", str(tmp_path / "mirror"))
    assert done.returncode == 1
    assert "leads outside the folder" in done.stderr, done.stderr
    assert not (tmp_path / "escaped.html").exists()


def test_sync_needs_a_postgres_store(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site")
    done = feedsvc(site, "sync", "--feeds", str(tmp_path / "mirror"))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "store_url" in done.stderr


def test_a_publish_wakes_the_mirror_without_polling(tmp_path: Path, pg_schema_url: str) -> None:
    """The poll interval is an hour: only the NOTIFY of the publish can bring the change."""
    from feedsvc.service.sync import Mirror, SyncReport

    site = _pg_site(tmp_path, pg_schema_url)
    _corpus(site / "seeds", 2)
    settings = load_settings(config=site / "feedsvc.toml", env={})
    Publisher(settings).build()
    rounds: list[SyncReport] = []
    errors: list[Exception] = []
    mirror = Mirror(
        settings, tmp_path / "mirror", poll=3600, on_round=rounds.append, on_error=errors.append
    )
    mirror.start()
    try:
        wait_for(lambda: rounds, what="the first round")
        assert _tree(tmp_path / "mirror") == _tree(site / "feeds")
        _corpus(site / "seeds", 1, start=3)
        Publisher(settings).build()
        # the round's files are in place a moment before it reports: wait for both
        wait_for(
            lambda: len(rounds) >= 2 and _tree(tmp_path / "mirror") == _tree(site / "feeds"),
            what="the publish mirrored and its round reported",
        )
        assert len(rounds) == 2
        assert not errors
    finally:
        mirror.stop()


# --- two daemons: a builder and a serve node ---------------------------------------------
ASKS = [
    {},
    {"Accept-Encoding": "gzip"},
]


def _answers(daemon: Daemon, paths: list[str]) -> dict[str, list[tuple[object, ...]]]:
    out: dict[str, list[tuple[object, ...]]] = {}
    for path in paths:
        for ask in ASKS:
            status, headers, body = daemon.get(path, ask)
            names = ("etag", "last-modified", "content-type", "content-encoding")
            out.setdefault(path, []).append((status, body, *(headers.get(n) for n in names)))
    return out


def test_a_serve_node_answers_byte_for_byte_as_the_builder(
    tmp_path: Path, pg_schema_url: str
) -> None:
    site = _pg_site(tmp_path, pg_schema_url)
    _corpus(site / "seeds", 8)
    node = _pg_site(tmp_path, pg_schema_url, "node")  # its own (empty) seeds/ and feeds/
    builder = Daemon(site)
    try:
        builder.served(f"{8:016x}")
        serving = Daemon(node, "--roles", "serve")
        try:
            paths = ["/", "/atom.xml", "/rss.xml", "/feed.json", "/atom.xml.gz", "/feeds.opml"]
            paths += ["/" + p for p in sorted(_tree(site / "feeds")) if "/" in p][:12]
            wait_for(
                lambda: _answers(serving, paths) == _answers(builder, paths),
                what="the serve node answers as the builder",
            )
            # healthy once its first round has reported (its files land a moment before)
            wait_for(lambda: serving.status()["healthy"], what="the serve node healthy")
            assert serving.status()["roles"] == ["serve"]
            # a publish on the builder reaches the serve node, validators and all
            write(site / "seeds" / seed_name(9), seed_text("Spät am Abend.", date="2024-02-20"))
            builder.served(f"{9:016x}")
            serving.served(f"{9:016x}")
            wait_for(
                lambda: _answers(serving, paths) == _answers(builder, paths),
                what="the serve node answers as the builder after the publish",
            )
            _, headers, _ = builder.get("/atom.xml")
            again = serving.get("/atom.xml", {"If-None-Match": str(headers["etag"])})
            assert again[0] == 304
            again = serving.get("/atom.xml", {"If-Modified-Since": str(headers["last-modified"])})
            assert again[0] == 304
            assert serving.stop() == 0
        finally:
            serving.close()
    finally:
        builder.close()


def test_a_builder_without_the_serve_role_builds_and_answers_no_http(
    tmp_path: Path, pg_schema_url: str
) -> None:
    site = make_site(
        tmp_path / "site", store_url=pg_schema_url, site_id=SITE_ID, roles=["ingest", "build"]
    )
    _corpus(site / "seeds", 2)
    builder = Daemon(site, serve=False)
    try:
        wait_for(lambda: builder.logged("not serving HTTP"), what="no HTTP server")
        wait_for(lambda: _stored(pg_schema_url) == _tree(site / "feeds") != {}, what="published")
        assert builder.stop() == 0
    finally:
        builder.close()
    # the serve role, not only --no-serve, decides whether there is an HTTP server
    from feedsvc.service.daemon import Daemon as Running

    settings = load_settings(config=site / "feedsvc.toml", env={})
    assert settings.serve
    assert Running(settings).server is None
    assert Running(settings.model_copy(update={"roles": ROLES})).server is not None


def test_roles_from_the_environment_are_read_and_checked() -> None:
    settings = load_settings(env={"FEEDSVC_ROLES": "serve"})
    assert settings.roles == ("serve",)
    assert load_settings(env={"FEEDSVC_ROLES": "serve, build,ingest"}).roles == (
        "ingest",
        "build",
        "serve",
    )
    from feedsvc.errors import ConfigError
    from feedsvc.service.roles import check_roles

    with pytest.raises(ConfigError, match="environment FEEDSVC_ROLES: config key 'roles"):
        load_settings(env={"FEEDSVC_ROLES": "serve,cook"})
    with pytest.raises(ConfigError, match="needs a shared store"):
        check_roles(settings)


def test_roles_other_than_all_need_a_postgres_store(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site")
    done = feedsvc(site, "run", "--roles", "serve", "--port", "0")
    assert done.returncode == 1
    assert "set store_url" in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1
    bad = feedsvc(site, "run", "--roles", "serve,cook", "--port", "0")
    assert bad.returncode == 1
    assert "'ingest', 'build' or 'serve'" in bad.stderr, bad.stderr


def test_roles_that_make_no_sense_are_refused_with_what_is_possible(
    tmp_path: Path, pg_schema_url: str
) -> None:
    site = _pg_site(tmp_path, pg_schema_url)
    done = feedsvc(site, "run", "--roles", "ingest,serve", "--port", "0")
    assert done.returncode == 1
    assert "is not possible" in done.stderr, done.stderr
    assert "ingest,build" in done.stderr


def test_a_mirror_catches_up_after_the_server_restarts(
    tmp_path: Path, pg_server: PgServer, pg_schema_url: str
) -> None:
    from feedsvc.service.sync import Mirror

    site = _pg_site(tmp_path, pg_schema_url)
    _corpus(site / "seeds", 2)
    settings = load_settings(config=site / "feedsvc.toml", env={})
    Publisher(settings).build()
    errors: list[Exception] = []
    mirror = Mirror(settings, tmp_path / "mirror", poll=3600, on_error=errors.append)
    mirror.start()
    try:
        wait_for(lambda: _tree(tmp_path / "mirror") == _tree(site / "feeds"), what="mirrored")
        pg_server.restart()
        _corpus(site / "seeds", 1, start=3)
        Publisher(settings).build()
        wait_for(
            lambda: _tree(tmp_path / "mirror") == _tree(site / "feeds"),
            what="the publish after the restart mirrored",
        )
        wait_for(lambda: not mirror.problems(), what="the mirror healthy again")
    finally:
        mirror.stop()
    assert errors  # the lost connection was noticed, reported and retried
    assert "lost the wake-up connection" in str(errors[0]) or "connect" in str(errors[0])


def test_a_store_error_in_a_mirror_is_retried(tmp_path: Path) -> None:
    """An unreachable server: the mirror reports it and keeps trying (no thread dies)."""
    from feedsvc.service.sync import Mirror

    settings = load_settings(
        env={},
        overrides={"store_url": "postgresql://feedsvc:secret@127.0.0.1:1/none", "site_id": "x"},
    )
    errors: list[Exception] = []
    seen = threading.Event()

    def failed(e: Exception) -> None:
        errors.append(e)
        if len(errors) >= 2:
            seen.set()

    mirror = Mirror(settings, tmp_path / "mirror", on_error=failed)
    mirror.start()
    try:
        wait_for(seen.is_set, what="two failed attempts")
    finally:
        mirror.stop()
    assert all(isinstance(e, StoreError) and "secret" not in str(e) for e in errors)
    assert mirror.problems()[0].startswith("sync failed: postgresql://feedsvc@127.0.0.1:1/none")
