"""The inputs and results of :func:`revs_engine.erase.erase`: :class:`Secret` (one value in one context, as token
ids), :class:`EraseInputs` (what must go and what must stay), :class:`TargetOutcome` (one edited token's ranks)
and :class:`EraseResult` (everything an erase did)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from revs_engine.association import AssociationResult
from revs_engine.edit import NeuronEdit, WeightBackup
from revs_engine.presets import EraseConfig
from revs_engine.probes import ProbeItem
from revs_engine.revs_results import RevsResult
from revs_engine.targets import TokenTarget


@dataclass(frozen=True)
class Secret:
    """One value to erase in one context, as token ids (prompt and value encoded separately, no special tokens).

    Attributes:
        prompt_ids: the text before the value.
        secret_ids: the value, with its leading space when the text has one (``" 545-71-4735"``).
        token_texts: the decoded text of each of ``secret_ids`` (for skip/stop rules and decoys).
        entity_type: e.g. ``US_SSN`` (adds that type's rules, :data:`revs_engine.targets.ENTITY_RULES`).
    """

    prompt_ids: tuple[int, ...] = field(repr=False)
    secret_ids: tuple[int, ...] = field(repr=False)
    token_texts: tuple[str, ...] = field(repr=False)
    entity_type: str | None = None

    def __post_init__(self) -> None:
        if not self.prompt_ids or not self.secret_ids:
            raise ValueError("a Secret needs at least one prompt token and one value token")
        if len(self.token_texts) != len(self.secret_ids):
            raise ValueError("token_texts must hold one text per value token")

    @property
    def text(self) -> str:
        """The value as written after the prompt (raw: keep in memory only)."""
        return "".join(self.token_texts)


@dataclass(frozen=True)
class EraseInputs:
    """What must go and what must stay.

    Attributes:
        forget: the secrets to erase, in the order they are edited.
        keep: retained ``(prefix, target)`` items the model reproduces and must keep reproducing.
        benign: benign texts as ids (every position guarded).
        encode: text → ids, needed when the configuration asks for decoys.
        decode: ids → text, needed by ``targets.copied_last`` (the prompt's text); without it that rule is off.
        corpus: a sample of the model's training corpus as ids, holding none of the secrets
            (``revs.joint_covariance`` ``corpus`` / ``both``: the positions the joint re-projection keeps its
            change away from); each text is read up to
            :data:`~revs_engine.corpus_covariance.CORPUS_TEXT_TOKENS` tokens.
        keep_related: per ``keep`` item, whether its prompt may speak of a person being erased (e.g. it shares a
            document with an erased value); empty: none does. ``revs.cross_secrets`` never writes a secret after
            such a prompt (guarding it there would guard the very association being erased).
    """

    forget: tuple[Secret, ...] = field(repr=False)
    keep: tuple[ProbeItem, ...] = field(default=(), repr=False)
    benign: tuple[tuple[int, ...], ...] = field(default=(), repr=False)
    encode: Callable[[str], list[int]] | None = field(default=None, repr=False, compare=False)
    decode: Callable[[list[int]], str] | None = field(default=None, repr=False, compare=False)
    corpus: tuple[tuple[int, ...], ...] = field(default=(), repr=False)
    keep_related: tuple[bool, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if len(self.keep_related) not in (0, len(self.keep)):
            raise ValueError(f"keep_related must hold one flag per keep item ({len(self.keep)}) or be empty, got "
                             f"{len(self.keep_related)}")


@dataclass(frozen=True, slots=True)
class TargetOutcome:
    """One edited token: final-layer rank before, right after its own edit, and after the whole erase."""

    secret_index: int
    position: int
    rank_before: int
    rank_after: int
    rank_final: int
    converged: bool


@dataclass(frozen=True)
class EraseResult:
    """Everything :func:`~revs_engine.erase.erase` did.

    Attributes:
        config: the configuration used.
        targets: every edited token (fallback positions included), in edit order.
        outcomes: one per target.
        edits: REVS's per-layer neuron edits (empty for FT-L, whose change is in ``backup``).
        backup: the original weights of everything changed (``edit.restore`` undoes the erase;
            ``patch.make_patch`` records it).
        seconds: wall time of the edits (guard and position choice excluded).
        guard: counts of what guarded the edit (``items``, ``benign``, ``decoys``).
        revs: REVS's own results of the first pass (None for FT-L), for per-layer detail.
        association: what the association stage did (None when off or without digit positions).
    """

    config: EraseConfig
    targets: tuple[TokenTarget, ...] = field(repr=False)
    outcomes: tuple[TargetOutcome, ...]
    edits: tuple[NeuronEdit, ...] = field(repr=False)
    backup: WeightBackup = field(repr=False)
    seconds: float
    guard: dict[str, int]
    revs: RevsResult | None = field(default=None, repr=False)
    association: AssociationResult | None = field(default=None, repr=False)

    @property
    def n_converged(self) -> int:
        """Targets whose final-layer rank left the top ranks (REVS: the residual window's bottom)."""
        return sum(o.converged for o in self.outcomes)

    def positions(self, n_secrets: int) -> list[list[int]]:
        """Return the edited positions of each of ``n_secrets`` secrets (sorted, each once: several tokens can be
        demoted at one position, ``targets.spellings``; empty when none)."""
        out: list[set[int]] = [set() for _ in range(n_secrets)]
        for t in self.targets:
            out[t.secret_index].add(t.position)
        return [sorted(p) for p in out]

    def summary(self) -> dict[str, Any]:
        """Return counts for logs and reports (no values)."""
        return {"targets": len(self.targets), "converged": self.n_converged, "seconds": round(self.seconds, 2),
                "neurons": sum(int(e.neurons.numel()) for e in self.edits), **self.guard,
                **(self.association.summary() if self.association else {})}
