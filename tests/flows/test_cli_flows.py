"""`revs forget` / `revs sweep` reject bad input before any flow runs; the Dask scan option maps partitions."""

import json
import os

import pytest

from flows.cli import main
from tests.flows.world import request_doc

SECRET_EMAIL = "rejected.person@example.com"


def test_forget_rejects_an_invalid_request_with_field_paths_and_no_values(tmp_path, capsys):
    doc = request_doc("REQ-BAD", "Rejected Person", SECRET_EMAIL)
    doc["legal_basis"] = "because"
    doc["subject"]["identifiers"].append({"type": "ssn", "value": "000-12-3456"})
    request = tmp_path / "bad.json"
    request.write_text(json.dumps(doc))
    code = main(["forget", str(request), "--model", "m", "--corpus", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "legal_basis: unknown legal basis" in err
    assert "subject.identifiers[1].value: not a valid SSN" in err
    assert SECRET_EMAIL not in err
    assert "000-12-3456" not in err
    assert not (tmp_path / "revs_home" / "requests").exists()


@pytest.mark.parametrize("command", ["sweep", "forget"])
def test_unknown_revs_key_in_the_policy_is_named(tmp_path, capsys, command):
    policy = tmp_path / "policy.toml"
    policy.write_text("[revs]\nn_neurons = 5\nneurons_per_layer = 3\n")
    request = tmp_path / "req.json"
    request.write_text(json.dumps(request_doc("REQ-1", "Some Body", SECRET_EMAIL)))
    args = ["sweep", "--corpus", str(tmp_path), "--model", "m"] if command == "sweep" else \
        ["forget", str(request), "--model", "m", "--corpus", str(tmp_path)]
    assert main([*args, "--policy", str(policy)]) == 2
    err = capsys.readouterr().err
    assert "revs: unknown key(s) neurons_per_layer" in err
    assert "valid keys:" in err


def test_invalid_revs_value_in_the_policy_is_rejected(tmp_path):
    from flows.params import ParamsError
    from flows.policy import load_policy

    policy = tmp_path / "policy.toml"
    policy.write_text("[revs]\nn_neurons = 50\nact_top_k = 10\n")
    with pytest.raises(ParamsError, match="act_top_k"):
        load_policy(policy)


@pytest.mark.usefixtures("prefect_harness")
def test_dask_task_runner_scans_partitions_like_the_thread_runner(tmp_path):
    from prefect_dask import DaskTaskRunner

    from flows.steps import scan_partitions
    from tasks import _io

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(4):
        (corpus / f"d{i}.txt").write_text(f"Write to person{i}@example.com or call about SSN 219-09-99{i}8.")
    entities = ["EMAIL_ADDRESS", "US_SSN"]
    single = scan_partitions([corpus], tmp_path / "one.parquet", entities, 0.4, 1)
    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 1, "threads_per_worker": 2, "processes": False})
    mapped = scan_partitions.with_options(task_runner=runner)([corpus], tmp_path / "two.parquet", entities, 0.4, 3)
    one, two = _io.read_table(single), _io.read_table(mapped)
    assert one.num_rows >= 4
    assert one.column("finding_id").to_pylist() == two.column("finding_id").to_pylist()
    assert len(list(tmp_path.glob("two.part*.parquet"))) == 3


def _exit_quietly():
    pass


@pytest.mark.usefixtures("prefect_harness")
def test_processes_forked_after_a_flow_run_exit_cleanly():
    # Prefect 3.8.8's services leave a thread exit hook that fails in forked children (tasks/_logging.py)
    import multiprocessing

    from prefect import flow

    import tasks._logging  # noqa: F401 - installs the fork fix

    @flow(name="fork-check")
    def noop() -> int:
        return 1

    assert noop() == 1
    child = multiprocessing.get_context("fork").Process(target=_exit_quietly)
    child.start()
    child.join(30)
    assert child.exitcode == 0


def test_deployments_file_builds_served_deployments_with_its_schedules_and_parameters():
    from flows import serving

    deployments = {d.name: d for d in serving.load_deployments()}
    assert set(deployments) == {"compliance-sweep", "deletion-request",
                                "compliance-sweep-gpu", "deletion-request-gpu"}
    sweep, deletion = deployments["compliance-sweep"], deployments["deletion-request"]
    assert not deployments["compliance-sweep-gpu"].schedules
    assert not deployments["deletion-request-gpu"].schedules
    assert deployments["compliance-sweep-gpu"].parameters == sweep.parameters
    assert sweep.parameters["corpus"] == ["/data/corpus"]
    assert [s.schedule.cron for s in sweep.schedules] == ["0 2 * * *"]
    assert not deletion.schedules
    assert sweep.concurrency_limit == 1
    fast = serving.load_deployments(only=["compliance-sweep"], interval=5, overrides={"model": "m", "nope": 1})
    assert fast[0].parameters["model"] == "m"
    assert "nope" not in fast[0].parameters
    assert fast[0].schedules[0].schedule.interval.total_seconds() == 5
    with pytest.raises(ValueError, match="no deployment named typo"):
        serving.load_deployments(only=["typo"])


def test_prefect_home_defaults_into_the_workspace(monkeypatch, tmp_path):
    from tasks._workspace import configure_prefect

    monkeypatch.delenv("PREFECT_HOME")
    monkeypatch.setenv("REVS_HOME", str(tmp_path / "ws"))
    assert configure_prefect() == tmp_path / "ws" / "prefect"
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "mine"))
    assert configure_prefect() == tmp_path / "mine"


def test_the_temporary_prefect_server_gets_time_to_start_on_a_busy_machine(monkeypatch, tmp_path):
    # a sweep failed with "Timed out while attempting to connect to ephemeral Prefect API server" (Prefect's 20 s)
    # while two other jobs shared the 2 cores
    from tasks._workspace import EPHEMERAL_STARTUP_TIMEOUT_S, configure_prefect

    monkeypatch.setenv("REVS_HOME", str(tmp_path / "ws"))
    monkeypatch.delenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", raising=False)
    configure_prefect()
    assert os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == str(EPHEMERAL_STARTUP_TIMEOUT_S)
    assert EPHEMERAL_STARTUP_TIMEOUT_S >= 60
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "7")  # the user's choice stands
    configure_prefect()
    assert os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "7"


@pytest.mark.usefixtures("prefect_harness")
def test_two_dask_worker_processes_probe_like_one_process(world, tmp_path):
    # issue 19: findings probed in partitions on a Dask cluster (each worker loads the model once) give the same
    # probes table as one process
    from prefect_dask import DaskTaskRunner

    from flows.steps import probe_partitions
    from revs_engine.schema import PROBES_SCHEMA
    from tasks import _io, pii

    findings = pii.scan_corpus.fn([world.corpus], tmp_path / "findings.parquet", ["EMAIL_ADDRESS", "US_SSN"], 0.4)
    one = probe_partitions(world.model, findings, tmp_path / "one.parquet", 1)
    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True})
    two = probe_partitions.with_options(task_runner=runner)(world.model, findings, tmp_path / "two.parquet", 2)
    one, two = _io.read_table(one, PROBES_SCHEMA), _io.read_table(two, PROBES_SCHEMA)
    assert one.num_rows == _io.read_table(findings).num_rows >= 4
    assert sum(one.column("exact_match").to_pylist()) >= 2  # the world's memorized values are among them
    assert one.equals(two)
    assert len(list(tmp_path.glob("two.part*.parquet"))) == 2
