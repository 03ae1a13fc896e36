"""Incremental scanning: scan only documents whose content the previous scan has not seen.

A document's findings depend on its text and the scan's configuration alone, so they can be keyed by content.
Offers :data:`INDEX_SCHEMA` (one row per distinct document text: its sha256 and its spans — offsets, entity,
score, recognizer, value HMAC, masked preview; never the text or a value), :func:`scan_fingerprint` (what the
findings of a text depend on besides the text: configuration, recognizer library version, HMAC key),
:class:`ScanIndex` (lookup by document sha256), :func:`build_index` (findings of a scan + the sha256 of every
document it read -> the index) and :func:`scan_corpus_incremental` (like :func:`pii_detect.scan_corpus`, but a
document whose text is in the index is not analysed: its findings are carried over, re-located to where the
document is now).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path

import pyarrow as pa

from pii_detect.config import ReaderOptions, ScanConfig
from pii_detect.findings import PiiFinding, make_finding_id
from pii_detect.pipeline import ProgressFn, ScanStats, scan_corpus
from pii_detect.readers import Document

#: Bump when a change to the recognizers changes what a text yields (invalidates every stored index).
RULES_VERSION = 1

_SPAN = pa.struct([pa.field("start", pa.int64()), pa.field("end", pa.int64()),
                   pa.field("entity_type", pa.string()), pa.field("score", pa.float64()),
                   pa.field("recognizer", pa.string()), pa.field("value_hmac", pa.string()),
                   pa.field("masked_preview", pa.string())])
INDEX_SCHEMA = pa.schema([pa.field("doc_sha256", pa.string()), pa.field("spans", pa.list_(_SPAN))],
                         metadata={"name": "scan_index", "version": "1"})
_SPAN_FIELDS = tuple(f.name for f in _SPAN)


def scan_fingerprint(config: ScanConfig, key: bytes) -> str:
    """Return a hex digest of everything a text's findings depend on besides the text: the configuration, the
    recognizer libraries' versions, :data:`RULES_VERSION` and the HMAC key (as a keyed tag, not the key)."""
    doc = {"config": dataclasses.asdict(config), "rules": RULES_VERSION,
           "libraries": {name: _version(name) for name in ("presidio-analyzer", "phonenumbers", "spacy")},
           "key": hmac.new(key, b"pii_detect.scan_index", hashlib.sha256).hexdigest()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


class ScanIndex:
    """What a previous scan found in each distinct document text (read-only lookup by sha256)."""

    def __init__(self, table: pa.Table | None = None) -> None:
        self._spans: dict[str, list[dict]] = {}
        if table is not None:
            for row in table.select(["doc_sha256", "spans"]).to_pylist():
                self._spans[row["doc_sha256"]] = row["spans"] or []

    def __contains__(self, sha: str) -> bool:
        return sha in self._spans

    def findings(self, doc: Document, sha: str) -> list[PiiFinding]:
        """Return the indexed findings of a document whose text hashes to ``sha``, located at ``doc``."""
        return [PiiFinding(finding_id=make_finding_id(doc.source, doc.doc_key, s["start"], s["end"],
                                                      s["entity_type"]),
                           source=doc.source, doc_key=doc.doc_key, doc_sha256=sha, **s)
                for s in self._spans[sha]]


def build_index(findings: pa.Table, documents: Iterable[str]) -> pa.Table:
    """Return the :data:`INDEX_SCHEMA` table of a scan: every document sha256 it read (``documents``; texts without
    findings included, so they are skipped next time too) with the spans ``findings`` holds for it."""
    spans: dict[str, dict[tuple, dict]] = {sha: {} for sha in documents}
    for row in findings.select(["doc_sha256", *_SPAN_FIELDS]).to_pylist():
        sha = row.pop("doc_sha256")
        spans.setdefault(sha, {})[(row["start"], row["end"], row["entity_type"])] = row
    shas = sorted(spans)
    return pa.Table.from_pydict(
        {"doc_sha256": shas,
         "spans": [sorted(spans[s].values(), key=lambda r: (r["start"], r["end"], r["entity_type"]))
                   for s in shas]}, schema=INDEX_SCHEMA)


@dataclasses.dataclass(slots=True)
class IncrementalStats(ScanStats):
    """:class:`~pii_detect.pipeline.ScanStats` plus what was carried over: ``documents`` counts every document
    read, ``analysed`` those the scanner ran on, ``carried`` those whose findings came from the index."""

    analysed: int = 0
    carried: int = 0
    shas: set[str] = dataclasses.field(default_factory=set)


def scan_corpus_incremental(paths: Iterable[str | Path], key: bytes, index: ScanIndex,
                            config: ScanConfig | None = None, reader: ReaderOptions | None = None, *,
                            workers: int = 1,
                            stats: IncrementalStats | None = None,
                            progress: ProgressFn | None = None) -> Iterator[list[PiiFinding]]:
    """Scan a corpus, analysing only documents whose text ``index`` does not hold (it must come from a scan with
    the same :func:`scan_fingerprint`); yield findings batches. The findings equal a full scan's: a carried
    document's spans are those the same text yielded before, re-located to its current source and key.
    ``stats.shas`` collects every document's sha256 (for :func:`build_index`)."""
    stats = stats if stats is not None else IncrementalStats()
    carried: list[PiiFinding] = []

    def unseen(docs: Iterable[Document]) -> Iterator[Document]:
        for doc in docs:
            sha = doc.sha256
            stats.shas.add(sha)
            if sha in index:
                stats.carried += 1
                stats.documents += 1
                stats.bytes += doc.nbytes
                found = index.findings(doc, sha)
                stats.findings.update(f.entity_type for f in found)
                carried.extend(found)
                if progress is not None:
                    progress(1, doc.nbytes)
            else:
                stats.analysed += 1
                yield doc

    yield from scan_corpus(paths, key, config, reader, workers=workers, stats=stats, progress=progress,
                           select=unseen)
    if carried:
        yield carried
