"""Report v2: building (facts from the evidence), HTML, export with manifest + signature, verification; the
headless-Chromium rendering and PDF tests are in test_report_pdf.py."""

import json
import re
import shutil
from html import escape

import pytest

from tasks.redaction import SENSITIVE
from tasks.report_html import attack_bars_svg, rank_plot_svg, render_html
from tasks.reporting import ReportDataError, build_report, export_report, export_run, load_run, verify_report
from tests.tasks.conftest import PLANTED_EMAIL, PLANTED_SSN, sample_report_data


def test_build_report_has_all_blocks_and_a_residual_risk_statement(report_data):
    report = build_report(report_data)
    for key in ("request", "lineage", "config", "versions", "metrics", "thresholds", "verdict", "residual_risk"):
        assert report[key], key
    assert report["metrics"]["after"]["efficacy@100"] == 98.5
    assert "not a proof" in report["residual_risk"]
    assert "versions still containing the erased data: 1" in report["residual_risk"]


def test_failed_or_missing_verdict_is_stated(report_data):
    failed = build_report({**report_data, "verdict": {"passed": False, "failures": ["specificity: 80 < 90"]}})
    assert "FAILED" in failed["residual_risk"]
    bare = build_report({"run_id": "r", "model": {"name": "m"}})
    assert bare["verdict"]["passed"] is False
    assert "unverified" in bare["residual_risk"]


@pytest.mark.parametrize(("mutate", "match"), [
    (lambda d: d.pop("run_id"), "run_id: required"),
    (lambda d: d.update(lineage="v1"), "lineage: must be a list"),
    (lambda d: d["targets"][0].update(value="x"), r"report.targets\[0\].value: raw-text fields"),
    (lambda d: d["request"]["subject"].update(name="Jane"), "report.request.subject.name: raw-text"),
    (lambda d: d["metrics"].update(before={"x": object()}), "is not JSON data"),
])
def test_malformed_or_leaky_data_is_refused(report_data, mutate, match):
    mutate(report_data)
    with pytest.raises(ReportDataError, match=match):
        build_report(report_data)


def test_registered_raw_value_is_refused_anywhere(report_data):
    SENSITIVE.register([PLANTED_EMAIL])
    try:
        report_data["config"]["note"] = f"subject {PLANTED_EMAIL.upper()}"
        with pytest.raises(ReportDataError, match=r"report.config.note: contains a raw personal value") as exc:
            build_report(report_data)
        assert PLANTED_EMAIL not in str(exc.value)
    finally:
        SENSITIVE.clear()


def test_html_is_self_contained_and_escaped(report_data):
    report_data["model"]["name"] = "<script>alert(1)</script>"
    html = render_html(build_report(report_data))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert not re.search(r"""(src|href)\s*=|url\(|@import|<link|<img|<iframe""", html, re.IGNORECASE)
    assert html.count("<svg") == 2
    assert "polyline" in html
    assert "stroke-dasharray" in html


def test_plots_handle_empty_and_partial_data():
    assert "No per-layer rank data" in rank_plot_svg([], [])
    assert "No attack scores" in attack_bars_svg([{"name": "x", "score": None}])
    svg = rank_plot_svg([5, None, 0], [7])
    assert svg.count("<circle") == 3


def test_export_and_verify_roundtrip(tmp_path, report_data, run_dir):
    out = export_run(run_dir, tmp_path / "export")
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    evidence = ["evidence/audit.parquet", "evidence/findings.parquet", "evidence/patch/manifest.json",
                "evidence/targets.parquet"]
    assert names == [*evidence, "manifest.json", "report.html", "report.json", "signature"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert {f["path"] for f in manifest["files"]} == set(names) - {"manifest.json", "signature"}
    report = json.loads((out / "report.json").read_text())
    assert [e["name"] for e in report["evidence"]] == evidence
    assert report["report_version"] == 2
    result = verify_report(out)
    assert result.ok, result.problems


def test_export_refuses_non_empty_dir_and_bad_formats(tmp_path, report_data):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "stale").write_text("s")
    with pytest.raises(FileExistsError):
        export_report(build_report(report_data), tmp_path / "x")
    with pytest.raises(ValueError, match="formats"):
        export_report(build_report(report_data), tmp_path / "y", ["docx"])


