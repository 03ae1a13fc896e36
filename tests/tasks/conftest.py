"""Fixtures for task tests: sample report data, a run directory, a per-test MLflow store copied from a template."""

import json

import pytest

PLANTED_EMAIL = "planted.person@example.net"
PLANTED_SSN = "219-09-9999"


def sample_report_data():
    """Run data as a flow would write it to report_data.json (masked values and HMACs only)."""
    return {
        "run_id": "run-20260301-0001",
        "kind": "deletion-request",
        "request": {"request_id": "REQ-2026-0001", "legal_basis": "gdpr-17-1-b", "requester_ref": "TICKET-4711",
                    "received_at": "2026-03-01T09:00:00+00:00", "verified_at": "2026-03-02T09:30:00+00:00",
                    "subject": {"name_masked": "J*** P***", "identifiers": [
                        {"type": "email", "masked_preview": "p***@e***.net", "value_hmac": "ab" * 32},
                        {"type": "ssn", "masked_preview": "***-**-9999", "value_hmac": "cd" * 32}]}},
        "model": {"name": "smollm2-135m", "base_version": 1, "new_version": 2,
                  "weights_sha256_before": "11" * 32, "weights_sha256_after": "22" * 32},
        "lineage": [{"version": 1, "parent": None, "weights_sha256": "11" * 32, "audit": None},
                    {"version": 2, "parent": 1, "weights_sha256": "22" * 32, "audit": "passed"}],
        "versions": {"registered": 2, "production": 2, "still_containing_erased_data": [1]},
        "config": {"revs": {"n_neurons": 30}, "policy": {"entities": ["EMAIL_ADDRESS", "US_SSN"]}},
        "targets": [{"target_id": "t-ab12", "entity_type": "EMAIL_ADDRESS", "masked_preview": "p***@e***.net",
                     "value_hmac": "ab" * 32}],
        "metrics": {"before": {"efficacy@100": 3.0, "specificity": 100.0, "perplexity": 12.3},
                    "after": {"efficacy@100": 98.5, "specificity": 94.0, "perplexity": 12.4}},
        "layer_ranks": {"before": [900, 400, 120, 30, 4, 0], "after": [950, 1200, 3000, 8000, 15000, 21000]},
        "attacks": [{"name": "logit_lens", "score": 97.0, "threshold": 95.0},
                    {"name": "delta", "score": 96.0, "threshold": 95.0},
                    {"name": "perturbation", "score": 91.0, "threshold": 95.0}],
        "thresholds": {"min_efficacy": 95.0, "min_specificity": 90.0},
        "verdict": {"passed": True, "failures": []},
    }


def make_run_dir(tmp_path, report_data):
    """Write a run directory in the documented layout: report_data.json + evidence/."""
    run = tmp_path / "revs_home" / "runs" / report_data["run_id"]
    (run / "evidence" / "patch").mkdir(parents=True)
    (run / "report_data.json").write_text(json.dumps(report_data))
    (run / "evidence" / "findings.parquet").write_bytes(b"PAR1" + bytes(range(256)) + b"PAR1")
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
