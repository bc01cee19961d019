"""Page and archive sizes on the real corpus as a reader's site with 41 feeds (issue #11).

Mostly not a timing: it builds the de-news corpus split into its nine categories, with
``category_feeds`` and 31 filtered ``[[feeds]]`` (``tests/readers_site.py``), then prints: the
number of feeds, article pages (count, mean / largest size, ``<link rel="alternate">`` per
page), the index, the site's HTML total, the HTML archive (``pages/``), the archive pages per
format (count, largest, how many over ``max_feed_bytes``, how many without a ``.gz``), and
the first build's seconds (one run: a rough figure).

Usage: ``.venv/bin/python bench/pages_bench.py [--max-feed-bytes 61440] [--json]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from feedsvc.build.publisher import Publisher  # noqa: E402
from feedsvc.config import load_settings  # noqa: E402
from tests.readers_site import make_corpus_site  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "de-news.tar.gz"


def measure(feeds: Path, budget: int) -> dict[str, object]:
    pages = sorted((feeds / "articles").glob("*.html"))
    sizes = [p.stat().st_size for p in pages]
    alternates = [p.read_text(encoding="utf-8").count('rel="alternate"') for p in pages]
    index = feeds / "index.html"
    archives: dict[str, dict[str, object]] = {}
    for suffix in ("xml", "rss", "json"):
        found = list(feeds.rglob(f"archive/*.{suffix}"))
        archives[suffix] = {
            "pages": len(found),
            "largest": max((p.stat().st_size for p in found), default=0),
            "over_budget": sum(p.stat().st_size > budget for p in found),
            "without_gz": sum(not p.with_name(p.name + ".gz").exists() for p in found),
        }
    html_pages = sorted((feeds / "pages").glob("*.html"))
    return {
        "html_archive_pages": len(html_pages),
        "html_archive_max_bytes": max((p.stat().st_size for p in html_pages), default=0),
        "feeds": len(list(feeds.rglob("atom.xml"))),
        "article_pages": len(pages),
        "page_mean_bytes": round(statistics.mean(sizes)),
        "page_max_bytes": max(sizes),
        "alternates_per_page_mean": round(statistics.mean(alternates), 1),
        "alternates_per_page_max": max(alternates),
        "index_bytes": index.stat().st_size if index.exists() else 0,
        "html_total_bytes": sum(sizes) + (index.stat().st_size if index.exists() else 0),
        "archives": archives,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-feed-bytes", type=int, default=61440)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with tarfile.open(CORPUS) as tar:
            tar.extractall(root / "corpus", filter="data")
        site = make_corpus_site(
            root / "site", root / "corpus" / "de-news", max_feed_bytes=args.max_feed_bytes
        )
        settings = load_settings(config=site / "feedsvc.toml", env={})
        started = time.perf_counter()
        Publisher(settings).build()
        seconds = time.perf_counter() - started
        result = measure(site / "feeds", args.max_feed_bytes)
        result["first_build_seconds"] = round(seconds, 1)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, value in result.items():
        print(f"{name:28} {value}")


if __name__ == "__main__":
    main()
