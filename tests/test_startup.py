"""Start-up stays light (#9): ``feedsvc --version`` and ``--help`` load click, not the library.

What a command line loads is checked in a fresh interpreter (``sys.modules``), not timed: the
figures are in ``bench/cold_bench.py --jobs python,version,help``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

# Loaded only by the commands that use them (or by the library behind the package face).
HEAVY = (
    "pydantic",
    "pydantic_core",
    "jinja2",
    "markupsafe",
    "feedgen",
    "lxml",
    "lingua",
    "feedparser",
    "werkzeug",
    "waitress",
    "cheroot",
    "apscheduler",
    "watchdog",
    "sqlite3",
    "urllib.request",
    "feedsvc.config",
    "feedsvc.models",
    "feedsvc.store",
    "feedsvc.build",
)


def _loaded(code: str) -> list[str]:
    """The HEAVY modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport sys\nprint('loaded:', *(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    last = out.stdout.splitlines()[-1]  # after what the command printed
    assert last.startswith("loaded:"), out.stdout
    return last.split()[1:]


@pytest.mark.parametrize(
    "code",
    [
        "import feedsvc",
        "import feedsvc.cli",
        "from feedsvc import __version__",
        "import runpy, sys\nsys.argv = ['feedsvc', '--help']\n"
        "try:\n    runpy.run_module('feedsvc', run_name='__main__')\nexcept SystemExit:\n    pass",
        "import runpy, sys\nsys.argv = ['feedsvc', '--version']\n"
        "try:\n    runpy.run_module('feedsvc', run_name='__main__')\nexcept SystemExit:\n    pass",
    ],
    ids=["package", "cli", "version-attr", "--help", "--version"],
)
def test_the_command_line_loads_no_heavy_module(code: str) -> None:
    assert _loaded(code) == []


def test_the_package_face_still_offers_every_name() -> None:
    """The lazy names (PEP 562) are the same objects as in their homes, and in ``dir()``."""
    import feedsvc
    from feedsvc.build.publisher import Publisher
    from feedsvc.config import Settings
    from feedsvc.errors import FeedsvcError

    assert feedsvc.Publisher is Publisher
    assert feedsvc.Settings is Settings
    assert feedsvc.FeedsvcError is FeedsvcError
    for name in feedsvc.__all__:
        assert getattr(feedsvc, name) is not None, name
    assert set(feedsvc.__all__) <= set(dir(feedsvc))
    with pytest.raises(AttributeError):
        _ = feedsvc.no_such_name  # type: ignore[attr-defined]


def test_a_command_loads_what_it_uses() -> None:
    """The probe can see a heavy module: ``build --help`` is light, a library import is not."""
    assert "pydantic" in _loaded("import feedsvc\nfeedsvc.Settings")
