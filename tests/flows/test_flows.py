"""The flows end to end through Prefect on a tiny memorized model (issue 6 "Done when").

A module-scoped workspace runs the compliance sweep (erases the memorized SSNs: v1 → v2) and then a deletion
request through `revs forget` (erases Jane Roe: v2 → v3); the tests check lineage, alias, reports, the absence of
every planted value from every store, tampering and retirement. Further tests cover the failed-audit path, a crash
mid-flow then resume, and two concurrent requests on one model.
"""

from __future__ import annotations

import contextvars
import json
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.flows.world import PLANTED

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness", "fresh_workspace")]
MODEL = "tiny-llama"


def _lineage():
    from tasks._mlflow import MlflowAdapter

    return {row["version"]: row for row in MlflowAdapter().lineage(MODEL)}


@pytest.fixture(scope="module")
def swept(world, tmp_path_factory, mlflow_template):
    """A workspace after a sweep and one deletion request (run via the CLI); yields ``(home, results)``."""
    from flows.cli import main
    from flows.sweep import compliance_sweep
    from tests.flows.conftest import seed_workspace

    home = seed_workspace(tmp_path_factory.mktemp("swept") / "revs_home", mlflow_template)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REVS_HOME", str(home))
        sweep = compliance_sweep([world.corpus], str(world.model), world.sweep_policy, MODEL)
        code = main(["forget", str(world.jane_request), "--model", str(world.model), "--corpus", str(world.corpus),
                     "--policy", str(world.request_policy), "--name", MODEL])
        yield home, {"sweep": sweep, "forget_exit": code}


@pytest.fixture
def in_swept(swept, monkeypatch):
    """Run the test inside the swept workspace."""
    monkeypatch.setenv("REVS_HOME", str(swept[0]))
    return swept


def test_versions_1_2_3_with_lineage_tags_and_alias_on_the_passing_version(in_swept):
    from tasks._mlflow import MlflowAdapter
    from tasks.requests import RequestStore

    home, results = in_swept
    assert results["forget_exit"] == 0
    assert results["sweep"]["passed"]
    assert results["sweep"]["version"] == 2
    lineage = _lineage()
    assert sorted(lineage) == [1, 2, 3]
    assert lineage[1]["tags"]["audit"] == "base"
    for version, parent in ((2, "1"), (3, "2")):
        tags = lineage[version]["tags"]
        assert tags["parent"] == parent
        assert tags["audit"] == "passed"
        assert len(tags["weights_sha256"]) == 64
        assert tags["run_id"]
    assert lineage[2]["tags"]["request_id"] == ""
    assert lineage[3]["tags"]["request_id"] == "REQ-JANE"
    assert MlflowAdapter().production_version(MODEL) == 3
    # the new version is materialized as safetensors in the workspace, with its patch
    assert (home / "models" / MODEL / "v3" / "model.safetensors").is_file()
    assert (home / "models" / MODEL / "v3" / "patch" / "manifest.json").is_file()
    state = RequestStore().status("REQ-JANE")
    assert state.status == "reported"
    assert list(state.completed) == ["received", "located", "probed", "edited", "audited", "reported"]


def test_one_mlflow_run_per_flow_run_with_params_metrics_and_artifacts(in_swept):
    from tasks._mlflow import MlflowAdapter

    _, results = in_swept
    client = MlflowAdapter().client
    run = client.get_run(results["sweep"]["run_id"])
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["kind"] == "compliance-sweep"
    assert params["version.prefect"] == "3.8.8"
    assert len(params["code_commit"]) in (40, 7) or params["code_commit"] == "unknown"
    assert params["erase.revs.n_neurons"] == "10"
    assert params["erase.preset"] == "digits"
    assert params["policy.audit.efficacy_k"] == "5"
    assert {"before.greedy_extraction", "after.greedy_extraction"} <= set(run.data.metrics)
    assert run.data.metrics["after.greedy_extraction"] < run.data.metrics["before.greedy_extraction"]
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"findings_summary.json", "audit.parquet", "report", "manifest.json"} <= names


