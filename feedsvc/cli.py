"""The command line: a thin shell that loads settings, calls one library function, reports."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import click

from . import __version__
from .config import Settings, load_settings
from .core import Publisher
from .errors import FeedsvcError

PROGRESS_MIN_FILES = 200


def _common(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options every command takes: where the config, seeds and feeds are; how chatty to be."""
    for decorator in reversed(
        [
            click.option(
                "--config",
                "config",
                type=click.Path(path_type=Path),
                help="Config file or directory [default: config/feedsvc.toml if present].",
            ),
            click.option("--seeds", type=click.Path(path_type=Path), help="Seeds directory."),
            click.option("--feeds", type=click.Path(path_type=Path), help="Output directory."),
            click.option("-q", "--quiet", is_flag=True, help="Print errors only."),
            click.option("-v", "--verbose", is_flag=True, help="Also print warnings and details."),
        ]
    ):
        f = decorator(f)
    return f


def _settings(config: Path | None, seeds: Path | None, feeds: Path | None) -> Settings:
    return load_settings(config=config, overrides={"seeds_dir": seeds, "feeds_dir": feeds})


def _progress(publisher: Publisher, quiet: bool) -> AbstractContextManager[Any]:
    """A progress bar on stderr for long runs, only when a person is watching."""
    if quiet or not sys.stderr.isatty():
        return nullcontext(None)
    total = len(publisher.list_seeds())
    if total < PROGRESS_MIN_FILES:
        return nullcontext(None)
    return click.progressbar(length=total, label="reading seeds", file=sys.stderr)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Example: feedsvc build --config config/",
)
@click.version_option(__version__, prog_name="feedsvc")
def main() -> None:
    """Publish plain-text news seed files as Atom 1.0 and RSS 2.0 feeds."""


@main.command()
@_common
def build(
    config: Path | None, seeds: Path | None, feeds: Path | None, quiet: bool, verbose: bool
) -> None:
    """Read every seed, update the store and write the feeds once (for cron and CI).

    Prints one summary line and each rejected seed as path:line: reason. Feeds are still
    written from the valid seeds; the exit status is 1 when any seed was rejected.

    \b
    Example:
      feedsvc build --config config/
      feedsvc build --seeds /srv/news/seeds --feeds /var/www/feeds
    """
    try:
        publisher = Publisher(_settings(config, seeds, feeds))
        with _progress(publisher, quiet) as bar:
            report = publisher.build(on_file=(lambda _: bar.update(1)) if bar else None)
    except FeedsvcError as e:
        raise click.ClickException(str(e)) from e
    if verbose:
        for warning in report.warnings:
            click.echo(f"warning: {warning}", err=True)
    for error in report.errors:
        click.echo(str(error), err=True)
    if not quiet:
        outputs = " ".join(str(p) for p in report.outputs)
        state = "" if report.written else " (unchanged)"
        click.echo(
            f"{report.total} articles ({report.new} new, {report.changed} changed, "
            f"{report.deleted} deleted, {len(report.errors)} errors) → {outputs}{state} "
            f"in {report.seconds:.2f} s"
        )
    sys.exit(1 if report.errors else 0)


@main.command()
@_common
def check(
    config: Path | None, seeds: Path | None, feeds: Path | None, quiet: bool, verbose: bool
) -> None:
    """Validate every seed without writing anything; exit 1 on any error.

    \b
    Example:
      feedsvc check --seeds seeds/
    """
    try:
        publisher = Publisher(_settings(config, seeds, feeds))
        with _progress(publisher, quiet) as bar:
            errors = publisher.check(on_file=(lambda _: bar.update(1)) if bar else None)
        count = len(publisher.list_seeds())
    except FeedsvcError as e:
        raise click.ClickException(str(e)) from e
    for error in errors:
        click.echo(str(error), err=True)
    if not quiet:
        click.echo(f"{count} seeds checked, {len(errors)} errors")
    sys.exit(1 if errors else 0)
