"""Re-read documents (and spans) named by findings, checking that the corpus did not change.

Offers :func:`read_documents` (one pass over a file for many doc_keys), :func:`read_document` and
:func:`read_span`. The reader options a document needs (line mode, JSONL key path, column) are recovered from the
doc_key itself (grammar in :mod:`pii_detect.readers.base`), so ``(source, doc_key)`` is enough.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from pii_detect.config import ReaderOptions
from pii_detect.errors import CorpusChangedError, CorpusReadError, DocumentNotFoundError
from pii_detect.readers.base import doc_sha256, parse_key
from pii_detect.readers.discover import read_file


def _options_for(doc_key: str) -> tuple[str, ReaderOptions]:
    """Return a grouping key and the reader options that produce ``doc_key``."""
    kind, _, params = parse_key(doc_key)
    if kind == "file":
        return "file", ReaderOptions(line_mode=False)
    if kind == "line":
        return "line", ReaderOptions(line_mode=True)
    if kind == "jsonl" and "field" in params:
        return f"jsonl:{params['field']}", ReaderOptions(jsonl_field=params["field"])
    if kind in {"csv", "parquet"} and "col" in params:
        return kind, ReaderOptions(text_columns=(params["col"],))
    raise ValueError(f"doc_key {doc_key!r} is not one this library writes (file, line:N, jsonl:line=N:field=F, "
                     "csv:row=N:col=C, parquet:row=N:col=C).")


def read_documents(source: str | Path, doc_keys: Iterable[str]) -> dict[str, str]:
    """Return ``{doc_key: text}`` for the given keys of one source file, reading it once per key family.

    Raises:
        CorpusReadError: The file does not exist or cannot be read.
        DocumentNotFoundError: A key names no document in the file (the corpus changed or the key is wrong).
    """
    path = Path(source)
    if not path.is_file():
        raise CorpusReadError(f"{source}: corpus file not found; was it moved since the scan?")
    groups: dict[str, tuple[ReaderOptions, set[str]]] = {}
    for key in doc_keys:
        group, opts = _options_for(key)
        if group in groups:
            prev, keys = groups[group]
            if prev.text_columns != opts.text_columns and group in {"csv", "parquet"}:
                opts = ReaderOptions(text_columns=tuple(dict.fromkeys(prev.text_columns + opts.text_columns)))
            groups[group] = (opts, keys | {key})
        else:
            groups[group] = (opts, {key})
    found: dict[str, str] = {}
    for opts, keys in groups.values():
        missing = set(keys)
        for doc in read_file(path, opts, None, source=str(source)):
            if doc.doc_key in missing:
                found[doc.doc_key] = doc.text
                missing.discard(doc.doc_key)
                if not missing:
                    break
        if missing:
            raise DocumentNotFoundError(f"{source}: no document {sorted(missing)[:5]}; the corpus changed since "
                                        "the scan or the file is damaged — rescan it.")
    return found


def read_document(source: str | Path, doc_key: str, *, expected_sha256: str | None = None) -> str:
    """Return the full text of document ``doc_key`` in ``source``.

    Args:
        source: The findings' ``source`` (a file path).
        doc_key: The findings' ``doc_key``.
        expected_sha256: The findings' ``doc_sha256``; when given, a mismatch raises.

    Raises:
        CorpusChangedError: The document's sha256 differs from ``expected_sha256``.
        DocumentNotFoundError, CorpusReadError: See :func:`read_documents`.
    """
    text = read_documents(source, [doc_key])[doc_key]
    if expected_sha256 is not None and doc_sha256(text) != expected_sha256:
        raise CorpusChangedError(f"{source} [{doc_key}]: document changed since the scan (sha256 differs); "
                                 "rescan the corpus before probing or editing.")
    return text


def read_span(source: str | Path, doc_key: str, start: int, end: int, *,
              expected_sha256: str | None = None) -> str:
    """Return ``text[start:end]`` of a document (the raw value of a finding; keep it in memory only).

    Raises:
        CorpusChangedError: The document changed since the scan, or the span lies outside it.
    """
    text = read_document(source, doc_key, expected_sha256=expected_sha256)
    if not 0 <= start <= end <= len(text):
        raise CorpusChangedError(f"{source} [{doc_key}]: span [{start}, {end}) outside the document "
                                 f"({len(text)} characters); rescan the corpus.")
    return text[start:end]


def group_by_source(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Group ``(source, doc_key)`` pairs by source, e.g. to batch :func:`read_documents` calls."""
    out: dict[str, list[str]] = defaultdict(list)
    for source, key in pairs:
        out[source].append(key)
    return dict(out)
