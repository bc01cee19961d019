"""A cold build holds nothing per written file beyond its name (#9, peak RSS at 100k).

A ``Path`` per written file, kept in the build report and in the writer's list of touched
files, was a tenth of a 100,000-article cold build's peak RSS. The report keeps the names
(the strings its stamps and ``WrittenFile`` records hold anyway) and makes a ``Path`` only
when one is asked for: what callers see is unchanged.
"""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from pathlib import Path, PurePath

from feedsvc import Publisher, load_settings
from feedsvc.build.outputs import WrittenFile

from .conftest import seed_text

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ARTICLES = 150


def _live_paths() -> int:
    gc.collect()
    return sum(isinstance(o, PurePath) for o in gc.get_objects())


def test_a_cold_build_keeps_no_path_per_written_file(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for i in range(ARTICLES):
        body = f"Erster Absatz {i}.\n\nZweiter Absatz {i}."
        text = seed_text(f"Meldung {i}.", date=f"2024-{i % 12 + 1:02d}", body=body)
        (seeds / f"{i:03d}_{i + 1:016x}.txt").write_text(text)
    settings = load_settings(
        env={},
        overrides={
            "seeds_dir": seeds,
            "feeds_dir": tmp_path / "feeds",
            "state_dir": tmp_path / "state",
            "detect_language": False,
        },
    )
    publisher = Publisher(settings, clock=lambda: NOW)
    before = _live_paths()
    report = publisher.build()
    assert report.new == ARTICLES
    pages = [f for f in report.files if f.kind == "article"]
    assert len(pages) == ARTICLES
    # report + writer: a Path per page was 2 x ARTICLES; a few stay (settings, outputs)
    assert _live_paths() - before < ARTICLES // 3
    # and they are still there when asked for, as before
    written = list(report.written)
    assert len(report.written) == len(written) > ARTICLES
    assert all(isinstance(p, Path) and p.is_file() for p in written)
    assert report.written[:3] == report.outputs
    assert report.written[-1] == written[-1]
    assert written == [settings.feeds_dir / f.path for f in report.files if f.kind != "gzip"]
    assert WrittenFile(f"articles/{pages[0].path.rpartition('/')[2]}", "article") == pages[0]
    assert len(publisher.writer.touched) == len(report.files)
