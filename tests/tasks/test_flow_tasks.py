"""Task bodies through ``.fn()``: cache keys, the policy's REVS table, selection, summaries, lineage, verdicts."""

import json
from types import SimpleNamespace

import pyarrow as pa
import pytest

from pii_detect.schema import FINDINGS_SCHEMA
from revs_engine.schema import PROBES_SCHEMA
from tasks import _io, probing, registry, tracking
from tasks.caching import content_hash, content_key
from tests.tasks.conftest import PLANTED_EMAIL

CTX = SimpleNamespace(task=SimpleNamespace(task_key="t-1"))


def test_cache_key_follows_file_content_not_objects(tmp_path):
    # given
    a = tmp_path / "a.parquet"
    a.write_bytes(b"one")
    key = content_key(CTX, {"findings": a, "k": 5})
    # then: same bytes, same key; one changed byte, another key; a directory hashes its files
    assert content_key(CTX, {"findings": a, "k": 5}) == key
    a.write_bytes(b"two")
    assert content_key(CTX, {"findings": a, "k": 5}) != key
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "w.safetensors").write_bytes(b"w")
    before = content_hash(tmp_path / "d")
    (tmp_path / "d" / "w.safetensors").write_bytes(b"W")
    assert content_hash(tmp_path / "d") != before
    assert content_hash(tmp_path / "missing").startswith("missing:")
    with pytest.raises(TypeError, match="pass a path"):
        content_key(CTX, {"model": object()})


@pytest.mark.parametrize(("spec", "name"), [("smollm2-135m", "smollm2-135m"), ("org/model-1", "org--model-1")])
def test_model_name_for_specs(spec, name):
    assert registry.model_name_for(spec) == name


def test_model_name_for_a_directory_is_its_folder_name(tmp_path):
    (tmp_path / "my model").mkdir()
    assert registry.model_name_for(str(tmp_path / "my model")) == "my--model"


def _findings(n):
    return pa.Table.from_pylist([
        {"finding_id": f"f{i}", "source": "/c/doc.txt", "doc_key": "file", "doc_sha256": "0" * 64, "start": i,
         "end": i + 1, "entity_type": "EMAIL_ADDRESS", "score": 1.0, "recognizer": "t", "value_hmac": f"h{i}",
         "masked_preview": f"p{i}***"} for i in range(n)], schema=FINDINGS_SCHEMA)


def _probes(flags):
    return pa.Table.from_pylist([
        {"finding_id": f"f{i}", "prefix_tokens": 3, "target_tokens": 2, "prefix_truncated": False,
         "exact_match": exact, "first_mismatch": -1 if exact else 0, "target_token_ranks": [0, 1],
         "extraction_score": score, "memorized": exact} for i, (exact, score) in enumerate(flags)],
        schema=PROBES_SCHEMA)


@pytest.mark.parametrize(("criteria", "forget"), [
    ({"exact_match": True, "min_extraction_score": 1.0}, ["f0"]),
    ({"exact_match": True, "min_extraction_score": 0.5}, ["f0", "f2"]),
    ({"exact_match": False, "min_extraction_score": 0.9}, []),
])
def test_select_for_erasure_applies_the_memorization_policy(tmp_path, criteria, forget):
    findings = _io.write_table(_findings(3), tmp_path / "f.parquet", FINDINGS_SCHEMA)
    probes = _io.write_table(_probes([(True, 0.5), (False, 0.0), (False, 0.5)]), tmp_path / "p.parquet",
                             PROBES_SCHEMA)
    out = probing.select_for_erasure.fn(findings, probes, criteria, tmp_path)
    assert _io.read_table(out.forget_findings).column("finding_id").to_pylist() == forget
    assert out.n_forget + out.n_retain == 3
    assert len(_io.read_table(out.retain_findings)) == 3 - len(forget)
    # the REVS guard: retained findings the model reproduces exactly (f0 is the only exact match)
    guard = _io.read_table(out.guard_findings).column("finding_id").to_pylist()
    assert guard == ([] if "f0" in forget else ["f0"])


