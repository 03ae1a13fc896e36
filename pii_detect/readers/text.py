"""Plain-text and JSONL readers (streaming line by line; a file-per-document text is read whole).

Offers :func:`read_text_file` (``file`` or ``line:N`` documents) and :func:`read_jsonl_file`
(``jsonl:line=N:field=PATH`` documents). Both skip and record bad input instead of raising mid-corpus.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from pii_detect.config import ReaderOptions
from pii_detect.readers.base import (
    Document,
    IssueLog,
    decode,
    format_key,
    is_binary,
    note_length,
    open_binary,
)


def _strip_newline(raw: bytes) -> bytes:
    if raw.endswith(b"\n"):
        raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
    return raw


def _sniff(fh, source: str, issues: IssueLog | None) -> bool:
    """Peek the head of a file; record and return False for empty or binary files."""
    head = fh.peek(8192)[:8192] if hasattr(fh, "peek") else b""
    if not head:
        if issues is not None:
            issues.add(source, "", "empty", "file has no content")
        return False
    if is_binary(head):
        if issues is not None:
            issues.add(source, "", "binary", "NUL bytes in the first 8 KiB; skipped")
        return False
    return True


def read_text_file(
    path: Path, source: str, opts: ReaderOptions, gz: bool, issues: IssueLog | None = None
) -> Iterator[Document]:
    """Yield the documents of a plain-text file: the whole file, or one per non-empty line in line mode."""
    with open_binary(path, gz) as fh:
        if not _sniff(fh, source, issues):
            return
        if not opts.line_mode:
            raw = fh.read()
            text = decode(raw, issues, source, "")
            note_length(text, issues, source, "")
            if text.strip():
                yield Document(source, "file", text, len(raw))
            elif issues is not None:
                issues.add(source, "", "empty", "only whitespace")
            return
        for lineno, raw in enumerate(fh, 1):
            raw = _strip_newline(raw)
            if not raw.strip():
                continue
            location = f"line {lineno}"
            text = decode(raw, issues, source, location)
            note_length(text, issues, source, location)
            yield Document(source, format_key("line", lineno), text, len(raw))


def lookup_path(record: object, key_path: str) -> object:
    """Return the value at a dotted key path in nested dicts (list indices allowed), or None when absent."""
    node = record
    for part in key_path.split("."):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
        if node is None:
            return None
    return node


def read_jsonl_file(
    path: Path, source: str, opts: ReaderOptions, gz: bool, issues: IssueLog | None = None
) -> Iterator[Document]:
    """Yield one document per JSONL record: the string at ``opts.jsonl_field``. Bad lines are skipped."""
    field_path = opts.jsonl_field
    with open_binary(path, gz) as fh:
        if not _sniff(fh, source, issues):
            return
        for lineno, raw in enumerate(fh, 1):
            raw = _strip_newline(raw)
            if not raw.strip():
                continue
            location = f"line {lineno}"
            line = decode(raw, issues, source, location)
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                if issues is not None:
                    issues.add(source, location, "malformed_json", f"{exc.msg} at column {exc.colno}; skipped")
                continue
            value = lookup_path(record, field_path)
            if value is None:
                if issues is not None:
                    issues.add(source, location, "missing_field", f"no '{field_path}'; skipped")
                continue
            if not isinstance(value, str):
                if issues is not None:
                    issues.add(source, location, "not_text", f"'{field_path}' is {type(value).__name__}; skipped")
                continue
            if not value.strip():
                continue
            note_length(value, issues, source, location)
            yield Document(source, format_key("jsonl", line=lineno, field=field_path), value, len(raw))
