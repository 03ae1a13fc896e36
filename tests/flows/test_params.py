"""Deletion-request validation (field path + reason, never the value) and policy loading."""

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest

from flows.params import LEGAL_BASES, ParamsError, load_request, parse_request
from flows.policy import Policy, load_policy
from tasks.verdict import AuditThresholds

EMAIL = "jane.roe.planted@example.org"
SSN = "219-09-9999"
PHONE = "+1 212 555 0187"
NAME = "Janet Plantedname"

VALID = {
    "request_id": "REQ-2026-0001",
    "received_at": "2026-03-01T09:00:00Z",
    "verified_at": "2026-03-02T10:30:00+01:00",
    "legal_basis": "gdpr-17-1-b",
    "requester_ref": "TICKET-4711",
    "subject": {"name": NAME, "identifiers": [
        {"type": "email", "value": EMAIL}, {"type": "ssn", "value": SSN}, {"type": "phone", "value": PHONE},
        {"type": "name", "value": NAME}, {"type": "other", "value": "customer-88123"}]},
}


def _with(path, value):
    data = copy.deepcopy(VALID)
    *parents, last = path
    node = data
    for p in parents:
        node = node[p]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return data


_DELETE = object()
FUTURE = (datetime.now(UTC) + timedelta(days=3)).isoformat()


def test_valid_request_parses_and_hides_values_in_repr():
    req = parse_request(json.dumps(VALID))
    assert req.request_id == "REQ-2026-0001"
    assert [i.type for i in req.subject.identifiers] == ["email", "ssn", "phone", "name", "other"]
    assert EMAIL not in repr(req)
    assert NAME not in repr(req)
    assert SSN not in repr(req)


@pytest.mark.parametrize(("data", "expected"), [
    (_with(["request_id"], _DELETE), "request_id: required field is missing"),
    (_with(["subject", "identifiers"], _DELETE), "subject.identifiers: required field is missing"),
    (_with(["requester_ref"], 4711), "requester_ref: Input should be a valid string"),
    (_with(["subject", "identifiers"], "a@b.org"), "subject.identifiers: Input should be a valid list"),
    (_with(["subject", "identifiers", 1, "type"], "passport"), "subject.identifiers[1].type: Input should be"),
    (_with(["subject", "identifiers"], []), "subject.identifiers: List should have at least 1 item"),
    (_with(["subject", "identifiers", 0, "value"], "jane.at.example.org"),
     "subject.identifiers[0].value: not a valid email address"),
    (_with(["subject", "identifiers", 1, "value"], "219-09-99"), "subject.identifiers[1].value: not a valid SSN"),
    (_with(["subject", "identifiers", 1, "value"], "666-09-9999"),
     "subject.identifiers[1].value: not a valid SSN"),
    (_with(["subject", "identifiers", 2, "value"], "call me maybe"),
     "subject.identifiers[2].value: not a parseable phone number"),
    (_with(["subject", "identifiers", 2, "value"], "+1 212"), "subject.identifiers[2].value: not a possible"),
    (_with(["verified_at"], "2026-02-27T09:00:00Z"), "verified_at: is before received_at"),
    (_with(["received_at"], "2026-03-01T09:00:00"), "received_at: Input should have timezone info"),
    (_with(["received_at"], 1767225600), "received_at: must be an ISO 8601 string with a timezone"),
    (_with(["verified_at"], FUTURE), "verified_at: is in the future"),
    (_with(["request_id"], "../../etc/passwd"), "request_id: must be 1-128 letters"),
    (_with(["request_id"], "a/b"), "request_id: must be 1-128 letters"),
    (_with(["legal_basis"], "gdpr-17-1-z"), "legal_basis: unknown legal basis; expected one of: gdpr-17-1-a"),
    (_with(["subject", "identifiers", 3], {"type": "email", "value": EMAIL.upper()}),
     "subject.identifiers: identifiers[3] duplicates identifiers[0]"),
    (_with(["subject", "surname"], "Roe"), "subject.surname: unknown field"),
    (_with(["subject", "name"], "   "), "subject.name: must not be blank"),
])
def test_invalid_request_names_field_and_reason_without_the_value(data, expected):
    with pytest.raises(ParamsError) as exc:
        parse_request(json.dumps(data), "req.json")
    message = str(exc.value)
    assert any(p.startswith(expected) for p in exc.value.problems), message
    for raw in (EMAIL, EMAIL.upper(), SSN, "219-09-99", "666-09-9999", "jane.at.example.org", NAME,
                "call me maybe", "a@b.org", "passport"):
        assert raw not in message


def test_json_syntax_error_gives_line_and_column_without_echoing_text():
    text = f'{{\n  "request_id": "R1",\n  "subject": {{"name": "{NAME}",}}\n}}'
    with pytest.raises(ParamsError) as exc:
        parse_request(text, "req.json")
    assert exc.value.problems[0].startswith("JSON syntax error at line 3 column")
    assert NAME not in str(exc.value)


def test_non_object_request_is_rejected():
    with pytest.raises(ParamsError, match="must be a JSON object"):
        parse_request("[1, 2]")


def test_several_problems_are_all_reported():
    data = _with(["legal_basis"], "nope")
    data["subject"]["identifiers"][0]["value"] = "bad"
    with pytest.raises(ParamsError) as exc:
        parse_request(json.dumps(data))
    assert len(exc.value.problems) == 2


def test_load_request_reads_a_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(VALID))
    assert load_request(path).legal_basis in LEGAL_BASES


# ------------------------------------------------------------------------------------------------------- policy


def test_example_policy_loads():
    from pathlib import Path

    policy = load_policy(Path(__file__).resolve().parents[2] / "deploy" / "policy.example.toml")
    assert policy.audit.min_efficacy == 95.0
    assert policy.audit.max_exact_extractions_plain == 0
    assert policy.audit.min_specificity == 90.0
    assert policy.audit.max_perplexity_increase_pct == 2.0
    assert "EMAIL_ADDRESS" in policy.entities.types
    assert isinstance(policy.revs, dict)


def test_default_policy_has_the_design_thresholds():
    assert load_policy(None) == Policy()
    assert Policy().audit == AuditThresholds()


def test_policy_toml_syntax_error_has_line(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text("[audit]\nmin_efficacy = \n")
    with pytest.raises(ParamsError, match="line 2"):
        load_policy(path)


def test_policy_invalid_threshold_is_rejected(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text("[audit]\nmin_efficacy = 150.0\n[memorization]\nmin_extraction_score = 2\nbogus = 1\n")
    with pytest.raises(ParamsError) as exc:
        load_policy(path)
    text = str(exc.value)
    assert "audit" in text
    assert "percentage" in text
    assert "memorization.min_extraction_score" in text
    assert "memorization.bogus: unknown field" in text


def test_inventory_types_are_checked_like_entity_types(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[inventory]\ntypes = ["EMAIL_ADDRESS", "PHONE_NUMBER"]\n')
    assert load_policy(path).inventory.types == ["EMAIL_ADDRESS", "PHONE_NUMBER"]
    assert load_policy(path).scan_types == ["EMAIL_ADDRESS", "US_SSN", "PHONE_NUMBER", "PERSON"]  # once each
    assert Policy().inventory.types == []  # by default a sweep inventories only what it may erase
    path.write_text('[inventory]\ntypes = ["EMAIL", "EMAIL_ADDRESS", "EMAIL_ADDRESS"]\n')
    with pytest.raises(ParamsError, match="inventory.types.*unknown entity type.*'EMAIL'"):
        load_policy(path)
