"""Corpus readers: streaming documents out of text, JSONL, CSV/TSV, Parquet (and gzip of each), directories.

Offers :class:`Document`, :class:`ReadIssue`, :class:`IssueLog`, :func:`iter_corpus_files` (the discovery rule
shared by every entry point), :func:`iter_documents`, :func:`read_file`, :func:`read_documents`,
:func:`read_document`, :func:`read_span`, :func:`doc_sha256`, :func:`source_of`.
See :mod:`pii_detect.readers.base` for the doc_key grammar.
"""

from pii_detect.readers.base import Document, IssueLog, ReadIssue, doc_sha256, format_key, parse_key
from pii_detect.readers.discover import (
    SUPPORTED_SUFFIXES,
    iter_corpus_files,
    iter_documents,
    iter_files,
    read_file,
    source_of,
)
from pii_detect.readers.lookup import group_by_source, read_document, read_documents, read_span

__all__ = [
    "SUPPORTED_SUFFIXES",
    "Document",
    "IssueLog",
    "ReadIssue",
    "doc_sha256",
    "format_key",
    "group_by_source",
    "iter_corpus_files",
    "iter_documents",
    "iter_files",
    "parse_key",
    "read_document",
    "read_documents",
    "read_file",
    "read_span",
    "source_of",
]
