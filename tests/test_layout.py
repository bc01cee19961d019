"""The package's floor plan holds (#8): imports go down the layers, one home per convention.

Parsed with ``ast`` from the source, so a violation is caught without running anything.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import feedsvc

PACKAGE = Path(feedsvc.__file__).resolve().parent
REPO = PACKAGE.parent

# Layers from the bottom up: a module may import its own layer and those below, never above.
# The helpers (``_*.py``, errors, models, config, seeds, _version) form the floor.
LAYERS = ["floor", "render", "store", "build", "service", "importer", "cli"]
# Who may import whom beyond the order: render and store are side by side (neither sees the
# other), so both sit below build.
FORBIDDEN = {
    "floor": {"render", "store", "build", "service", "importer", "cli"},
    "render": {"store", "build", "service", "importer", "cli"},
    "store": {"render", "build", "service", "importer", "cli"},
    "build": {"service", "importer", "cli"},
    "service": {"importer", "cli"},
    "importer": {"service", "cli"},
    "cli": set(),
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) < 2:
        return "face"
    head = parts[1]
    if head in ("render", "store", "build", "service", "importer", "cli"):
        return head
    if head == "__main__":
        return "cli"
    return "floor"


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every module ``path`` imports, absolute, with its line (``from . import x`` → ``pkg``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _name(path) if path.name == "__init__.py" else _name(path).rpartition(".")[0]
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            out.append((target, node.lineno))
    return out


def test_only_the_store_imports_sqlite3() -> None:
    offenders = [
        f"{_name(p)}:{line}"
        for p in _modules()
        for target, line in _imports(p)
        if target.split(".")[0] == "sqlite3" and not _name(p).startswith("feedsvc.store")
    ]
    assert offenders == []


def test_no_module_imports_the_package_face() -> None:
    """``from . import __version__`` hid two import cycles; the version is in ``_version``."""
    offenders = [
        f"{_name(p)}:{line}"
        for p in _modules()
        if p != PACKAGE / "__init__.py"
        for target, line in _imports(p)
        if target == "feedsvc"
    ]
    assert offenders == []


def test_imports_only_go_down_the_layers() -> None:
    offenders = []
    for path in _modules():
        module = _name(path)
        layer = _layer(module)
        if layer == "face":
            continue
        for target, line in _imports(path):
            if not target.startswith("feedsvc."):
                continue
            if _layer(target) in FORBIDDEN[layer]:
                offenders.append(f"{module}:{line} imports {target}")
    assert offenders == []


def test_the_writer_never_touches_the_store() -> None:
    """After the plan nothing writes the store: ``outputs`` does not even import it."""
    imported = {t for t, _ in _imports(PACKAGE / "build" / "outputs.py")}
    assert not any(t.startswith("feedsvc.store") for t in imported), imported


STORE_WRITES = re.compile(
    r"\bstore\.(set_\w+|put_\w+|delete_\w+|retire|forget|adopt\w*|confirm_adopted|"
    r"clear_members|drop_members|record_outputs|record_documents|replace_entry_id|"
    r"force_rerender|inbox_put|inbox_drop)\("
)


def test_store_writes_happen_in_the_ledger_and_the_plan_only() -> None:
    """And the publisher's one step after the write (manifest, fingerprints), the importer,
    and an ingest host's report of its seeds (#10: the inbox and its own meta, no ledger)."""
    allowed = {
        "feedsvc.build.ledger",
        "feedsvc.build.plan",
        "feedsvc.importer",
        "feedsvc.build.ingest",
    }
    writes: dict[str, list[str]] = {}
    for path in _modules():
        module = _name(path)
        if module.startswith("feedsvc.store"):
            continue
        for match in STORE_WRITES.finditer(path.read_text(encoding="utf-8")):
            writes.setdefault(module, []).append(match.group(1))
    publisher = writes.pop("feedsvc.build.publisher", [])
    assert sorted(set(publisher)) == ["record_documents", "record_outputs", "set_meta"]
    assert set(writes) <= allowed, writes


