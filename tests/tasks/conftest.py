"""Fixtures for task tests: sample report data, a run directory, a per-test MLflow store copied from a template."""

import json

import pytest

PLANTED_EMAIL = "planted.person@example.net"
PLANTED_SSN = "219-09-9999"


#: The sample request's values (masked previews + fake HMACs): a phone number in 16 records of two files, an
#: e-mail in 3 records, the subject's name in 5 (found, not memorized).
SAMPLE_VALUES = [("PHONE_NUMBER", "***-***-4130", "ef" * 32, 16, True),
                 ("EMAIL_ADDRESS", "p***@e***.net", "ab" * 32, 3, True),
                 ("PERSON", "J*** P***", "cd" * 32, 5, False)]


def sample_findings():
    """Findings rows (no raw values) of :data:`SAMPLE_VALUES`."""
    rows = []
    for entity, masked, hmac, count, _ in SAMPLE_VALUES:
        for i in range(count):
            rows.append({"finding_id": f"f-{entity[:2].lower()}{i:02d}", "source": f"corpus/part{i % 2}.jsonl",
                         "doc_key": str(i), "doc_sha256": "00" * 32, "start": 10, "end": 22, "entity_type": entity,
                         "score": 1.0, "recognizer": "fast", "value_hmac": hmac, "masked_preview": masked})
    return rows


def sample_audit_rows(targets):
    """Audit rows before/after for each target (the erased ones), plus aggregates and layer ranks."""
    rows = []
    for t in targets:
        for stage, eff, hit in (("before", 0.0, 100.0), ("after", 100.0, 0.0)):
            for metric in ("efficacy", "logit_lens", "delta", "perturb"):
                rows.append({"target_id": t["target_id"], "stage": stage, "metric": metric, "k": 100,
                             "score": eff if metric != "delta" else min(eff + 3.0, 100.0), "passed": None})
            for metric in ("greedy_extraction", "perturbed_greedy_extraction"):
                rows.append({"target_id": t["target_id"], "stage": stage, "metric": metric, "k": None,
                             "score": hit, "passed": hit == 0})
    for stage, ranks in (("before", [900, 400, 120, 30, 4, 0]), ("after", [950, 1200, 3000, 8000, 15000, 21000])):
        rows += [{"target_id": "*", "stage": stage, "metric": "layer_rank", "k": layer, "score": float(r),
                  "passed": None} for layer, r in enumerate(ranks)]
    return rows


def sample_edit_rows(targets):
    """targets.parquet rows of the edit: two token positions per erased finding."""
    return [{"finding_id": t["target_id"], "masked_preview": t["masked_preview"], "position": pos,
             "rank_before": 0, "rank_after": 1500 + 100 * pos + i, "rank_final": 2000 + 100 * pos + i,
             "converged": True}
            for i, t in enumerate(targets) for pos in (2, 5)]


