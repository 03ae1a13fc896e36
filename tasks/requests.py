"""Deletion-request state that survives a crash.

Offers
- :data:`STEPS` — ``received → located → probed → edited → audited → reported`` (``failed`` from any step);
- :class:`RequestStore` — ``begin(request, corpus_sha256, rerun) -> RequestState``, ``preflight(...)``,
  ``advance(request_id, step, evidence)``, ``fail(request_id, reason)``,
  ``extend_deadline(request_id, reason, months=|days=)``, ``status(request_id)``, ``list_requests()``;
- :class:`RequestState` — an immutable snapshot (``status``, ``completed``, ``next_step``, ``is_done(step)``,
  ``evidence``, ``history``, ``deadline`` — the statutory due date of :mod:`tasks.deadlines` —, ``answered_at``);
- per-request locks (:mod:`tasks.locks`, which also holds the per-model lock).

Evidence and failure reasons are checked against :data:`tasks.redaction.SENSITIVE` (``begin`` registers the
subject's raw values there).

State lives in ``.revs/requests/<request_id>/state.json`` (atomic writes, a per-request lock around every
read-modify-write). It stores the subject only as keyed HMACs (:func:`pii_detect.normalize.value_hmac`, the same
hash findings carry, so they can be matched) and masked previews; the raw request file stays where the user
keeps it.

Resuming: ``begin`` on a known request returns its state (a failed one is reopened at its last completed step);
the caller runs ``state.next_step`` onward and skips every ``state.is_done(step)`` — ``advance`` refuses a step
that is already done or out of order. The corpus a request runs against is part of its fingerprint: running it
against another corpus is refused (:class:`RerunRequiredError`) unless it is re-run deliberately
(``begin(..., rerun=True)``, ``revs forget --rerun``), which archives the attempt in ``attempts`` and starts again
at ``received`` with the history kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from tasks import deadlines
from tasks._io import atomic_write_text
from tasks._workspace import hmac_key, workspace_root
from tasks.locks import SAFE_NAME, flock, lock_name
from tasks.redaction import SENSITIVE, SensitiveValueError

STEPS: tuple[str, ...] = ("received", "located", "probed", "edited", "audited", "reported")
FAILED = "failed"
STATE_VERSION = 1


class RequestStateError(RuntimeError):
    """Base class for request-state errors."""


class IllegalTransitionError(RequestStateError):
    """A step was advanced out of order, repeated, or after the request finished or failed."""


class RequestNotFoundError(RequestStateError, LookupError):
    """No state exists for this request id."""


class RequestConflictError(RequestStateError):
    """A request id was reused for a different request."""


class RerunRequiredError(RequestConflictError):
    """A request is run against another corpus than the one it was started with; only a deliberate re-run may."""


class _IdentifierLike(Protocol):
    type: str
    value: str


class _SubjectLike(Protocol):
    name: str
    identifiers: Sequence[_IdentifierLike]


class RequestLike(Protocol):
    """What :meth:`RequestStore.begin` needs (``flows.params.DeletionRequest`` satisfies it)."""

    request_id: str
    received_at: datetime
    verified_at: datetime
    legal_basis: str
    requester_ref: str
    subject: _SubjectLike


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class RequestState:
    """A snapshot of one request's progress (no raw personal values)."""

    request_id: str
    status: str
    completed: tuple[str, ...]
    evidence: Mapping[str, Any]
    history: tuple[Mapping[str, Any], ...]
    subject: Mapping[str, Any]
    legal_basis: str
    requester_ref: str
    received_at: str | None = None
    verified_at: str | None = None
    deadline: Mapping[str, Any] | None = None
    attempt: int = 1

    @property
    def answered_at(self) -> str | None:
        """When the request was reported (answered), from its history; None while it is open."""
        return next((e["at"] for e in reversed(self.history) if e.get("to") == "reported"), None)

    @property
    def next_step(self) -> str | None:
        """The first step not yet completed (``None`` when reported)."""
        return next((s for s in STEPS if s not in self.completed), None)

    @property
    def done(self) -> bool:
        """True once the request is reported."""
        return self.status == "reported"

    def is_done(self, step: str) -> bool:
        """Return True when ``step`` was already completed (the caller must skip it)."""
        if step not in STEPS:
            raise ValueError(f"unknown step {step!r}; steps are {', '.join(STEPS)}")
        return step in self.completed

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RequestState:
        """Build a snapshot from a ``state.json`` document."""
        deadline = data.get("deadline")
        if deadline is None and data.get("received_at"):  # states written before deadlines were recorded
            with contextlib.suppress(ValueError):
                deadline = deadlines.deadline_for(data["legal_basis"], data["received_at"])
        return cls(request_id=data["request_id"], status=data["status"], completed=tuple(data["completed"]),
                   evidence=data["evidence"], history=tuple(data["history"]), subject=data["subject"],
                   legal_basis=data["legal_basis"], requester_ref=data["requester_ref"],
                   received_at=data.get("received_at"), verified_at=data.get("verified_at"), deadline=deadline,
                   attempt=int(data.get("attempt", 1)))


