"""The command line: a thin shell that loads settings, calls one library function, reports.

The library is imported inside the commands, so ``--version`` and ``--help`` load click only.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from ._version import __version__
from .errors import FeedsvcError, SeedPathError

if TYPE_CHECKING:
    from .build.publisher import BuildReport, MaxDelete, Publisher
    from .config import Settings

PROGRESS_MIN_FILES = 200
WEBSUB_CLOSE_SECONDS = 5.0  # how long `feedsvc build` waits for its hub pings


def _remember_store_url(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta["feedsvc.store_url"] = value


def _store_url_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--store-url``: kept in the context; ``_settings`` and ``run`` pass it on."""
    return click.option(
        "--store-url",
        metavar="URL",
        expose_value=False,
        callback=_remember_store_url,
        help="postgresql://user:password@host/db to keep the store in PostgreSQL"
        " [config: store_url; default: SQLite in the state directory].",
    )(f)


def _store_url() -> str | None:
    ctx = click.get_current_context(silent=True)
    return None if ctx is None else ctx.meta.get("feedsvc.store_url")


def _common(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options every command takes: where the config, seeds and feeds are; how chatty to be."""
    for decorator in reversed(
        [
            _store_url_option,
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


def _max_delete(ctx: click.Context, param: click.Parameter, value: str | None) -> MaxDelete:
    """``--max-delete``: a count of articles, or ``all``."""
    if value is None:
        return None
    if value == "all":
        return "all"
    if not value.isdigit():
        raise click.BadParameter(f"{value!r} is neither a number of articles nor 'all'")
    return int(value)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _settings(config: Path | None, seeds: Path | None, feeds: Path | None) -> Settings:
    from .config import load_settings

    overrides = {"seeds_dir": seeds, "feeds_dir": feeds, "store_url": _store_url()}
    return load_settings(config=config, overrides=overrides)


def _progress(publisher: Publisher, quiet: bool) -> AbstractContextManager[Any]:
    """A progress bar on stderr for long runs, only when a person is watching."""
    if quiet or not sys.stderr.isatty():
        return nullcontext(None)
    total = len(publisher.list_seeds())
    if total < PROGRESS_MIN_FILES:
        return nullcontext(None)
    return click.progressbar(length=total, label="reading seeds", file=sys.stderr)


@contextmanager
def _leading(publisher: Publisher) -> Iterator[None]:
    """With PostgreSQL, build only as the site's leader (#10): refused while a daemon leads."""
    if publisher.settings.store_url is None:
        yield
        return
    from .service.leader import build_leadership

    with build_leadership(publisher.settings) as leadership:
        if leadership is not None:
            publisher.fence = leadership.fence
            publisher.writer.guard = leadership.guard
        yield


def _ping_hub(settings: Settings, report: BuildReport) -> None:
    """Tell the WebSub hub about the feeds this build wrote (``websub.announce``)."""
    if settings.websub_hub is None or not report.files:
        return
    from .service.websub import announce

    announce(report, settings, wait=WEBSUB_CLOSE_SECONDS)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Example: feedsvc build --config config/",
)
@click.version_option(__version__, prog_name="feedsvc")
def main() -> None:
    """Publish plain-text news seed files as Atom, RSS and JSON feeds and HTML pages."""


