"""`revs status`, `revs report export|verify` and `revs ui` command lines."""

import json

from flows.cli import main
from flows.params import parse_request
from tasks.requests import RequestStore
from tests.flows.test_params import EMAIL, NAME, VALID


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
