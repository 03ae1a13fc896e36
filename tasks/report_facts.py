"""Facts for the report's first page and evidence, read from a run's evidence files (ids, counts, ranks only).

Offers :func:`evidence_facts` → ``{"found", "found_totals", "values", "erased"}``:

- ``found``: per entity type, from ``findings.parquet`` — occurrences (findings), distinct values (distinct
  ``value_hmac``), sources (files) and documents;
- ``values``: one row per *distinct* erased value (targets grouped by ``value_hmac``, so sixteen findings of one
  phone number are one row with 16 occurrences): masked preview, occurrences in the corpus, occurrences erased, the
  edited tokens with their rank before → after (``targets.parquet``), and each per-target audit metric before →
  after (``audit.parquet``), the worst case over the value's occurrences;
- ``erased``: totals — distinct values and occurrences erased, per entity type, how many values the unedited model
  generated verbatim and how many the edited one still does.

A missing evidence file leaves its part empty (a run that erased nothing has no audit); an unreadable one raises
:class:`tasks.reporting.ReportDataError`-compatible ``ValueError`` naming the file.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.report_metrics import worst

#: Per-target audit metrics that are not attack results on the value itself.
_NOT_PER_VALUE = frozenset({"layer_rank", "specificity", "perplexity"})


class EvidenceError(ValueError):
    """An evidence file exists but cannot be read as what it should be."""


def _read(path: Path | None, columns: Sequence[str]) -> list[dict[str, Any]] | None:
    if path is None or not Path(path).is_file():
        return None
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise EvidenceError(f"{Path(path).name}: not a readable Parquet file ({type(exc).__name__}); "
                            "re-run the flow step that wrote it") from None
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise EvidenceError(f"{Path(path).name}: missing column(s) {', '.join(missing)}")
    return table.select([c for c in table.column_names if c in set(columns) | {"rank_final", "converged"}]) \
        .to_pylist()


def found_by_type(findings: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Return per-entity-type counts (occurrences, distinct values, sources, documents) and the totals."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in findings:
        groups[row["entity_type"]].append(row)

    def counts(rows: list[dict[str, Any]]) -> dict[str, int]:
        return {"occurrences": len(rows), "distinct_values": len({r["value_hmac"] for r in rows}),
                "sources": len({r["source"] for r in rows}),
                "documents": len({(r["source"], r["doc_key"]) for r in rows})}

    by_type = [{"entity_type": t, **counts(rows)} for t, rows in sorted(groups.items())]
    return by_type, counts(findings)


def _tokens(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Edited token positions of one value: rank before (best over occurrences) → after (worst case)."""
    by_pos: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_pos[int(r["position"])].append(r)
    out = []
    for pos, group in sorted(by_pos.items()):
        after = [r.get("rank_final") if r.get("rank_final") is not None else r.get("rank_after") for r in group]
        out.append({"position": pos, "rank_before": min(int(r["rank_before"]) for r in group),
                    "rank_after": min(int(a) for a in after if a is not None) if any(a is not None for a in after)
                    else None,
                    "converged": all(bool(r.get("converged", True)) for r in group)})
    return out


def _metrics(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per-target audit rows of one value → ``{"metric@k": {"before", "after"}}`` (worst case per stage)."""
    by_key: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["metric"] in _NOT_PER_VALUE or r["score"] is None:
            continue
        key = r["metric"] if r["k"] is None or r["k"] < 0 else f"{r['metric']}@{r['k']}"
        by_key[key][r["stage"]].append(r["score"])
    return {key: {stage: worst(key, stages.get(stage, [])) for stage in ("before", "after")}
            for key, stages in sorted(by_key.items())}


Rows = list[dict[str, Any]]


def distinct_values(targets: Sequence[Mapping[str, Any]], findings: Rows | None, edits: Rows | None,
                    audit: Rows | None) -> Rows:
    """Group the erased targets by ``value_hmac``: one row per distinct value (see the module docstring)."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for t in targets:
        groups.setdefault(str(t.get("value_hmac") or t.get("target_id")), []).append(t)
    in_corpus: dict[str, int] = defaultdict(int)
    for row in findings or []:
        in_corpus[row["value_hmac"]] += 1
    edits_by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in edits or []:
        edits_by[row["finding_id"]].append(row)
    audit_by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in audit or []:
        audit_by[row["target_id"]].append(row)
    out = []
    for value_hmac, group in groups.items():
        ids = [str(t.get("target_id")) for t in group]
        first = group[0]
        out.append({
            "value_hmac": value_hmac, "entity_type": first.get("entity_type"),
            "masked_preview": first.get("masked_preview"),
            "occurrences": in_corpus.get(value_hmac) or len(group), "erased_occurrences": len(group),
            "audited_occurrences": sum(1 for i in ids if audit_by.get(i)),
            "tokens": _tokens([r for i in ids for r in edits_by.get(i, [])]),
            "metrics": _metrics([r for i in ids for r in audit_by.get(i, [])]),
        })
    return sorted(out, key=lambda v: (str(v["entity_type"]), -v["occurrences"], str(v["masked_preview"])))


def _verbatim(values: list[dict[str, Any]], stage: str) -> int | None:
    scores = [v["metrics"].get("greedy_extraction", {}).get(stage) for v in values]
    known = [s for s in scores if s is not None]
    return sum(1 for s in known if s > 0) if known else None


def evidence_facts(targets: Sequence[Mapping[str, Any]], evidence: Mapping[str, Path]) -> dict[str, Any]:
    """Read ``findings.parquet``, ``targets.parquet`` and ``audit.parquet`` from ``evidence`` (name → path).

    Raises:
        EvidenceError: An evidence file is present but unreadable or lacks a column.
    """
    findings = _read(evidence.get("findings.parquet"), ("source", "doc_key", "entity_type", "value_hmac"))
    edits = _read(evidence.get("targets.parquet"), ("finding_id", "position", "rank_before", "rank_after"))
    audit = _read(evidence.get("audit.parquet"), ("target_id", "stage", "metric", "k", "score"))
    found, totals = found_by_type(findings) if findings is not None else ([], {})
    values = distinct_values(targets, findings, edits, audit)
    per_type: dict[str, dict[str, int]] = defaultdict(lambda: {"distinct_values": 0, "occurrences": 0})
    for v in values:
        per_type[str(v["entity_type"])]["distinct_values"] += 1
        per_type[str(v["entity_type"])]["occurrences"] += v["erased_occurrences"]
    erased = {"distinct_values": len(values), "occurrences": sum(v["erased_occurrences"] for v in values),
              "by_entity_type": [{"entity_type": t, **c} for t, c in sorted(per_type.items())],
              "verbatim_before": _verbatim(values, "before"), "verbatim_after": _verbatim(values, "after"),
              "tokens_edited": sum(len(v["tokens"]) for v in values)}
    return {"found": found, "found_totals": totals, "values": values, "erased": erased}
