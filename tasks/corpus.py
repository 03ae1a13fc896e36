"""The corpus a run reads: checked before anything runs, fingerprinted for a request, inspected for read issues.

Offers
- :func:`check_corpus` — every path exists, is readable, and a directory holds at least one file the readers
  support; otherwise :class:`tasks.errors.CorpusPathError` (one line: which path, what is wrong, what to do).
  Flows call it before they record or register anything, the CLI before it starts a flow;
- :func:`corpus_fingerprint` — the sha256 of the sorted, resolved corpus paths (a request's state keeps this hash,
  not the paths, which can name people);
- :func:`inspect_corpus` (a task) — one read pass without detection: documents, bytes and the read issues
  (kinds, counts and the first examples: locations only, never content), written as JSON; a deletion request
  records it so that issues and an empty corpus show in its state and its report;
- :func:`located_evidence` (a task) — what the ``located`` step records: findings count, corpus inspection, and a
  loud warning when nothing was found.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks import _io
from tasks._logging import run_logger
from tasks.errors import CorpusPathError
from tasks.requests import redact_failures

#: Issue examples kept in the record (the counts cover every issue).
MAX_EXAMPLES = 20


def _supported_file_in(directory: Path) -> bool:
    from pii_detect.config import ReaderOptions
    from pii_detect.readers.discover import iter_files

    return next(iter(iter_files(directory, ReaderOptions())), None) is not None


def check_corpus(corpus: list[Path] | list[str], flag: str = "--corpus") -> list[Path]:
    """Return the corpus paths when every one can be read; refuse the first that cannot.

    Raises:
        CorpusPathError: No path given, or a path is missing, unreadable, not a file or directory, or a directory
            without any supported file.
    """
    paths = [Path(p) for p in corpus]
    if not paths:
        raise CorpusPathError(f"{flag}: no corpus path given; name the corpus files or directories.")
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise CorpusPathError(f"{flag} {path}: no such file or directory; check the path (nothing was run)."
                                  ) from None
        except OSError as exc:
            raise CorpusPathError(f"{flag} {path}: cannot be read ({exc.strerror}); check the path and its "
                                  "permissions (nothing was run).") from None
        is_dir = stat.S_ISDIR(mode)
        if not is_dir and not stat.S_ISREG(mode):
            raise CorpusPathError(f"{flag} {path}: not a regular file or a directory; name corpus files or "
                                  "directories (nothing was run).")
        if not os.access(path, os.R_OK | (os.X_OK if is_dir else 0)):
            raise CorpusPathError(f"{flag} {path}: permission denied; make it readable (nothing was run).")
        if is_dir and not _supported_file_in(path):
            raise CorpusPathError(f"{flag} {path}: the directory holds no corpus file (.txt/.md/.log, .jsonl, "
                                  ".csv/.tsv, .parquet, also .gz; hidden files are skipped); check the path "
                                  "(nothing was run).")
    return paths


def corpus_fingerprint(corpus: list[Path] | list[str]) -> str:
    """Return the sha256 of the sorted, resolved corpus paths (which corpus a request was answered against)."""
    resolved = sorted({str(Path(p).expanduser().resolve()) for p in corpus})
    return hashlib.sha256("\n".join(resolved).encode()).hexdigest()


@task(name="inspect-corpus", cache_policy=NO_CACHE, persist_result=False)
@redact_failures
def inspect_corpus(corpus: list[Path], out: Path) -> dict[str, Any]:
    """Read the corpus once (no detection); write and return documents, bytes and read issues (no content).

    Returns:
        ``{"documents", "files", "bytes", "issues": {kind: count}, "issues_total", "issue_examples", "path"}``.
    """
    import pii_detect

    issues = pii_detect.IssueLog(max_examples=MAX_EXAMPLES)
    documents = size = 0
    for doc in pii_detect.iter_documents(corpus, pii_detect.ReaderOptions(), issues):
        documents += 1
        size += doc.nbytes
    record = {"documents": documents, "files": issues.files, "bytes": size, "issues": dict(issues.counts),
              "issues_total": issues.total, "issue_examples": [str(i) for i in issues.examples]}
    _io.atomic_write_text(out, json.dumps(record, indent=2, sort_keys=True) + "\n")
    run_logger().info("corpus: %d documents in %d files, %d read issues", documents, issues.files, issues.total)
    return {**record, "path": str(out)}


@task(name="located-evidence", cache_policy=NO_CACHE, persist_result=False)
@redact_failures
def located_evidence(findings: Path, inspection: dict[str, Any]) -> dict[str, Any]:
    """Return what the ``located`` step records: the findings, their count, the corpus inspection, warnings.

    Raises:
        CorpusPathError: No document could be read from the corpus at all.
    """
    import pyarrow.parquet as pq

    if not inspection["documents"]:
        raise CorpusPathError(f"no document could be read from the corpus ({inspection['issues_total']} read "
                              f"issues: {', '.join(inspection['issue_examples'][:3]) or 'none'}); check the "
                              "corpus paths and file types, then re-run the request.")
    n = pq.read_metadata(findings).num_rows
    warnings = []
    if n == 0:
        warnings.append(f"NO OCCURRENCE of the subject was found in {inspection['documents']} documents: nothing "
                        "was erased. If the subject should be in this corpus, check the corpus paths and re-run "
                        "the request deliberately (revs forget --rerun).")
    if inspection["issues_total"]:
        warnings.append(f"{inspection['issues_total']} corpus read issue(s) "
                        f"({', '.join(f'{k}={v}' for k, v in sorted(inspection['issues'].items()))}): parts of "
                        "the corpus were skipped; see corpus_issues.json.")
    for line in warnings:
        run_logger().warning(line)
    return {"findings": str(findings), "n_findings": n,
            "corpus": {k: inspection[k] for k in ("documents", "files", "bytes", "issues", "issues_total",
                                                  "issue_examples", "path")},
            "warnings": warnings}
