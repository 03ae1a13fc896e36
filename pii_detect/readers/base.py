"""Shared reader parts: the :class:`Document` record, doc_key grammar, issue log, and byte-level helpers.

doc_key grammar (stable and self-describing, so a document can be re-read from ``(source, doc_key)`` alone):

====================================  ==========================================================================
``file``                              a plain-text file, the whole (decoded) file is the document
``line:12``                           plain text in line mode, physical line 12 (1-based), without its newline
``jsonl:line=12:field=body.text``     JSONL, physical line 12 (1-based), value at the dotted key path
``csv:row=5:col=body``                CSV/TSV (by extension), data row 5 (0-based, header excluded), column
``parquet:row=5:col=body``            Parquet, row 5 (0-based over the whole file), column
====================================  ==========================================================================

Values after ``=`` are percent-encoded (``:``, ``=``, ``%`` and non-ASCII are escaped). A ``.gz`` suffix on the
source means the file is gzip-compressed; the key is the same as for the uncompressed file. Text is decoded as
UTF-8; undecodable bytes become U+FFFD (reported as ``invalid_utf8``), so re-reading yields the same text.
``doc_sha256`` is the sha256 of the document text encoded as UTF-8 (``surrogatepass``).
"""

from __future__ import annotations

import gzip
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import quote, unquote

from pii_detect.config import SPACY_MAX_LENGTH

BINARY_SNIFF_BYTES = 8192
MAX_ISSUE_EXAMPLES = 200


@dataclass(slots=True)
class Document:
    """One document of a corpus. ``text`` is raw corpus content and never appears in ``repr``."""

    source: str
    doc_key: str
    text: str = field(repr=False)
    nbytes: int = 0

    @property
    def sha256(self) -> str:
        """Return the hex sha256 of the UTF-8 encoded text (the findings' ``doc_sha256``)."""
        return doc_sha256(self.text)


def doc_sha256(text: str) -> str:
    """Return the hex sha256 of ``text`` encoded as UTF-8 (lone surrogates passed through)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class ReadIssue:
    """Something in the corpus that was skipped, repaired or chunked. Never holds corpus content.

    Args:
        source: File path.
        location: ``line 12``, ``row 5``, ``column body`` or ``""`` for the whole file.
        kind: ``not_found``, ``unreadable``, ``binary``, ``empty``, ``invalid_utf8``, ``malformed_json``,
            ``missing_field``, ``not_text``, ``missing_column``, ``unsupported``, ``long_document``,
            ``not_regular`` (a FIFO, socket or device: never opened), ``symlink_outside`` (a link in a corpus
            directory leading out of it, refused unless ``follow_symlinks``).
        detail: What happened and what was done, e.g. ``decoded with U+FFFD``.
    """

    source: str
    location: str
    kind: str
    detail: str = ""

    def __str__(self) -> str:
        where = f"{self.source}:{self.location}" if self.location else self.source
        return f"{self.kind}: {where}" + (f" ({self.detail})" if self.detail else "")


@dataclass(slots=True)
class IssueLog:
    """Counts of read issues by kind, plus the first :data:`MAX_ISSUE_EXAMPLES` of them (bounded memory)."""

    counts: Counter = field(default_factory=Counter)
    examples: list[ReadIssue] = field(default_factory=list)
    max_examples: int = MAX_ISSUE_EXAMPLES
    files: int = 0

    def add(self, source: str, location: str, kind: str, detail: str = "") -> None:
        """Record one issue."""
        self.counts[kind] += 1
        if len(self.examples) < self.max_examples:
            self.examples.append(ReadIssue(source, location, kind, detail))

    def merge(self, other: IssueLog) -> None:
        """Add another log's counts and examples to this one."""
        self.counts.update(other.counts)
        self.files += other.files
        room = self.max_examples - len(self.examples)
        self.examples.extend(other.examples[: max(room, 0)])

    @property
    def total(self) -> int:
        """Return the number of issues recorded."""
        return sum(self.counts.values())


def format_key(kind: str, *positional: int, **params: object) -> str:
    """Return a doc_key such as ``line:12`` or ``jsonl:line=12:field=text`` (values percent-encoded)."""
    parts = [kind, *(str(p) for p in positional)]
    parts += [f"{k}={quote(str(v), safe='.-_~/ ')}" for k, v in params.items()]
    return ":".join(parts)


def parse_key(doc_key: str) -> tuple[str, list[str], dict[str, str]]:
    """Split a doc_key into ``(kind, positional, params)``; the inverse of :func:`format_key`."""
    kind, *rest = doc_key.split(":")
    positional = [p for p in rest if "=" not in p]
    params = dict(p.split("=", 1) for p in rest if "=" in p)
    return kind, positional, {k: unquote(v) for k, v in params.items()}


def logical_suffix(path: Path | str) -> tuple[str, bool]:
    """Return ``(suffix, gzipped)`` of a path: ``data.jsonl.gz`` -> ``(".jsonl", True)``."""
    name = str(path).lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    dot = name.rfind(".")
    slash = max(name.rfind("/"), name.rfind("\\"))
    return (name[dot:] if dot > slash else ""), gz


def open_binary(path: Path, gz: bool) -> IO[bytes]:
    """Open a corpus file for binary reading, transparently gunzipping."""
    return gzip.open(path, "rb") if gz else open(path, "rb")  # noqa: SIM115 - caller closes


def is_binary(head: bytes) -> bool:
    """Return True when the first bytes of a file look like binary data (a NUL byte)."""
    return b"\x00" in head[:BINARY_SNIFF_BYTES]


def decode(raw: bytes, issues: IssueLog | None, source: str, location: str) -> str:
    """Decode UTF-8, replacing bad bytes with U+FFFD and recording an ``invalid_utf8`` issue."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if issues is not None:
            issues.add(source, location, "invalid_utf8", f"bad byte at offset {exc.start}; decoded with U+FFFD")
        return raw.decode("utf-8", "replace")


def note_length(text: str, issues: IssueLog | None, source: str, location: str) -> None:
    """Record a ``long_document`` issue for texts over spaCy's limit (the scanner chunks them)."""
    if issues is not None and len(text) > SPACY_MAX_LENGTH:
        issues.add(source, location, "long_document", f"{len(text)} characters > {SPACY_MAX_LENGTH}; chunked")
