"""Tasks that read a deletion request's corpus once more, to record what was read and what was found.

Offers
- :func:`inspect_corpus` — one read pass without detection: documents, bytes and the read issues (kinds, counts
  and the first examples: locations only, never content), written as JSON; a deletion request records it so that
  issues and an empty corpus show in its state and its report;
- :func:`located_evidence` — what the ``located`` step records: findings count, corpus inspection, and a loud
  warning when nothing was found.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks import _io
from tasks._logging import run_logger
from tasks.errors import CorpusPathError
from tasks.redaction import redact_failures

#: Issue examples kept in the record (the counts cover every issue).
MAX_EXAMPLES = 20


@task(name="inspect-corpus", cache_policy=NO_CACHE, persist_result=False)
@redact_failures
def inspect_corpus(corpus: list[Path], out: Path, follow_symlinks: bool = False) -> dict[str, Any]:
    """Read the corpus once (no detection), as the scan reads it; write and return documents, bytes and read
    issues (no content).

    Returns:
        ``{"documents", "files", "bytes", "issues": {kind: count}, "issues_total", "issue_examples", "path"}``.
    """
    import pii_detect

    issues = pii_detect.IssueLog(max_examples=MAX_EXAMPLES)
    documents = size = 0
    options = pii_detect.ReaderOptions(follow_symlinks=follow_symlinks)
    for doc in pii_detect.iter_documents(corpus, options, issues):
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