def test_select_for_erasure_keeps_memorized_findings_of_other_types_as_guard(tmp_path):
    # given: three memorized findings, one an SSN; only SSNs are to be erased ([inventory] types of a sweep)
    table = _findings(3).to_pylist()
    table[1]["entity_type"] = "US_SSN"
    findings = _io.write_table(pa.Table.from_pylist(table, schema=FINDINGS_SCHEMA), tmp_path / "f.parquet",
                               FINDINGS_SCHEMA)
    probes = _io.write_table(_probes([(True, 1.0)] * 3), tmp_path / "p.parquet", PROBES_SCHEMA)
    # when
    out = probing.select_for_erasure.fn(findings, probes, {"exact_match": True}, tmp_path, ["US_SSN"])
    # then: the SSN goes; the e-mails stay, and guard the edit
    assert _io.read_table(out.forget_findings).column("finding_id").to_pylist() == ["f1"]
    assert _io.read_table(out.forget_probes).column("finding_id").to_pylist() == ["f1"]
    assert _io.read_table(out.guard_findings).column("finding_id").to_pylist() == ["f0", "f2"]
    assert (out.n_forget, out.n_retain) == (1, 2)


def test_findings_summary_holds_ids_previews_and_hmacs_only(tmp_path):
    findings = _io.write_table(_findings(2), tmp_path / "f.parquet", FINDINGS_SCHEMA)
    doc = tracking.summarize_findings.fn(findings, findings, tmp_path / "s.json")
    assert doc["by_entity_type"] == {"EMAIL_ADDRESS": 2}
    assert set(doc["erased"][0]) == {"finding_id", "entity_type", "masked_preview", "value_hmac"}
    assert json.loads((tmp_path / "s.json").read_text())["findings"] == 2


def test_flatten_makes_mlflow_params():
    assert tracking.flatten("", {"a": {"b": 1, "c": [1, 2]}, "d": None}) == {"a.b": 1, "a.c": "[1, 2]", "d": ""}


def test_lineage_names_the_versions_that_still_hold_erased_data(mlflow_adapter, monkeypatch, tmp_path):
    monkeypatch.setenv("REVS_HOME", str(mlflow_adapter.root))
    files = tmp_path / "files"
    files.mkdir()
    (files / "patch.json").write_text("{}")
    mlflow_adapter.register_base("m", files, "1" * 64)
    mlflow_adapter.register_version("m", files, 1, "2" * 64, "run-a", None, {"passed": True})
    mlflow_adapter.register_version("m", files, 2, "3" * 64, "run-b", "REQ-1", {"passed": False,
                                                                               "failures": ["x"]})
    passed = registry.lineage.fn("m", 2, True)
    assert passed["versions"] == {"registered": 3, "production": 2, "still_containing_erased_data": [1]}
    failed = registry.lineage.fn("m", 3, False)
    assert failed["versions"]["still_containing_erased_data"] == [1, 2, 3]
    assert [r["parent"] for r in failed["lineage"]] == [None, 1, 2]
    assert failed["lineage"][2]["request_id"] == "REQ-1"
    # registering the same edit again (a retried or resumed task) finds the existing version
    assert mlflow_adapter.find_version("m", {"weights_sha256": "3" * 64, "parent": "2",
                                             "request_id": "REQ-1"}) == 3


def test_mlflow_run_params_refuse_raw_values(mlflow_adapter):
    from tasks.redaction import SENSITIVE

    SENSITIVE.register([PLANTED_EMAIL])
    run_id = mlflow_adapter.open_run(run_name="t")
    with pytest.raises(ValueError, match="raw personal value"):
        mlflow_adapter.log_params(run_id, tracking.flatten("", {"note": f"about {PLANTED_EMAIL}"}))
    mlflow_adapter.close_run(run_id)
    assert mlflow_adapter.client.get_run(run_id).info.status == "FINISHED"


def test_a_retried_registration_reuses_its_version_and_finishes_moving_the_alias(mlflow_adapter, monkeypatch,
                                                                                  tmp_path):
    monkeypatch.setenv("REVS_HOME", str(mlflow_adapter.root))
    staged = tmp_path / "staged"
    (staged / "patch").mkdir(parents=True)
    (staged / "patch" / "manifest.json").write_text("{}")
    mlflow_adapter.register_base("m", staged, "1" * 64)
    first = registry.register_version.fn("m", staged, 1, "2" * 64, "run-a", "REQ-1", {"passed": True})
    mlflow_adapter.set_production("m", 1)  # as if the first attempt died before moving the alias
    again = registry.register_version.fn("m", staged, 1, "2" * 64, "run-b", "REQ-1", {"passed": True})
    assert first == again == 2
    assert mlflow_adapter.production_version("m") == 2
    assert sorted(v["version"] for v in mlflow_adapter.lineage("m")) == [1, 2]
