"""Prefect tasks around the deletion-request state store (:mod:`tasks.requests`).

Offers :func:`begin_request`, :func:`advance_request`, :func:`fail_request` and :func:`request_block` (the
report's request section). The request object passed to :func:`begin_request` lives only in this process's
memory: these tasks neither cache nor persist their inputs or results, and every result is HMACs, masked
previews, ids and counts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks._logging import run_logger
from tasks.redaction import SENSITIVE, redact_failures
from tasks.requests import RequestLike, RequestState, RequestStore

_NO_PERSIST: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}


def _summary(state: RequestState) -> dict[str, Any]:
    return {"request_id": state.request_id, "status": state.status, "completed": list(state.completed),
            "evidence": {k: dict(v) for k, v in state.evidence.items()}, "attempt": state.attempt}


@task(name="begin-request", **_NO_PERSIST)
@redact_failures
def begin_request(request: RequestLike, corpus_sha256: str | None = None, rerun: bool = False,
                  source: Path | None = None) -> dict[str, Any]:
    """Start the request, resume it, or (``rerun``) answer it again from the start.

    Args:
        request: The validated request (in memory only).
        corpus_sha256: Which corpus it is answered against (part of its fingerprint).
        rerun: Start a new attempt, keeping the history (see :meth:`tasks.requests.RequestStore.begin`).
        source: The request file; its values are registered for redaction in this process and in worker
            processes started from it.

    Returns:
        ``{"request_id", "status", "completed", "evidence", "attempt"}``.
    """
    if source is not None:
        SENSITIVE.register_source(source)
    state = RequestStore().begin(request, corpus_sha256, rerun)
    run_logger().info("request %s: %s (next step %s)", state.request_id, state.status, state.next_step)
    return _summary(state)


@task(name="advance-request", **_NO_PERSIST)
@redact_failures
def advance_request(request_id: str, step: str, evidence: dict[str, Any]) -> dict[str, Any]:
    """Record a completed step with its evidence (paths, hashes, ids, counts)."""
    state = RequestStore().advance(request_id, step, evidence)
    run_logger().info("request %s: %s", request_id, step)
    return _summary(state)


@task(name="fail-request", **_NO_PERSIST)
@redact_failures
def fail_request(request_id: str, reason: str) -> dict[str, Any]:
    """Mark the request failed (raw values known to this process are redacted from the reason)."""
    return _summary(RequestStore().fail(request_id, reason))


@task(name="request-block", **_NO_PERSIST)
@redact_failures
def request_block(request_id: str) -> dict[str, Any]:
    """Return the report's request section: ids, legal basis, timestamps, statutory deadline, masked subject and
    HMACs."""
    path = RequestStore().state_path(request_id)
    data = json.loads(path.read_text(encoding="utf-8"))
    subject = data["subject"]
    return {"request_id": request_id, "legal_basis": data["legal_basis"], "requester_ref": data["requester_ref"],
            "received_at": data["received_at"], "verified_at": data["verified_at"],
            "deadline": RequestState.from_json(data).deadline,
            **_corpus_block(data),
            "subject": {"name_masked": subject["name_masked"],
                        "identifiers": [{k: i[k] for k in ("type", "masked_preview", "value_hmac")}
                                        for i in subject["identifiers"]]}}


def _corpus_block(data: dict[str, Any]) -> dict[str, Any]:
    """Return the report's view of what the request read: attempt, corpus documents, read issues, warnings."""
    located = data.get("evidence", {}).get("located") or {}
    corpus = located.get("corpus") or {}
    block: dict[str, Any] = {"attempt": int(data.get("attempt", 1)), "warnings": list(located.get("warnings", []))}
    if "n_findings" in located:
        block["findings"] = located["n_findings"]
    if corpus:
        block["corpus"] = {k: corpus[k] for k in ("documents", "files", "issues_total", "issues") if k in corpus}
    return block