def _json_safe(value: Any, path: str) -> None:
    if value is None or isinstance(value, bool | int | float):
        return
    if isinstance(value, str):
        if SENSITIVE.find(value):
            raise SensitiveValueError(f"evidence {path}: contains a raw personal value; "
                                      "store its HMAC or a masked preview instead")
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _json_safe(item, f"{path}[{i}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"evidence {path}: keys must be strings")
            _json_safe(key, f"{path}.<key>")
            _json_safe(item, f"{path}.{key}")
        return
    raise TypeError(f"evidence {path}: {type(value).__name__} is not JSON data (use str, number, list, dict)")


class RequestStore:
    """Persisted deletion-request states under ``<workspace>/requests/``."""

    def __init__(self, root: Path | None = None):
        self.root = root or workspace_root()

    # -- paths and IO
    def _dir(self, request_id: str) -> Path:
        if not SAFE_NAME.fullmatch(request_id):
            raise ValueError("request_id must be 1-128 letters, digits, '.', '_' or '-' (no path separators)")
        return self.root / "requests" / request_id

    def state_path(self, request_id: str) -> Path:
        """Return the path of a request's ``state.json``."""
        return self._dir(request_id) / "state.json"

    @contextlib.contextmanager
    def _locked(self, request_id: str) -> Iterator[None]:
        with flock(self.root / "locks" / f"request-{lock_name(request_id)}.lock", None):
            yield

    def _read(self, request_id: str) -> dict[str, Any]:
        path = self.state_path(request_id)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RequestNotFoundError(f"no request {request_id!r} in {self.root / 'requests'}; "
                                       "run the deletion-request flow on its file") from None

    def _write(self, data: dict[str, Any]) -> RequestState:
        data["updated_at"] = _now()
        atomic_write_text(self.state_path(data["request_id"]), json.dumps(data, indent=2, sort_keys=True) + "\n")
        return RequestState.from_json(data)

    # -- subject fingerprint
    def _subject_record(self, request: RequestLike, key: bytes) -> dict[str, Any]:
        # Imported here: `pii_detect` loads Presidio/spaCy on import (seconds); `revs status` must stay instant.
        from pii_detect import mask as pii_mask
        from pii_detect import normalize as pii_normalize

        idents = []
        for ident in request.subject.identifiers:
            entity = pii_normalize.ENTITY_FOR_TYPE.get(ident.type, "OTHER")
            idents.append({"type": ident.type, "entity_type": entity,
                           "value_hmac": pii_normalize.value_hmac(key, entity, ident.value),
                           "masked_preview": pii_mask.mask_value(entity, ident.value)})
        return {"name_hmac": pii_normalize.value_hmac(key, "PERSON", request.subject.name),
                "name_masked": pii_mask.mask_value("PERSON", request.subject.name),
                "identifiers": idents}

    @staticmethod
    def _fingerprint(request: RequestLike, subject: Mapping[str, Any], key: bytes,
                     corpus_sha256: str | None = None) -> str:
        content = {"subject": subject, "legal_basis": request.legal_basis,
                   "received_at": request.received_at.isoformat(), "verified_at": request.verified_at.isoformat(),
                   "requester_ref": request.requester_ref}
        if corpus_sha256 is not None:
            content["corpus_sha256"] = corpus_sha256
        return hmac.new(key, json.dumps(content, sort_keys=True).encode(), hashlib.sha256).hexdigest()

    # -- API
    def begin(self, request: RequestLike, corpus_sha256: str | None = None, rerun: bool = False) -> RequestState:
        """Start a request, or resume it: return its state (a failed one reopens at its last completed step).

        Args:
            request: The validated request.
            corpus_sha256: Which corpus it is answered against (:func:`tasks.corpus.corpus_fingerprint`); part of
                the request's fingerprint.
            rerun: Answer it again from the start (a new attempt) even when it is done or was answered against
                another corpus; the earlier attempts and the whole history are kept.

        Raises:
            RequestConflictError: The id is already used by a request with different content.
            RerunRequiredError: The request was answered (or started) against another corpus and ``rerun`` is
                False.
        """
        key = hmac_key(self.root)
        SENSITIVE.register([request.subject.name, *(i.value for i in request.subject.identifiers)])
        subject = self._subject_record(request, key)
        content_fp = self._fingerprint(request, subject, key)
        fingerprint = self._fingerprint(request, subject, key, corpus_sha256)
        with self._locked(request.request_id):
            if self.state_path(request.request_id).exists():
                data = self._read(request.request_id)
                self._check_existing(data, content_fp, corpus_sha256, rerun)
                if rerun:
                    return self._write(self._restart(data, fingerprint, content_fp, corpus_sha256))
                if data.get("corpus_sha256") is None and corpus_sha256 is not None:
                    data.update(corpus_sha256=corpus_sha256, fingerprint=fingerprint,
                                request_fingerprint=content_fp)
                    self._write(data)
                if data["status"] != FAILED:
                    return RequestState.from_json(data)
                resumed = data["completed"][-1]
                data["history"].append({"at": _now(), "from": FAILED, "to": resumed, "event": "resumed"})
                data["status"] = resumed
                return self._write(data)
            now = _now()
            data = {
                "schema_version": STATE_VERSION, "request_id": request.request_id,
                "legal_basis": request.legal_basis, "requester_ref": request.requester_ref,
                "received_at": request.received_at.isoformat(), "verified_at": request.verified_at.isoformat(),
                "subject": subject, "fingerprint": fingerprint, "request_fingerprint": content_fp,
                "corpus_sha256": corpus_sha256, "attempt": 1, "created_at": now,
                "deadline": deadlines.deadline_for(request.legal_basis, request.received_at),
                "status": "received", "completed": ["received"],
                "evidence": {"received": {"identifiers": len(subject["identifiers"])}},
                "history": [{"at": now, "from": None, "to": "received", "event": "begin"}],
            }
            return self._write(data)

    def preflight(self, request: RequestLike, corpus_sha256: str | None = None,
                  rerun: bool = False) -> RequestState | None:
        """Check, without writing anything, that :meth:`begin` would accept the request; return its state.

        Returns:
            The current state, or None for a new request.

        Raises:
            RequestConflictError, RerunRequiredError: As :meth:`begin` would.
        """
        if not self.state_path(request.request_id).exists():
            return None
        key = hmac_key(self.root)
        SENSITIVE.register([request.subject.name, *(i.value for i in request.subject.identifiers)])
        content_fp = self._fingerprint(request, self._subject_record(request, key), key)
        data = self._read(request.request_id)
        self._check_existing(data, content_fp, corpus_sha256, rerun)
        return RequestState.from_json(data)

    @staticmethod
    def _check_existing(data: dict[str, Any], content_fp: str, corpus_sha256: str | None, rerun: bool) -> None:
        request_id = data["request_id"]
        if data.get("request_fingerprint", data["fingerprint"]) != content_fp:
            raise RequestConflictError(f"request {request_id!r} already exists with different content; use a new "
                                       "request_id for a new request.")
        known = data.get("corpus_sha256")
        if not rerun and corpus_sha256 is not None and known not in (None, corpus_sha256):
            raise RerunRequiredError(
                f"request {request_id!r} is {data['status']} against another corpus; to answer it again against "
                "this corpus, re-run it deliberately with --rerun (its history is kept), or give the corpus it "
                "was started with.")

    @staticmethod
    def _restart(data: dict[str, Any], fingerprint: str, content_fp: str,
                 corpus_sha256: str | None) -> dict[str, Any]:
        """Archive the current attempt (status, steps, evidence) and start a new one at ``received``."""
        now = _now()
        attempt = int(data.get("attempt", 1))
        data.setdefault("attempts", []).append({
            "attempt": attempt, "status": data["status"], "completed": data["completed"],
            "evidence": data["evidence"], "corpus_sha256": data.get("corpus_sha256"), "ended_at": now})
        same = corpus_sha256 is not None and corpus_sha256 == data.get("corpus_sha256")
        data["history"].append({"at": now, "from": data["status"], "to": "received", "event": "rerun",
                                "reason": f"re-run deliberately (attempt {attempt + 1}) against "
                                          + ("the same corpus" if same else "another corpus")})
        data.update(status="received", completed=["received"], attempt=attempt + 1, fingerprint=fingerprint,
                    request_fingerprint=content_fp, corpus_sha256=corpus_sha256,
                    evidence={"received": data["evidence"].get("received", {})})
        return data

    def advance(self, request_id: str, step: str, evidence: Mapping[str, Any] | None = None) -> RequestState:
        """Record that ``step`` completed, with its evidence (ids, paths, hashes, counts — never raw values).

        Raises:
            IllegalTransitionError: ``step`` is not the next step, is already done, or the request failed.
            SensitiveValueError: The evidence contains a raw value registered by :meth:`begin`.
        """
        if step not in STEPS:
            raise IllegalTransitionError(f"unknown step {step!r}; steps are {', '.join(STEPS)}")
        evidence = dict(evidence or {})
        _json_safe(evidence, step)
        with self._locked(request_id):
            data = self._read(request_id)
            if data["status"] == FAILED:
                raise IllegalTransitionError(f"request {request_id!r} failed; resume it with begin() first")
            if step in data["completed"]:
                raise IllegalTransitionError(f"request {request_id!r}: step {step!r} is already done; "
                                             "a completed step is never redone")
            expected = RequestState.from_json(data).next_step
            if step != expected:
                raise IllegalTransitionError(f"request {request_id!r}: cannot go from {data['status']!r} to "
                                             f"{step!r}; the next step is {expected!r}")
            data["history"].append({"at": _now(), "from": data["status"], "to": step, "event": "advance"})
            data["status"] = step
            data["completed"].append(step)
            data["evidence"][step] = evidence
            return self._write(data)

    def fail(self, request_id: str, reason: str) -> RequestState:
        """Mark the request failed with ``reason`` (raw values known to this process are redacted).

        Raises:
            IllegalTransitionError: The request is already reported.
        """
        with self._locked(request_id):
            data = self._read(request_id)
            if data["status"] == "reported":
                raise IllegalTransitionError(f"request {request_id!r} is already reported; it cannot fail")
            data["history"].append({"at": _now(), "from": data["status"], "to": FAILED, "event": "fail",
                                    "reason": SENSITIVE.redact(str(reason))[:2000]})
            data["status"] = FAILED
            return self._write(data)

    def extend_deadline(self, request_id: str, reason: str, months: int = 0, days: int = 0) -> RequestState:
        """Extend the request's statutory deadline (GDPR: up to two further months) and record it in the history.

        Raises:
            ValueError: The reason is not a code of :data:`tasks.deadlines.EXTENSION_REASONS`, or the extension is
                longer than the regime allows.
            IllegalTransitionError: The request is already answered (reported).
        """
        with self._locked(request_id):
            data = self._read(request_id)
            if data["status"] == "reported":
                raise IllegalTransitionError(f"request {request_id!r} is already answered; its deadline is final")
            extension = deadlines.check_extension(data["legal_basis"], {"months": months, "days": days,
                                                                        "reason": reason})
            extension["recorded_at"] = _now()
            data["deadline"] = deadlines.deadline_for(data["legal_basis"], data["received_at"], extension)
            data["history"].append({"at": extension["recorded_at"], "from": data["status"], "to": data["status"],
                                    "event": "deadline-extended",
                                    "reason": f"{reason}; due {data['deadline']['due']}"})
            return self._write(data)

    def status(self, request_id: str) -> RequestState:
        """Return the request's current state.

        Raises:
            RequestNotFoundError: No such request.
        """
        return RequestState.from_json(self._read(request_id))

    def list_requests(self) -> list[str]:
        """Return the ids of every request in the workspace, sorted."""
        base = self.root / "requests"
        return sorted(p.parent.name for p in base.glob("*/state.json")) if base.exists() else []