@main.command()
@click.argument("only", nargs=-1, type=click.Path(path_type=Path), metavar="[SEED]...")
@click.option(
    "--max-delete",
    "max_delete",
    metavar="N|all",
    callback=_max_delete,
    help="Unpublish at most N articles in this build, or 'all' [default: stop when more than"
    " max_delete_fraction (0.5) of the published articles would go, and more than one].",
)
@_common
def build(
    only: tuple[Path, ...],
    max_delete: MaxDelete,
    config: Path | None,
    seeds: Path | None,
    feeds: Path | None,
    quiet: bool,
    verbose: bool,
) -> None:
    """Read every seed, update the store and write the feeds once (for cron and CI).

    Prints one summary line and each rejected seed as path:line: reason. Feeds are still
    written from the valid seeds; the exit status is 1 when any seed was rejected. Naming
    SEED files reads just those (new, changed or deleted) and takes the rest from the store;
    a SEED outside the seeds folder, not matching seed_pattern, or missing (and never built)
    is an error. Nothing is written, exit status 1, when the seeds folder (or a folder in it)
    is missing or unreadable, or when the build would unpublish more than half of the
    articles (see --max-delete).

    \b
    Example:
      feedsvc build --config config/
      feedsvc build --seeds /srv/news/seeds --feeds /var/www/feeds
      feedsvc build seeds/042_0123456789abcdef.txt
      feedsvc build --max-delete all   # after removing most seeds on purpose
    """
    from .build.publisher import Publisher

    try:
        publisher = Publisher(_settings(config, seeds, feeds))
        # What the imports and the settings made lives as long as the command: the garbage
        # collector need not walk it again on every collection (~0.05 s of a 100k build).
        gc.freeze()
        with _leading(publisher), _progress(publisher, quiet or bool(only)) as bar:
            report = publisher.build(
                list(only) or None,
                on_file=(lambda _: bar.update(1)) if bar else None,
                explicit=True,
                max_delete=max_delete,
            )
    except SeedPathError as e:
        for path, reason in e.problems:
            click.echo(f"Error: {path}: {reason}", err=True)
        sys.exit(1)
    except FeedsvcError as e:
        raise click.ClickException(str(e)) from e
    if verbose:
        for warning in report.warnings:
            click.echo(f"warning: {warning}", err=True)
    elif not quiet:
        for note in report.notes:
            click.echo(note)
    for error in report.errors:
        click.echo(str(error), err=True)
    if not quiet:
        outputs = " ".join(str(p) for p in report.outputs)
        main_feed = publisher.planner.main_outputs()
        state = ""
        if report.repaired:
            state = f" (repaired {len(report.repaired)} missing or damaged outputs)"
        elif not report.files:
            state = " (unchanged)"
        elif not {f.path for f in report.files} & set(main_feed):
            state = f" ({report.describe(main_feed)})"  # e.g. only an archive page changed
        click.echo(
            f"{_plural(report.total, 'article')} ({report.new} new, {report.changed} changed, "
            f"{report.deleted} deleted, {len(report.errors)} errors) → {outputs}{state} "
            f"in {report.seconds:.2f} s"
        )
    _ping_hub(publisher.settings, report)
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
    from .build.publisher import Publisher

    try:
        publisher = Publisher(_settings(config, seeds, feeds))
        with _progress(publisher, quiet) as bar:
            errors = publisher.check(on_file=(lambda _: bar.update(1)) if bar else None)
    except FeedsvcError as e:
        raise click.ClickException(str(e)) from e
    if verbose:  # the same warnings `build -v` prints
        for warning in errors.warnings:
            click.echo(f"warning: {warning}", err=True)
    for error in errors:
        click.echo(str(error), err=True)
    if not quiet:
        click.echo(f"{_plural(errors.checked, 'seed')} checked, {len(errors)} errors")
    sys.exit(1 if errors else 0)


