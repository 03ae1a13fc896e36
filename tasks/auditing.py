"""Prefect tasks for the audit: score an edit before/after, and judge it against the policy thresholds.

Offers :func:`audit_model` (unedited + edited model directories → audit Parquet, cached on the weights and inputs),
:func:`audit_benign` (the held-out benign texts it measures perplexity on) and :func:`evaluate_audit` (audit
Parquet + thresholds → verdict, metrics before/after, per-layer ranks, attacks).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
from prefect import task

from pii_detect.schema import FINDINGS_SCHEMA
from revs_engine.audit_table import layer_ranks, summary, verdict_metrics
from revs_engine.erase_guard import GUARD_ITEMS
from revs_engine.schema import AUDIT_SCHEMA
from tasks import _io, audit_io
from tasks._logging import run_logger
from tasks._models import load_cached
from tasks.caching import CACHED
from tasks.redaction import redact_failures
from tasks.verdict import AuditThresholds
from tasks.verdict import evaluate_audit as judge

#: Attack rows shown in the report (after the edit) next to the efficacy threshold.
ATTACKS = ("logit_lens", "delta", "perturb")


@task(name="audit-model", **CACHED)
@redact_failures
def audit_model(before_dir: Path, after_dir: Path, forget: Path, retain: Path, corpus: list[Path], out: Path,
                ks: list[int], settings: dict[str, Any] | None = None, guarded: Path | None = None) -> Path:
    """Run every metric and attack on both models; write one audit table (stages ``before`` and ``after``).

    ``settings``: :meth:`tasks.verdict.AuditThresholds.settings` (sampled extraction; format-aware attacks);
    ``guarded``: the findings the edit's guard held (Specificity is also reported on the others).
    """
    from revs_engine.audit import AuditConfig
    from revs_engine.audit_formats import FormatAuditConfig

    forget_t, retain_t = _io.read_table(forget, FINDINGS_SCHEMA), _io.read_table(retain, FINDINGS_SCHEMA)
    benign = audit_benign(corpus, forget_t, retain_t)
    held = _io.read_table(guarded, FINDINGS_SCHEMA).column("finding_id").to_pylist()[:GUARD_ITEMS] \
        if guarded else ()
    settings = dict(settings or {})
    candidates = int(settings.pop("format_candidates", 0))
    cfg = AuditConfig(ks=tuple(sorted(set(ks))), formats=FormatAuditConfig(candidates=candidates), **settings)
    table = audit_io.audit_edit(load_cached(before_dir), load_cached(after_dir), forget_t, retain_t, benign, cfg,
                                audit_io.edited_positions(after_dir), held)
    run_logger().info("audit: %d rows, %d benign texts", table.num_rows, len(benign))
    return _io.write_table(table, out, AUDIT_SCHEMA)


def audit_benign(corpus: list[Path], forget: pa.Table, retain: pa.Table, *,
                 limit: int | None = audit_io.MAX_BENIGN) -> list[str]:
    """Return the held-out benign texts :func:`audit_model` measures perplexity on (raw; memory only): the audit's
    half of the corpus's documents (never the guard's), those holding a forgotten or retained finding left out,
    each text once, up to ``limit`` texts and :data:`~tasks.audit_io.MAX_BENIGN_WORDS` words (``limit=None``:
    every such text, no budget)."""
    if limit is None:
        return audit_io.benign_texts(corpus, [forget, retain], limit=sys.maxsize, half=audit_io.AUDIT_HALF)
    return audit_io.benign_texts(corpus, [forget, retain], limit=limit, half=audit_io.AUDIT_HALF,
                                 max_words=audit_io.MAX_BENIGN_WORDS)


@task(name="evaluate-audit")
@redact_failures
def evaluate_audit(audit: Path, thresholds: dict[str, Any]) -> dict[str, Any]:
    """Judge the audit; return ``{"verdict", "metrics": {"before", "after"}, "layer_ranks", "attacks"}``."""
    limits = AuditThresholds(**thresholds)
    table = _io.read_table(audit, AUDIT_SCHEMA)
    verdict = judge(verdict_metrics(table, limits.efficacy_k), limits)
    after = summary(table, "after")
    attacks = [{"name": name, "score": after[f"{name}@{limits.efficacy_k}"], "threshold": limits.min_efficacy}
               for name in ATTACKS if f"{name}@{limits.efficacy_k}" in after]
    logger = run_logger()
    logger.info("audit %s", "passed" if verdict.passed else f"FAILED: {len(verdict.failures)} criteria")
    for failure in verdict.failures:
        logger.warning("audit criterion failed: %s", failure)
    return {"verdict": verdict.to_dict(), "attacks": attacks,
            "metrics": {"before": summary(table, "before"), "after": after},
            "layer_ranks": {s: layer_ranks(table, s) for s in ("before", "after")}}