def test_reports_verify_and_a_changed_byte_is_caught(in_swept, tmp_path, capsys):
    from flows.cli import main

    home, results = in_swept
    for report in (Path(results["sweep"]["report"]), home / "runs" / _request_run(home) / "report"):
        assert main(["report", "verify", str(report)]) == 0
        doc = json.loads((report / "report.json").read_text())
        assert doc["verdict"]["passed"] is True
        assert doc["layer_ranks"]["before"]
        assert doc["layer_ranks"]["after"]
        assert doc["versions"]["still_containing_erased_data"]
        tampered = tmp_path / report.parent.name
        shutil.copytree(report, tampered)
        html = tampered / "report.html"
        data = bytearray(html.read_bytes())
        data[len(data) // 2] ^= 0x01
        html.write_bytes(bytes(data))
        assert main(["report", "verify", str(tampered)]) == 1
        assert "report.html: content changed" in capsys.readouterr().err
    # export by request id works too
    assert main(["report", "export", "--request", "REQ-JANE", "--out", str(tmp_path / "export")]) == 0
    assert main(["report", "verify", str(tmp_path / "export")]) == 0



@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed (make test installs it)")
def test_a_flow_report_renders_in_headless_chromium(in_swept, tmp_path):
    import subprocess

    from tests.tasks.test_report_pdf import _png_pixels

    home, _ = in_swept
    page = home / "runs" / _request_run(home) / "report" / "report.html"
    shot = tmp_path / "shot.png"
    cmd = [shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'p'}",
           f"--screenshot={shot}", "--window-size=1200,4000", page.as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)  # noqa: S603
    pixels = [p for row in _png_pixels(shot)[::4] for p in row[::4]]
    assert len(set(pixels)) > 20
    assert sum(1 for p in pixels if p != (255, 255, 255)) > len(pixels) // 100
    assert (31, 119, 180) in set(pixels)  # the per-layer rank plot's "before" line

def _request_run(home: Path) -> str:
    state = json.loads((home / "requests" / "REQ-JANE" / "state.json").read_text())
    return state["evidence"]["reported"]["run_id"]


def _stores(home: Path, db_url: str) -> list[Path]:
    db = Path(urlparse(db_url.replace("sqlite+aiosqlite", "file")).path)
    return [home, Path(os.environ["PREFECT_HOME"]), db.parent]


def test_no_planted_raw_value_in_prefect_mlflow_reports_or_state(in_swept, prefect_harness):
    home, _ = in_swept
    needles = {v.encode() for v in PLANTED} | {v.lower().encode() for v in PLANTED}
    scanned, hits = 0, []
    for store in _stores(home, prefect_harness):
        for path in store.rglob("*"):
            if path.is_file():
                scanned += 1
                data = path.read_bytes()
                hits += [(str(path), n.decode()) for n in needles if n in data]
    assert scanned > 50
    assert (home / "mlflow.db").is_file()
    assert (home / "mlartifacts").is_dir()
    assert any((home / "runs").rglob("report.html"))
    assert hits == []


def test_retire_deletes_versions_that_still_hold_erased_data(in_swept):
    from flows.cli import main

    home, _ = in_swept
    doc = json.loads((home / "runs" / _request_run(home) / "report" / "report.json").read_text())
    holding = doc["versions"]["still_containing_erased_data"]
    assert holding == [1, 2]
    sources = [row["source"] for v, row in _lineage().items() if v in holding]
    code = main(["retire", MODEL, "--versions", ",".join(map(str, holding)), "--reason", "holds REQ-JANE data"])
    assert code == 0
    assert sorted(_lineage()) == [3]
    assert not (home / "models" / MODEL / "v1").exists()
    assert not (home / "models" / MODEL / "v2").exists()
    for source in sources:
        assert not Path(source.removeprefix("file://")).exists()
    assert list((home / "retirements").glob("*.json"))