def sample_report_data():
    """Run data as a flow would write it to report_data.json (masked values and HMACs only)."""
    from tasks.verdict import AuditThresholds, evaluate_audit

    memorized = {v[2] for v in SAMPLE_VALUES if v[4]}
    targets = [{k: f[k] for k in ("entity_type", "masked_preview", "value_hmac")} | {"target_id": f["finding_id"]}
               for f in sample_findings() if f["value_hmac"] in memorized]
    thresholds = AuditThresholds()
    verdict = evaluate_audit({"efficacy": {t["target_id"]: 100.0 for t in targets},
                              "exact_extractions": {"plain": 0, "perturbed": 0, "sampled": 0}, "specificity": 94.0,
                              "specificity_unseen": 92.0,
                              "perplexity_before": 12.3, "perplexity_after": 12.4,
                              "format": {"exposure_bits": 1.2, "control_exposure_bits": 1.0,
                                         "exposure_above_6_bits": 0.0, "constrained_fraction": 12.0,
                                         "control_constrained_fraction": 11.0, "neighbourhood_hits": 0,
                                         "partial_completions": 0}}, thresholds).to_dict()
    return {
        "run_id": "run-20260301-0001",
        "kind": "deletion-request",
        "request": {"request_id": "REQ-2026-0001", "legal_basis": "gdpr-17-1-b", "requester_ref": "TICKET-4711",
                    "received_at": "2026-03-01T09:00:00+00:00", "verified_at": "2026-03-02T09:30:00+00:00",
                    "deadline": {"due": "2026-04-01", "statutory_due": "2026-04-01", "source": "GDPR Art. 12(3)",
                                 "extension": None},
                    "subject": {"name_masked": "J*** P***", "identifiers": [
                        {"type": "email", "masked_preview": "p***@e***.net", "value_hmac": "ab" * 32},
                        {"type": "phone", "masked_preview": "***-***-4130", "value_hmac": "ef" * 32}]}},
        "model": {"name": "smollm2-135m", "base_version": 1, "new_version": 2,
                  "weights_sha256_before": "11" * 32, "weights_sha256_after": "22" * 32},
        "lineage": [{"version": 1, "parent": None, "weights_sha256": "11" * 32, "audit": "base",
                     "aliases": []},
                    {"version": 2, "parent": 1, "weights_sha256": "22" * 32, "audit": "passed",
                     "request_id": "REQ-2026-0001", "aliases": ["production"]}],
        "versions": {"registered": 2, "production": 2, "still_containing_erased_data": [1]},
        "config": {"revs": {"n_neurons": 30},
                   "policy": {"entities": {"types": ["EMAIL_ADDRESS", "PHONE_NUMBER", "PERSON"]},
                              "memorization": {"min_extraction_score": 0.8}}},
        "targets": targets,
        "metrics": {"before": {"efficacy@100": 3.0, "specificity": 100.0, "perplexity": 12.3},
                    "after": {"efficacy@100": 98.5, "specificity": 94.0, "perplexity": 12.4}},
        "layer_ranks": {"before": [900, 400, 120, 30, 4, 0], "after": [950, 1200, 3000, 8000, 15000, 21000]},
        "attacks": [{"name": "logit_lens", "score": 97.0, "threshold": 95.0},
                    {"name": "delta", "score": 96.0, "threshold": 95.0},
                    {"name": "perturb", "score": 91.0, "threshold": 95.0}],
        "thresholds": thresholds.to_dict(),
        "verdict": verdict,
    }


def write_evidence(ev_dir, report_data):
    """Write the evidence Parquet files a flow would leave (findings, audit, the edit's targets)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pii_detect.schema import FINDINGS_SCHEMA
    from revs_engine.schema import AUDIT_SCHEMA

    ev_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(sample_findings(), schema=FINDINGS_SCHEMA), ev_dir / "findings.parquet")
    pq.write_table(pa.Table.from_pylist(sample_audit_rows(report_data["targets"]), schema=AUDIT_SCHEMA),
                   ev_dir / "audit.parquet")
    pq.write_table(pa.Table.from_pylist(sample_edit_rows(report_data["targets"])), ev_dir / "targets.parquet")


def make_run_dir(tmp_path, report_data):
    """Write a run directory in the documented layout: report_data.json + evidence/."""
    run = tmp_path / "revs_home" / "runs" / report_data["run_id"]
    (run / "evidence" / "patch").mkdir(parents=True)
    (run / "report_data.json").write_text(json.dumps(report_data))
    write_evidence(run / "evidence", report_data)
    (run / "evidence" / "patch" / "manifest.json").write_text(json.dumps({"targets": ["ab" * 32]}))
    return run


@pytest.fixture
def report_data():
    """Sample run data (see :func:`sample_report_data`)."""
    return sample_report_data()


@pytest.fixture
def run_dir(tmp_path, report_data):
    """A run directory under the test's REVS_HOME (see :func:`make_run_dir`)."""
    return make_run_dir(tmp_path, report_data)


@pytest.fixture(scope="session")
def _mlflow_template(tmp_path_factory):
    """One migrated MLflow SQLite DB per session (a fresh migration costs seconds)."""
    from tasks._mlflow import MlflowAdapter

    root = tmp_path_factory.mktemp("mlflow-template")
    MlflowAdapter(root=root).client.search_experiments()
    return root / "mlflow.db"


@pytest.fixture
def mlflow_adapter(tmp_path, _mlflow_template, monkeypatch):
    """An adapter on a per-test copy of the template DB: sqlite:///{tmp_path}/ws/mlflow.db."""
    import shutil

    from tasks._mlflow import MlflowAdapter

    monkeypatch.delenv("REVS_MLFLOW_TRACKING_URI", raising=False)
    root = tmp_path / "ws"
    root.mkdir()
    shutil.copyfile(_mlflow_template, root / "mlflow.db")
    return MlflowAdapter(root=root)
