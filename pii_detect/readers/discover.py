"""Find the corpus files named by paths (one rule for every entry point) and dispatch each to its reader.

Offers :func:`iter_corpus_files` (paths -> the files that are read), :func:`iter_documents` (paths -> documents,
streaming, in a deterministic order), :func:`iter_files` (one directory), :func:`read_file` (one file ->
documents, any error mid-file recorded and the rest of the corpus kept), :func:`source_of` and
:data:`SUPPORTED_SUFFIXES`.

The discovery rule, shared by ``revs scan``/``locate`` and the flows (through :mod:`tasks.pii`):

- a path named explicitly is read whatever its suffix (an unknown one as plain text), if it is a regular file;
- a directory is walked recursively in sorted order; hidden entries (``.git``, ``.revs``, ``.x.txt``) are
  skipped, files must pass ``include``/``exclude`` and have a supported suffix (else an ``unsupported`` issue);
- anything that is not a regular file (FIFO, socket, device) is never opened: a ``not_regular`` issue;
- a symlink (file or directory) found in a directory whose target lies outside that directory is refused with
  a ``symlink_outside`` issue unless ``ReaderOptions.follow_symlinks`` (``--follow-symlinks``); links inside it
  are read (file) or left to the walk, which reaches their target itself (directory). With ``follow_symlinks``
  linked directories are walked too, each real directory once (no loops).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import stat
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa

from pii_detect.config import ReaderOptions
from pii_detect.readers.base import Document, IssueLog, logical_suffix
from pii_detect.readers.tabular import read_csv_file, read_parquet_file
from pii_detect.readers.text import read_jsonl_file, read_text_file

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = frozenset({".txt", ".md", ".log", ".text", ".rst"})
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
CSV_SUFFIXES = frozenset({".csv", ".tsv"})
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | JSONL_SUFFIXES | CSV_SUFFIXES | PARQUET_SUFFIXES
#: Errors a damaged file can raise mid-read; they end that file only.
READ_ERRORS = (OSError, EOFError, zlib.error, pa.ArrowException)
_FOLLOW_HINT = "pass --follow-symlinks (reader.follow_symlinks) to read it"


def source_of(path: str | Path) -> str:
    """Return the ``source`` string recorded in findings: the absolute path (symlinks not resolved)."""
    return os.path.abspath(os.fspath(path))


def _note(issues: IssueLog | None, path: str | Path, kind: str, detail: str) -> None:
    if issues is not None:
        issues.add(source_of(path), "", kind, detail)


def _kind_name(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def regular_file(path: str | Path, issues: IssueLog | None = None) -> bool:
    """Return True when ``path`` (after symlinks) is a regular file; otherwise record why and return False.

    Never opens the path, so a FIFO or a device cannot block the scan.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            _note(issues, path, "unreadable", "broken symlink; skipped")
        else:
            _note(issues, path, "not_found", "no such file or directory")
        return False
    except OSError as exc:
        _note(issues, path, "unreadable", f"{exc.strerror or type(exc).__name__}; skipped")
        return False
    if not stat.S_ISREG(mode):
        _note(issues, path, "not_regular", f"{_kind_name(mode)}, not a regular file; skipped")
        return False
    return True


def _inside(target: str, root: str) -> bool:
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def _wanted(rel: str, name: str, opts: ReaderOptions) -> bool:
    def hit(globs: tuple[str, ...]) -> bool:
        return any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(name, g) for g in globs)

    if opts.include and not hit(opts.include):
        return False
    return not hit(opts.exclude)


