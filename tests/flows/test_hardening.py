"""Issue 18: one test per defect, each failing before its fix (defects 1, 2, 4 and 5; 6 and 8 are in
test_hardening_privacy.py).

Fast tests call the CLI in-process on inputs that are refused before any flow runs; the tests marked ``slow`` run
the deletion flow on the tiny memorized world (tests/flows/world.py).
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest

from flows.cli import main
from tests.flows.world import JANE_EMAIL, JANE_NAME, PLANTED_SSNS, request_doc

MODEL = "tiny-llama"


def _error_lines(err: str, command: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(f"revs {command}: error:")]


def _one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = _error_lines(err, command)
    assert len(lines) == 1, err
    return lines[0]


def _write_request(path: Path, rid: str = "REQ-JANE", **changes) -> Path:
    doc = request_doc(rid, JANE_NAME, JANE_EMAIL) | changes
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- 1. a request "done" by mistake


def test_forget_with_a_misspelled_corpus_is_refused_before_anything_runs(world, tmp_path, capsys):
    home = Path(os.environ["REVS_HOME"])
    code = main(["forget", str(world.jane_request), "--model", str(world.model), "--corpus",
                 str(world.corpus.with_name("cropus")), "--policy", str(world.request_policy), "--name", MODEL])
    line = _one_line_error(capsys, "forget")
    assert code == 2
    assert f"--corpus {world.corpus.with_name('cropus')}: no such file or directory" in line
    assert not (home / "requests").exists()
    assert not (home / "models").exists()


def test_the_corpus_is_part_of_a_requests_fingerprint_and_a_rerun_keeps_the_history(tmp_path):
    from flows.params import parse_request
    from tasks.requests import RequestStore, RerunRequiredError
    from tests.flows.test_params import VALID

    store, request = RequestStore(tmp_path / "ws"), parse_request(json.dumps(VALID))
    rid = request.request_id
    store.begin(request, "a" * 64)
    for step in ("located", "probed", "edited", "audited", "reported"):
        store.advance(rid, step, {"n": 0})
    assert store.begin(request, "a" * 64).status == "reported"  # same corpus: the answer stands
    with pytest.raises(RerunRequiredError, match="--rerun"):
        store.begin(request, "b" * 64)  # another corpus: never answered "done" by mistake
    state = store.begin(request, "b" * 64, rerun=True)
    assert (state.status, state.completed, state.attempt) == ("received", ("received",), 2)
    events = [e["event"] for e in state.history]
    assert events[:2] == ["begin", "advance"]
    assert events[-1] == "rerun"
    data = json.loads(store.state_path(rid).read_text())
    assert data["attempts"][0]["status"] == "reported"
    assert data["attempts"][0]["evidence"]["reported"] == {"n": 0}
    assert store.begin(request, "b" * 64).attempt == 2  # resuming the new attempt needs no flag


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness", "fresh_workspace")
def test_zero_findings_are_reported_loudly_with_read_issues_and_a_rerun_answers_again(world, tmp_path, capsys):
    from tasks.requests import RequestStore

    # given: a corpus without the subject, with a binary file and a malformed JSONL line
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.txt").write_text("The weather report lists every open ticket.", encoding="utf-8")
    (other / "b.txt").write_bytes(b"\x00\x01\x02binary")
    (other / "c.jsonl").write_text('{"text": "notes"}\nnot json\n', encoding="utf-8")
    args = ["forget", str(world.jane_request), "--model", str(world.model), "--policy", str(world.request_policy),
            "--name", MODEL]
    # when: the request runs against it
    assert main([*args, "--corpus", str(other)]) == 0
    err = capsys.readouterr().err
    # then: it is answered, but says loudly that nothing was found, and where the corpus could not be read
    assert "WARNING: request REQ-JANE: NO OCCURRENCE of the subject was found" in err
    assert "corpus read issue(s)" in err
    located = RequestStore().status("REQ-JANE").evidence["located"]
    assert located["n_findings"] == 0
    assert located["corpus"]["issues"]["binary"] == 1
    assert located["corpus"]["issues"]["malformed_json"] == 1
    report = json.loads((Path(os.environ["REVS_HOME"]) / "runs" / located["run_id"] / "report"
                         / "report.json").read_text())
    assert report["request"]["findings"] == 0
    assert any("NO OCCURRENCE" in w for w in report["request"]["warnings"])
    assert report["request"]["corpus"]["issues_total"] == 2
    # when: the same request is run against the right corpus
    assert main([*args, "--corpus", str(world.corpus)]) == 2  # refused without the flag
    assert "--rerun" in _one_line_error(capsys, "forget")
    assert main([*args, "--corpus", str(world.corpus), "--rerun"]) == 0
    # then: it is answered again, the erasure registered, and the first attempt kept in the history
    state = RequestStore().status("REQ-JANE")
    assert state.status == "reported"
    assert state.attempt == 2
    assert state.evidence["located"]["n_findings"] > 0
    assert state.evidence["audited"]["version"] == 2
    assert [e["event"] for e in state.history].count("rerun") == 1


# --------------------------------------------------------------------------------- 2. path traversal via a name


@pytest.mark.parametrize("command", ["forget", "sweep"])
def test_a_traversing_name_is_refused_before_anything_is_written(world, tmp_path, capsys, command):
    home = Path(os.environ["REVS_HOME"])
    args = ["--model", str(world.model), "--corpus", str(world.corpus), "--policy", str(world.request_policy),
            "--name", "../../escaped"]
    code = main(["forget", str(world.jane_request), *args] if command == "forget" else ["sweep", *args])
    line = _one_line_error(capsys, command)
    assert code == 2
    assert "--name: a model name is 1-100 letters" in line
    assert "escaped" not in line  # the name is not echoed
    assert not (home / ".." / ".." / "escaped").exists()
    assert not (home.parent.parent / "escaped").exists()
    assert not (home / "models").exists()


def test_retire_refuses_a_traversing_name_and_the_flows_refuse_one_too(world, tmp_path, capsys):
    from flows.deletion import deletion_request
    from flows.sweep import compliance_sweep
    from tasks.errors import InvalidNameError

    assert main(["retire", "../../x", "--versions", "1", "--reason", "holds REQ-1 data"]) == 2
    assert "MODEL: a model name is" in _one_line_error(capsys, "retire")
    with pytest.raises(InvalidNameError):
        deletion_request.fn(world.jane_request, str(world.model), [world.corpus], None, "../x")
    with pytest.raises(InvalidNameError):
        compliance_sweep.fn([world.corpus], str(world.model), None, "a/b")
    assert not (Path(os.environ["REVS_HOME"]) / "requests").exists()


def test_workspace_paths_never_resolve_outside_the_workspace(tmp_path):
    from tasks._workspace import inside_workspace, workspace_dir, workspace_root
    from tasks.errors import WorkspaceError

    root = workspace_root()
    for parts in (("models", ".."), ("models", "../../x"), ("a/b",), ("",)):
        with pytest.raises(WorkspaceError):
            workspace_dir(*parts)
    (root / "models").mkdir()
    (root / "models" / "link").symlink_to(tmp_path / "outside", target_is_directory=True)
    (tmp_path / "outside").mkdir()
    with pytest.raises(WorkspaceError, match="resolves outside the workspace"):
        workspace_dir("models", "link", "v1")
    with pytest.raises(WorkspaceError):
        inside_workspace(root / ".." / "x")
    assert not (tmp_path / "outside" / "v1").exists()
    assert workspace_dir("models", "ok", "v1") == root / "models" / "ok" / "v1"


# ------------------------------------------------------------------------------------------------ 4. policy holes


@pytest.mark.parametrize(("line", "where"), [
    ("[audit]\nmax_perplexity_increase_pct = nan\n", "audit.max_perplexity_increase_pct"),
    ("[audit]\nmin_efficacy = inf\n", "audit.min_efficacy"),
    ("[audit]\nmin_specificity = -inf\n", "audit.min_specificity"),
    ("[entities]\nmin_score = nan\n", "entities.min_score"),
    ("[memorization]\nmin_extraction_score = nan\n", "memorization.min_extraction_score"),
])
def test_a_non_finite_number_in_the_policy_is_refused_at_load(tmp_path, line, where):
    from flows.params import ParamsError
    from flows.policy import Policy, load_policy

    policy = tmp_path / "p.toml"
    policy.write_text(line, encoding="utf-8")
    with pytest.raises(ParamsError) as exc:
        load_policy(policy)
    assert f"{where}: must be a finite number" in str(exc.value)
    with pytest.raises(ValueError, match="finite"):
        Policy.model_validate({"audit": {"max_perplexity_increase_pct": float("nan")}})


def test_an_unknown_entity_type_is_refused_at_load_before_version_1_is_registered(world, tmp_path, capsys):
    from flows.params import ParamsError
    from flows.policy import load_policy

    policy = tmp_path / "p.toml"
    policy.write_text('[entities]\ntypes = ["EMAIL_ADRESS", "US_SSN"]\n', encoding="utf-8")
    with pytest.raises(ParamsError, match="entities.types: unknown entity type"):
        load_policy(policy)
    assert main(["sweep", "--corpus", str(world.corpus), "--model", str(world.model), "--policy", str(policy),
                 "--name", MODEL]) == 2
    assert "EMAIL_ADRESS" in _one_line_error(capsys, "sweep")
    assert not (Path(os.environ["REVS_HOME"]) / "models").exists()


# ------------------------------------------------------------------------------ 5. tracebacks for user errors


def test_scan_config_with_wrong_types_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("nothing here", encoding="utf-8")
    config = tmp_path / "c.json"
    config.write_text('{"min_score": "high"}', encoding="utf-8")
    assert main(["scan", str(tmp_path / "a.txt"), "--out", str(tmp_path / "o.parquet"), "--config",
                 str(config)]) == 2
    assert f"--config {config}: a setting has the wrong type or value" in _one_line_error(capsys, "scan")


def test_a_quote_in_a_model_name_is_a_user_error_and_the_registry_filter_cannot_be_broken(tmp_path, capsys,
                                                                                         mlflow_template):
    from tasks._mlflow import MlflowAdapter
    from tests.flows.conftest import seed_workspace

    assert main(["retire", "it's", "--versions", "1", "--reason", "holds REQ-1 data"]) == 2
    assert "MODEL: a model name is" in _one_line_error(capsys, "retire")
    home = seed_workspace(tmp_path / "ws", mlflow_template)
    adapter = MlflowAdapter(root=home, tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    assert adapter.lineage("it's") == []
    assert adapter.lineage("x' OR name='y") == []


def test_an_unsupported_architecture_is_one_line_and_exit_2(world, tmp_path, capsys):
    model = tmp_path / "bert"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "bert", "architectures": ["BertForMaskedLM"]}')
    code = main(["forget", str(world.jane_request), "--model", str(model), "--corpus", str(world.corpus),
                 "--name", "bert-model"])
    assert code == 2
    assert "model_type 'bert' is not supported" in _one_line_error(capsys, "forget")


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness", "fresh_workspace")
def test_a_model_error_inside_the_flow_is_one_line_without_prefect_tracebacks(world, capsys):
    code = main(["forget", str(world.jane_request), "--model", "no-such-org/no-such-model", "--corpus",
                 str(world.corpus), "--policy", str(world.request_policy), "--name", MODEL])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert len(_error_lines(err, "forget")) == 1


@pytest.mark.parametrize("where", ["out", "home"])
def test_an_unwritable_out_or_workspace_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, where):
    (tmp_path / "a.txt").write_text("ssn 219-09-9999", encoding="utf-8")
    (tmp_path / "file").write_text("a file, not a directory", encoding="utf-8")
    out = tmp_path / "file" / "o.parquet" if where == "out" else tmp_path / "o.parquet"
    if where == "home":
        monkeypatch.setenv("REVS_HOME", str(tmp_path / "file" / "ws"))
    assert main(["scan", str(tmp_path / "a.txt"), "--out", str(out), "--no-progress"]) == 2
    line = _one_line_error(capsys, "scan")
    assert ("--out" in line) if where == "out" else ("REVS_HOME=" in line)
    assert not out.exists()


def test_a_scan_whose_final_write_fails_keeps_its_findings(tmp_path, capsys, monkeypatch):
    import shutil

    import pyarrow.parquet as pq

    (tmp_path / "a.txt").write_text(f"ssn {PLANTED_SSNS[0]} and ssn {PLANTED_SSNS[1]}", encoding="utf-8")

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", disk_full)
    out = tmp_path / "o.parquet"
    assert main(["scan", str(tmp_path / "a.txt"), "--out", str(out), "--no-progress"]) == 2
    line = _one_line_error(capsys, "scan")
    assert "No space left on device" in line
    kept = Path(line.split("the findings are kept in ")[1].split(":")[0])
    assert pq.read_table(kept).num_rows == 2
    assert not out.exists()
    assert not list(tmp_path.glob(".o.parquet*"))


def test_an_internal_error_exits_1_with_a_redacted_traceback_in_a_private_log(tmp_path, capsys, monkeypatch):
    import pii_detect
    from tasks.redaction import SENSITIVE

    (tmp_path / "a.txt").write_text("text", encoding="utf-8")
    SENSITIVE.register([JANE_EMAIL])

    def broken(*args, **kwargs):
        raise RuntimeError(f"scanner crashed near {JANE_EMAIL}")

    monkeypatch.setattr(pii_detect, "scan_corpus", broken)
    try:
        assert main(["scan", str(tmp_path / "a.txt"), "--out", str(tmp_path / "o.parquet")]) == 1
    finally:
        SENSITIVE.clear()
    line = _one_line_error(capsys, "scan")
    log = Path(line.split("the traceback is in ")[1].split(". Please")[0])
    assert log.parent == Path(os.environ["REVS_HOME"]).resolve() / "logs"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text()
    assert "Traceback" in text
    assert "scanner crashed near [REDACTED]" in text
    assert JANE_EMAIL not in text
