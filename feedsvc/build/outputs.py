"""Stage 4, write: the feeds/ layout, and writing a plan's documents into it. Files only.

One home for the conventions of the output: file names (``INDEX_FILE``, ``articles/``, feed
documents via ``FeedSpec``), URLs (``url``), content types (``served_type``, from the one
table ``models.MEDIA_TYPES``), ``.gz`` siblings (``GZIP_SUFFIX``, ``GZIP_LEVEL``), the temp
folder of atomic writes, the manifest check (one stat per output against the stamp recorded
when it was written) and stale files. The writer never touches the store: it returns the
stamps of what it wrote for the publisher to record.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import mimetypes
import os
import shutil
import stat
import tempfile
import weakref
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Literal, overload
from urllib.parse import quote

from .._atomic import write_atomic
from ..models import ARCHIVE_SUFFIXES, ARTICLES_DIR, MEDIA_TYPES, Format

INDEX_FILE = "index.html"
OPML_FILE = "feeds.opml"  # every feed in one OPML 2.0 subscription list (#11)
TMP_DIR = ".tmp"  # temp files of atomic writes; hidden, so never served
GZIP_SUFFIX = ".gz"
GZIP_LEVEL = 6  # level 9 costs three times the time for 2 % less
# Archive pages (written once, fetched rarely, 600 at 10k articles in a cold build): level 3,
# the fast deflate, packs them in 42 % of level 6's CPU time into 1.5 times the bytes (#9)
ARCHIVE_GZIP_LEVEL = 3
CHARSET = "; charset=utf-8"
ARCHIVE_DIR = "archive"  # <feed>/archive/<n>.xml|.rss|.json: archive pages, one chain a format
PAGE_MODE = 0o644  # what ``write_atomic`` leaves; a staged page gets the same
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)

# Content types as served (and as nginx's snippet serves them): the media type and a charset.
ATOM_TYPE = MEDIA_TYPES["atom"] + CHARSET
RSS_TYPE = MEDIA_TYPES["rss"] + CHARSET
JSON_FEED_TYPE = MEDIA_TYPES["json"] + CHARSET
SERVED_TYPES: dict[Format, str] = {"atom": ATOM_TYPE, "rss": RSS_TYPE, "json": JSON_FEED_TYPE}
# OPML has no registered media type; text/x-opml is what feed readers and opml.org know it by.
OPML_TYPE = "text/x-opml" + CHARSET

Kind = Literal["feed", "archive", "index", "article", "gzip", "opml"]
Stamp = tuple[int, int, int]  # (size, mtime_ns, inode) of an output, from one stat
# The manifest's entry for the page tree itself: the stamp of the folder ``articles/`` as the
# last write left it. Creating, removing or renaming a page in it changes the folder's mtime,
# so while that stamp holds, no page can be missing: a full build stats a rotating sample of
# the pages instead of all of them (see ``Planner.plan``).
PAGES_STAMP = ARTICLES_DIR + "/"


def url(base_url: str, rel: str) -> str:
    """The public URL of the output at ``rel`` (relative to feeds/, '/'-separated)."""
    return base_url + quote(rel, safe="/")


def archive_format(rel: str) -> Format | None:
    """The format of the archive page at ``rel`` (``archive/<n>.xml|.rss|.json``), else None."""
    folder, _, name = rel.rpartition("/")
    if not (folder == ARCHIVE_DIR or folder.endswith("/" + ARCHIVE_DIR)):
        return None
    stem, _, suffix = name.partition(".")
    if not stem.isdigit():
        return None
    return next((fmt for fmt, ext in ARCHIVE_SUFFIXES.items() if ext == suffix), None)


def is_archive_page(rel: str) -> bool:
    return archive_format(rel) is not None


def served_type(rel: str, names: Mapping[str, str]) -> str:
    """The served type of the file at ``rel``: by the feed file names ``names``, then by suffix.

    Archive pages are in their chain's format (``.xml`` Atom, ``.rss``, ``.json``); anything
    textual gets ``charset=utf-8``.
    """
    base = rel.rpartition("/")[2]
    if base in names:
        return names[base]
    fmt = archive_format(rel)
    if fmt is not None:
        return SERVED_TYPES[fmt]
    if base.endswith(".opml"):
        return OPML_TYPE
    guessed, _ = mimetypes.guess_type(base)
    if guessed is None:
        return "application/octet-stream"
    if guessed.startswith("text/") or guessed.endswith(("xml", "json")):
        return guessed + CHARSET
    return guessed


@dataclass(frozen=True, slots=True)
class Document:
    """One output a build writes: where, what makes its bytes, and what it is.

    ``render`` is called once, at write time, so a build with thousands of pages holds one
    page at a time. ``feed``: the feed a feed document or archive page belongs to.
    """

    path: str  # relative to feeds/, '/'-separated
    render: Callable[[], bytes]
    kind: Kind
    feed: str | None = None
    fmt: Format | None = None
    durable: bool = True  # fsync: feeds yes; pages can be rebuilt from the store
    compress: bool = False  # write a .gz sibling too (when the settings ask for them)


class Pages:
    """A build's article pages: ``Document``s, rendered and written one at a time.

    Into a fresh tree (a cold build) they may instead be created by worker processes
    (``create``, ``plan.StoredPages``): the writer asks before it iterates.
    """

    def __init__(self, documents: Iterable[Document] = ()) -> None:
        self._documents = documents

    def __iter__(self) -> Iterator[Document]:
        return iter(self._documents)

    def create(
        self, prefix: str, guard: Callable[[], None] | None
    ) -> Generator[tuple[str, Stamp]] | None:
        """Create every page as a new file named ``prefix`` + its name (``staged_name``),
        yielding (path relative to feeds/, stamp) in the pages' order, calling ``guard``
        between batches; None: not this way (iterate the documents instead)."""
        return None


def staged_name(rel: str) -> str:
    """The file name of the article page ``rel`` in a stage folder (``ValueError`` when
    ``rel`` is not one: nothing outside the folder, no hidden file)."""
    folder, _, name = rel.rpartition("/")
    if folder != ARTICLES_DIR or not name or name.startswith("."):
        raise ValueError(f"not an article page: {rel!r}")
    return name


@dataclass(frozen=True, slots=True)
class WrittenFile:
    """A file one build wrote: what it is, and which feed it belongs to."""

    path: str  # relative to feeds/
    kind: Kind
    feed: str | None = None


class Paths(Sequence[Path]):
    """Files under one folder, kept as their relative names; a ``Path`` only when asked.

    A cold build writes a file per article: a ``Path`` each (about 400 bytes with its parts)
    for the whole corpus was a tenth of the peak RSS at 100,000 articles (#9). The names are
    the strings the stamps and ``WrittenFile`` hold anyway, so an entry costs a pointer.
    """

    __slots__ = ("_rels", "root")

    def __init__(self, root: Path, rels: Iterable[str] = ()) -> None:
        self.root = root
        self._rels = list(rels)

    def append(self, rel: str) -> None:
        self._rels.append(rel)

    def clear(self) -> None:
        self._rels.clear()

    def __len__(self) -> int:
        return len(self._rels)

    @overload
    def __getitem__(self, index: int) -> Path: ...
    @overload
    def __getitem__(self, index: slice) -> list[Path]: ...
    def __getitem__(self, index: int | slice) -> Path | list[Path]:
        if isinstance(index, slice):
            return [self.root / rel for rel in self._rels[index]]
        return self.root / self._rels[index]

    def __iter__(self) -> Iterator[Path]:
        return (self.root / rel for rel in self._rels)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        return repr(list(self))


@dataclass(slots=True)
class Written:
    """What one build did to feeds/: the files it wrote, which were repairs, and the stamps."""

    files: list[WrittenFile] = field(default_factory=list)
    paths: Paths = field(default_factory=lambda: Paths(Path()))  # not the .gz siblings
    repaired: list[str] = field(default_factory=list)  # relative to feeds/, sorted
    stamps: dict[str, Stamp | None] = field(default_factory=dict)  # None: removed


def stat_stamp(path: str) -> Stamp | None:
    """One stat: enough to see a file removed, replaced or written to since we left it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def dir_stamp(path: str) -> Stamp | None:
    """A folder's stamp (size, mtime_ns, inode), None when it is missing or not a folder."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def unlike_manifest(
    root: Path, paths: Iterable[str], manifest: Mapping[str, Stamp]
) -> tuple[list[str], set[str]]:
    """Outputs not as the manifest says we left them (one stat each), and which of those the
    manifest knows (missing or damaged: a repair) rather than new in this build."""
    prefix = os.path.join(root, "")  # plain strings: pathlib costs more than the stat
    redo: list[str] = []
    suspect: set[str] = set()
    for rel in paths:
        recorded = manifest.get(rel)
        if recorded is not None and stat_stamp(prefix + rel) == recorded:
            continue
        redo.append(rel)
        if recorded is not None:
            suspect.add(rel)
    return redo, suspect


class Spool:
    """Bytes rendered once and written later: a scratch file that nothing can leave behind.

    A full build renders each archive page while it fits the page into the byte budget, and
    the writer writes it only once the plan is complete. Holding every page in memory would
    grow with the corpus, rendering it twice costs twice: the bytes wait in an unlinked temp
    file in the state folder (planning writes nothing into feeds/; the file is gone with its
    descriptor, even after a kill), each read back once
    by its document's ``render``. The file is closed when the last one is read, or when the
    spool is dropped (a failed build).
    """

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        try:  # Linux: a file that never has a name
            fd = os.open(folder, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
        except (AttributeError, OSError):  # elsewhere, or a file system without it
            fd, path = tempfile.mkstemp(dir=folder, prefix=".spool.")
            os.unlink(path)
        self._fd = fd
        self._closer = weakref.finalize(self, os.close, fd)
        self._end = 0
        self._at: dict[str, tuple[int, int]] = {}

    def put(self, name: str, data: bytes) -> None:
        """Keep ``data`` under ``name`` (a later ``put`` of the same name replaces it)."""
        view = memoryview(data)
        at = self._end
        done = 0
        while done < len(data):
            done += os.pwrite(self._fd, view[done:], at + done)
        self._at[name] = (at, len(data))
        self._end += len(data)

    def __contains__(self, name: str) -> bool:
        return name in self._at

    def get(self, name: str) -> bytes:
        """The bytes kept under ``name``, once: the last one read closes the file."""
        at, size = self._at.pop(name)
        data = os.pread(self._fd, size, at)
        if not self._at:
            self.close()
        if len(data) != size:  # a regular file reads whole; anything else is an I/O fault
            raise OSError(errno.EIO, f"short read from the spool: {len(data)} of {size} bytes")
        return data

    def close(self) -> None:
        self._closer()
        self._at.clear()


def summarize(files: Iterable[WrittenFile], *, limit: int = 20) -> str:
    """What a build wrote, by feed: ``feed all: atom.xml, rss.xml, 1 archive page; 3 HTML pages``.

    Feed documents are named (relative to their feed's folder), archive pages, HTML pages and
    ``.gz`` siblings counted; at most ``limit`` names in all.
    """
    feeds: dict[str, list[str]] = {}
    archives: dict[str, int] = {}
    html = gz = 0
    opml = False
    for f in files:
        if f.kind == "feed" and f.feed is not None:
            feeds.setdefault(f.feed, []).append(f.path.rpartition("/")[2])
        elif f.kind == "archive" and f.feed is not None:
            archives[f.feed] = archives.get(f.feed, 0) + 1
            feeds.setdefault(f.feed, [])
        elif f.kind in ("index", "article"):
            html += 1
        elif f.kind == "gzip":
            gz += 1
        elif f.kind == "opml":
            opml = True
    parts: list[str] = []
    named = 0
    for name, docs in feeds.items():
        if named >= limit:
            parts.append(f"{len(feeds) - len(parts)} more feeds")
            break
        shown = docs[: limit - named]
        named += len(shown)
        items = shown + ([f"{len(docs) - len(shown)} more"] if len(docs) > len(shown) else [])
        pages = archives.get(name, 0)
        if pages:
            items.append(f"{pages} archive page" + ("" if pages == 1 else "s"))
        parts.append(f"feed {name}: {', '.join(items)}")
    if html:
        parts.append(f"{html} HTML page" + ("" if html == 1 else "s"))
    if gz:
        parts.append(f"{gz} .gz file" + ("" if gz == 1 else "s"))
    if opml:
        parts.append(OPML_FILE)
    return "; ".join(parts)


class Writer:
    """Writes documents into one feeds folder atomically; unchanged bytes are left alone."""

    def __init__(self, root: Path, *, gzip_feeds: bool) -> None:
        self.root = root
        self.tmp = root / TMP_DIR
        self.gzip_feeds = gzip_feeds
        self.touched = Paths(root)  # every file written since the caller cleared it
        self._unsynced: set[str] = set()  # folders with new durable files, fsynced once
        self._serial = 0  # names of this writer's temp files in ``.tmp/``
        # called before each file is written or removed; raises to stop the write (#10: a
        # leader whose lease ran out, e.g. after a SIGSTOP mid-write, writes no more files)
        self.guard: Callable[[], None] | None = None

    def write(
        self,
        documents: Iterable[Document],
        *,
        pages: Iterable[Document] = (),
        remove: Iterable[str] = (),
        sweep: Iterable[tuple[str, Callable[[Path], bool]]] = (),
        keep: set[str] | None = None,
        suspect: set[str] = frozenset(),  # type: ignore[assignment]
        stamp_also: Iterable[str] = (),
        folders: Mapping[str, bool] | None = None,
    ) -> Written:
        """Write ``documents`` and ``pages``, then remove ``remove`` and stale files; stamp
        what is there.

        ``pages``: article pages (``articles/<key>.html``, not durable, written one at a time).
        Into a missing or empty ``articles/`` (a cold build) they are written as plain new
        files into a staging folder in ``.tmp/`` and swapped in with one rename before the
        other documents; into an existing tree each page is replaced atomically after them,
        and unchanged pages are left alone.

        ``sweep``: (folder, is-ours) pairs whose files not in ``keep`` are stale (a full
        build's cleanup of pages and archive pages no build of ours would write now).
        ``suspect``: outputs found missing or damaged, reported as repaired when written.
        ``stamp_also``: outputs left as they are whose stamps the manifest should hold.
        The folder ``articles/`` is stamped last (``PAGES_STAMP``), whatever was written, and
        ``folders`` (folder -> True: stamp it, False: forget its stamp) with it.
        """
        written = Written(paths=Paths(self.root))
        self.tmp.mkdir(parents=True, exist_ok=True)
        for stale in self.tmp.iterdir():  # a killed build's temp files; we hold the lock
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale)  # a killed cold build's staged pages
            else:
                stale.unlink(missing_ok=True)
        staged: list[str] = []
        stamps: dict[str, Stamp] = {}
        created = None
        if isinstance(pages, Pages) and self._fresh_tree():
            created = pages.create(os.path.join(self.tmp, ARTICLES_DIR, ""), self.guard)
        if created is not None:  # by worker processes, into the stage folder
            staged, stamps = self._stage(created)
            pages = ()
        pages = iter(pages)
        first = next(pages, None)
        if first is not None and self._fresh(first.path):
            # A fresh tree: pages are staged whole and swapped in before the feeds that link
            # them, so a reader (or a kill) sees no pages or all of them.
            staged, stamps = self._stage(self._created(chain((first,), pages)))
            pages = iter(())
        elif first is not None:
            pages = chain((first,), pages)
        for doc in chain(documents, pages):
            self._put(doc, written, suspect)
        for rel in staged:  # reported after the documents, as when written in place
            self.touched.append(rel)
            written.paths.append(rel)
            written.files.append(WrittenFile(rel, "article"))
            written.stamps[rel] = stamps[rel]
            if rel in suspect:
                written.repaired.append(rel)
        for rel in remove:
            self._remove(rel, written)
        for folder, ours in sweep:
            if staged and folder.rstrip("/") == ARTICLES_DIR:
                continue  # swapped in whole by this build: nothing else is in it
            for path in sorted((self.root / folder).glob("*")):
                rel = f"{folder}{path.name}"
                if ours(path) and rel not in (keep or set()):
                    self._remove(rel, written)
        self._sync_folders()
        for rel in stamp_also:
            if rel not in written.stamps:  # written by an earlier build
                written.stamps[rel] = stat_stamp(os.fspath(self.root / rel))
        # last, after every page written or removed: the page tree as this build leaves it
        written.stamps[PAGES_STAMP] = dir_stamp(os.fspath(self.root / ARTICLES_DIR))
        for folder, stamped in (folders or {}).items():
            written.stamps[folder] = dir_stamp(os.fspath(self.root / folder)) if stamped else None
        written.repaired.sort()
        return written

    def _put(self, doc: Document, written: Written, suspect: set[str]) -> None:
        """Write ``doc`` (and its ``.gz``) unless it already holds its bytes; record stamps."""
        rel = doc.path
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = doc.render()
        if self.guard is not None:
            self.guard()
        changed = self._file(path, data, durable=doc.durable)
        if changed:
            self.touched.append(rel)
            written.paths.append(rel)
            written.files.append(WrittenFile(rel, doc.kind, doc.feed))
            if rel in suspect:
                written.repaired.append(rel)
        written.stamps[rel] = stat_stamp(os.fspath(path))
        if doc.compress and self.gzip_feeds:
            gz_rel = rel + GZIP_SUFFIX
            gz = self.root / gz_rel
            if changed or gz_rel in suspect or _older(gz, path):
                level = ARCHIVE_GZIP_LEVEL if doc.kind == "archive" else GZIP_LEVEL
                packed = gzip.compress(data, compresslevel=level, mtime=0)
                if self._file(gz, packed, durable=doc.durable):
                    self.touched.append(gz_rel)
                    written.files.append(WrittenFile(gz_rel, "gzip", doc.feed))
                    if gz_rel in suspect:
                        written.repaired.append(gz_rel)
            written.stamps[gz_rel] = stat_stamp(os.fspath(gz))

    def _file(self, path: Path, data: bytes, *, durable: bool) -> bool:
        """Put ``data`` at ``path`` through a temp file and a rename; False if already equal.

        A file that is there is replaced by ``write_atomic`` (temp file, fsync, rename, fsync
        of its folder): its old bytes survive anything. A new file (a cold build writes only
        those) has no old bytes to keep: its temp file is written with one open, write and
        close and renamed into place, and its folder is fsynced once at the end of the write
        (``_sync_folders``), not the file and its folder for every file. A reader (or a kill)
        still sees no file or the whole file; after a power cut a new file may be found empty
        or missing, which the next build's manifest check (size, mtime, inode) rewrites.
        """
        name = os.fspath(path)
        if os.path.lexists(name):  # there: compared, and replaced the careful way
            return write_atomic(
                path, data, durable=durable, tmp_dir=self.tmp, before_replace=self.guard
            )
        self._serial += 1
        tmp = os.path.join(self.tmp, f"{self._serial}.{path.name}")
        try:
            create_page(tmp, data)
            if self.guard is not None:
                self.guard()
            os.replace(tmp, name)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        if durable:
            self._unsynced.add(os.fspath(path.parent))
        return True

    def _sync_folders(self) -> None:
        """fsync each folder that got new durable files (``_file``), once, before the stamps
        are recorded."""
        for folder in sorted(self._unsynced):
            _fsync_dir(Path(folder))
        self._unsynced.clear()

    def _fresh(self, rel: str) -> bool:
        """Whether ``rel`` is an article page and ``articles/`` is missing or empty."""
        return rel.rpartition("/")[0] == ARTICLES_DIR and self._fresh_tree()

    def _fresh_tree(self) -> bool:
        """Whether ``articles/`` is missing or empty."""
        try:
            with os.scandir(self.root / ARTICLES_DIR) as entries:
                return next(entries, None) is None
        except FileNotFoundError:
            return True
        except NotADirectoryError:
            return False

    def _created(self, pages: Iterable[Document]) -> Generator[tuple[str, Stamp]]:
        """``Pages.create`` in this process: each page rendered and created in the stage."""
        prefix = os.path.join(self.tmp, ARTICLES_DIR, "")
        for doc in pages:
            rel = doc.path
            yield rel, create_page(prefix + staged_name(rel), doc.render())

    def _stage(self, created: Generator[tuple[str, Stamp]]) -> tuple[list[str], dict[str, Stamp]]:
        """Create the pages (``created``: as each is taken) as new files in ``.tmp/articles/``
        and rename it to ``articles/``.

        No temp file, compare, rename or fsync per page: the folder is new, and pages can be
        rebuilt from the store. The stamps come from ``fstat`` of each open file (a rename of
        the folder keeps size, mtime and inode). One fsync of feeds/ makes the swap durable.
        Returns the pages written (relative to feeds/) and their stamps. On any error the
        stage is removed, after ``created`` is closed (worker processes stopped).
        """
        stage = self.tmp / ARTICLES_DIR
        stage.mkdir()
        done: list[str] = []
        stamps: dict[str, Stamp] = {}
        try:
            with contextlib.closing(created):
                for rel, stamp in created:
                    stamps[rel] = stamp
                    done.append(rel)
            if self.guard is not None:
                self.guard()
            os.rename(stage, self.root / ARTICLES_DIR)  # replaces an empty articles/ too
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        _fsync_dir(self.root)
        return done, stamps

    def _remove(self, rel: str, written: Written) -> None:
        """Remove an output we wrote, and forget it."""
        if self.guard is not None:
            self.guard()
        (self.root / rel).unlink(missing_ok=True)
        written.stamps[rel] = None


def create_page(name: str, data: bytes) -> Stamp:
    """A new file ``name`` holding ``data`` (mode ``PAGE_MODE``): open, write, close; its
    stamp from ``fstat`` of the open file (a later rename keeps size, mtime and inode)."""
    fd = os.open(name, _CREATE, PAGE_MODE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        st = os.fstat(fd)
        if st.st_mode & 0o7777 != PAGE_MODE:  # a umask took some bits
            os.fchmod(fd, PAGE_MODE)
    finally:
        os.close(fd)
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _older(gz: Path, source: Path) -> bool:
    """Whether ``gz`` is missing or older than ``source`` (a build died between the two)."""
    try:
        return gz.stat().st_mtime_ns < source.stat().st_mtime_ns
    except FileNotFoundError:
        return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
