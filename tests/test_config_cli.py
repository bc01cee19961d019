"""Config loading, the CLI surface, and the public API."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import feedsvc
from feedsvc import ConfigError, load_settings
from feedsvc.cli import main

from .conftest import REPO, SAMPLE, Project


def test_bundled_config_loads_and_resolves_paths_beside_it() -> None:
    settings = load_settings(config=REPO / "config")
    assert settings.seeds_dir == REPO / "seeds"
    assert settings.feeds_dir == REPO / "feeds"
    assert settings.state_dir == REPO / "config" / ".feedsvc"
    assert settings.max_items == 50
    assert settings.language == "de-AT"


def test_every_setting_is_documented_in_the_bundled_config() -> None:
    text = (REPO / "config" / "feedsvc.toml").read_text(encoding="utf-8")
    for key in feedsvc.Settings.model_fields:
        assert re.search(rf"^#? ?{key} = ", text, re.M), f"{key} missing from config/feedsvc.toml"


def test_environment_overrides_toml_and_flags_override_environment(project: Project) -> None:
    env = {"FEEDSVC_MAX_ITEMS": "7", "FEEDSVC_TITLE": "Aus der Umgebung"}
    settings = load_settings(config=project.config, env=env)
    assert settings.max_items == 7
    assert settings.title == "Aus der Umgebung"
    flagged = load_settings(config=project.config, env=env, overrides={"max_items": 3})
    assert flagged.max_items == 3


@pytest.mark.parametrize(
    ("toml", "key", "reason"),
    [
        ("max_items = 0", "max_items", "greater than or equal to 1"),
        ('max_items = "viele"', "max_items", "valid integer"),
        ('base_url = "ftp://x"', "base_url", "absolute http:// or https:// URL"),
        ('timezone = "Mars/Olympus"', "timezone", "IANA time zone"),
        ("colour = 1", "colour", "unknown key (allowed: archive_page_size, atom_file"),
        ("title = ", "config", "not valid TOML"),
        ("[title]\nx = 'y'", "title", "must be a value, not a table"),
    ],
)
def test_bad_config_names_the_key_and_what_is_allowed(
    tmp_path: Path, toml: str, key: str, reason: str
) -> None:
    path = tmp_path / "feedsvc.toml"
    path.write_text(toml + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(config=path, env={})
    assert info.value.key == key
    assert reason in str(info.value)


def test_bad_env_value_is_blamed_on_the_variable() -> None:
    with pytest.raises(ConfigError, match="environment FEEDSVC_MAX_ITEMS: config key 'max_items'"):
        load_settings(config=REPO / "config", env={"FEEDSVC_MAX_ITEMS": "-1"})


def test_cli_prints_config_errors_as_one_line(project: Project) -> None:
    with project.config.open("a") as f:
        f.write("language = 'deutsch!'\n")
    result = project.build()
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "config key 'language'" in result.output


def test_every_command_has_help_with_an_example_and_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    runner = CliRunner()
    assert isinstance(main, click.Group)
    for name in main.commands:
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0
        assert "Example" in result.output, name
        assert f"feedsvc {name}" in readme, f"'feedsvc {name}' is not documented in README.md"
    top = runner.invoke(main, ["--help"])
    assert "Example: feedsvc build --config config/" in top.output


def test_version_and_console_script() -> None:
    exe = Path(sys.executable).with_name("feedsvc")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"feedsvc, version {feedsvc.__version__}"


def test_check_lists_every_error_and_writes_nothing(project: Project) -> None:
    shutil.copy(SAMPLE, project.seeds)
    (project.seeds / "001_00000000000000aa.txt").write_bytes(b"")
    (project.seeds / "002_00000000000000bb.txt").write_bytes(b" date 2024-11 Ok.\n\nText\xff.")
    result = CliRunner().invoke(main, ["check", "--config", str(project.config)])
    assert result.exit_code == 1
    assert "001_00000000000000aa.txt:1: empty file" in result.output
    assert (
        "002_00000000000000bb.txt:3: invalid UTF-8 at byte offset 23 (byte 0xff)" in result.output
    )
    assert "3 seeds checked, 2 errors" in result.output
    assert not list(project.feeds.iterdir())
    assert not project.state.exists()


def test_quiet_and_verbose(project: Project) -> None:
    project.write_seed("001_00000000000000aa.txt", " date 2024-11 Ok.\n\nText mit \x07 Glocke.")
    quiet = project.build("-q")
    assert quiet.exit_code == 0
    assert quiet.output == ""
    (project.seeds / "001_00000000000000aa.txt").write_text(" date 2024-11 Ok.\n\nA\x07 B.")
    verbose = project.build("-v")
    assert "warning:" in verbose.output
    assert "removed 1 character(s) that XML forbids" in verbose.output


def test_public_api_is_one_sorted_import() -> None:
    assert feedsvc.__all__ == sorted(feedsvc.__all__)
    for name in feedsvc.__all__:
        assert getattr(feedsvc, name) is not None
