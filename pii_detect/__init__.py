"""PII discovery in training corpora.

Streaming corpus readers, a Presidio-based scanner with a fast structured path, subject matching for deletion
requests, and findings as Arrow tables (DESIGN §2) that carry locations, a keyed HMAC and a masked preview —
never the raw value. The raw span is re-read on demand with :func:`read_span` / :func:`read_document`.

Public API:
    - :func:`scan_corpus`, :func:`scan_corpus_table`, :class:`Scanner`, :class:`ScanConfig`,
      :class:`ReaderOptions`, :func:`load_config`, :class:`ScanStats`, :data:`DEFAULT_PHONE_REGIONS`
    - :func:`locate_subject`, :func:`parse_deletion_request`, :class:`Subject`, :class:`SubjectMatcher`
    - :func:`iter_documents`, :func:`iter_corpus_files`, :func:`read_document`, :func:`read_documents`,
      :func:`read_span`
    - :class:`PiiFinding`, :func:`findings_to_table`, :data:`FINDINGS_SCHEMA`
    - :func:`normalize_value`, :func:`value_hmac`, :func:`mask_value`
    - errors: :class:`PiiDetectError`, :class:`CorpusChangedError`, ...

doc_key grammar and source convention: see :mod:`pii_detect.readers.base` — ``source`` is the absolute file
path; ``doc_key`` is ``file``, ``line:N``, ``jsonl:line=N:field=KEY.PATH``, ``csv:row=N:col=C`` or
``parquet:row=N:col=C``, so every reader option needed to re-read a document is in the key.
"""

from pii_detect.config import (
    DEFAULT_ENTITIES,
    DEFAULT_PHONE_REGIONS,
    NER_ENTITIES,
    STRUCTURED_ENTITIES,
    ReaderOptions,
    ScanConfig,
    load_config,
)
from pii_detect.errors import (
    ConfigError,
    CorpusChangedError,
    CorpusReadError,
    DocumentNotFoundError,
    NothingReadableError,
    PiiDetectError,
    RequestError,
)
from pii_detect.findings import PiiFinding, Span, findings_to_table, make_finding_id
from pii_detect.mask import mask_value
from pii_detect.normalize import normalize_value, value_hmac
from pii_detect.pipeline import ScanStats, collect_findings, scan_corpus, scan_corpus_table
from pii_detect.readers import (
    Document,
    IssueLog,
    ReadIssue,
    iter_corpus_files,
    iter_documents,
    read_document,
    read_documents,
    read_span,
)
from pii_detect.scanner import Scanner
from pii_detect.schema import FINDINGS_SCHEMA
from pii_detect.subjects import (
    DeletionRequest,
    Identifier,
    Subject,
    SubjectMatcher,
    locate_subject,
    parse_deletion_request,
)

__all__ = [
    "DEFAULT_ENTITIES",
    "DEFAULT_PHONE_REGIONS",
    "FINDINGS_SCHEMA",
    "NER_ENTITIES",
    "STRUCTURED_ENTITIES",
    "ConfigError",
    "DeletionRequest",
    "Identifier",
    "Subject",
    "SubjectMatcher",
    "locate_subject",
    "parse_deletion_request",
    "CorpusChangedError",
    "CorpusReadError",
    "Document",
    "DocumentNotFoundError",
    "IssueLog",
    "NothingReadableError",
    "PiiDetectError",
    "PiiFinding",
    "ReadIssue",
    "ReaderOptions",
    "RequestError",
    "ScanConfig",
    "ScanStats",
    "Scanner",
    "Span",
    "collect_findings",
    "findings_to_table",
    "iter_corpus_files",
    "iter_documents",
    "load_config",
    "make_finding_id",
    "mask_value",
    "normalize_value",
    "read_document",
    "read_documents",
    "read_span",
    "scan_corpus",
    "scan_corpus_table",
    "value_hmac",
]
