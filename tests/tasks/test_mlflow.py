"""MLflow adapter: explicit URIs, param/tag hygiene, registry lineage, production alias, retirement."""

import json
from pathlib import Path

import pytest

from tasks._mlflow import PRODUCTION, MlflowAdapter, RegistryError
from tasks.redaction import SENSITIVE
from tasks.verdict import Verdict
from tests.tasks.conftest import PLANTED_EMAIL


def _files(tmp_path: Path, name: str, payload: bytes) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "patch.safetensors").write_bytes(payload)
    (d / "patch.json").write_text(json.dumps({"targets": ["ab" * 32]}))
    return d


def _local(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def test_uris_are_explicit_and_inside_the_workspace(mlflow_adapter):
    assert mlflow_adapter.tracking_uri == f"sqlite:///{mlflow_adapter.root.resolve() / 'mlflow.db'}"
    exp = mlflow_adapter.client.get_experiment(mlflow_adapter.experiment_id("x"))
    assert _local(exp.artifact_location).is_relative_to(mlflow_adapter.root.resolve() / "mlartifacts")


def test_run_logs_params_metrics_artifacts_and_refuses_bad_values(mlflow_adapter, tmp_path):
    with mlflow_adapter.start_run(run_name="t") as run_id:
        mlflow_adapter.log_params(run_id, {"n_neurons": 30, "model": "tiny", "exact": True})
        mlflow_adapter.log_metrics(run_id, {"efficacy": 97.5, "passed": True})
        mlflow_adapter.log_artifacts(run_id, _files(tmp_path, "a", b"x"), "evidence")
        with pytest.raises(TypeError, match="not allowed"):
            mlflow_adapter.log_params(run_id, {"targets": ["a", "b"]})
        SENSITIVE.register([PLANTED_EMAIL])
        try:
            with pytest.raises(ValueError, match="raw personal value") as exc:
                mlflow_adapter.log_params(run_id, {"note": f"subject {PLANTED_EMAIL}"})
            assert PLANTED_EMAIL not in str(exc.value)
            with pytest.raises(ValueError, match="raw personal value"):
                mlflow_adapter.set_tags(run_id, {"subject": PLANTED_EMAIL})
        finally:
            SENSITIVE.clear()
    run = mlflow_adapter.client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"n_neurons": "30", "model": "tiny", "exact": "true"}
    assert run.data.metrics == {"efficacy": 97.5, "passed": 1.0}
    assert (_local(run.info.artifact_uri) / "evidence" / "patch.json").exists()


def test_failed_block_marks_the_run_failed(mlflow_adapter):
    with pytest.raises(RuntimeError), mlflow_adapter.start_run() as run_id:
        raise RuntimeError("boom")
    assert mlflow_adapter.client.get_run(run_id).info.status == "FAILED"


def test_lineage_alias_and_retirement(mlflow_adapter, tmp_path):
    reg = mlflow_adapter
    # given a base and two edits: v2 passes its audit, v3 fails
    assert reg.register_base("tiny-llama", _files(tmp_path, "base", b"base"), "00" * 32) == 1
    assert reg.production_version("tiny-llama") == 1
    with pytest.raises(RegistryError, match="already has versions"):
        reg.register_base("tiny-llama", _files(tmp_path, "base2", b"b"), "00" * 32)
    v2 = reg.register_version("tiny-llama", _files(tmp_path, "e1", b"edit1"), 1, "11" * 32, "run-a", "REQ-1",
                              Verdict(True, []))
    assert (v2, reg.production_version("tiny-llama")) == (2, 2)
    v3 = reg.register_version("tiny-llama", _files(tmp_path, "e2", b"edit2"), 2, "22" * 32, "run-b", "REQ-2",
                              {"passed": False, "failures": ["specificity: 80.00 < 90.00"]})
    assert v3 == 3
    # then the failed version is kept, tagged, and production stays on v2
    assert reg.production_version("tiny-llama") == 2
    lineage = {row["version"]: row for row in reg.lineage("tiny-llama")}
    assert lineage[1]["tags"]["audit"] == "base"
    assert lineage[2]["tags"] == {"parent": "1", "weights_sha256": "11" * 32, "run_id": "run-a",
                                  "request_id": "REQ-1", "audit": "passed"}
    assert lineage[3]["tags"]["audit"] == "failed"
    assert lineage[3]["tags"]["parent"] == "2"
    assert lineage[3]["tags"]["audit_failures"] == "specificity: 80.00 < 90.00"
    assert lineage[2]["aliases"] == [PRODUCTION]
    assert lineage[3]["aliases"] == []
    assert (_local(lineage[3]["source"]) / "patch.safetensors").read_bytes() == b"edit2"
    with pytest.raises(RegistryError, match="no version 9"):
        reg.register_version("tiny-llama", _files(tmp_path, "e3", b"x"), 9, "33" * 32, "r", None, True)

    # when the versions still holding the erased data are retired
    with pytest.raises(RegistryError, match="is production"):
        reg.retire("tiny-llama", [2], "holds REQ-1 data")
    base_files = _local(lineage[1]["source"])
    assert base_files.exists()
    record_path = reg.retire("tiny-llama", [1], "base holds data erased by REQ-1")

    # then the registry entry, its files and its run are gone, and the retirement is recorded
    assert [row["version"] for row in reg.lineage("tiny-llama")] == [2, 3]
    assert not base_files.exists()
    with pytest.raises(Exception, match="not found|RESOURCE_DOES_NOT_EXIST|No Run"):
        reg.client.get_run(lineage[1]["registry_run_id"])
    record = json.loads(record_path.read_text())
    assert record["versions"][0]["version"] == 1
    assert record["reason"] == "base holds data erased by REQ-1"
    rec_run = reg.client.get_run(record["record_run_id"])
    assert rec_run.data.tags["retired_versions"] == "1"
    assert reg.client.get_registered_model("tiny-llama").tags["last_retirement"].endswith("v1")
    assert reg.production_version("tiny-llama") == 2


