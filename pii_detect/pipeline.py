"""Corpus-level scanning: stream documents in partitions through one or more worker processes.

Offers :class:`ScanStats` (documents, bytes, findings per entity, read issues, elapsed time), :func:`partition`
(documents -> bounded batches), :func:`run_detector` (any picklable detector factory over a corpus, in order,
with at most ``2 * workers`` partitions in flight so memory stays bounded), :func:`scan_corpus` (streaming
findings batches), :func:`collect_findings` and :func:`scan_corpus_table` (one findings table).
"""

from __future__ import annotations

import functools
import logging
import multiprocessing as mp
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from pii_detect.config import ReaderOptions, ScanConfig
from pii_detect.findings import PiiFinding, findings_to_table
from pii_detect.readers import Document, IssueLog, iter_documents
from pii_detect.scanner import Scanner

logger = logging.getLogger(__name__)
ProgressFn = Callable[[int, int], None]


@dataclass(slots=True)
class ScanStats:
    """What a corpus scan did. Holds counts and issue locations only, never corpus content."""

    documents: int = 0
    bytes: int = 0
    findings: Counter = field(default_factory=Counter)
    issues: IssueLog = field(default_factory=IssueLog)
    elapsed_s: float = 0.0

    @property
    def files(self) -> int:
        """Return the number of files opened."""
        return self.issues.files


def partition(docs: Iterable[Document], max_docs: int = 256, max_bytes: int = 4 << 20) -> Iterator[list[Document]]:
    """Group documents into partitions of at most ``max_docs`` documents / about ``max_bytes`` bytes."""
    batch: list[Document] = []
    size = 0
    for doc in docs:
        batch.append(doc)
        size += doc.nbytes
        if len(batch) >= max_docs or size >= max_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


_WORKER_DETECTOR = None


def _init_worker(factory: Callable[[], object]) -> None:
    global _WORKER_DETECTOR  # noqa: PLW0603 - one detector per worker process, built once
    _WORKER_DETECTOR = factory()


def _detect(batch: list[Document]) -> tuple[list[PiiFinding], int, int]:
    return _WORKER_DETECTOR.scan_documents(batch), len(batch), sum(d.nbytes for d in batch)


def _mp_context():
    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods else "spawn")


def run_detector(
    docs: Iterable[Document],
    factory: Callable[[], object],
    *,
    workers: int = 1,
    stats: ScanStats | None = None,
    progress: ProgressFn | None = None,
    max_docs: int = 256,
) -> Iterator[list[PiiFinding]]:
    """Yield findings batches, in corpus order, from ``factory()``'s ``scan_documents`` over partitions.

    Args:
        docs: Documents to scan (a stream).
        factory: Picklable zero-argument callable building the detector (once per worker process).
        workers: Processes; 1 scans in this process.
        stats: Filled in while scanning.
        progress: Called with ``(documents, bytes)`` deltas after each partition.
        max_docs: Documents per partition.
    """
    stats = stats if stats is not None else ScanStats()
    started = time.perf_counter()

    def account(findings: list[PiiFinding], ndocs: int, nbytes: int) -> list[PiiFinding]:
        stats.documents += ndocs
        stats.bytes += nbytes
        stats.findings.update(f.entity_type for f in findings)
        stats.elapsed_s = time.perf_counter() - started
        if progress is not None:
            progress(ndocs, nbytes)
        return findings

    parts = partition(docs, max_docs=max_docs)
    if workers <= 1:
        detector = factory()
        for batch in parts:
            yield account(detector.scan_documents(batch), len(batch), sum(d.nbytes for d in batch))
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context(), initializer=_init_worker,
                             initargs=(factory,)) as pool:
        pending: deque = deque()
        for batch in parts:
            pending.append(pool.submit(_detect, batch))
            if len(pending) >= 2 * workers:
                yield account(*pending.popleft().result())
        while pending:
            yield account(*pending.popleft().result())


def scan_corpus(
    paths: Iterable[str | Path],
    key: bytes,
    config: ScanConfig | None = None,
    reader: ReaderOptions | None = None,
    *,
    workers: int = 1,
    stats: ScanStats | None = None,
    progress: ProgressFn | None = None,
    select: Callable[[Iterator[Document]], Iterator[Document]] | None = None,
) -> Iterator[list[PiiFinding]]:
    """Scan a corpus for PII and yield findings batches (streaming; memory independent of corpus size).

    Args:
        paths: Corpus files/directories.
        key: HMAC key bytes (the CLI passes ``tasks._workspace.hmac_key()``).
        config: What to look for; defaults to the structured identifiers.
        reader: How files become documents.
        workers: Worker processes.
        stats: Filled with counts and read issues (bad input is recorded there, never raised).
        progress: ``(documents, bytes)`` callback.
        select: Filters the document stream before analysis (:mod:`pii_detect.incremental` skips texts it knows).
    """
    stats = stats if stats is not None else ScanStats()
    config = config or ScanConfig()
    docs = iter_documents(paths, reader or ReaderOptions(), stats.issues)
    docs = select(docs) if select is not None else docs
    factory = functools.partial(Scanner, config, key)
    yield from run_detector(docs, factory, workers=workers, stats=stats, progress=progress)


def collect_findings(batches: Iterable[list[PiiFinding]]) -> pa.Table:
    """Return one findings table from streamed batches, converting each to Arrow as it arrives (compact)."""
    tables = [findings_to_table(b) for b in batches if b]
    return pa.concat_tables(tables) if tables else findings_to_table([])


def scan_corpus_table(paths: Iterable[str | Path], key: bytes, config: ScanConfig | None = None,
                      reader: ReaderOptions | None = None, *, workers: int = 1,
                      progress: ProgressFn | None = None) -> tuple[pa.Table, ScanStats]:
    """Scan a corpus and return ``(findings table, stats)``; see :func:`scan_corpus`."""
    stats = ScanStats()
    table = collect_findings(scan_corpus(paths, key, config, reader, workers=workers, stats=stats,
                                         progress=progress))
    return table, stats
