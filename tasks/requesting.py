"""Prefect tasks around the deletion-request state store (:mod:`tasks.requests`).

Offers :func:`begin_request`, :func:`advance_request`, :func:`fail_request` and :func:`request_block` (the
report's request section). The request object passed to :func:`begin_request` lives only in this process's
memory: these tasks neither cache nor persist their inputs or results, and every result is HMACs, masked
previews, ids and counts.
"""

from __future__ import annotations

import json
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks._logging import run_logger
from tasks.requests import RequestLike, RequestState, RequestStore

_NO_PERSIST: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}


def _summary(state: RequestState) -> dict[str, Any]:
    return {"request_id": state.request_id, "status": state.status, "completed": list(state.completed),
            "evidence": {k: dict(v) for k, v in state.evidence.items()}}


@task(name="begin-request", **_NO_PERSIST)
def begin_request(request: RequestLike) -> dict[str, Any]:
    """Start the request or resume it; return ``{"request_id", "status", "completed", "evidence"}``."""
    state = RequestStore().begin(request)
    run_logger().info("request %s: %s (next step %s)", state.request_id, state.status, state.next_step)
    return _summary(state)


@task(name="advance-request", **_NO_PERSIST)
def advance_request(request_id: str, step: str, evidence: dict[str, Any]) -> dict[str, Any]:
    """Record a completed step with its evidence (paths, hashes, ids, counts)."""
    state = RequestStore().advance(request_id, step, evidence)
    run_logger().info("request %s: %s", request_id, step)
    return _summary(state)


@task(name="fail-request", **_NO_PERSIST)
def fail_request(request_id: str, reason: str) -> dict[str, Any]:
    """Mark the request failed (raw values known to this process are redacted from the reason)."""
    return _summary(RequestStore().fail(request_id, reason))


@task(name="request-block", **_NO_PERSIST)
def request_block(request_id: str) -> dict[str, Any]:
    """Return the report's request section: ids, legal basis, timestamps, statutory deadline, masked subject and
    HMACs."""
    path = RequestStore().state_path(request_id)
    data = json.loads(path.read_text(encoding="utf-8"))
    subject = data["subject"]
    return {"request_id": request_id, "legal_basis": data["legal_basis"], "requester_ref": data["requester_ref"],
            "received_at": data["received_at"], "verified_at": data["verified_at"],
            "deadline": RequestState.from_json(data).deadline,
            "subject": {"name_masked": subject["name_masked"],
                        "identifiers": [{k: i[k] for k in ("type", "masked_preview", "value_hmac")}
                                        for i in subject["identifiers"]]}}
