"""The workspace at a glance, for ``revs status``: every deletion request and every registered model version.

Offers :func:`request_rows` (id, masked subject, state, statutory deadline and how urgent it is, the version the
request produced and its audit verdict), :func:`version_rows` (per registered model: each version's aliases,
parent, audit, originating request, and whether it still holds data that a later erasure removed) and
:func:`holds_erased_data`. Everything is ids, masked previews, dates and counts — never a raw value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from tasks import deadlines
from tasks.requests import RequestState, RequestStore

#: Order of urgency in the request table: what needs attention first.
_URGENCY_ORDER = {"overdue": 0, "due-soon": 1, "open": 2, "answered": 3, "unknown": 4}


def _request_row(state: RequestState, now: datetime) -> dict[str, Any]:
    audited = state.evidence.get("audited") or {}
    edited = state.evidence.get("edited") or {}
    model = ((edited.get("base") or {}).get("name")) if isinstance(edited, Mapping) else None
    deadline = state.deadline
    urgency = deadlines.urgency(deadline, now, state.answered_at) if deadline else \
        {"state": "unknown", "days_left": None}
    verdict = None if "passed" not in audited else ("passed" if audited["passed"] else "failed")
    return {"request_id": state.request_id, "subject": state.subject.get("name_masked"), "state": state.status,
            "legal_basis": state.legal_basis, "received_at": state.received_at,
            "deadline": (deadline or {}).get("due"), "deadline_extended": bool((deadline or {}).get("extension")),
            "urgency": urgency["state"], "days_left": urgency["days_left"],
            "deadline_text": deadlines.describe(deadline, urgency) if deadline else "unknown",
            "model": model, "version": audited.get("version"), "verdict": verdict,
            "answered_at": state.answered_at}


def request_rows(store: RequestStore | None = None, now: datetime | None = None) -> list[dict[str, Any]]:
    """Return one row per request, the most urgent first (overdue, due soon, open, answered; then by due date)."""
    store = store or RequestStore()
    now = now or datetime.now().astimezone()
    rows = [_request_row(store.status(rid), now) for rid in store.list_requests()]
    return sorted(rows, key=lambda r: (_URGENCY_ORDER[r["urgency"]], r["deadline"] or "9999", r["request_id"]))


def holds_erased_data(versions: Sequence[Mapping[str, Any]]) -> set[int]:
    """Return the versions that still hold data a later erasure removed (or tried to remove).

    A version holds it when it is a proper ancestor of an edited version (every version an erasure was built on
    still has what that erasure removed), or when its own erasure failed the audit.
    """
    parent = {int(v["version"]): v.get("parent") for v in versions}
    out: set[int] = set()
    for v in versions:
        if v.get("parent") is None:
            continue
        if v.get("audit") == "failed":
            out.add(int(v["version"]))
        p = v.get("parent")
        while p is not None and int(p) not in out | {int(v["version"])}:
            out.add(int(p))
            p = parent.get(int(p))
    return out


def version_rows(adapter: Any = None) -> list[dict[str, Any]]:
    """Return every registered model with its versions, oldest first (empty when nothing is registered).

    Args:
        adapter: A :class:`tasks._mlflow.MlflowAdapter` (default: the workspace's).
    """
    if adapter is None:
        from tasks._mlflow import MlflowAdapter

        adapter = MlflowAdapter()
    models = []
    for name in adapter.model_names():
        versions = []
        for v in adapter.lineage(name):
            tags = v["tags"]
            versions.append({"version": int(v["version"]), "aliases": sorted(v["aliases"]),
                             "parent": int(tags["parent"]) if tags.get("parent") else None,
                             "audit": tags.get("audit") or None, "request_id": tags.get("request_id") or None,
                             "run_id": tags.get("run_id") or None,
                             "weights_sha256": tags.get("weights_sha256") or None})
        holding = holds_erased_data(versions)
        for row in versions:
            row["holds_erased_data"] = row["version"] in holding
        models.append({"name": name, "versions": versions})
    return models
