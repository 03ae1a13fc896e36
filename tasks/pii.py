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
from tasks.requests import redact_failures

_LOCATION = ("source", "doc_key", "start", "end")


@task(name="partition-corpus")
@redact_failures
def partition_corpus(corpus: list[Path], partitions: int, follow_symlinks: bool = False) -> list[list[Path]]:
    """Split the corpus's files into at most ``partitions`` groups (round robin over the discovered files).

    Files are found by the library's one discovery rule (:func:`pii_detect.readers.iter_corpus_files`: hidden
    entries, unknown suffixes in directories, FIFOs/devices and symlinks leading out of a corpus directory are
    skipped, the last unless ``follow_symlinks``); what was skipped is logged by kind and path.
    """
    from pii_detect.readers import IssueLog, iter_corpus_files

    issues = IssueLog()
    files = list(iter_corpus_files(corpus, pii_detect.ReaderOptions(follow_symlinks=follow_symlinks), issues))
    _log_issues(issues, "corpus discovery")
    if not files:
        skipped = ", ".join(f"{k}={v}" for k, v in sorted(issues.counts.items())) or "nothing there"
        raise FileNotFoundError(f"no corpus file under {[str(c) for c in corpus]} ({skipped}); name existing "
                                "files or directories holding supported file types")
    n = max(1, min(partitions, len(files)))
    return [files[i::n] for i in range(n)]


def _log_issues(issues, what: str) -> None:
    """Log skipped/repaired input by kind, with the first few locations (paths and positions, never content)."""
    if not issues.total:
        return
    log = run_logger()
    log.warning("%s: %d skipped or repaired input(s): %s", what, issues.total,
                ", ".join(f"{k}={v}" for k, v in sorted(issues.counts.items())))
    for issue in issues.examples[:10]:
        log.warning("  %s", issue)


@task(name="scan-corpus", **CACHED)
@redact_failures
def scan_corpus(corpus: list[Path], out: Path, entities: list[str], min_score: float,
                phone_regions: list[str] | None = None) -> Path:
    """Scan files for the policy's entity types (phone numbers of ``phone_regions``, default: the library's
    :data:`pii_detect.config.DEFAULT_PHONE_REGIONS`); write their findings Parquet to ``out``."""
    regions = {"phone_regions": tuple(phone_regions)} if phone_regions else {}
    config = pii_detect.ScanConfig(entities=tuple(entities), min_score=min_score, **regions)
    table, stats = pii_detect.scan_corpus_table(corpus, hmac_key(), config)
    run_logger().info("scanned %d documents (%d issues): %d findings", stats.documents, stats.issues.total,
                      table.num_rows)
    _log_issues(stats.issues, "scan")
    return _io.write_table(table, out, pii_detect.FINDINGS_SCHEMA)


@task(name="merge-findings")
@redact_failures
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
@redact_failures
def locate_subject(request: Path, corpus: list[Path], out: Path, scan_findings: Path | None = None,
                   follow_symlinks: bool = False) -> Path:
    """Find every occurrence of the request's subject; write the findings (exact + normalized + Presidio).

    The corpus is read with the same discovery rule as the scan (``follow_symlinks`` as in
    :func:`partition_corpus`).
    """
    parsed = pii_detect.parse_deletion_request(json.loads(Path(request).read_text(encoding="utf-8")))
    key = hmac_key()
    stats = pii_detect.ScanStats()
    reader = pii_detect.ReaderOptions(follow_symlinks=follow_symlinks)
    located = pii_detect.collect_findings(pii_detect.locate_subject(corpus, parsed.subject, key, reader,
                                                                    stats=stats))
    _log_issues(stats.issues, "locate")
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
