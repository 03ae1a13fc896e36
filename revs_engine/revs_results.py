"""What a REVS run returns: :class:`LayerResult` (one edited layer of one target), :class:`TargetResult` (one
target token) and :class:`RevsResult` (one call of :func:`revs_engine.revs.unlearn`), plus :func:`settled` and
:func:`with_final`, which combine the results of a target edited in more than one call (the settle rounds of
:func:`revs_engine.erase.erase`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from revs_engine.edit import NeuronEdit, WeightBackup


@dataclass(frozen=True, slots=True)
class LayerResult:
    """One edited layer of one target (§1.7)."""

    layer: int
    n_neurons: int
    rank_mlp_before: int
    rank_residual_before: int
    rank_mlp_after: int
    rank_residual_after: int
    accepted: bool  # both rank windows met
    outer_iterations: int
    neurons_converged: int  # neurons whose own rank reached the neuron window (§1.5)
    neuron_iterations: int


@dataclass(frozen=True, slots=True)
class TargetResult:
    """Outcome for one target token.

    Attributes:
        target_index, secret_index, position: which target (``position`` within its secret).
        rank_before / rank_after: final-layer rank (the model's next-token logits) before / right after this
            target's edits; ``rank_final``: after all targets of the call were edited (later edits can re-promote).
        residual_ranks_before / _after: per-layer residual (logit-lens) rank, ``[n_layers]``.
        layers: edited layers, with per-layer details in ``layer_results``.
        converged: ``rank_after ≥`` the residual bottom margin.
        iterations: outer (§1.7) iterations over all layers.
        seconds: wall time for this target.
    """

    target_index: int
    secret_index: int
    position: int
    rank_before: int
    rank_after: int
    rank_final: int
    residual_ranks_before: tuple[int, ...]
    residual_ranks_after: tuple[int, ...]
    layer_results: tuple[LayerResult, ...]
    converged: bool
    iterations: int
    seconds: float
    guard_broken: int = 0
    attempts: int = 1

    @property
    def layers(self) -> tuple[int, ...]:
        """Edited layers."""
        return tuple(r.layer for r in self.layer_results)

    def to_record(self) -> dict[str, str | int | float | bool]:
        """Return a flat row (lists as comma-joined strings) for Parquet / metrics."""
        return {
            "target_index": self.target_index, "secret_index": self.secret_index, "position": self.position,
            "rank_before": self.rank_before, "rank_after": self.rank_after, "rank_final": self.rank_final,
            "converged": self.converged, "iterations": self.iterations, "seconds": self.seconds,
            "guard_broken": self.guard_broken, "attempts": self.attempts,
            "layers": ",".join(map(str, self.layers)),
            "neurons_per_layer": ",".join(str(r.n_neurons) for r in self.layer_results),
            "residual_ranks_before": ",".join(map(str, self.residual_ranks_before)),
            "residual_ranks_after": ",".join(map(str, self.residual_ranks_after)),
        }


@dataclass(frozen=True)
class RevsResult:
    """Everything :func:`unlearn` did.

    Attributes:
        targets: one :class:`TargetResult` per input target, in order.
        edits: every weight change, in application order.
        backup: original vectors of every touched neuron (``edit.restore`` undoes the call; ``patch.make_patch``
            turns it into a patch).
        seconds: total wall time. ``block_calls``: transformer-block evaluations (the speed comparison).
    """

    targets: tuple[TargetResult, ...]
    edits: tuple[NeuronEdit, ...] = field(repr=False)
    backup: WeightBackup = field(repr=False)
    seconds: float
    block_calls: int

    @property
    def n_converged(self) -> int:
        """Targets that reached the residual bottom margin."""
        return sum(t.converged for t in self.targets)

    def summary(self) -> dict[str, int | float]:
        """Return counts for a manifest / log line."""
        return {"targets": len(self.targets), "converged": self.n_converged,
                "edits": len(self.edits), "neurons": sum(int(e.neurons.numel()) for e in self.edits),
                "seconds": round(self.seconds, 3)}


def settled(first: TargetResult, again: TargetResult) -> TargetResult:
    """One target edited twice (``RevsConfig.settle_rounds``): ranks before the first edit, after the
    second; both edits' layers, iterations and time."""
    return TargetResult(first.target_index, first.secret_index, first.position, first.rank_before,
                        again.rank_after, again.rank_final, first.residual_ranks_before,
                        again.residual_ranks_after, first.layer_results + again.layer_results, again.converged,
                        first.iterations + again.iterations, first.seconds + again.seconds,
                        first.guard_broken + again.guard_broken, first.attempts)


def with_final(res: TargetResult, rank_final: int) -> TargetResult:
    """Return ``res`` with its ``rank_final`` replaced."""
    fields = {name: getattr(res, name) for name in TargetResult.__slots__}
    fields["rank_final"] = rank_final
    return TargetResult(**fields)
