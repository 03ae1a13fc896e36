"""Where users already look: the MLflow version description (verdict, checks, report link) and the workspace
overview behind `revs status` (requests with deadlines, versions still holding erased data)."""

import json
from datetime import UTC, datetime
from pathlib import Path

from tasks import overview, tracking
from tasks.reporting import build_report, export_report
from tasks.requests import RequestStore


def _files(tmp_path: Path, name: str) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "patch.json").write_text(json.dumps({"targets": ["ab" * 32]}))
    return d


def test_model_version_description_has_the_verdict_every_check_and_the_report_link(mlflow_adapter, tmp_path,
                                                                                     monkeypatch, report_data):
    # given: v1 (base) and v2 registered by a flow run whose signed report is a run artifact
    monkeypatch.setenv("REVS_HOME", str(mlflow_adapter.root))
    name = report_data["model"]["name"]
    mlflow_adapter.register_base(name, _files(tmp_path, "base"), "11" * 32)
    run_id = mlflow_adapter.open_run(run_name="deletion-request-REQ-2026-0001")
    assert mlflow_adapter.register_version(name, _files(tmp_path, "v2"), 1, "22" * 32, run_id, "REQ-2026-0001",
                                           report_data["verdict"]) == 2
    out = export_report(build_report(report_data), tmp_path / "report", ["json", "html"], root=mlflow_adapter.root)
    # when
    tracking.log_run.fn(run_id, {}, {}, {"report": out}, {"audit": "passed"})
    # then
    description = mlflow_adapter.client.get_model_version(name, "2").description
    n = len(report_data["verdict"]["checks"])
    assert description.startswith(f"**Audit passed**: {n} of {n} checks met their thresholds (deletion request "
                                  "`REQ-2026-0001`; built from v1).")
    for check in report_data["verdict"]["checks"]:
        assert f"| {check['label']} |" in description
    assert "| 100 % | ≥ 95 % | PASS |" in description
    experiment = mlflow_adapter.client.get_run(run_id).info.experiment_id
    link = f"#/experiments/{experiment}/runs/{run_id}/artifactPath/report/report.html"
    assert f"[report.html]({link})" in description
    artifacts = {f.path for f in mlflow_adapter.client.list_artifacts(run_id, "report")}
    assert "report/report.html" in artifacts
    assert mlflow_adapter.client.get_model_version(name, "1").description in ("", None)  # base untouched


def test_failed_audit_description_says_so():
    report = {"model": {"base_version": 3}, "request": None,
              "verdict": {"passed": False, "checks": [
                  {"name": "x", "label": "Exposure", "value": None, "threshold": 3, "comparison": "<=",
                   "unit": " bits", "passed": False}]}}
    text = tracking.version_description(report, "#/x", "r1")
    assert text.startswith("**Audit FAILED**: 0 of 1 checks met their thresholds (compliance sweep; built from "
                           "v3).")
    assert "| Exposure | not measured | ≤ 3 bits | FAIL |" in text


def test_holds_erased_data_marks_ancestors_of_edits_and_failed_edits():
    versions = [{"version": 1, "parent": None, "audit": "base"},
                {"version": 2, "parent": 1, "audit": "passed"},
                {"version": 3, "parent": 2, "audit": "failed"},   # kept out of production, still holds the data
                {"version": 4, "parent": 2, "audit": "passed"},
                {"version": 5, "parent": None, "audit": "base"}]  # another lineage root, never edited
    assert overview.holds_erased_data(versions) == {1, 2, 3}


def test_version_rows_come_from_the_registry(mlflow_adapter, tmp_path):
    mlflow_adapter.register_base("m", _files(tmp_path, "b"), "11" * 32)
    run_id = mlflow_adapter.open_run()
    mlflow_adapter.register_version("m", _files(tmp_path, "e"), 1, "22" * 32, run_id, "REQ-1", {"passed": True})
    [model] = overview.version_rows(mlflow_adapter)
    assert model["name"] == "m"
    assert [(v["version"], v["aliases"], v["parent"], v["audit"], v["request_id"], v["holds_erased_data"])
            for v in model["versions"]] == [(1, [], None, "base", None, True),
                                            (2, ["production"], 1, "passed", "REQ-1", False)]


def test_request_rows_sort_the_urgent_first(tmp_path):
    from tests.tasks.test_deadlines import _request

    store = RequestStore(tmp_path)
    for rid, received in (("R-open", "2026-11-20T09:00:00Z"), ("R-late", "2026-09-01T09:00:00Z"),
                          ("R-soon", "2026-11-01T09:00:00Z"), ("R-done", "2026-09-02T09:00:00Z")):
        store.begin(_request(rid, received))
    for step in ("located", "probed", "edited"):
        store.advance("R-done", step, {})
    store.advance("R-done", "audited", {"version": 3, "passed": True})
    store.advance("R-done", "reported", {})
    rows = overview.request_rows(store, now=datetime(2026, 11, 25, 12, tzinfo=UTC))
    assert [(r["request_id"], r["urgency"]) for r in rows] == [
        ("R-late", "overdue"), ("R-soon", "due-soon"), ("R-open", "open"), ("R-done", "answered")]
    late = rows[0]
    assert late["deadline_text"] == "OVERDUE by 55 days (due 2026-10-01)"
    assert late["subject"] == "D*** E***"
    done = rows[-1]
    assert (done["version"], done["verdict"], done["state"]) == (3, "passed", "reported")
