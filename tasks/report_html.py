"""Self-contained, print-ready HTML of an audit report (no scripts, fonts, images or links to fetch).

Offers :func:`render_html`. The first page answers, in words and a few numbers, what was asked, what was found,
what the model had memorized and what was erased, every audit check (measured value, threshold, pass/fail) and the
verdict; the pages after it hold the evidence: one row per distinct erased value, the per-layer rank plot, attack
scores, every metric before and after, the lineage of model versions as a chain, the residual risk, the
configuration and the evidence files. Every metric is explained in one sentence where it appears
(:mod:`tasks.report_metrics`). Every value from the report is HTML-escaped. Evidence pages:
:mod:`tasks.report_evidence_html`; plots: :mod:`tasks.report_svg`; formatting: :mod:`tasks.report_format`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from html import escape
from typing import Any

from tasks import deadlines
from tasks.report_evidence_html import evidence_html
from tasks.report_format import badge as _badge
from tasks.report_format import date as _date
from tasks.report_format import e as _e
from tasks.report_format import plural as _plural
from tasks.report_format import table as _table
from tasks.report_svg import attack_bars_svg, rank_plot_svg

__all__ = ["attack_bars_svg", "rank_plot_svg", "render_html"]

_CSS = """
:root{--pass:#2ca02c;--fail:#d62728;--ink:#1d1d1f;--muted:#5f6368;--line:#d0d4d9;--soft:#f4f6f8}
*{box-sizing:border-box} html{-webkit-print-color-adjust:exact;print-color-adjust:exact}
body{font-family:"Liberation Sans",Arial,Helvetica,sans-serif;font-size:10pt;line-height:1.35;color:var(--ink);
background:#fff;margin:2rem auto;max-width:1000px;padding:0 1rem}
h1{font-size:17pt;margin:.1rem 0 .15rem} h2{font-size:11.5pt;margin:.9rem 0 .3rem;padding-bottom:.1rem;
border-bottom:1.5px solid var(--ink)} h3{font-size:10pt;margin:.6rem 0 .2rem}
.brand{font-size:8.5pt;color:var(--muted);letter-spacing:.04em;text-transform:uppercase}
.sub{color:var(--muted);font-size:9pt;margin:0} p{margin:.25rem 0}
.verdict{margin:.55rem 0 .3rem;padding:.5rem .8rem;border-radius:5px;color:#fff;font-size:12pt}
.verdict.pass{background:var(--pass)} .verdict.fail{background:var(--fail)} .verdict b{font-size:14pt}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:0 1.2rem}
table{border-collapse:collapse;width:100%;margin:.2rem 0 .4rem;font-size:9pt}
th,td{border-bottom:1px solid var(--line);padding:.18rem .35rem;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600} td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
table.kv th{width:34%;background:none;font-weight:600;color:var(--muted)}
.badge{display:inline-block;min-width:3.2em;text-align:center;color:#fff;font-weight:700;border-radius:3px;
padding:0 .35em;font-size:8.5pt} .badge.pass{background:var(--pass)} .badge.fail{background:var(--fail)}
.why{display:block;color:var(--muted);font-size:8pt;line-height:1.25}
.alert{color:var(--fail);font-weight:700} .ok{color:var(--pass);font-weight:600}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.35rem .7rem;font-size:9pt}
.alert-box{border-left-color:var(--fail);background:#fdf0f0} .alert-box p{margin:.1rem 0}
.mono,code{font-family:"Liberation Mono","DejaVu Sans Mono",monospace;font-size:8pt;word-break:break-all}
.chain{display:flex;flex-wrap:wrap;align-items:stretch;gap:.3rem;margin:.3rem 0}
.ver{border:1.5px solid var(--line);border-radius:6px;padding:.3rem .55rem;min-width:9.5rem;font-size:8.5pt;
break-inside:avoid} .ver b{font-size:11pt} .ver.prod{border-color:var(--pass);border-width:2.5px}
.ver.holds{border-color:var(--fail);background:#fdf0f0} .arrow{align-self:center;font-size:14pt;color:var(--muted)}
.tag{display:inline-block;border-radius:3px;padding:0 .3em;font-size:7.5pt;background:var(--soft)}
.tag.prod{background:var(--pass);color:#fff} .tag.holds{background:var(--fail);color:#fff}
figure{margin:.3rem 0;break-inside:avoid} figcaption{color:var(--muted);font-size:8pt;max-width:560px}
svg{background:#fafafa;max-width:100%;height:auto}
ul.legend{margin:.2rem 0;padding-left:1.1rem;font-size:8pt;color:var(--muted)}
.page1{min-height:0} .evidence{break-before:page} .nw{white-space:nowrap}
table.values td:nth-child(3){white-space:nowrap} table.values td:nth-child(4){font-size:8.5pt}
tr,.ver{break-inside:avoid} h2,h3{break-after:avoid}
td.num{white-space:nowrap}
@page{size:A4;margin:10mm 11mm 12mm}
@media print{body{margin:0;max-width:none;padding:0;font-size:8.8pt;line-height:1.28}
h1{font-size:14pt} h2{font-size:10pt;margin:.55rem 0 .2rem} .sub,.brand{font-size:7.5pt}
.verdict{font-size:10.5pt;padding:.35rem .6rem;margin:.4rem 0 .2rem} .verdict b{font-size:12pt}
table{font-size:8pt;margin:.1rem 0 .3rem} th,td{padding:.1rem .3rem} .why{font-size:7pt;line-height:1.2}
.badge{font-size:7.5pt} .note{font-size:8pt;padding:.25rem .6rem}}
"""

def _asked(report: Mapping[str, Any]) -> str:
    request, model = report.get("request") or {}, report.get("model") or {}
    if not request:
        policy = ((report.get("config") or {}).get("policy") or {}).get("entities") or {}
        types = policy.get("types") if isinstance(policy, Mapping) else None
        rows = [("What", "Compliance sweep: find personal data in the training corpus and erase what the model "
                         "memorized"),
                ("Run", f'<span class="mono">{_e(report.get("run_id"))}</span>'),
                ("Entity types", _e(", ".join(types) if types else "policy default")),
                ("Model", f"{_e(model.get('name'))} v{_e(model.get('base_version'))}"),
                ("Answered", _date(report.get("answered_at") or report.get("generated_at")))]
        return "<h2>What was asked</h2>" + _table([(escape(k), v) for k, v in rows], (), "kv")
    subject = request.get("subject") or {}
    idents = "; ".join(f"{escape(str(i.get('type')))} {escape(str(i.get('masked_preview')))}"
                       for i in subject.get("identifiers") or [])
    deadline = request.get("deadline")
    answered = report.get("answered_at") or report.get("generated_at")
    due = "—"
    if deadline:
        status = deadlines.urgency(deadline, datetime.now(UTC), answered)
        words = escape(deadlines.describe(deadline, status))
        due = f'<span class="{"alert" if status["days_left"] < 0 else "ok"}">{words}</span>' \
              f'<span class="why">{escape(str(deadline.get("source", "")))}' \
              + (f"; extended ({escape(str(deadline['extension'].get('reason')))})" if deadline.get("extension")
                 else "") + "</span>"
    rows = [("Request", f"{_e(request.get('request_id'))} (ref {_e(request.get('requester_ref'))})"),
            ("Legal basis", escape(deadlines.legal_basis_label(str(request.get("legal_basis"))))),
            ("Data subject", f"{_e(subject.get('name_masked'))}<span class=why>{idents}</span>"),
            ("Received", _date(request.get("received_at"))),
            ("Identity verified", _date(request.get("verified_at"))),
            ("Answered", _date(answered) + " (the flow's report)"),
            ("Deadline", due)]
    return "<h2>What was asked</h2>" + _table([(escape(k), v) for k, v in rows], (), "kv")


def _searched(report: Mapping[str, Any]) -> str:
    corpus = (report.get("request") or {}).get("corpus") or {}
    if not corpus:
        return ""
    issues = int(corpus.get("issues_total") or 0)
    kinds = ", ".join(f"{escape(str(k))} {_e(v)}" for k, v in sorted((corpus.get("issues") or {}).items()))
    text = (f"<p>Searched {_plural(int(corpus.get('documents') or 0), 'document')} in "
            f"{_plural(int(corpus.get('files') or 0), 'file')}")
    if issues:
        skipped = f"{_plural(issues, 'read issue')} ({kinds}): parts were skipped"
        return text + f'; <span class="alert">{skipped}</span>.</p>'
    return text + "; every file was read.</p>"


def _warnings(report: Mapping[str, Any]) -> str:
    request = report.get("request") or {}
    lines = [str(w) for w in request.get("warnings") or []]
    if int(request.get("attempt") or 1) > 1:
        lines.append(f"This is attempt {int(request['attempt'])} of this request (re-run deliberately); the "
                     "earlier attempts stay in its history.")
    if not lines:
        return ""
    items = "".join(f"<p><b>Warning:</b> {escape(w)}</p>" for w in lines)
    return f'<div class="note alert-box">{items}</div>'


def _found(report: Mapping[str, Any]) -> str:
    found, totals = report.get("found") or [], report.get("found_totals") or {}
    where = "about the data subject " if report.get("request") else ""
    if not found:
        return (f"<h2>What was found</h2>{_searched(report)}<p class=alert>No personal data {where}was found in "
                "the corpus. Check that the corpus paths were right before relying on this report.</p>")
    rows = [(escape(str(f["entity_type"])), _e(f["occurrences"]), _e(f["distinct_values"]), _e(f["sources"]),
             _e(f["documents"])) for f in found]
    if len(found) > 1:
        rows.append(("<b>All</b>", *(f"<b>{_e(totals.get(k))}</b>" for k in
                                     ("occurrences", "distinct_values", "sources", "documents"))))
    text = (f"<p>{_plural(int(totals.get('occurrences', 0)), 'occurrence')} of "
            f"{_plural(int(totals.get('distinct_values', 0)), 'distinct value')} {where}in "
            f"{_plural(int(totals.get('documents', 0)), 'document')} of "
            f"{_plural(int(totals.get('sources', 0)), 'source file')}.</p>")
    header = ("entity type", "occurrences", "distinct values", "sources", "documents")
    return "<h2>What was found</h2>" + _searched(report) + text + _table(rows, header, num_from=1)


def _erased(report: Mapping[str, Any]) -> str:
    erased, totals = report.get("erased") or {}, report.get("found_totals") or {}
    model = report.get("model") or {}
    policy = (report.get("config") or {}).get("policy") or {}
    share = (policy.get("memorization") or {}).get("min_extraction_score") if isinstance(policy, Mapping) else None
    n, occ = int(erased.get("distinct_values") or 0), int(erased.get("occurrences") or 0)
    crit = "the model reproduced it when prompted"
    if isinstance(share, int | float):
        part = "every one of its tokens" if share >= 1 else f"at least {share * 100:.0f} % of its tokens"
        crit = f"given the text that preceded it in the corpus, the model predicted {part}"
    parts = ["<h2>What the model had memorized, and what was erased</h2>"]
    if n == 0:
        found_n = int(totals.get("distinct_values") or 0)
        parts.append(f"<p>The model (v{_e(model.get('base_version'))}) had memorized none of the "
                     f"{_plural(found_n, 'distinct value')} found ({crit} for none): nothing was edited and no "
                     "new version was registered.</p>")
        return "".join(parts)
    by_type = ", ".join(f"{_plural(int(t['distinct_values']), 'value')} of type {escape(str(t['entity_type']))}"
                        for t in erased.get("by_entity_type") or [])
    found_n = int(totals.get("distinct_values") or n)
    parts.append(f"<p><b>Memorized:</b> {_plural(n, 'distinct value')} of the {found_n:,} found ({by_type}; "
                 f"{_plural(occ, 'occurrence')}) — for each, {crit}.")
    if erased.get("verbatim_before") is not None:
        parts.append(f" Before the edit the model generated {erased['verbatim_before']} of them verbatim.")
    parts.append("</p>")
    after = erased.get("verbatim_after")
    tokens = int(erased.get("tokens_edited") or 0)
    parts.append(f"<p><b>Erased:</b> all {_plural(n, 'value')} in version {_e(model.get('new_version'))} (built "
                 f"from v{_e(model.get('base_version'))}): its weights were edited so that the model no longer "
                 f"predicts {tokens:,} of their tokens"
                 + (f"; after the edit the model generates {after} of them verbatim." if after is not None
                    else ".")
                 + "</p>")
    return "".join(parts)


def _check_value(check: Mapping[str, Any], key: str) -> str:
    unit = str(check.get("unit") or "")
    value = check.get(key)
    if isinstance(value, float) and unit != "%" and value.is_integer():
        value = int(value)
    return _e(value, unit) if value is not None else '<span class="alert">not measured</span>'


def _checks(verdict: Mapping[str, Any]) -> str:
    checks = verdict.get("checks") or []
    if not checks:
        failures = verdict.get("failures") or []
        items = "".join(f"<li>{escape(str(f))}</li>" for f in failures)
        return "<h2>Audit checks</h2><p>No audit check was recorded.</p>" + (f"<ul>{items}</ul>" if items else "")
    rows = []
    for c in checks:
        sign = {">=": "≥", "<=": "≤"}.get(str(c.get("comparison")), escape(str(c.get("comparison"))))
        rows.append((f"{escape(str(c.get('label') or c.get('name')))}"
                     f"<span class=why>{escape(str(c.get('explanation') or ''))}</span>",
                     _check_value(c, "value"), f"{sign} {_check_value(c, 'threshold')}",
                     _badge(bool(c.get("passed")))))
    n_pass = sum(1 for c in checks if c.get("passed"))
    return (f"<h2>Audit checks ({n_pass} of {len(checks)} passed)</h2>"
            + _table(rows, ("check", "measured", "threshold", "result"), num_from=1))


def _verdict_banner(report: Mapping[str, Any]) -> str:
    verdict, model = report.get("verdict") or {}, report.get("model") or {}
    checks = verdict.get("checks") or []
    passed = bool(verdict.get("passed"))
    new = model.get("new_version")
    if passed and new is not None:
        words = (f"every audit check met its threshold; version {_e(new)} of {_e(model.get('name'))} is the "
                 "production version.")
    elif passed:
        words = "nothing the model had memorized needed erasing; no new version was made."
    else:
        failed = [str(c.get("label") or c.get("name")) for c in checks if not c.get("passed")]
        failures = "; ".join(str(f) for f in verdict.get("failures") or [])
        if failed or failures:
            words = f"not met: {escape(', '.join(failed) or failures)}."
        else:
            words = "no audit verdict was recorded." if not checks else \
                "the audit did not pass, although no check below failed (see the evidence)."
        if new is not None:
            words += f" Version {_e(new)} was kept out of production."
    return (f'<div class="verdict {"pass" if passed else "fail"}"><b>Verdict: {"PASSED" if passed else "FAILED"}'
            f"</b> — {words}</div>")


def _footer_css(report: Mapping[str, Any]) -> str:
    request = (report.get("request") or {}).get("request_id")
    label = re.sub(r"[^A-Za-z0-9._ -]", "", f"Erasure audit report {request or report.get('run_id')}")[:80]
    font = 'font-family:"Liberation Sans",Arial,sans-serif;font-size:7.5pt;color:#5f6368'
    return ('@page{@bottom-left{content:"' + label + '";' + font + '}'
            '@bottom-right{content:"page " counter(page) " of " counter(pages);' + font + "}}")


def render_html(report: Mapping[str, Any]) -> str:
    """Render a report from :func:`tasks.reporting.build_report` as one self-contained, printable HTML page."""
    model, request = report.get("model") or {}, report.get("request") or {}
    title = (f"Deletion request {request.get('request_id')}" if request
             else f"Compliance sweep {report.get('run_id')}")
    versions = f"v{model.get('base_version')}" + (f" → v{model['new_version']}" if model.get("new_version")
                                                 else "")
    head = (f'<p class="brand">REVS Compliance · erasure audit report</p><h1>{escape(title)}</h1>'
            f'<p class="sub">Model {_e(model.get("name"))} {escape(versions)} · generated '
            f'{_date(report.get("generated_at"))} · run <span class="mono">{_e(report.get("run_id"))}</span></p>')
    page1 = (head + _verdict_banner(report) + _warnings(report) + '<div class="grid"><div>' + _asked(report)
             + "</div><div>" + _found(report) + "</div></div>" + _erased(report)
             + _checks(report.get("verdict") or {}))
    evidence = evidence_html(report)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" "
            "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<title>{escape('Erasure audit report — ' + title)}</title><style>{_CSS}{_footer_css(report)}</style>"
            f'</head><body><section class="page1">{page1}</section><section class="evidence">{evidence}</section>'
            "</body></html>\n")