@main.command()
@click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path),
    help="Config file or directory [default: config/feedsvc.toml if present].",
)
@click.option("--seeds", type=click.Path(path_type=Path), help="Seeds directory.")
@click.option("--feeds", type=click.Path(path_type=Path), help="Output directory.")
@_store_url_option
@click.option("--host", help="Address to listen on [config: host; default: 127.0.0.1].")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help="Port to listen on; 0 picks a free one and logs it [config: port; default: 8080].",
)
@click.option(
    "--no-serve",
    "no_serve",
    is_flag=True,
    help="Do not serve HTTP (nginx or a CDN serves the feeds directory).",
)
@click.option(
    "--roles",
    metavar="ROLES",
    help="What this process does, of ingest,build,serve; ingest alone reports this host's"
    " seeds to the builder, build without ingest builds what ingest hosts report, serve alone"
    " mirrors the feeds a builder publishes; all through the PostgreSQL store"
    " [config: roles; default: all three].",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
    envvar="FEEDSVC_LOG_LEVEL",
    help="Least severe messages logged to stderr.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    envvar="FEEDSVC_LOG_FORMAT",
    help="One line of text per message, or one JSON object per line for log shippers.",
)
def run(
    config: Path | None,
    seeds: Path | None,
    feeds: Path | None,
    host: str | None,
    port: int | None,
    no_serve: bool,
    roles: str | None,
    log_level: str,
    log_format: Literal["text", "json"],
) -> None:
    """Watch the seeds, rebuild the feeds within a second of a change, and serve them.

    Runs until SIGTERM or Ctrl-C (exit status 0); SIGHUP reloads the config (a config
    that is empty or invalid is refused and the running one kept). Seeds that changed while
    it was stopped are picked up at start. /healthz and /status report on the builds, the
    seeds folder and the main feed. Without base_url, links use the address served.

    \b
    Example:
      feedsvc run --config config/
      feedsvc run --port 0 --log-format json
      feedsvc run --no-serve --feeds /var/www/feeds
      feedsvc run --roles serve --store-url postgresql://feedsvc@db/news
      feedsvc run --roles ingest --store-url postgresql://feedsvc@db/news
    """
    from .config import load_settings
    from .service.daemon import run as run_daemon
    from .service.logs import setup_logging

    overrides: dict[str, Any] = {
        "seeds_dir": seeds,
        "feeds_dir": feeds,
        "host": host,
        "port": port,
        "serve": False if no_serve else None,
        "store_url": _store_url(),
        "roles": roles,
    }

    def load(*, reloading: bool = False) -> Settings:
        # An empty config file means "all defaults" at start, but a running daemon refuses
        # it: a file truncated mid-save must not reset every setting.
        return load_settings(config=config, overrides=overrides, allow_empty=not reloading)

    setup_logging(log_level, log_format)
    try:
        code = run_daemon(load(), reload=lambda: load(reloading=True))
    except FeedsvcError as e:
        raise click.ClickException(str(e)) from e
    sys.exit(code)


@main.command("sync")
@click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path),
    help="Config file or directory [default: config/feedsvc.toml if present].",
)
@click.option(
    "--feeds",
    type=click.Path(path_type=Path),
    help="The folder to mirror the documents into [config: feeds_dir].",
)
@_store_url_option
@click.option("--watch", is_flag=True, help="Keep mirroring: within a second of each publish.")
@click.option("-q", "--quiet", is_flag=True, help="Print errors only.")
def sync_command(config: Path | None, feeds: Path | None, watch: bool, quiet: bool) -> None:
    """Mirror the published documents from the PostgreSQL store into a folder (for nginx).

    Each file is replaced atomically and dated as published, so its ETag and Last-Modified
    match the builder's; pages land before the feeds that link them, and files the store no
    longer has are removed. With --watch it keeps going until SIGTERM or Ctrl-C, woken by
    each publish (LISTEN/NOTIFY) and polling every few seconds as well.

    \b
    Example:
      feedsvc sync --feeds /var/www/feeds --store-url postgresql://feedsvc@db/news
      feedsvc sync --feeds /var/www/feeds --watch --config config/
    """
    from .service.sync import sync_folder

    settings = _settings(config, None, feeds)
    if not watch:
        try:
            report = sync_folder(settings, settings.feeds_dir)
        except FeedsvcError as e:
            raise click.ClickException(str(e)) from e
        if not quiet:
            click.echo(f"{settings.feeds_dir}: {report.describe()}")
        return
    from .service.logs import setup_logging
    from .service.sync import watch_folder

    setup_logging("WARNING" if quiet else "INFO", "text")
    try:
        watch_folder(settings, settings.feeds_dir)
    except FeedsvcError as e:
        raise click.ClickException(str(e)) from e


