"""Arrow schemas of the tables :mod:`revs_engine` produces for probes and audits, declared once (DESIGN §2).

Offers :data:`PROBES_SCHEMA` (one row per probed finding, :class:`revs_engine.probes.ProbeResult`),
:data:`TARGETS_SCHEMA` (one row per token an erase edited, :class:`revs_engine.erase.TargetOutcome` plus the
finding it belongs to) and :data:`AUDIT_SCHEMA` (one row per target × metric × stage,
:class:`revs_engine.audit.AuditRow`).

No column holds a raw value or token ids (ids decode to the value): only counts, ranks and verdicts.
"""

from __future__ import annotations

import pyarrow as pa

PROBES_SCHEMA = pa.schema(
    [
        pa.field("finding_id", pa.string()),
        pa.field("prefix_tokens", pa.int64()),  # number of prefix tokens fed (after explicit truncation)
        pa.field("target_tokens", pa.int64()),  # number of target tokens
        pa.field("prefix_truncated", pa.bool_()),  # True when the prefix was cut to ``max_prefix_tokens``
        pa.field("exact_match", pa.bool_()),  # greedy decoding emits exactly the target ids
        pa.field("first_mismatch", pa.int64()),  # first target position where greedy differs; -1 if none
        pa.field("target_token_ranks", pa.list_(pa.int64())),  # teacher-forced rank per target token (0 = top)
        pa.field("extraction_score", pa.float64()),  # fraction of target tokens greedy-predicted (teacher forced)
        pa.field("memorized", pa.bool_()),
    ],
    metadata={"name": "probes", "version": "1"},
)

AUDIT_SCHEMA = pa.schema(
    [
        pa.field("target_id", pa.string()),  # a finding id, or "*" for a metric aggregated over targets
        pa.field("stage", pa.string()),  # "before" | "after"
        pa.field("metric", pa.string()),
        pa.field("k", pa.int64()),  # null for metrics without a rank cap (specificity, perplexity)
        pa.field("score", pa.float64()),
        pa.field("passed", pa.bool_()),  # null when no threshold applies
    ],
    metadata={"name": "audit", "version": "1"},
)

TARGETS_SCHEMA = pa.schema(
    [
        pa.field("finding_id", pa.string()),  # the erased finding (the first of its value-and-context copies)
        pa.field("masked_preview", pa.string()),
        pa.field("value_hmac", pa.string()),
        pa.field("entity_type", pa.string()),
        pa.field("position", pa.int64()),  # index of the edited token within the value's tokens
        pa.field("rank_before", pa.int64()),  # final-layer rank of the token before the erase (0 = top)
        pa.field("rank_after", pa.int64()),  # right after its own edit
        pa.field("rank_final", pa.int64()),  # after the whole erase (later edits can re-promote it)
        pa.field("converged", pa.bool_()),  # left the top ranks (REVS: the residual window's bottom)
    ],
    metadata={"name": "targets", "version": "1"},
)