@pytest.mark.parametrize("victim", ["report.json", "report.html", "evidence/findings.parquet",
                                    "evidence/audit.parquet", "evidence/patch/manifest.json", "manifest.json",
                                    "signature"])
def test_one_changed_byte_in_any_file_fails_verification(tmp_path, run_dir, victim):
    out = export_run(run_dir, tmp_path / "export")
    path = out / victim
    data = bytearray(path.read_bytes())
    i = len(data) // 2
    data[i] = (data[i] + 1) % 256 if data[i] not in b"\n " else ord("x")
    path.write_bytes(bytes(data))
    result = verify_report(out)
    assert not result.ok
    assert result.problems


def test_added_removed_or_appended_files_fail_verification(tmp_path, run_dir):
    out = export_run(run_dir, tmp_path / "export")
    (out / "evidence" / "extra.txt").write_text("sneaked in")
    assert verify_report(out).problems == ["evidence/extra.txt: not listed in the manifest (added after export)"]
    (out / "evidence" / "extra.txt").unlink()
    (out / "report.html").unlink()
    assert verify_report(out).problems == ["report.html: listed in the manifest but missing"]
    shutil.rmtree(out)
    out = export_run(run_dir, tmp_path / "export")
    with open(out / "report.json", "ab") as fh:
        fh.write(b" ")
    assert verify_report(out).problems == ["report.json: content changed (sha256 does not match the manifest)"]
    (out / "signature").unlink()
    assert verify_report(out).problems == ["signature: missing"]


def test_planted_values_never_reach_any_written_file(tmp_path, run_dir):
    SENSITIVE.register([PLANTED_EMAIL, PLANTED_SSN])
    try:
        out = export_run(run_dir, tmp_path / "export")
        blob = b"".join(p.read_bytes() for p in (tmp_path).rglob("*") if p.is_file())
        for raw in (PLANTED_EMAIL, PLANTED_SSN, "219099999"):
            assert raw.encode() not in blob
        assert verify_report(out).ok
    finally:
        SENSITIVE.clear()


# ---------------------------------------------------------------------------------------------- report v2 facts
def test_found_is_counted_per_entity_type_from_the_findings(run_dir):
    report = build_report(*load_run(run_dir))
    found = {f["entity_type"]: f for f in report["found"]}
    assert found["PHONE_NUMBER"] == {"entity_type": "PHONE_NUMBER", "occurrences": 16, "distinct_values": 1,
                                     "sources": 2, "documents": 16}
    assert found["PERSON"]["occurrences"] == 5
    assert report["found_totals"] == {"occurrences": 24, "distinct_values": 3, "sources": 2, "documents": 16}


def test_identical_values_are_one_row_with_their_occurrences(run_dir):
    report = build_report(*load_run(run_dir))
    values = {v["masked_preview"]: v for v in report["values"]}
    assert set(values) == {"***-***-4130", "p***@e***.net"}  # the name was found but not memorized
    phone = values["***-***-4130"]
    assert (phone["occurrences"], phone["erased_occurrences"], phone["audited_occurrences"]) == (16, 16, 16)
    # two edited token positions; the rank after is the worst case (lowest) over the 16 occurrences
    assert phone["tokens"] == [{"position": 2, "rank_before": 0, "rank_after": 2200, "converged": True},
                               {"position": 5, "rank_before": 0, "rank_after": 2500, "converged": True}]
    assert phone["metrics"]["efficacy@100"] == {"before": 0.0, "after": 100.0}
    assert phone["metrics"]["greedy_extraction"] == {"before": 100.0, "after": 0.0}
    assert report["erased"] == {"distinct_values": 2, "occurrences": 19, "verbatim_before": 2, "verbatim_after": 0,
                                "tokens_edited": 4,
                                "by_entity_type": [{"entity_type": "EMAIL_ADDRESS", "distinct_values": 1,
                                                    "occurrences": 3},
                                                   {"entity_type": "PHONE_NUMBER", "distinct_values": 1,
                                                    "occurrences": 16}]}