@main.command("import-ids")
@click.argument("old_feed", metavar="OLD_FEED")
@click.option("--dry-run", is_flag=True, help="Only report what would be matched; change nothing.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds to wait when OLD_FEED is a URL.",
)
@_common
def import_ids(
    old_feed: str,
    dry_run: bool,
    timeout: float,
    config: Path | None,
    seeds: Path | None,
    feeds: Path | None,
    quiet: bool,
    verbose: bool,
) -> None:
    """Keep the entry ids of the feed a site had before, so readers see no old news again.

    OLD_FEED is the old Atom, RSS or JSON Feed (a file or an http(s) URL). Its entries are
    matched to seeds by link, else by title and date; matched articles are published under
    their old ids from now on and the feeds are rebuilt. Prints each unmatched entry and
    each conflict (an entry that fits several articles, or an article several entries
    claim), then one summary line; -v also prints each match as old-id → key. Exit status
    0 when every entry matched, 1 when any is unmatched or in conflict.

    \b
    Example:
      feedsvc import-ids old-feed.xml --config config/ --dry-run -v
      feedsvc import-ids https://www.example.org/feed/ --config config/
    """
    from .importer import import_ids as run_import

    try:
        settings = _settings(config, seeds, feeds)
        report = run_import(settings, old_feed, dry_run=dry_run, timeout=timeout)
    except FeedsvcError as e:
        raise click.ClickException(str(e)) from e
    if verbose:
        for entry, article in report.matches:
            click.echo(f"{entry.id} → {article.key}")
    for entry in report.unmatched:
        click.echo(f"unmatched: {entry.id or '(no id)'} {entry.title or '(no title)'}")
    for conflict in report.conflicts:
        title = conflict.entry.title or "(no title)"
        click.echo(f"conflict: {conflict.entry.id} {title}: {conflict.reason}")
    if report.build is not None:
        for error in report.build.errors:
            click.echo(str(error), err=True)
    if not quiet:
        tail = " (dry run: nothing changed)" if dry_run else ""
        click.echo(
            f"{len(report.matches)} matched, {len(report.unmatched)} unmatched, "
            f"{len(report.conflicts)} conflicts{tail}"
        )
    if report.build is not None:
        _ping_hub(settings, report.build)
    sys.exit(0 if report.ok else 1)


@main.command("migrate-store")
@click.option(
    "--to",
    "url",
    required=True,
    metavar="URL",
    help="The PostgreSQL database to copy the store into: postgresql://user:password@host/db.",
)
@click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path),
    help="Config file or directory [default: config/feedsvc.toml if present].",
)
def migrate_store(url: str, config: Path | None) -> None:
    """Copy the SQLite store (ledger included: every entry keeps its id) into PostgreSQL.

    Then set store_url (or FEEDSVC_STORE_URL) to URL. Running it again changes nothing; a
    database that holds another site's store (site_id) or another ledger is refused.

    \b
    Example:
      feedsvc migrate-store --to postgresql://feedsvc:secret@db.example.org/news --config config/
    """
    from .build.publisher import LOCK_TIMEOUT
    from .config import load_settings
    from .store.migrate import migrate_store as run_migrate

    try:
        settings = load_settings(config=config, overrides={"store_url": url})
        report = run_migrate(settings, url, lock_timeout=LOCK_TIMEOUT)
    except FeedsvcError as e:
        raise click.ClickException(str(e)) from e
    entries = f"{report.entries} ledger entries ({report.live} published)"
    if report.copied:
        click.echo(f"copied {entries}, {report.rows} rows in all, to {report.target}")
    else:
        click.echo(f"{report.target} already holds this store ({entries}): nothing copied")


def _config_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config",
        "config",
        type=click.Path(path_type=Path),
        help="Config file or directory [default: config/feedsvc.toml if present].",
    )(f)


