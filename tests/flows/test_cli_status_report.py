"""`revs status`, `revs report export|verify` and `revs ui` command lines."""

import json

import pytest

from flows.cli import main
from flows.params import parse_request
from tasks.requests import RequestStore
from tests.flows.test_params import EMAIL, NAME, VALID
from tests.tasks.conftest import make_run_dir, sample_report_data


def test_status_prints_history_without_raw_values(capsys):
    store = RequestStore()
    store.begin(parse_request(json.dumps(VALID)))
    store.advance("REQ-2026-0001", "located", {"findings": 2})
    store.fail("REQ-2026-0001", "probe crashed")
    code = main(["status", "REQ-2026-0001"])
    out = capsys.readouterr().out
    assert code == 2
    assert "status    failed" in out
    assert "received -> located" in out
    assert "probe crashed" in out
    assert "j***@e***.org" in out
    assert EMAIL not in out
    assert NAME not in out


def test_status_unknown_request_exits_1(capsys):
    assert main(["status", "NOPE"]) == 1
    assert "no request" in capsys.readouterr().err


def test_status_json_and_listing(capsys):
    RequestStore().begin(parse_request(json.dumps(VALID)))
    assert main(["status", "REQ-2026-0001", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "received"
    assert main(["status"]) == 0
    assert capsys.readouterr().out == "REQ-2026-0001\treceived\n"


@pytest.fixture
def report_data():
    return sample_report_data()


@pytest.fixture
def run_dir(tmp_path, report_data):
    return make_run_dir(tmp_path, report_data)


def test_report_export_then_verify_then_tamper(tmp_path, run_dir, capsys):
    out = tmp_path / "export"
    assert main(["report", "export", "--run", str(run_dir), "--format", "json", "--out", str(out)]) == 0
    assert (out / "report.json").exists()
    assert not (out / "report.html").exists()
    assert main(["report", "verify", str(out)]) == 0
    assert "OK:" in capsys.readouterr().out
    (out / "report.json").write_text("{}")
    assert main(["report", "verify", str(out)]) == 1
    assert "report.json: content changed" in capsys.readouterr().err


def test_report_export_by_request_uses_the_recorded_run(tmp_path, run_dir, report_data, capsys):
    store = RequestStore()
    store.begin(parse_request(json.dumps(VALID)))
    assert main(["report", "export", "--request", "REQ-2026-0001", "--out", str(tmp_path / "a")]) == 1
    assert "no run_id recorded" in capsys.readouterr().err
    store.advance("REQ-2026-0001", "located", {"run_id": report_data["run_id"]})
    assert main(["report", "export", "--request", "REQ-2026-0001", "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "report.html").exists()


def test_report_export_errors_exit_1(tmp_path, capsys):
    assert main(["report", "export", "--run", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 1
    assert "report_data.json: missing" in capsys.readouterr().err
    assert main(["report", "export", "--request", "NOPE", "--out", str(tmp_path / "o")]) == 1


def test_ui_command_line_is_explicit_and_local(tmp_path, monkeypatch, capsys):
    from flows.commands.ui import build_command

    cmd = build_command(tmp_path / "ws", 5123)
    assert cmd[1:4] == ["-m", "mlflow", "ui"]
    assert cmd[cmd.index("--backend-store-uri") + 1] == f"sqlite:///{(tmp_path / 'ws').resolve()}/mlflow.db"
    assert cmd[cmd.index("--default-artifact-root") + 1] == str((tmp_path / "ws").resolve() / "mlartifacts")
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--port") + 1] == "5123"
    monkeypatch.setenv("REVS_HOME", str(tmp_path / "home"))
    assert main(["ui", "--print-command", "--port", "5001"]) == 0
    assert f"sqlite:///{(tmp_path / 'home').resolve()}/mlflow.db" in capsys.readouterr().out


def test_retire_cli_requires_reason_and_reports_refusals(capsys):
    assert main(["retire", "m", "--versions", "1"]) == 2
    assert "--reason" in capsys.readouterr().err
