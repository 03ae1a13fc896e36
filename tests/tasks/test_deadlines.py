"""Statutory deadlines: GDPR one calendar month (extendable by two), CCPA 45 days (+45); urgency; request state."""

import json
from datetime import UTC, datetime

import pytest

from tasks import deadlines
from tasks.requests import IllegalTransitionError, RequestStore


@pytest.mark.parametrize(("received", "due"), [
    ("2026-03-01T09:00:00+00:00", "2026-04-01"),
    ("2026-01-31T23:00:00+00:00", "2026-02-28"),   # no 31 February: the last day of the month
    ("2028-01-31T08:00:00+00:00", "2028-02-29"),   # leap year
    ("2026-12-15T08:00:00+01:00", "2027-01-15"),   # across the year
])
def test_gdpr_deadline_is_one_calendar_month_from_receipt(received, due):
    d = deadlines.deadline_for("gdpr-17-1-b", received)
    assert d["due"] == d["statutory_due"] == due
    assert d["source"] == "GDPR Art. 12(3)"
    assert d["extension"] is None


def test_ccpa_deadline_is_45_days():
    assert deadlines.deadline_for("ccpa-1798.105", "2026-03-01T00:00:00+00:00")["due"] == "2026-04-15"
    extended = deadlines.deadline_for("ccpa-1798.105", "2026-03-01T00:00:00+00:00",
                                      {"days": 45, "reason": "complexity"})
    assert extended["due"] == "2026-05-30"


def test_gdpr_extension_adds_months_up_to_two():
    d = deadlines.deadline_for("gdpr-17-1-a", "2026-01-31T10:00:00+00:00",
                               {"months": 2, "reason": "number-of-requests"})
    assert (d["statutory_due"], d["due"]) == ("2026-02-28", "2026-04-28")


@pytest.mark.parametrize(("ext", "match"), [
    ({"months": 3, "reason": "complexity"}, "at most 2 months"),
    ({"days": 10, "reason": "complexity"}, "at most 2 months"),
    ({"months": 1, "reason": "because I said so"}, "extension reason"),
    ({"months": 0, "reason": "complexity"}, "positive number"),
    ({"months": 1, "days": 3, "reason": "complexity"}, "not both"),
])
def test_invalid_extensions_are_refused(ext, match):
    with pytest.raises(ValueError, match=match):
        deadlines.deadline_for("gdpr-17-1-a", "2026-01-31T10:00:00+00:00", ext)


def test_unknown_regime_is_refused():
    with pytest.raises(ValueError, match="no statutory deadline known"):
        deadlines.deadline_for("hipaa-1", "2026-01-31T10:00:00+00:00")


@pytest.mark.parametrize(("now", "state", "left"), [
    ("2026-03-10", "open", 22),
    ("2026-03-25", "due-soon", 7),
    ("2026-04-01", "due-soon", 0),
    ("2026-04-04", "overdue", -3),
])
def test_urgency_of_open_requests(now, state, left):
    deadline = {"due": "2026-04-01"}
    got = deadlines.urgency(deadline, datetime.fromisoformat(now + "T12:00:00+00:00"))
    assert got == {"state": state, "days_left": left}


def test_answered_requests_say_whether_they_were_on_time():
    deadline = {"due": "2026-04-01", "extension": None}
    late = deadlines.urgency(deadline, datetime.now(UTC), "2026-04-03T10:00:00+00:00")
    assert late == {"state": "answered", "days_left": -2}
    assert deadlines.describe(deadline, late) == "due 2026-04-01; answered LATE by 2 days"
    early = deadlines.urgency(deadline, datetime.now(UTC), "2026-03-31T10:00:00+00:00")
    assert deadlines.describe(deadline, early) == "due 2026-04-01; answered 1 day before the deadline"
    overdue = deadlines.describe(deadline, {"state": "overdue", "days_left": -1})
    assert overdue == "OVERDUE by 1 day (due 2026-04-01)"


def test_legal_basis_labels():
    assert deadlines.legal_basis_label("gdpr-17-1-b") == "GDPR Art. 17(1)(b)"
    assert deadlines.legal_basis_label("ccpa-1798.105") == "CCPA §1798.105"
    assert deadlines.legal_basis_label("other") == "other"


def _request(request_id="REQ-D-1", received="2026-03-01T09:00:00Z"):
    from flows.params import parse_request

    return parse_request(json.dumps({
        "request_id": request_id, "received_at": received, "verified_at": received,
        "legal_basis": "gdpr-17-1-b", "requester_ref": "T-1",
        "subject": {"name": "Dana Example", "identifiers": [{"type": "email", "value": "dana@example.org"}]}}))


def test_request_state_carries_its_deadline_and_extension(tmp_path):
    store = RequestStore(tmp_path)
    state = store.begin(_request())
    assert state.deadline["due"] == "2026-04-01"
    assert json.loads(store.state_path("REQ-D-1").read_text())["deadline"]["due"] == "2026-04-01"
    extended = store.extend_deadline("REQ-D-1", "complexity", months=2)
    assert extended.deadline["due"] == "2026-06-01"
    assert extended.deadline["extension"]["reason"] == "complexity"
    assert extended.history[-1]["event"] == "deadline-extended"
    assert extended.status == "received"
    with pytest.raises(ValueError, match="at most 2 months"):
        store.extend_deadline("REQ-D-1", "complexity", months=3)


def test_answered_request_cannot_be_extended(tmp_path):
    store = RequestStore(tmp_path)
    store.begin(_request())
    for step in ("located", "probed", "edited", "audited", "reported"):
        store.advance("REQ-D-1", step, {})
    state = store.status("REQ-D-1")
    assert state.answered_at == state.history[-1]["at"]
    with pytest.raises(IllegalTransitionError, match="already answered"):
        store.extend_deadline("REQ-D-1", "complexity", months=1)


def test_old_state_without_deadline_gets_it_computed(tmp_path):
    store = RequestStore(tmp_path)
    store.begin(_request())
    path = store.state_path("REQ-D-1")
    data = json.loads(path.read_text())
    del data["deadline"]
    path.write_text(json.dumps(data))
    assert store.status("REQ-D-1").deadline["due"] == "2026-04-01"