@main.group("store", epilog="Example: feedsvc store backup /var/backups/feedsvc.sqlite3")
@_config_option
@click.pass_context
def store_group(ctx: click.Context, config: Path | None) -> None:
    """Check, back up and restore the store: the id ledger in the state directory.

    Losing the store loses no ids: a new store adopts the ids and dates published in the
    feeds directory. A backup also keeps what feeds cannot carry (the stat cache, deleted
    articles' ids, seed errors). --config goes before or after the subcommand.
    """
    ctx.obj = config


def _store_settings(config: Path | None) -> Settings:
    """Settings for a ``store`` subcommand: its own --config, else the group's."""
    given = config or click.get_current_context().find_object(Path)
    settings = _settings(given, None, None)
    if settings.store_url is not None:
        from .config import redact_url

        raise click.ClickException(
            f"store_url is set ({redact_url(settings.store_url)}): check, back up and restore "
            "a PostgreSQL store with its own tools (pg_dump, pg_restore); these commands are "
            "for the SQLite store in the state directory"
        )
    return settings


@store_group.command("check")
@_config_option
def store_check(config: Path | None) -> None:
    """Read every page of the store and check its schema version; exit 1 if it is damaged.

    \b
    Example:
      feedsvc store check --config config/
    """
    from .store import check_store, store_path

    try:
        summary = check_store(store_path(_store_settings(config).state_dir))
    except FeedsvcError as e:
        raise click.ClickException(str(e)) from e
    click.echo(
        f"{summary.path}: ok (schema {summary.schema}, {summary.live} articles published, "
        f"{summary.articles} ids in the ledger, {summary.size:,} bytes)"
    )


@store_group.command("backup")
@click.argument("target", type=click.Path(path_type=Path), metavar="FILE")
@_config_option
def store_backup(target: Path, config: Path | None) -> None:
    """Copy the store to FILE, safely while builds or `feedsvc run` go on, and check the copy.

    Uses SQLite's online backup API: the copy is one consistent snapshot. FILE is replaced
    atomically, so a cron job can write the same name each time; a folder gets
    feedsvc.sqlite3 in it.

    \b
    Example:
      feedsvc store backup /var/backups/feedsvc.sqlite3 --config config/
    """
    from .store import backup_store

    try:
        settings = _store_settings(config)
        summary = backup_store(settings.state_dir, target)
    except FeedsvcError as e:
        raise click.ClickException(str(e)) from e
    click.echo(
        f"backed up the store to {summary.path} ({summary.live} articles published, "
        f"{summary.articles} ids in the ledger, {summary.size:,} bytes; checked)"
    )


@store_group.command("restore")
@click.argument("backup", type=click.Path(path_type=Path), metavar="FILE")
@_config_option
def store_restore(backup: Path, config: Path | None) -> None:
    """Put the store backed up in FILE in place; the current one is kept beside it.

    FILE is checked first. The store it replaces is renamed to feedsvc.sqlite3.replaced
    (with its WAL). The next build rewrites the feeds from the restored store, catches up
    on seeds changed since the backup and adopts the ids published since from the feeds.
    Safe while `feedsvc run` is running: it waits for the build in flight.

    \b
    Example:
      feedsvc store restore /var/backups/feedsvc.sqlite3 --config config/
    """
    from .build.publisher import LOCK_TIMEOUT
    from .store import REPLACED_SUFFIX, restore_store

    try:
        settings = _store_settings(config)
        summary = restore_store(settings.state_dir, backup, lock_timeout=LOCK_TIMEOUT)
    except FeedsvcError as e:
        raise click.ClickException(str(e)) from e
    aside = summary.path.with_name(summary.path.name + REPLACED_SUFFIX)
    kept = f"the store it replaced is {aside}; " if aside.exists() else ""
    click.echo(
        f"restored {summary.path} from {backup} ({summary.articles} ids in the ledger); "
        f"{kept}the next build rewrites the feeds"
    )
