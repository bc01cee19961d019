"""contrib/nginx-feedsvc.conf in a real nginx on 127.0.0.1, beside the built-in server (#7).

Skips without nginx (Debian: ``apt-get install nginx``), but fails in CI, where the Makefile
installs it. nginx runs as our child with a temp prefix and is stopped at the end.
"""

from __future__ import annotations

import gzip
import http.client
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from feedsvc.build.outputs import ATOM_TYPE, JSON_FEED_TYPE, RSS_TYPE
from feedsvc.service.serve import (
    FeedApp,
    HTTPServer,
    ServeOptions,
)
from tests.nginx_site import Nginx, require_nginx

ATOM = b'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
SECRET = b"root:x:0:0:the secret\n"


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def get(port: int, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


@dataclass
class Sites:
    feeds: Path
    nginx: int
    feedsvc: int


def _write_feeds(feeds: Path, secret: Path, store: Path) -> None:
    atom = ATOM + b"<title>Nachrichten</title>" * 200 + b"</feed>\n"
    rss = (
        b'<?xml version="1.0"?><rss version="2.0"><channel>'
        + b"<item/>" * 300
        + b"</channel></rss>"
    )
    json_feed = b'{"version": "https://jsonfeed.org/version/1.1", "items": []}' + b" " * 300
    for rel, data in (("atom.xml", atom), ("rss.xml", rss), ("feed.json", json_feed)):
        (feeds / rel).write_bytes(data)
        (feeds / (rel + ".gz")).write_bytes(gzip.compress(data, mtime=0))
    (feeds / "archive").mkdir()
    (feeds / "archive" / "0.xml").write_bytes(atom)
    (feeds / "archive" / "0.rss").write_bytes(rss)  # archive pages in every format (#11)
    (feeds / "archive" / "0.json").write_bytes(json_feed)
    (feeds / "pages").mkdir()
    (feeds / "pages" / "1.html").write_bytes(b"<!DOCTYPE html><title>page 1</title>")
    (feeds / "articles").mkdir()
    (feeds / "articles" / "0123456789abcdef.html").write_bytes(b"<!DOCTYPE html><title>a</title>")
    (feeds / "index.html").write_bytes(b"<!DOCTYPE html><title>index</title>")
    (feeds / ".atom.xml.1234.tmp").write_bytes(b"half")
    # What an attacker (or a mistake) puts in feeds/: links out to secrets and the store.
    (feeds / "passwd.xml").symlink_to(secret)
    (feeds / "articles" / "fedcba9876543210.html").symlink_to(secret)
    (feeds / "category").mkdir()
    (feeds / "category" / "x").symlink_to(store)


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    binary = require_nginx()
    root = tmp_path_factory.mktemp("nginx")
    secret = root / "passwd"
    secret.write_bytes(SECRET)
    store = root / "state"
    store.mkdir()
    (store / "atom.xml").write_bytes(SECRET)  # reachable as /category/x/atom.xml via the link
    feeds = root / "feeds"
    feeds.mkdir()
    _write_feeds(feeds, secret, store)
    types = {"atom.xml": ATOM_TYPE, "rss.xml": RSS_TYPE, "feed.json": JSON_FEED_TYPE}
    app = FeedApp(
        ServeOptions(root=feeds, content_types=types),
        status=lambda: (True, {"reason": "ok: 3 builds", "pid": 4711}),
    )
    server = HTTPServer(app, host="127.0.0.1", port=0)
    _, port = server.start()
    nginx = Nginx(binary, root / "nginx", feeds, upstream=port)
    try:
        yield Sites(feeds, nginx.port, port)
    finally:
        log = nginx.stop()
        server.stop()
        assert "[emerg]" not in log, log


@pytest.mark.parametrize(
    "path", ["/passwd.xml", "/articles/fedcba9876543210.html", "/category/x/atom.xml"]
)
def test_nginx_serves_no_symlink_out_of_feeds(sites: Sites, path: str) -> None:
    reply = get(sites.nginx, path)
    assert reply.status in (403, 404), (path, reply.status)
    assert b"secret" not in reply.body
    assert get(sites.feedsvc, path).status == 404  # the built-in server agrees


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/atom.xml", ATOM_TYPE),
        ("/rss.xml", RSS_TYPE),
        ("/feed.json", JSON_FEED_TYPE),
        ("/archive/0.xml", ATOM_TYPE),
        ("/archive/0.rss", RSS_TYPE),
        ("/archive/0.json", JSON_FEED_TYPE),
        ("/pages/1.html", "text/html"),
        ("/articles/0123456789abcdef.html", "text/html"),
        ("/", "text/html"),
    ],
)
def test_nginx_and_feedsvc_serve_the_same_bytes_with_the_same_types(
    sites: Sites, path: str, content_type: str
) -> None:
    ours, theirs = get(sites.feedsvc, path), get(sites.nginx, path)
    assert ours.status == theirs.status == 200
    assert theirs.body == ours.body
    assert theirs.headers["Content-Type"].split(";")[0] == content_type.split(";")[0]
    assert ours.headers["Content-Type"].split(";")[0] == content_type.split(";")[0]
    assert theirs.headers["Cache-Control"] == "max-age=60"


@pytest.mark.parametrize("name", ["atom.xml", "rss.xml", "feed.json"])
def test_nginx_serves_the_builds_gz_and_the_gz_by_name_as_the_feed(sites: Sites, name: str) -> None:
    packed = (sites.feeds / (name + ".gz")).read_bytes()
    for port in (sites.nginx, sites.feedsvc):
        negotiated = get(port, "/" + name, headers={"Accept-Encoding": "gzip"})
        assert negotiated.headers["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in negotiated.headers["Vary"]
        assert negotiated.body == packed, port  # the build's file, not gzipped again
        by_name = get(port, f"/{name}.gz")
        assert by_name.status == 200
        assert by_name.headers["Content-Encoding"] == "gzip"
        plain = get(port, "/" + name)
        assert by_name.headers["Content-Type"] == plain.headers["Content-Type"], port
        assert by_name.body == packed


def test_nginx_etag_and_last_modified_give_304_but_a_future_date_does_not(sites: Sites) -> None:
    for port in (sites.nginx, sites.feedsvc):
        first = get(port, "/atom.xml")
        etag = get(port, "/atom.xml", headers={"If-None-Match": first.headers["ETag"]})
        assert etag.status == 304, port
        since = {"If-Modified-Since": first.headers["Last-Modified"]}
        assert get(port, "/atom.xml", headers=since).status == 304, port
        future = format_datetime(datetime.now(UTC) + timedelta(days=2), usegmt=True)
        assert get(port, "/atom.xml", headers={"If-Modified-Since": future}).status == 200, port


@pytest.mark.parametrize("path", ["/.atom.xml.1234.tmp", "/missing.xml", "/archive/", "/state"])
def test_nginx_lists_nothing_and_hides_temp_files(sites: Sites, path: str) -> None:
    assert get(sites.nginx, path).status == 404


def test_nginx_allows_only_get_and_head(sites: Sites) -> None:
    assert get(sites.nginx, "/atom.xml", method="POST").status == 405
    head = get(sites.nginx, "/atom.xml", method="HEAD")
    assert head.status == 200
    assert head.body == b""


def test_through_nginx_healthz_is_minimal_and_status_is_not_found(sites: Sites) -> None:
    health = get(sites.nginx, "/healthz")
    assert health.status == 200
    assert health.body == b"ok\n"  # not the reason the daemon gives its own host
    assert get(sites.nginx, "/status").status == 404
    local = get(sites.feedsvc, "/healthz")
    assert local.body == b"ok: 3 builds\n"
