"""Prefect tasks around :mod:`pii_detect`: scan a corpus (partition by partition), locate a data subject.

Offers :func:`partition_corpus`, :func:`scan_index_path` (where a corpus's scan index lives),
:func:`scan_corpus` (one partition → findings Parquet; with an index, only documents whose text it does not hold
are analysed), :func:`merge_findings`, :func:`merge_index` (the partitions' index parts → the corpus's new index)
and :func:`locate_subject` (a deletion request's subject → findings Parquet: exact and normalized variants from
:func:`pii_detect.locate_subject`, plus the Presidio findings of a scan whose ``value_hmac`` is one of the
subject's — the same keyed hash, so a value spelled differently but recognized is found too).

Every task takes and returns paths; findings carry locations, HMACs and masked previews only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from prefect import task

import pii_detect
from pii_detect.incremental import INDEX_SCHEMA
from tasks import _io
from tasks._logging import run_logger
from tasks._workspace import hmac_key, workspace_dir
from tasks.caching import CACHED
from tasks.redaction import redact_failures

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


def _scan_config(entities: list[str], min_score: float, phone_regions: list[str] | None) -> pii_detect.ScanConfig:
    regions = {"phone_regions": tuple(phone_regions)} if phone_regions else {}
    return pii_detect.ScanConfig(entities=tuple(entities), min_score=min_score, **regions)


@task(name="scan-index-path")
@redact_failures
def scan_index_path(corpus: list[Path], entities: list[str], min_score: float,
                    phone_regions: list[str] | None = None) -> Path:
    """Return where this corpus's scan index lives in the workspace: one per corpus (its resolved paths) and
    scan fingerprint (:func:`pii_detect.incremental.scan_fingerprint`): a changed policy or recognizer starts
    over."""
    from pii_detect.incremental import scan_fingerprint

    fingerprint = scan_fingerprint(_scan_config(entities, min_score, phone_regions), hmac_key())
    paths = sorted(str(Path(c).resolve()) for c in corpus)
    digest = hashlib.sha256(json.dumps([fingerprint, paths]).encode()).hexdigest()[:32]
    return workspace_dir("scan-index") / f"{digest}.parquet"


@task(name="scan-corpus", **CACHED)
@redact_failures
def scan_corpus(corpus: list[Path], out: Path, entities: list[str], min_score: float,
                phone_regions: list[str] | None = None, index: Path | None = None,
                index_out: Path | None = None) -> Path:
    """Scan files for the policy's entity types (phone numbers of ``phone_regions``, default: the library's
    :data:`pii_detect.config.DEFAULT_PHONE_REGIONS`); write their findings Parquet to ``out``.

    ``index``: a scan index (:func:`scan_index_path`; absent on the first scan): documents whose text it holds are
    not analysed, their findings are carried over (the same rows a full scan writes). ``index_out``: write this
    partition's part of the next index there (every document read, with its findings).
    """
    from pii_detect.incremental import IncrementalStats, ScanIndex, build_index, scan_corpus_incremental

    config = _scan_config(entities, min_score, phone_regions)
    known = ScanIndex(_io.read_table(index, INDEX_SCHEMA)) if index is not None and Path(index).is_file() \
        else ScanIndex()
    stats = IncrementalStats()
    table = pii_detect.collect_findings(scan_corpus_incremental(corpus, hmac_key(), known, config, stats=stats))
    run_logger().info("scanned %d documents (%d analysed, %d unchanged since the last scan; %d issues): "
                      "%d findings", stats.documents, stats.analysed, stats.carried, stats.issues.total,
                      table.num_rows)
    _log_issues(stats.issues, "scan")
    if index_out is not None:
        _io.write_table(build_index(table, stats.shas), index_out, INDEX_SCHEMA)
    return _io.write_table(table, out, pii_detect.FINDINGS_SCHEMA)


@task(name="merge-findings")
@redact_failures
def merge_findings(parts: list[Path], out: Path) -> Path:
    """Concatenate partition findings into one table (sorted by location, duplicates dropped)."""
    tables = [_io.read_table(p, pii_detect.FINDINGS_SCHEMA) for p in parts]
    table = pa.concat_tables(tables) if tables else pii_detect.findings_to_table([])
    return _io.write_table(_dedupe(table), out, pii_detect.FINDINGS_SCHEMA)


@task(name="merge-index")
@redact_failures
def merge_index(parts: list[Path], out: Path) -> Path:
    """Write the corpus's next scan index from the partitions' parts (atomically, replacing the previous one: the
    index holds what the latest scan read, so it stays the corpus's size)."""
    table = pa.concat_tables([_io.read_table(p, INDEX_SCHEMA) for p in parts])
    seen: set[str] = set()
    first = [i for i, sha in enumerate(table.column("doc_sha256").to_pylist())
             if not (sha in seen or seen.add(sha))]  # one row per distinct text (partitions may share one)
    table = table.take(pa.array(first, pa.int64()))
    run_logger().info("scan index: %d distinct documents", table.num_rows)
    return _io.write_table(table, out, INDEX_SCHEMA)


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
