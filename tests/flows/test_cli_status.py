"""`revs status` without arguments on a workspace with requests in every state and a model with several versions;
`revs extend`; deadlines in `revs status REQ`."""

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flows.cli import main
from flows.params import parse_request
from tasks._mlflow import MlflowAdapter
from tasks.requests import STEPS, RequestStore
from tests.flows.conftest import seed_workspace
from tests.flows.test_params import EMAIL, NAME, VALID

#: (request id, days since receipt, steps done after "received", then failed?)
WORLD = [
    ("REQ-received", 2, 0, False),
    ("REQ-located", 10, 1, False),
    ("REQ-probed", 26, 2, False),        # due within 7 days
    ("REQ-edited", 29, 3, False),        # due within 7 days
    ("REQ-audited", 40, 4, False),       # overdue
    ("REQ-reported", 20, 5, False),      # answered on time
    ("REQ-failed", 45, 3, True),         # failed, and overdue
]


def _request(request_id: str, days_ago: int):
    data = copy.deepcopy(VALID)
    received = datetime.now(UTC) - timedelta(days=days_ago)
    data.update(request_id=request_id, received_at=received.isoformat(), verified_at=received.isoformat())
    return parse_request(json.dumps(data))


@pytest.fixture
def busy_workspace(tmp_path, mlflow_template, monkeypatch):
    """Requests in every state; model `m` with v1 (base) → v2 (passed, production) and v3 (failed, from v2)."""
    import os

    monkeypatch.delenv("REVS_MLFLOW_TRACKING_URI", raising=False)
    home = seed_workspace(Path(os.environ["REVS_HOME"]), mlflow_template)
    store = RequestStore()
    for rid, days, n_steps, failed in WORLD:
        store.begin(_request(rid, days))
        for step in STEPS[1:1 + n_steps]:
            evidence = {"version": 2, "passed": True} if step == "audited" else \
                {"base": {"name": "m", "version": 1}} if step == "edited" else {}
            store.advance(rid, step, evidence)
        if failed:
            store.fail(rid, "audit failed")
    adapter = MlflowAdapter()
    files = tmp_path / "files"
    files.mkdir()
    (files / "patch.json").write_text("{}")
    adapter.register_base("m", files, "11" * 32)
    run_id = adapter.open_run()
    adapter.register_version("m", files, 1, "22" * 32, run_id, "REQ-reported", {"passed": True})
    adapter.register_version("m", files, 2, "33" * 32, run_id, "REQ-failed", {"passed": False, "failures": ["x"]})
    return home


def _days_left(days_ago: int) -> int:
    """Days from today to the GDPR deadline of a request received ``days_ago`` days ago (month lengths vary)."""
    from tasks.deadlines import add_months

    today = datetime.now(UTC).date()
    return (add_months(today - timedelta(days=days_ago), 1) - today).days


def _rows(out: str, header: str) -> dict[str, str]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(header))
    rows = {}
    for line in lines[start + 1:]:
        if not line.strip():
            break
        rows[line[2:].split()[0]] = line
    return rows


def test_status_lists_every_request_with_deadline_version_and_verdict(busy_workspace, capsys):
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Deletion requests: 7 (4 overdue or due within 7 days, marked !)")
    rows = _rows(out, "REQUEST")
    assert set(rows) == {rid for rid, *_ in WORLD}
    assert list(rows)[:2] == ["REQ-failed", "REQ-audited"]  # the most overdue first
    assert rows["REQ-audited"].startswith("! ")
    assert f"OVERDUE by {-_days_left(40)} days" in rows["REQ-audited"]
    assert rows["REQ-failed"].startswith("! ")
    assert rows["REQ-probed"].startswith("~ ")
    assert f"(in {_days_left(26)} days)" in rows["REQ-probed"]
    assert rows["REQ-received"].startswith("  ")
    assert f"answered {_days_left(20)} days before the deadline" in rows["REQ-reported"]
    assert "reported" in rows["REQ-reported"]
    assert " v2 " in rows["REQ-audited"]
    assert "passed" in rows["REQ-audited"]
    for line in rows.values():
        assert "J*** P***" in line
    assert EMAIL not in out
    assert NAME not in out


def test_status_lists_versions_and_which_still_hold_erased_data(busy_workspace, capsys):
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert ("Model m: 3 versions; 3 still hold erased data (retire: revs retire m --versions 1,3 --reason ...); "
            "the production version holds data a failed erasure left: answer that request again") in out
    rows = _rows(out, "VERSION")
    assert rows["v1"].split()[:5] == ["!", "v1", "-", "-", "base"]
    assert rows["v2"].split()[:6] == ["!", "v2", "production", "v1", "passed", "REQ-reported"]
    assert rows["v3"].split()[:6] == ["!", "v3", "-", "v2", "failed", "REQ-failed"]
    assert rows["v3"].rstrip().endswith("YES")


def test_status_json_for_scripts(busy_workspace, capsys):
    assert main(["status", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    by_id = {r["request_id"]: r for r in doc["requests"]}
    assert {r: by_id[r]["state"] for r in by_id} == {
        "REQ-received": "received", "REQ-located": "located", "REQ-probed": "probed", "REQ-edited": "edited",
        "REQ-audited": "audited", "REQ-reported": "reported", "REQ-failed": "failed"}
    assert by_id["REQ-audited"]["urgency"] == "overdue"
    assert by_id["REQ-audited"]["days_left"] == _days_left(40)
    assert by_id["REQ-reported"]["urgency"] == "answered"
    assert by_id["REQ-edited"]["model"] == "m"
    [model] = doc["models"]
    assert [(v["version"], v["holds_erased_data"]) for v in model["versions"]] == [(1, True), (2, True), (3, True)]


def test_status_of_an_empty_workspace(capsys):
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "Deletion requests: 0" in out
    assert "Model versions: none registered in this workspace" in out


def test_extend_then_status_shows_the_new_deadline(busy_workspace, capsys):
    assert main(["extend", "REQ-audited", "--months", "2", "--reason", "complexity"]) == 0
    assert "deadline extended (complexity); now due" in capsys.readouterr().out
    assert main(["status", "REQ-audited"]) == 0
    out = capsys.readouterr().out
    assert "deadline  due " in out
    assert "(extended)" in out
    assert "deadline-extended" in out
    assert main(["status"]) == 0
    rows = _rows(capsys.readouterr().out, "REQUEST")
    assert not rows["REQ-audited"].startswith("!")


@pytest.mark.parametrize(("argv", "says"), [
    (["REQ-audited", "--months", "3", "--reason", "complexity"], "at most 2 months"),
    (["REQ-reported", "--months", "1", "--reason", "complexity"], "already answered"),
    (["REQ-nope", "--months", "1", "--reason", "complexity"], "no request"),
])
def test_extend_refusals_are_one_line_exit_2(busy_workspace, capsys, argv, says):
    assert main(["extend", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("revs extend: error:")
    assert says in err[0]
