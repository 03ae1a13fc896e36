"""The evidence pages of the report's HTML: per distinct value, plots, every metric, lineage, residual risk,
configuration and evidence files (see :mod:`tasks.report_html`).

Offers :func:`evidence_html`.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from tasks.report_format import e as _e
from tasks.report_format import table as _table
from tasks.report_metrics import metric_info
from tasks.report_svg import attack_bars_svg, rank_plot_svg

_ATTACK_NAMES = {"logit_lens": "Logit-Lens", "delta": "Delta", "perturb": "Perturbation"}


def _values(report: Mapping[str, Any]) -> str:
    values = report.get("values") or []
    if not values:
        return ""
    keys = sorted({k for v in values for k in v.get("metrics") or {}}, key=_metric_order)
    rows = []
    for v in values:
        tokens = "<br>".join(f"#{t['position']}: {_e(t['rank_before'])} → {_e(t['rank_after'])}"
                             + ("" if t.get("converged", True) else " <span class=alert>(not converged)</span>")
                             for t in v.get("tokens") or []) or "—"
        scores = []
        for k in keys:
            m = (v.get("metrics") or {}).get(k)
            if m:
                scores.append(f'<span class="nw">{escape(metric_info(k).label)}: {_e(m.get("before"))} → '
                              f'<b>{_e(m.get("after"))}</b></span>')
        rows.append([f"<b class=nw>{_e(v.get('masked_preview'))}</b><span class=why>{_e(v.get('entity_type'))}"
                     "</span>", f"{_e(v.get('occurrences'))} ({_e(v.get('erased_occurrences'))})", tokens,
                     "<br>".join(scores) or "—"])
    legend = "".join(f"<li><b>{escape(metric_info(k).label)}</b>: {escape(metric_info(k).explanation)}</li>"
                     for k in keys)
    return ("<h2>Erased values</h2><p>One row per distinct value (occurrences of the same value are grouped by "
            "its keyed hash); scores are before → <b>after</b> the edit, the worst case over the value's "
            "occurrences. An edited token's rank is its position among the model's next-token candidates (0 = "
            "the model's first choice).</p>"
            + _table(rows, ["value (masked)", "occurrences (erased)", "edited token: rank before → after",
                            "attacks and metrics: before → after"], "values")
            + f'<ul class="legend">{legend}</ul>')


def _metric_order(key: str) -> tuple[int, str]:
    order = ["efficacy", "greedy_extraction", "perturbed_greedy_extraction", "logit_lens", "delta", "perturb"]
    name = key.split("@")[0]
    return (order.index(name) if name in order else len(order), key)


def _plots(report: Mapping[str, Any]) -> str:
    ranks = report.get("layer_ranks") or {}
    attacks = [{**a, "name": _ATTACK_NAMES.get(str(a.get("name")), a.get("name"))}
               for a in report.get("attacks") or []]
    rank = metric_info("layer_rank").explanation
    k = (report.get("thresholds") or {}).get("efficacy_k")
    names = [f"{n}@{k}" if k else n for n in ("logit_lens", "delta", "perturb")]
    return ("<h2>Where the erased tokens rank, layer by layer</h2><figure>"
            + rank_plot_svg(ranks.get("before") or [], ranks.get("after") or [])
            + f"<figcaption>{escape(rank)} Log scale.</figcaption></figure>"
            "<h2>Attacks after the edit</h2><figure>" + attack_bars_svg(attacks)
            + "<figcaption>Each bar is an attack's score after the edit (100 = the attack recovered nothing); the "
              "dashed line is the policy threshold. Green: at or above it.</figcaption></figure>"
            + '<ul class="legend">' + "".join(
                f"<li><b>{escape(metric_info(n).label)}</b>: {escape(metric_info(n).explanation)}</li>"
                for n in names) + "</ul>")


def _metrics(report: Mapping[str, Any]) -> str:
    metrics = report.get("metrics") or {}
    before, after = metrics.get("before") or {}, metrics.get("after") or {}
    names = sorted(set(before) | set(after), key=_metric_order)
    if not names:
        return ""
    rows = [(f"{escape(metric_info(n).label)}<span class=why>{escape(metric_info(n).explanation)}</span>",
             _e(before.get(n)), _e(after.get(n))) for n in names]
    return "<h2>Every metric, before and after</h2>" + _table(rows, ("metric", "before", "after"), num_from=1)


def _lineage(report: Mapping[str, Any]) -> str:
    lineage = sorted(report.get("lineage") or [], key=lambda r: int(r.get("version") or 0))
    if not lineage:
        return ""
    versions = report.get("versions") or {}
    holding = set(versions.get("still_containing_erased_data") or [])
    production = versions.get("production")
    new = (report.get("model") or {}).get("new_version")
    boxes, prev = [], None
    for row in lineage:
        v, parent = row.get("version"), row.get("parent")
        tags = []
        if v == production or "production" in (row.get("aliases") or []):
            tags.append('<span class="tag prod">production</span>')
        if v in holding:
            tags.append('<span class="tag holds">holds erased data</span>')
        if v == new:
            tags.append('<span class="tag">this report</span>')
        origin = ("base model" if parent is None else f"request {escape(str(row['request_id']))}"
                  if row.get("request_id") else "compliance sweep")
        built = "" if parent is None or parent == prev else f"<br>built from v{_e(parent)}"
        cls = "ver" + (" prod" if "production" in "".join(tags) else "") + (" holds" if v in holding else "")
        if prev is not None:
            boxes.append('<span class="arrow">→</span>')
        boxes.append(f'<div class="{cls}"><b>v{_e(v)}</b> {"".join(tags)}<br>{origin}{built}<br>audit: '
                     f'{_e(row.get("audit") or "—")}<br><span class="mono">sha256 '
                     f'{escape(str(row.get("weights_sha256") or "—")[:12])}…</span></div>')
        prev = v
    note = ""
    if holding:
        listed = ", ".join(f"v{escape(str(h))}" for h in sorted(holding))
        note = (f'<p class="note">{"Versions" if len(holding) > 1 else "Version"} {listed} still '
                f'{"hold" if len(holding) > 1 else "holds"} the erased data: retire '
                f'{"them" if len(holding) > 1 else "it"} (<code>revs retire</code>) once nothing depends on '
                f'{"them" if len(holding) > 1 else "it"}.</p>')
    return ("<h2>Model lineage</h2><p>Each registered version of the model, oldest first; an arrow points to the "
            "next version.</p>" + f'<div class="chain">{"".join(boxes)}</div>' + note)


def _flat(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        return [kv for k, v in value.items() for kv in _flat(f"{prefix}.{k}" if prefix else str(k), v)]
    return [(prefix, value)]


def _tail(report: Mapping[str, Any]) -> str:
    parts = [f'<h2>Residual risk</h2><p class="note">{escape(str(report.get("residual_risk", "")))}</p>']
    config = report.get("config") or {}
    if config:
        rows = [(f"<code>{escape(k)}</code>", f"<code>{_e(v)}</code>") for k, v in _flat("", config)]
        parts.append("<h2>Configuration</h2>" + _table(rows, ("setting", "value")))
    evidence = report.get("evidence") or []
    if evidence:
        parts.append("<h2>Evidence files</h2><p>Every file of this report is listed with its sha256 in the signed "
                     "<code>manifest.json</code>; check them with <code>revs report verify DIR --public-key "
                     "report_signing.pub</code>.</p>"
                     + _table([(f"<code>{_e(e.get('name'))}</code>", f"<code>{_e(e.get('sha256'))}</code>")
                               for e in evidence], ("file", "sha256")))
    return "".join(parts)


def evidence_html(report: Mapping[str, Any]) -> str:
    """Return the evidence pages (they start on a new printed page)."""
    return ('<h2 style="border:0;font-size:14pt">Evidence</h2>' + _values(report) + _plots(report)
            + _metrics(report) + _lineage(report) + _tail(report))
