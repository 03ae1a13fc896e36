"""`revs status`, `revs report export|verify` and `revs ui` command lines."""

import json
import shutil

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
    assert "REQ-2026-0001" in capsys.readouterr().out


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
    assert main(["report", "export", "--request", "REQ-2026-0001", "--out", str(tmp_path / "a")]) == 2
    assert "no run recorded yet" in capsys.readouterr().err
    store.advance("REQ-2026-0001", "located", {"run_id": report_data["run_id"]})
    assert main(["report", "export", "--request", "REQ-2026-0001", "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "report.html").exists()


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("revs report: error: ")
    return lines[0]


@pytest.mark.parametrize(("argv", "says"), [
    (["--run", "{tmp}/missing"], "report_data.json: missing"),
    (["--request", "NOPE"], "--request NOPE: no such request in this workspace; list them with `revs status`"),
    (["--request", "../../etc"], "--request ../../etc: request_id must be"),
])
def test_report_export_user_errors_are_one_line_exit_2(tmp_path, capsys, argv, says):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["report", "export", *argv, "--out", str(tmp_path / "o")]) == 2
    assert says in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def test_report_export_into_a_non_empty_dir_is_refused(tmp_path, run_dir, capsys):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "keep.txt").write_text("mine")
    assert main(["report", "export", "--run", str(run_dir), "--out", str(tmp_path / "o")]) == 2
    assert "not empty; export into a new directory" in _one_error_line(capsys.readouterr().err)
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["keep.txt"]


def test_report_verify_with_a_missing_or_bad_key_file_is_one_line_exit_2(tmp_path, run_dir, capsys):
    out = tmp_path / "export"
    assert main(["report", "export", "--run", str(run_dir), "--format", "json", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["report", "verify", str(out), "--public-key", str(tmp_path / "nope.pub")]) == 2
    assert "--public-key" in _one_error_line(capsys.readouterr().err)
    (tmp_path / "bad.pub").write_text("hello")
    assert main(["report", "verify", str(out), "--public-key", str(tmp_path / "bad.pub")]) == 2
    assert "not a PEM public key" in _one_error_line(capsys.readouterr().err)
    assert main(["report", "verify", str(tmp_path / "no-such-dir")]) == 2
    assert "no such report directory" in _one_error_line(capsys.readouterr().err)


def test_report_from_another_workspace_needs_the_issuers_public_key(tmp_path, run_dir, monkeypatch, capsys):
    # given: a report exported (and signed) in the issuer's workspace, and its public key handed out
    out, key = tmp_path / "export", tmp_path / "issuer.pub"
    assert main(["report", "export", "--run", str(run_dir), "--format", "json", "--out", str(out)]) == 0
    assert main(["report", "public-key", "--out", str(key)]) == 0
    assert key.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    # when: an auditor verifies it in a fresh workspace
    monkeypatch.setenv("REVS_HOME", str(tmp_path / "auditor"))
    capsys.readouterr()
    # then: without the key it fails (exit 1, saying why); with it, it passes
    assert main(["report", "verify", str(out)]) == 1
    assert "no trusted key" in capsys.readouterr().err
    assert main(["report", "verify", str(out), "--public-key", str(key)]) == 0


@pytest.mark.skipif(not any(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")),
                    reason="chromium not installed (apt-get install -y chromium; `make test` does it when it can)")
def test_report_export_pdf_then_tamper_is_caught_by_verify(tmp_path, run_dir, capsys):
    out = tmp_path / "export"
    assert main(["report", "export", "--run", str(run_dir), "--pdf", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} >= {"report.pdf", "report.html", "report.json"}
    assert main(["report", "verify", str(out)]) == 0
    with open(out / "report.pdf", "ab") as fh:
        fh.write(b"\n% appended")
    capsys.readouterr()
    assert main(["report", "verify", str(out)]) == 1
    assert "report.pdf: content changed" in capsys.readouterr().err


def test_report_export_pdf_without_chromium_is_one_line_exit_2(tmp_path, run_dir, monkeypatch, capsys):
    monkeypatch.setenv("REVS_CHROMIUM", str(tmp_path / "no-chromium"))
    assert main(["report", "export", "--run", str(run_dir), "--pdf", "--out", str(tmp_path / "o")]) == 2
    assert "REVS_CHROMIUM" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


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
