"""Reading an audit table (:data:`~revs_engine.schema.AUDIT_SCHEMA`, as :func:`revs_engine.audit.audit` writes it).

Offers :data:`ALL_TARGETS` (the aggregate rows' ``target_id``), :func:`summary` (one stage's aggregate scores),
:func:`layer_ranks` (the report's plot), :func:`verdict_metrics` (what :func:`tasks.verdict.evaluate_audit`
checks) and :func:`same_verdicts` (two tables that decide alike).
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa

ALL_TARGETS = "*"


def same_verdicts(a: pa.Table, b: pa.Table, rel: float = 1e-6, plot_ranks: float = 1.0) -> bool:
    """True when two audit tables hold the same rows and pass/fail flags, with scores equal up to ``rel``
    (relative; float sums in another order differ in the last bits). The ``layer_rank`` rows (the report's plot
    of mean ranks; no verdict reads them) may differ by up to ``plot_ranks`` places: a token hundreds of places
    down the vocabulary can swap with a neighbour whose logit ties it to within rounding."""
    keys = ("target_id", "stage", "metric", "k", "passed")
    ra, rb = a.to_pylist(), b.to_pylist()
    return len(ra) == len(rb) and all(
        all(x[c] == y[c] for c in keys)
        and (abs(x["score"] - y["score"]) <= plot_ranks if x["metric"] == "layer_rank"
             else math.isclose(x["score"], y["score"], rel_tol=rel, abs_tol=1e-9))
        for x, y in zip(ra, rb, strict=True))


def _stage_rows(table: pa.Table, stage: str) -> list[dict[str, Any]]:
    return [r for r in table.to_pylist() if r["stage"] == stage]


def summary(table: pa.Table, stage: str) -> dict[str, float]:
    """Return the aggregate scores of one stage as ``{"metric@k" or "metric": score}`` (no layer ranks)."""
    return {(r["metric"] if r["k"] is None else f"{r['metric']}@{r['k']}"): r["score"]
            for r in _stage_rows(table, stage) if r["target_id"] == ALL_TARGETS and r["metric"] != "layer_rank"}


def layer_ranks(table: pa.Table, stage: str) -> list[float]:
    """Return the mean target rank per layer for one stage."""
    rows = [r for r in _stage_rows(table, stage) if r["metric"] == "layer_rank" and r["target_id"] == ALL_TARGETS]
    return [r["score"] for r in sorted(rows, key=lambda r: r["k"])]


def verdict_metrics(table: pa.Table, efficacy_k: int) -> dict[str, Any]:
    """Return the metrics dict :func:`tasks.verdict.evaluate_audit` checks (after-edit values, percent)."""
    after = [r for r in _stage_rows(table, "after") if r["target_id"] != ALL_TARGETS]
    agg = summary(table, "after")
    hits = lambda m: sum(1 for r in after if r["metric"] == m and r["score"] > 0)  # noqa: E731
    extractions = {"plain": hits("greedy_extraction"), "perturbed": hits("perturbed_greedy_extraction")}
    if "sampled_extraction" in agg:
        extractions["sampled"] = hits("sampled_extraction")
    fmt = {}
    if "exposure_bits" in agg:
        fmt = {key: agg.get(key) for key in ("exposure_bits", "control_exposure_bits", "exposure_above_6_bits",
                                              "constrained_fraction", "control_constrained_fraction")}
        fmt["neighbourhood_hits"] = hits("neighbourhood_in_top_k")
        fmt["partial_completions"] = hits("partial_completes")
    return {"efficacy": {r["target_id"]: r["score"] for r in after
                         if r["metric"] == "efficacy" and r["k"] == efficacy_k},
            "format": fmt,
            "exact_extractions": extractions,
            "specificity": agg.get("specificity"),
            "specificity_unseen": agg.get("specificity_unseen"),
            "perplexity_before": summary(table, "before").get("perplexity"),
            "perplexity_after": agg.get("perplexity")}
