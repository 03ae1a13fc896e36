"""A failed audit carries the flow's reported result, survives pickling, and the demo goes on with it."""

import pickle

import pytest

from flows.demo import _reported
from flows.steps import AuditFailedError


def test_the_error_keeps_its_message_and_result_through_pickling():
    exc = AuditFailedError("audit failed for m v2", {"run_id": "r1", "version": 2, "passed": False})
    back = pickle.loads(pickle.dumps(exc))
    assert str(back) == "audit failed for m v2"
    assert back.result == {"run_id": "r1", "version": 2, "passed": False}
    assert AuditFailedError("no result").result is None


def test_the_demo_goes_on_with_a_reported_failure_and_stops_on_an_unreported_one():
    result = {"run_id": "r1", "version": 2, "passed": False, "report": "/x"}

    def reported():
        raise AuditFailedError("failed", result)

    def unreported():
        raise AuditFailedError("failed")

    assert _reported(reported) == result
    with pytest.raises(AuditFailedError):
        _reported(unreported)