@pytest.mark.parametrize(
    ("name", "home"),
    [
        ("ATOM_TYPE", "feedsvc/build/outputs.py"),
        ("RSS_TYPE", "feedsvc/build/outputs.py"),
        ("JSON_FEED_TYPE", "feedsvc/build/outputs.py"),
        ("MEDIA_TYPES", "feedsvc/models.py"),
        ("INDEX_FILE", "feedsvc/build/outputs.py"),
        ("GZIP_LEVEL", "feedsvc/build/outputs.py"),
        ("GZIP_SUFFIX", "feedsvc/build/outputs.py"),
        ("STORE_FILE", "feedsvc/store/sqlite.py"),
        ("LOCK_FILE", "feedsvc/_lock.py"),
        ("DAEMON_LOCK", "feedsvc/_lock.py"),
        ("PARSER_VERSION", "feedsvc/build/fingerprints.py"),
        ("__version__", "feedsvc/_version.py"),
    ],
)
def test_one_home_per_convention(name: str, home: str) -> None:
    """Each convention is assigned in exactly one module; everyone else imports it."""
    homes = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                homes.append(path.relative_to(REPO).as_posix())
    assert homes == [home]


def test_no_file_names_of_the_state_dir_outside_their_homes() -> None:
    literals = {'"feedsvc.sqlite3"': "feedsvc/store/sqlite.py", '"daemon.lock"': "feedsvc/_lock.py"}
    for literal, home in literals.items():
        found = [
            p.relative_to(REPO).as_posix()
            for p in _modules()
            if literal in p.read_text(encoding="utf-8")
        ]
        assert found == [home], literal


def test_python_dash_m_feedsvc_is_the_cli() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "feedsvc", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"feedsvc, version {feedsvc.__version__}"
    help_text = subprocess.run(
        [sys.executable, "-m", "feedsvc", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "Usage: feedsvc" in help_text


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_clean_removes_every_output_and_keeps_the_tracked_files(tmp_path: Path) -> None:
    """A copy of the Makefile in a throw-away tree: feeds/, state dirs and caches go."""
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    outputs = [
        "feeds/atom.xml",
        "feeds/atom.xml.gz",
        "feeds/feed.json",
        "feeds/index.html",
        "feeds/articles/0123456789abcdef.html",
        "feeds/archive/0.xml",
        "feeds/category/sport/atom.xml",
        "feeds/politik/rss.xml",
        "feeds/.tmp/.atom.xml.x.tmp",
        "config/.feedsvc/feedsvc.sqlite3",
        ".feedsvc/lock",
        ".mypy_cache/x",
    ]
    kept = ["feeds/.gitkeep", "seeds/000_98f79bfdbc50e318.txt", "config/feedsvc.toml"]
    for rel in outputs + kept:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    subprocess.run(["make", "-s", "-C", str(tmp_path), "clean"], check=True, timeout=60)
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert left == sorted(["Makefile", *kept])


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_lint_runs_ruff_and_mypy() -> None:
    dry = subprocess.run(
        ["make", "-n", "-C", str(REPO), "lint", "test"], capture_output=True, text=True
    ).stdout
    for tool in ("ruff check", "ruff format --check", "mypy", "pytest"):
        assert tool in dry, tool
    assert dry.index("mypy") < dry.index("pytest"), "make test lints first"


def test_a_lock_error_carries_the_holders_pid(tmp_path: Path) -> None:
    """The pid is read once, by ``_lock``, and handed on as ``LockError.holder``."""
    from feedsvc._lock import DAEMON_LOCK, daemon_lock
    from feedsvc.errors import LockError

    (tmp_path / DAEMON_LOCK).write_text("")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(tmp_path / DAEMON_LOCK)!r}, os.O_RDWR)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "os.write(fd, str(os.getpid()).encode())\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockError) as caught, daemon_lock(tmp_path):
            pass
        assert caught.value.holder == str(holder.pid)
        assert f"another 'feedsvc run' (pid {holder.pid})" in str(caught.value)
    finally:
        assert holder.stdin is not None
        holder.communicate(timeout=10)  # closes stdin (the holder ends) and both pipes