def iter_files(path: Path, opts: ReaderOptions, issues: IssueLog | None = None) -> Iterator[Path]:
    """Yield the files under directory ``path`` that the discovery rule reads (module docstring), sorted."""
    root = os.path.realpath(path)
    seen: set[tuple[int, int]] = set()

    def unlisted(exc: OSError) -> None:
        _note(issues, exc.filename or path, "unreadable", exc.strerror or "cannot list directory")

    for dirpath, dirs, files in os.walk(path, onerror=unlisted, followlinks=opts.follow_symlinks):
        try:
            real = os.stat(dirpath)
        except OSError as exc:
            unlisted(exc)
            continue
        if (real.st_dev, real.st_ino) in seen:  # a followed link back into a walked directory
            dirs[:] = []
            continue
        seen.add((real.st_dev, real.st_ino))
        kept = []
        for d in sorted(d for d in dirs if not d.startswith(".")):  # .git, .revs, ... are not corpus
            full = os.path.join(dirpath, d)
            if os.path.islink(full) and not opts.follow_symlinks:
                if not _inside(os.path.realpath(full), root):
                    _note(issues, full, "symlink_outside", f"directory link leads outside {root}; {_FOLLOW_HINT}")
                continue
            kept.append(d)
        dirs[:] = kept
        for name in sorted(f for f in files if not f.startswith(".")):
            full = Path(dirpath, name)
            rel = full.relative_to(path).as_posix()
            if not _wanted(rel, name, opts):
                continue
            if logical_suffix(name)[0] not in SUPPORTED_SUFFIXES:
                _note(issues, full, "unsupported", "unknown file type; skipped")
                continue
            if (not opts.follow_symlinks and os.path.islink(full)
                    and not _inside(os.path.realpath(full), root)):
                _note(issues, full, "symlink_outside", f"links to a file outside {root}; {_FOLLOW_HINT}")
                continue
            if regular_file(full, issues):
                yield full


def iter_corpus_files(paths: Iterable[str | Path], opts: ReaderOptions | None = None,
                      issues: IssueLog | None = None) -> Iterator[Path]:
    """Yield every file the corpus named by ``paths`` consists of, in order (the rule in the module docstring).

    Args:
        paths: Files (read whatever their suffix) or directories (walked).
        opts: Globs and ``follow_symlinks``; defaults to :class:`ReaderOptions()`.
        issues: Collects what was skipped and why (``not_found``, ``not_regular``, ``symlink_outside``, ...).
    """
    opts = opts or ReaderOptions()
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            yield from iter_files(path, opts, issues)
        elif regular_file(path, issues):
            yield path


def read_file(path: Path, opts: ReaderOptions, issues: IssueLog | None = None,
              source: str | None = None) -> Iterator[Document]:
    """Yield one file's documents; an unknown suffix is read as plain text. Errors end this file only.

    A path that is not a regular file (a FIFO, a device) is recorded as ``not_regular`` and never opened.
    """
    source = source or source_of(path)
    if not regular_file(path, issues):
        return
    suffix, gz = logical_suffix(path)
    if suffix in JSONL_SUFFIXES:
        docs = read_jsonl_file(path, source, opts, gz, issues)
    elif suffix in CSV_SUFFIXES:
        docs = read_csv_file(path, source, opts, gz, "\t" if suffix == ".tsv" else ",", issues)
    elif suffix in PARQUET_SUFFIXES:
        docs = read_parquet_file(path, source, opts, gz, issues)
    else:
        docs = read_text_file(path, source, opts, gz, issues)
    count = 0
    try:
        for doc in docs:
            count += 1
            yield doc
    except READ_ERRORS as exc:
        detail = getattr(exc, "strerror", None) or type(exc).__name__
        if issues is not None:
            where = f"after {count} documents" if count else ""
            issues.add(source, where, "unreadable", f"{detail}; rest of the file skipped")
        logger.warning("unreadable corpus file %s after %d documents: %s", source, count, type(exc).__name__)


def iter_documents(
    paths: Iterable[str | Path], opts: ReaderOptions | None = None, issues: IssueLog | None = None
) -> Iterator[Document]:
    """Yield every document of the corpus named by ``paths`` (files and directories), streaming.

    Args:
        paths: Files or directories, found by :func:`iter_corpus_files`.
        opts: Reader options; defaults to :class:`ReaderOptions()`.
        issues: Collects skipped/repaired input (missing paths, FIFOs, outside links, binary files, ...).
    """
    opts = opts or ReaderOptions()
    for file in iter_corpus_files(paths, opts, issues):
        if issues is not None:
            issues.files += 1
        yield from read_file(file, opts, issues)
