"""The one exception tree of feedsvc; every error carries the facts needed to act on it.

FeedsvcError
├── ConfigError            a bad setting: .key, .reason
├── SeedError              a seed file that cannot be published: .path, .line, .reason
│   ├── SeedReadError      it could not be read (size, symlink, vanished, changed mid-read)
│   └── SeedParseError     its bytes are not a valid seed (date line, UTF-8, empty body, ...)
├── SeedsDirError          the seeds folder or a folder in it is missing or unreadable: .path
├── SeedPathError          paths named for ``build SEED...`` that are not seeds: .problems
├── MassDeletionError      a build would unpublish too much: .would_delete, .published, .limit
├── PublishError           the store or the feeds could not be written
│   └── StoreError         the state dir or the store in it cannot be used: .path, .reason
├── LockError              another feedsvc process holds the state directory: .path, .holder
├── LeaderError            another process leads the site's builds, or this one lost the lead:
│                          .site, .reason, .leader (who leads, when known)
├── ServeError             the HTTP server could not start
└── OldFeedError           an old feed (``import-ids``) cannot be read: .source, .reason
"""

from __future__ import annotations

from pathlib import Path


class FeedsvcError(Exception):
    """Base of every error feedsvc raises on purpose."""


class ConfigError(FeedsvcError):
    """A setting is missing, unknown or out of range."""

    def __init__(self, key: str, reason: str, *, source: str | None = None) -> None:
        self.key = key
        self.reason = reason
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}config key '{key}': {reason}")


class SeedError(FeedsvcError):
    """A seed file that cannot be published; prints as ``path:line: reason``."""

    def __init__(self, path: str | Path, line: int, reason: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        super().__init__(f"{self.path}:{line}: {reason}")


class SeedReadError(SeedError):
    """The file could not be read safely (too big, outside seeds/, vanished, changing)."""


class SeedParseError(SeedError):
    """The bytes were read but are not a valid seed."""


class SeedsDirError(FeedsvcError):
    """The seeds folder or a folder in it is missing or unreadable: never read as "deleted"."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class SeedPathError(FeedsvcError):
    """Paths named for a build that are not seeds (outside seeds/, not a seed name, missing).

    ``problems`` holds ``(path, reason)`` pairs, one per path; each prints as ``path: reason``.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {reason}" for path, reason in problems))


class MassDeletionError(FeedsvcError):
    """A build would unpublish more articles than allowed (like rsync's ``--max-delete``).

    Usually a seeds folder that is empty by mistake (an unmounted share, a wrong path).
    """

    def __init__(self, seeds: str | Path, *, would_delete: int, published: int, limit: int) -> None:
        self.seeds = str(seeds)
        self.would_delete = would_delete
        self.published = published
        self.limit = limit
        super().__init__(
            f"build stopped: it would unpublish {would_delete} of {published} published articles"
            f" (limit {limit}); check {self.seeds}, or allow it once with"
            " `feedsvc build --max-delete all` (config: max_delete_fraction)"
        )


class PublishError(FeedsvcError):
    """The store or a feed file could not be written; the previous state stays."""


class StoreError(PublishError):
    """The state directory or the store in it cannot be used (damaged, too new, unwritable).

    ``damaged``: the file itself is bad (restore a backup or rebuild), not its surroundings.
    """

    def __init__(self, path: str | Path, reason: str, *, damaged: bool = False) -> None:
        self.path = str(path)
        self.reason = reason
        self.damaged = damaged
        super().__init__(f"{self.path}: {reason}")


class LockError(FeedsvcError):
    """Another feedsvc process is writing the same state directory.

    ``holder`` is the pid the lock file names ("?" when it names none).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        holder: str,
        waited: float = 0.0,
        message: str | None = None,
    ) -> None:
        self.path = str(path)
        self.holder = holder
        self.waited = waited
        super().__init__(
            message
            or f"{self.path}: another feedsvc process (pid {holder}) is writing this state "
            f"directory; waited {waited:g} s"
        )


class LeaderError(FeedsvcError):
    """This process may not build the site: another one leads it, or it was fenced out.

    ``leader`` describes the current leader (host, pid, epoch) when it is known.
    """

    def __init__(self, site: str, reason: str, *, leader: str | None = None) -> None:
        self.site = site
        self.reason = reason
        self.leader = leader
        super().__init__(f"site {site!r}: {reason}")


class ServeError(FeedsvcError):
    """The HTTP server could not be started."""


class OldFeedError(FeedsvcError):
    """The old feed given to ``import-ids`` cannot be read or is not Atom, RSS or JSON Feed."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")