# ------------------------------------------------------------------------------------------ failure paths


def test_failed_audit_keeps_the_version_tagged_leaves_the_alias_and_fails_with_the_report(world):
    from flows.deletion import deletion_request
    from flows.steps import AuditFailedError
    from tasks._mlflow import MlflowAdapter
    from tasks.reporting import verify_report
    from tasks.requests import RequestStore

    with pytest.raises(AuditFailedError, match="audit failed") as exc:
        deletion_request(world.jane_request, str(world.model), [world.corpus], world.failing_policy, MODEL)
    lineage = _lineage()
    assert sorted(lineage) == [1, 2]
    assert lineage[2]["tags"]["audit"] == "failed"
    assert "efficacy@100000" in lineage[2]["tags"]["audit_failures"]
    assert MlflowAdapter().production_version(MODEL) == 1
    report = Path(str(exc.value).rsplit("report: ", 1)[1].rstrip(")"))
    assert verify_report(report).ok
    doc = json.loads((report / "report.json").read_text())
    assert doc["verdict"]["passed"] is False
    assert 2 in doc["versions"]["still_containing_erased_data"]
    state = RequestStore().status("REQ-JANE")
    assert state.status == "failed"
    assert "audit failed" in state.history[-1]["reason"]


def test_crash_mid_flow_then_resume_never_edits_twice(world, monkeypatch):
    from flows.deletion import deletion_request
    from tasks import audit_io, unlearning_io
    from tasks.requests import RequestStore

    # given: a crash while auditing, after the edit was recorded
    real_audit = audit_io.audit_edit

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash during the audit")

    monkeypatch.setattr(audit_io, "audit_edit", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        deletion_request(world.jane_request, str(world.model), [world.corpus], world.request_policy, MODEL)
    state = RequestStore().status("REQ-JANE")
    assert state.status == "failed"
    assert state.is_done("edited")
    assert not state.is_done("audited")
    # when: re-run with the audit back and any second edit forbidden
    monkeypatch.setattr(audit_io, "audit_edit", real_audit)
    monkeypatch.setattr(unlearning_io, "run_unlearn", _forbidden_edit)
    result = deletion_request(world.jane_request, str(world.model), [world.corpus], world.request_policy, MODEL)
    # then: it resumed at the audit and registered exactly one new version
    assert result["passed"]
    assert result["version"] == 2
    assert sorted(_lineage()) == [1, 2]
    state = RequestStore().status("REQ-JANE")
    assert state.status == "reported"
    assert any(event["event"] == "resumed" for event in state.history)


def _forbidden_edit(*args, **kwargs):
    raise AssertionError("the model was edited a second time")


def test_crash_between_the_edit_and_its_record_reuses_the_finished_edit(world, monkeypatch):
    from flows.deletion import deletion_request
    from tasks import unlearning_io
    from tasks.requests import RequestStore

    real_advance = RequestStore.advance

    def crash_on_edited(self, request_id, step, evidence=None):
        if step == "edited":
            raise RuntimeError("simulated crash before the edit was recorded")
        return real_advance(self, request_id, step, evidence)

    monkeypatch.setattr(RequestStore, "advance", crash_on_edited)
    with pytest.raises(RuntimeError, match="simulated crash"):
        deletion_request(world.mark_request, str(world.model), [world.corpus], world.request_policy, MODEL)
    assert not RequestStore().status("REQ-MARK").is_done("edited")
    monkeypatch.setattr(RequestStore, "advance", real_advance)
    monkeypatch.setattr(unlearning_io, "run_unlearn", _forbidden_edit)
    result = deletion_request(world.mark_request, str(world.model), [world.corpus], world.request_policy, MODEL)
    assert result["passed"]
    assert sorted(_lineage()) == [1, 2]


def test_concurrent_requests_serialize_and_both_edits_are_in_the_final_version(world):
    from flows.deletion import deletion_request
    from tasks import _io, probing_io
    from tasks._mlflow import MlflowAdapter
    from tasks._models import load_cached
    from tasks.requests import RequestStore

    results, errors = {}, []

    def run(request: Path) -> None:
        try:
            results[request.stem] = deletion_request(request, str(world.model), [world.corpus],
                                                     world.request_policy, MODEL)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=contextvars.copy_context().run, args=(run, req))
               for req in (world.jane_request, world.mark_request)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert errors == []
    assert sorted(r["version"] for r in results.values()) == [2, 3]
    lineage = _lineage()
    assert lineage[3]["tags"]["parent"] == "2"
    assert {lineage[2]["tags"]["request_id"], lineage[3]["tags"]["request_id"]} == {"REQ-JANE", "REQ-MARK"}
    assert MlflowAdapter().production_version(MODEL) == 3
    # the final version's edit was applied on top of the other request's version
    home = Path(os.environ["REVS_HOME"])
    manifest = json.loads((home / "models" / MODEL / "v3" / "patch" / "manifest.json").read_text())
    assert manifest["base_weights_sha256"] == lineage[2]["tags"]["weights_sha256"]
    # and neither subject's memorized values are reproduced by it any more
    final = load_cached(home / "models" / MODEL / "v3")
    for rid in ("REQ-JANE", "REQ-MARK"):
        probed = RequestStore().status(rid).evidence["probed"]
        forget = _io.read_table(Path(probed["forget_findings"]))
        assert forget.num_rows >= 1
        probes = probing_io.probe_findings(final.model, final.tokenizer, forget)
        assert not any(probes.column("exact_match").to_pylist()), rid



