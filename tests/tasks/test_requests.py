"""Request state: transitions, resume, no raw values on disk, per-model lock."""

import json
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from flows.params import parse_request
from tasks.locks import LockTimeoutError, model_lock
from tasks.redaction import SENSITIVE, SensitiveValueError
from tasks.requests import (
    STEPS,
    IllegalTransitionError,
    RequestConflictError,
    RequestNotFoundError,
    RequestStore,
)
from tests.flows.test_params import EMAIL, NAME, PHONE, SSN, VALID


@pytest.fixture
def request_obj():
    return parse_request(json.dumps(VALID))


@pytest.fixture
def store(tmp_path):
    return RequestStore(tmp_path / "ws")


def _all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_begin_creates_received_state_with_only_hmacs_and_masks(store, request_obj):
    state = store.begin(request_obj)
    assert state.status == "received"
    assert state.next_step == "located"
    ident = state.subject["identifiers"][0]
    assert ident["masked_preview"] == "j***@e***.org"
    assert len(ident["value_hmac"]) == 64
    assert state.subject["name_masked"] == "J*** P***"
    blob = _all_bytes(store.root)
    for raw in (EMAIL, SSN, "219099999", PHONE, "+12125550187", NAME, NAME.casefold(), "customer-88123"):
        assert raw.encode() not in blob, raw
    assert oct(os.stat(store.root / "keys" / "hmac.key").st_mode & 0o777) == "0o600"


def test_full_lifecycle_records_history_and_evidence(store, request_obj):
    store.begin(request_obj)
    for step in STEPS[1:]:
        state = store.advance("REQ-2026-0001", step, {"path": f"runs/r1/{step}.parquet", "n": 3})
    assert state.status == "reported"
    assert state.done
    assert state.next_step is None
    assert [h["to"] for h in state.history] == list(STEPS)
    assert all(h["at"].endswith("+00:00") for h in state.history)
    assert state.evidence["probed"] == {"path": "runs/r1/probed.parquet", "n": 3}


@pytest.mark.parametrize("step", ["probed", "reported", "received", "bogus"])
def test_out_of_order_or_repeated_steps_raise(store, request_obj, step):
    store.begin(request_obj)
    with pytest.raises(IllegalTransitionError):
        store.advance("REQ-2026-0001", step, {})
    assert store.status("REQ-2026-0001").status == "received"


def test_done_step_is_never_redone(store, request_obj):
    store.begin(request_obj)
    store.advance("REQ-2026-0001", "located", {"findings": 4})
    with pytest.raises(IllegalTransitionError, match="already done"):
        store.advance("REQ-2026-0001", "located", {"findings": 5})
    assert store.status("REQ-2026-0001").evidence["located"] == {"findings": 4}


def test_rerun_resumes_from_last_completed_step(store, request_obj):
    # given a request that failed while editing
    store.begin(request_obj)
    store.advance("REQ-2026-0001", "located", {})
    store.advance("REQ-2026-0001", "probed", {})
    failed = store.fail("REQ-2026-0001", "edit diverged")
    assert failed.status == "failed"
    with pytest.raises(IllegalTransitionError, match="failed"):
        store.advance("REQ-2026-0001", "edited", {})
    # when it is run again (a fresh store: another process)
    resumed = RequestStore(store.root).begin(request_obj)
    # then it continues at the step after the last completed one, and skips the done ones
    assert resumed.status == "probed"
    assert resumed.next_step == "edited"
    ran = [s for s in STEPS if not resumed.is_done(s)]
    assert ran == ["edited", "audited", "reported"]
    assert [h["event"] for h in resumed.history][-2:] == ["fail", "resumed"]


def test_begin_on_running_request_is_idempotent(store, request_obj):
    store.begin(request_obj)
    store.advance("REQ-2026-0001", "located", {})
    assert store.begin(request_obj).status == "located"
    assert len(store.status("REQ-2026-0001").history) == 2


def test_reused_request_id_with_other_content_conflicts(store, request_obj):
    store.begin(request_obj)
    other = dict(VALID, legal_basis="gdpr-17-1-a")
    with pytest.raises(RequestConflictError):
        store.begin(parse_request(json.dumps(other)))


def test_reported_request_cannot_fail(store, request_obj):
    store.begin(request_obj)
    for step in STEPS[1:]:
        store.advance("REQ-2026-0001", step, {})
    with pytest.raises(IllegalTransitionError):
        store.fail("REQ-2026-0001", "late")


def test_unknown_request_raises(store):
    with pytest.raises(RequestNotFoundError):
        store.status("NOPE-1")
    with pytest.raises(ValueError, match="path separators"):
        store.status("../x")


def test_evidence_with_raw_value_is_refused_and_fail_reason_is_redacted(store, request_obj):
    store.begin(request_obj)
    with pytest.raises(SensitiveValueError) as exc:
        store.advance("REQ-2026-0001", "located", {"matches": [f"found {EMAIL} in doc 3"]})
    assert EMAIL not in str(exc.value)
    with pytest.raises(TypeError):
        store.advance("REQ-2026-0001", "located", {"obj": object()})
    state = store.fail("REQ-2026-0001", f"KeyError: {EMAIL.upper()} not tokenizable near {NAME}")
    assert state.history[-1]["reason"] == "KeyError: [REDACTED] not tokenizable near [REDACTED]"
    assert EMAIL.encode() not in _all_bytes(store.root)
    SENSITIVE.clear()


def test_list_requests(store, request_obj):
    assert store.list_requests() == []
    store.begin(request_obj)
    assert store.list_requests() == ["REQ-2026-0001"]


# ----------------------------------------------------------------------------------------------------- locking


def _hold_lock(root, model, log, n):
    for _ in range(n):
        with model_lock(model, root=Path(root)):
            with open(log, "a") as fh:
                fh.write(f"enter {os.getpid()}\n")
            time.sleep(0.02)  # widen the window an overlap would need; correctness does not depend on it
            with open(log, "a") as fh:
                fh.write(f"exit {os.getpid()}\n")


def _assert_never_overlapping(log: Path, expected_pairs: int):
    lines = log.read_text().splitlines()
    assert len(lines) == 2 * expected_pairs
    for enter, leave in zip(lines[::2], lines[1::2], strict=True):
        assert enter.startswith("enter ")
        assert leave == "exit " + enter.split()[1]


def test_model_lock_serializes_two_processes(tmp_path):
    log = tmp_path / "log.txt"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_hold_lock, args=(tmp_path, "HuggingFaceTB/SmolLM2-135M", log, 5))
             for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    _assert_never_overlapping(log, 10)
    locks = list((tmp_path / "locks").iterdir())
    assert len(locks) == 1
    assert "/" not in locks[0].name
    assert locks[0].suffix == ".lock"


def test_model_lock_serializes_two_threads(tmp_path):
    log = tmp_path / "log.txt"
    active, overlaps = [], []

    def work():
        for _ in range(5):
            with model_lock("tiny-model", root=tmp_path):
                active.append(1)
                overlaps.append(len(active))
                time.sleep(0.01)
                active.pop()
    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == [1] * 10
    assert not log.exists()


def test_model_lock_timeout_and_other_models_are_independent(tmp_path):
    with model_lock("m1", root=tmp_path):
        with pytest.raises(LockTimeoutError), model_lock("m1", timeout=0.1, root=tmp_path):
            pass
        with model_lock("m2", timeout=0.1, root=tmp_path):
            pass
    with model_lock("m1", timeout=0.1, root=tmp_path):
        pass