def test_worst_case_per_value_depends_on_the_metric_direction(run_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    audit = run_dir / "evidence" / "audit.parquet"
    rows = pq.read_table(audit).to_pylist()
    for r in rows:  # one occurrence of the phone is still extracted and barely pushed out
        if r["target_id"] == "f-ph07" and r["stage"] == "after":
            r["score"] = 100.0 if r["metric"] == "greedy_extraction" else 40.0
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(audit)), audit)
    phone = next(v for v in build_report(*load_run(run_dir))["values"] if v["masked_preview"] == "***-***-4130")
    assert phone["metrics"]["greedy_extraction"]["after"] == 100.0   # lower is safer: the max
    assert phone["metrics"]["efficacy@100"]["after"] == 40.0         # higher is safer: the min


def test_unreadable_evidence_is_a_located_error(run_dir):
    (run_dir / "evidence" / "audit.parquet").write_bytes(b"not parquet")
    with pytest.raises(ReportDataError, match=r"evidence/audit.parquet: not a readable Parquet file"):
        build_report(*load_run(run_dir))


def test_report_without_evidence_files_still_builds(report_data):
    report = build_report(report_data)
    assert report["found"] == []
    assert report["erased"]["distinct_values"] == 2  # from the targets alone
    html = render_html(report)
    assert "No personal data about the data subject was found" in html


# ---------------------------------------------------------------------------------------------- report v2 HTML
def _page1(html: str) -> str:
    return html[html.index('<section class="page1">'):html.index('<section class="evidence">')]


def test_first_page_states_request_found_erased_checks_and_verdict(run_dir):
    report = build_report(*load_run(run_dir))
    page1 = _page1(render_html(report))
    for text in ("Verdict: PASSED", "REQ-2026-0001", "GDPR Art. 17(1)(b)", "TICKET-4711", "2026-03-01 09:00 UTC",
                 "2026-03-02 09:30 UTC", "due 2026-04-01", "GDPR Art. 12(3)", "J*** P***", "PHONE_NUMBER",
                 "24 occurrences of 3 distinct values", "2 distinct values of the 3 found", "at least 80 %",
                 "generated 2 of them verbatim", "generates 0 of them verbatim"):
        assert text in page1, text
    for check in report["verdict"]["checks"]:
        assert escape(check["label"]) in page1
        assert escape(check["explanation"]) in page1
    n = len(report["verdict"]["checks"])
    assert n >= 6
    assert f"Audit checks ({n} of {n} passed)" in page1
    assert page1.count("PASS</span>") == n
    for threshold in ("≥ 95 %", "≤ 2 %", "≥ 90 %", "≤ 0"):
        assert threshold in page1


def test_checks_are_rendered_from_the_verdict_whatever_they_are(report_data):
    report_data["verdict"] = {"passed": False, "failures": ["exposure: 12 bits > 3 bits"], "checks": [
        {"name": "exposure", "label": "Exposure against random candidates", "value": 12.0, "threshold": 3.0,
         "comparison": "<=", "unit": " bits", "passed": False, "explanation": "How much likelier the value is."},
        {"name": "neighbourhood_rank", "label": "Neighbourhood rank", "value": None, "threshold": 50.0,
         "comparison": ">=", "unit": "", "passed": False, "explanation": "Rank among format-valid neighbours."}]}
    page1 = _page1(render_html(build_report(report_data)))
    assert "Verdict: FAILED" in page1
    assert "Exposure against random candidates, Neighbourhood rank" in page1  # the banner names what failed
    assert "12 bits" in page1
    assert "≤ 3 bits" in page1
    assert "not measured" in page1
    assert page1.count("FAIL</span>") == 2
    assert "Version 2 was kept out of production" in page1