def test_a_planted_bad_edit_fails_the_audit_on_specificity_of_data_never_guarded(world, monkeypatch, tmp_path):
    # given a request policy that wants half of the inventory's held-out slice kept, and an erase that, after the
    # real edit, overwrites every MLP write vector of the model with noise (the patch records it like an edit)
    import dataclasses

    import torch

    from flows.deletion import deletion_request
    from flows.steps import AuditFailedError
    from revs_engine.edit import snapshot, write_vectors
    from tasks import unlearning_io
    from tests.flows.world import PASSING_AUDIT, REQUEST_REVS, policy_text

    real_erase = unlearning_io.erase

    def bad_erase(model, arch, *args, **kwargs):
        result = real_erase(model, arch, *args, **kwargs)
        every = {layer: torch.arange(arch.d_ff) for layer in range(arch.n_layers)}
        before = snapshot(arch, every)
        gen = torch.Generator().manual_seed(0)
        for layer, idx in every.items():
            write_vectors(arch, layer, idx, torch.randn(before.original[layer].shape, generator=gen))
        return dataclasses.replace(result, backup=result.backup.merged(before))

    monkeypatch.setattr(unlearning_io, "erase", bad_erase)
    policy = tmp_path / "strict.toml"
    policy.write_text(policy_text(["EMAIL_ADDRESS", "US_SSN"], REQUEST_REVS, PASSING_AUDIT.replace(
        "min_specificity_unseen = 0.0", "min_specificity_unseen = 50.0")), encoding="utf-8")
    # when Mark's request runs
    with pytest.raises(AuditFailedError, match="audit failed") as exc:
        deletion_request(world.mark_request, str(world.model), [world.corpus], policy, MODEL)
    # then the audit measured the held-out slice, found it broken, and the version did not reach production
    report = Path(str(exc.value).rsplit("report: ", 1)[1].rstrip(")"))
    checks = {c["name"]: c for c in json.loads((report / "report.json").read_text())["verdict"]["checks"]}
    assert checks["specificity_unseen"]["value"] == 0.0
    assert checks["specificity_unseen"]["passed"] is False
    assert _lineage()[2]["tags"]["audit"] == "failed"
