"""The shared corpus as a reader's site: category folders and 41 feeds (issue #11).

The 1,014 seeds are split into the nine 10kGNAD categories (``Etat``, ``Inland``, ...), matched
by the hash in each seed's name against the source CSV beside the corpus; the config turns on
``category_feeds`` and adds ``[[feeds]]`` with filters (two years, 24 months, two languages,
three keyword feeds), so the site has the main feed + 9 + 31 = 41 feeds, like the site that
filed #11. Used by the tests and by ``bench/pages_bench.py``.
"""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
from pathlib import Path

CSV_NAME = "10kGNAD-test.csv"
BASE_URL = "https://news.example.org/"
SRC = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "src"


def categories(corpus_src: Path) -> dict[str, str]:
    """The category of each seed by the 16 hex digits in its name."""
    found: dict[str, str] = {}
    with (corpus_src / CSV_NAME).open(encoding="utf-8", newline="") as handle:
        for label, text in csv.reader(handle, delimiter=";", quotechar="'"):
            normal = re.sub(r"\s+", " ", text).strip()
            found[hashlib.sha256(normal.encode("utf-8")).hexdigest()[:16]] = label
    return found


def _feeds_toml() -> str:
    tables = [
        '[[feeds]]\nname = "all"\n',
        '[[feeds]]\nname = "english"\nlanguages = ["en"]\n',
        '[[feeds]]\nname = "french"\nlanguages = ["fr"]\n',
        '[[feeds]]\nname = "ukraine"\nkeywords = ["Ukraine", "Kiew"]\n',
        '[[feeds]]\nname = "fussball"\nkeywords = ["Fußball", "Bundesliga"]\n',
        '[[feeds]]\nname = "wien"\nkeywords = ["Wien"]\n',
    ]
    for year in (2023, 2024):
        tables.append(f'[[feeds]]\nname = "{year}"\nsince = {year}-01-01\nuntil = {year}-12-31\n')
        for month in range(1, 13):
            last = 28 if month == 2 else 30 if month in (4, 6, 9, 11) else 31
            tables.append(
                f'[[feeds]]\nname = "m{year}-{month:02d}"\n'
                f"since = {year}-{month:02d}-01\nuntil = {year}-{month:02d}-{last}\n"
            )
    return "\n".join(tables)


def make_corpus_site(root: Path, corpus_dir: Path, **settings: object) -> Path:
    """A site at ``root`` whose seeds/ are the corpus in category folders; returns ``root``."""
    labels = categories(SRC)
    seeds = root / "seeds"
    for path in sorted(corpus_dir.glob("*.txt")):
        label = labels[path.stem.split("_")[1]]
        (seeds / label).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, seeds / label / path.name)
    lines = {
        "title": "Nachrichten",
        "base_url": BASE_URL,
        "seeds_dir": "seeds",
        "feeds_dir": "feeds",
        "state_dir": "state",
        "category_feeds": True,
        **settings,
    }
    top = "".join(f"{k} = {_toml(v)}\n" for k, v in lines.items())
    (root / "feedsvc.toml").write_text(top + "\n" + _feeds_toml(), encoding="utf-8")
    return root


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