def test_every_metric_is_explained_where_it_appears(run_dir):
    from tasks.report_metrics import metric_info

    report = build_report(*load_run(run_dir))
    html = render_html(report)
    keys = {k for v in report["values"] for k in v["metrics"]} | set(report["metrics"]["after"])
    for key in keys:
        info = metric_info(key)
        assert info.explanation != "No description recorded for this metric.", key
        label, why = escape(info.label), escape(info.explanation)
        assert f"{label}</b>: {why}" in html or f"{label}<span class=why>{why}</span>" in html, key
    assert "No description recorded" in metric_info("made_up_metric@5").explanation
    assert metric_info("control_exposure_bits").label == "Exposure (bits) (never-seen values)"
    assert metric_info("control_exposure_bits").explanation.endswith("should not exceed.")
    # a rank attack's control: higher is safer there, so it is the level an erased value should reach
    assert metric_info("control_delta@100").label == "Delta attack@100 (never-seen values)"
    assert metric_info("control_delta@100").explanation.endswith("should reach.")


def test_distinct_value_appears_once_not_per_occurrence(run_dir):
    html = render_html(build_report(*load_run(run_dir)))
    evidence = html[html.index('<section class="evidence">'):]
    assert evidence.count("***-***-4130") == 1
    assert "16 (16)" in evidence


def test_lineage_is_a_chain_of_versions(run_dir):
    html = render_html(build_report(*load_run(run_dir)))
    chain = html[html.index('<div class="chain">'):]
    assert chain.index("<b>v1</b>") < chain.index("→") < chain.index("<b>v2</b>")
    assert "holds erased data" in chain
    assert "production" in chain
    assert "Version v1 still holds the erased data" in html


def test_deadline_missed_and_extension_are_visible(report_data):
    report_data["request"]["deadline"] = {"due": "2026-06-01", "statutory_due": "2026-04-01",
                                          "source": "GDPR Art. 12(3)",
                                          "extension": {"months": 2, "reason": "complexity"}}
    report_data["answered_at"] = "2026-06-03T10:00:00+00:00"  # the flow's report; exported again later
    page1 = _page1(render_html(build_report(report_data)))
    assert "due 2026-06-01 (extended); answered LATE by 2 days" in page1
    assert "extended (complexity)" in page1
    assert "2026-06-03 10:00 UTC (the flow's report)" in page1
    report_data["answered_at"] = "2026-05-01T10:00:00+00:00"
    assert "answered 31 days before the deadline" in _page1(render_html(build_report(report_data)))


def test_sweep_report_says_what_was_asked_without_a_request(report_data):
    report_data.pop("request")
    report_data["kind"] = "compliance-sweep"
    page1 = _page1(render_html(build_report(report_data)))
    assert "Compliance sweep" in page1
    assert "EMAIL_ADDRESS, PHONE_NUMBER, PERSON" in page1


def test_print_css_is_there(report_data):
    html = render_html(build_report(report_data))
    assert "@page{size:A4" in html
    assert "break-before:page" in html
    assert 'counter(page) " of " counter(pages)' in html


def test_first_page_shows_the_corpus_read_issues_and_warnings(report_data):
    report_data["request"].update(
        attempt=2, corpus={"documents": 120, "files": 3, "issues_total": 2, "issues": {"decode_error": 2}},
        warnings=["NO OCCURRENCE of the subject was found in 120 documents: nothing was erased."])
    page1 = _page1(render_html(build_report(report_data)))
    assert "Searched 120 documents in 3 files" in page1
    assert "2 read issues (decode_error 2): parts were skipped" in page1
    assert "<b>Warning:</b> NO OCCURRENCE of the subject was found in 120 documents" in page1
    assert "This is attempt 2 of this request" in page1
    clean = sample_report_data()
    clean["request"]["corpus"] = {"documents": 10, "files": 1, "issues_total": 0, "issues": {}}
    page1 = _page1(render_html(build_report(clean)))
    assert "every file was read" in page1
    assert "Warning" not in page1