def test_retiring_an_unknown_version_raises(mlflow_adapter, tmp_path):
    mlflow_adapter.register_base("m", _files(tmp_path, "b", b"b"), "00" * 32)
    with pytest.raises(RegistryError, match="no version 4"):
        mlflow_adapter.retire("m", [4], "x")


def test_default_adapter_uses_revs_home(monkeypatch, tmp_path):
    monkeypatch.setenv("REVS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REVS_MLFLOW_TRACKING_URI", raising=False)
    assert MlflowAdapter().tracking_uri == f"sqlite:///{(tmp_path / 'home' / 'mlflow.db').resolve()}"
    monkeypatch.setenv("REVS_MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert MlflowAdapter().tracking_uri == "http://mlflow:5000"


def test_revs_retire_cli_lists_and_retires(mlflow_adapter, tmp_path, monkeypatch, capsys):
    from flows.cli import main

    monkeypatch.setenv("REVS_HOME", str(mlflow_adapter.root))
    mlflow_adapter.register_base("m", _files(tmp_path, "b", b"b"), "00" * 32)
    mlflow_adapter.register_version("m", _files(tmp_path, "e", b"e"), 1, "11" * 32, "run-a", "REQ-1", True)
    assert main(["retire", "m", "--list"]) == 0
    assert "v2\tproduction\taudit=passed" in capsys.readouterr().out
    assert main(["retire", "m", "--versions", "2", "--reason", "x"]) == 1
    assert "is production" in capsys.readouterr().err
    assert main(["retire", "m", "--versions", "1", "--reason", "holds data erased by REQ-1"]) == 0
    assert [r["version"] for r in mlflow_adapter.lineage("m")] == [2]


def test_planted_values_reach_no_file_in_the_workspace(mlflow_adapter, tmp_path, report_data):
    # given a request whose raw values are known to this process
    from flows.params import parse_request
    from tasks.reporting import build_report, export_report
    from tasks.requests import RequestStore
    from tests.flows.test_params import EMAIL, NAME, PHONE, SSN, VALID

    root = mlflow_adapter.root
    store = RequestStore(root)
    store.begin(parse_request(json.dumps(VALID)))
    try:
        # when the request is tracked, fails with a leaky message, is logged, registered and reported
        store.advance("REQ-2026-0001", "located", {"run_id": report_data["run_id"], "findings": 3})
        store.fail("REQ-2026-0001", f"ValueError: could not tokenize {EMAIL} / {SSN} for {NAME}")
        with mlflow_adapter.start_run(tags={"request_id": "REQ-2026-0001"}) as run_id:
            mlflow_adapter.log_params(run_id, {"identifiers": 5})
            with pytest.raises(ValueError, match="raw personal value"):
                mlflow_adapter.log_params(run_id, {"subject": NAME})
        mlflow_adapter.register_base("m", _files(tmp_path, "b", b"b"), "00" * 32)
        export_report(build_report(report_data), root / "export", root=root)
        # then no written byte anywhere in the workspace holds a raw value
        blob = b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())
        for raw in (EMAIL, SSN, "219099999", PHONE, "+12125550187", NAME, NAME.casefold()):
            assert raw.encode() not in blob, raw
        assert b"[REDACTED]" in (root / "requests" / "REQ-2026-0001" / "state.json").read_bytes()
    finally:
        SENSITIVE.clear()
