"""Walk corpus paths and dispatch each file to its reader.

Offers :func:`iter_documents` (paths -> documents, streaming, in a deterministic order), :func:`iter_files`
(directories walked recursively with include/exclude globs), :func:`read_file` (one file -> documents, any error
mid-file recorded and the rest of the corpus kept) and :data:`SUPPORTED_SUFFIXES`.
"""

from __future__ import annotations

import fnmatch
import logging
import os
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


def source_of(path: str | Path) -> str:
    """Return the ``source`` string recorded in findings: the absolute path (symlinks not resolved)."""
    return os.path.abspath(os.fspath(path))


def _wanted(rel: str, name: str, opts: ReaderOptions) -> bool:
    def hit(globs: tuple[str, ...]) -> bool:
        return any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(name, g) for g in globs)

    if opts.include and not hit(opts.include):
        return False
    return not hit(opts.exclude)


def iter_files(path: Path, opts: ReaderOptions, issues: IssueLog | None = None) -> Iterator[Path]:
    """Yield files under directory ``path`` (sorted, recursive, hidden entries skipped) that pass the globs."""
    for root, dirs, files in os.walk(path, onerror=lambda e: issues and issues.add(
            source_of(e.filename or path), "", "unreadable", e.strerror or "cannot list directory")):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # .git, .revs, ... are not corpus
        for name in sorted(f for f in files if not f.startswith(".")):
            full = Path(root, name)
            rel = full.relative_to(path).as_posix()
            if not _wanted(rel, name, opts):
                continue
            if logical_suffix(name)[0] not in SUPPORTED_SUFFIXES:
                if issues is not None:
                    issues.add(source_of(full), "", "unsupported", "unknown file type; skipped")
                continue
            yield full


def read_file(path: Path, opts: ReaderOptions, issues: IssueLog | None = None,
              source: str | None = None) -> Iterator[Document]:
    """Yield one file's documents; an unknown suffix is read as plain text. Errors end this file only."""
    source = source or source_of(path)
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
        paths: Files or directories (walked recursively, sorted, filtered by ``opts.include``/``exclude``).
        opts: Reader options; defaults to :class:`ReaderOptions()`.
        issues: Collects skipped/repaired input (missing paths, binary files, malformed lines, ...).
    """
    opts = opts or ReaderOptions()
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            files: Iterable[Path] = iter_files(path, opts, issues)
        elif path.exists():
            files = [path]
        else:
            if issues is not None:
                issues.add(source_of(path), "", "not_found", "no such file or directory")
            continue
        for file in files:
            if issues is not None:
                issues.files += 1
            yield from read_file(file, opts, issues)
