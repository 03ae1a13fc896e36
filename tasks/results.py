"""Typed results passed between the flows' steps (paths, ids, hashes and counts only: never a value).

Offers :class:`BaseVersion` (the version an erasure starts from), :class:`Selection` (what a run erases, guards and
audits), :class:`Judged` (what a version's inventory already judged), :class:`EditResult` (an erasure's output
directory and summary) and :class:`AuditOutcome` (the audit, its verdict and the version it registered). They are
pydantic models: Prefect persists and validates them, and a deletion request stores them in its state as JSON
(``model_dump(mode="json")``) and reads them back with ``model_validate``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseVersion(_Result):
    """A registered version of a governed model, materialized in the workspace."""

    name: str
    version: int
    dir: Path


class Selection(_Result):
    """The findings tables of one run: what is erased, what guards the erasure, what the audit checks.

    ``guard_findings``: retained memorized findings the erasure guards (with the inventory's guard slice once
    split); ``audit_findings``: what Specificity checks (guard slice + held-out slice; None: every retained
    finding).
    """

    forget_findings: Path
    forget_probes: Path
    retain_findings: Path
    guard_findings: Path
    n_forget: int
    n_retain: int
    audit_findings: Path | None = None
    n_guard: int = 0
    n_holdout: int = 0


class Judged(_Result):
    """Findings split by a model version's memorization inventory: ``unjudged`` (findings Parquet) still needs a
    probe; ``carried`` (probes Parquet) holds the inventory's judgement of the others."""

    unjudged: Path
    carried: Path
    n_unjudged: int
    n_carried: int


class EditResult(_Result):
    """An erasure's staged version: its directory, weights before/after, targets, and the configuration used."""

    model_dir: Path
    base_sha256: str
    edited_sha256: str
    targets: int
    converged: int
    config: dict[str, Any] = Field(default_factory=dict)


class AuditOutcome(_Result):
    """The audit of an erasure, judged against the policy, and the version it registered."""

    verdict: dict[str, Any]
    attacks: list[dict[str, Any]] = Field(default_factory=list)
    metrics: dict[str, dict[str, float]] = Field(default_factory=dict)
    layer_ranks: dict[str, list[float]] = Field(default_factory=dict)
    audit: Path
    version: int
    inventory: Path | None = None

    @property
    def passed(self) -> bool:
        """Whether the audit met the policy."""
        return bool(self.verdict.get("passed"))
