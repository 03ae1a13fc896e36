"""Prefect tasks around :mod:`pii_detect`: scan a corpus (partition by partition), locate a data subject.

Offers :func:`partition_corpus`, :func:`scan_corpus` (one partition → findings Parquet), :func:`merge_findings`
and :func:`locate_subject` (a deletion request's subject → findings Parquet: exact and normalized variants from
:func:`pii_detect.locate_subject`, plus the Presidio findings of a scan whose ``value_hmac`` is one of the
subject's — the same keyed hash, so a value spelled differently but recognized is found too).

Every task takes and returns paths; findings carry locations, HMACs and masked previews only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from prefect import task

import pii_detect
from tasks import _io
from tasks._logging import run_logger
from tasks._workspace import hmac_key
from tasks.caching import CACHED

_LOCATION = ("source", "doc_key", "start", "end")


def _files(corpus: list[Path]) -> list[Path]:
    out = []
    for path in map(Path, corpus):
        out += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return out


@task(name="partition-corpus")
def partition_corpus(corpus: list[Path], partitions: int) -> list[list[Path]]:
    """Split the corpus into at most ``partitions`` groups of files (round robin over the sorted file list)."""
    files = _files(corpus)
    if not files:
        raise FileNotFoundError(f"no corpus file under {[str(c) for c in corpus]}")
    n = max(1, min(partitions, len(files)))
    return [files[i::n] for i in range(n)]


@task(name="scan-corpus", **CACHED)
def scan_corpus(corpus: list[Path], out: Path, entities: list[str], min_score: float) -> Path:
    """Scan files for the policy's entity types; write their findings Parquet to ``out``."""
    config = pii_detect.ScanConfig(entities=tuple(entities), min_score=min_score)
    table, stats = pii_detect.scan_corpus_table(corpus, hmac_key(), config)
    run_logger().info("scanned %d documents (%d issues): %d findings", stats.documents, stats.issues.total,
                          table.num_rows)
    return _io.write_table(table, out, pii_detect.FINDINGS_SCHEMA)


@task(name="merge-findings")
def merge_findings(parts: list[Path], out: Path) -> Path:
    """Concatenate partition findings into one table (sorted by location, duplicates dropped)."""
    tables = [_io.read_table(p, pii_detect.FINDINGS_SCHEMA) for p in parts]
    table = pa.concat_tables(tables) if tables else pii_detect.findings_to_table([])
    return _io.write_table(_dedupe(table), out, pii_detect.FINDINGS_SCHEMA)


def _dedupe(table: pa.Table) -> pa.Table:
    seen, keep = set(), []
    for i, row in enumerate(table.select(["finding_id"]).to_pylist()):
        if row["finding_id"] not in seen:
            seen.add(row["finding_id"])
            keep.append(i)
    table = table.take(pa.array(keep, pa.int64()))
    return table.sort_by([(c, "ascending") for c in _LOCATION])


@task(name="locate-subject", **CACHED)
def locate_subject(request: Path, corpus: list[Path], out: Path, scan_findings: Path | None = None) -> Path:
    """Find every occurrence of the request's subject; write the findings (exact + normalized + Presidio)."""
    parsed = pii_detect.parse_deletion_request(json.loads(Path(request).read_text(encoding="utf-8")))
    key = hmac_key()
    located = pii_detect.collect_findings(pii_detect.locate_subject(corpus, parsed.subject, key))
    tables = [located]
    if scan_findings is not None:
        wanted = pa.array(sorted(set(located.column("value_hmac").to_pylist()) | _subject_hmacs(parsed, key)))
        scanned = _io.read_table(scan_findings, pii_detect.FINDINGS_SCHEMA)
        tables.append(scanned.filter(pc.is_in(scanned.column("value_hmac"), value_set=wanted)))
    table = _dedupe(pa.concat_tables(tables))
    run_logger().info("located %d occurrences (%d by exact/normalized match)", table.num_rows,
                          located.num_rows)
    return _io.write_table(table, out, pii_detect.FINDINGS_SCHEMA)


def _subject_hmacs(parsed, key: bytes) -> set[str]:
    from pii_detect.normalize import ENTITY_FOR_TYPE

    return {pii_detect.value_hmac(key, ENTITY_FOR_TYPE.get(i.type, "OTHER"), i.value)
            for i in parsed.subject.all_identifiers()}
