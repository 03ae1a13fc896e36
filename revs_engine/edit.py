"""Neuron edits as data, applied and undone bit-exactly.

Offers :class:`NeuronEdit` (one layer's additive change to some FF2 write vectors), :class:`WeightBackup`,
:func:`apply_edits` (mutates the weights, returns the backup) and :func:`restore` (writes the saved original
vectors back — never subtracts, so the round trip is bit-exact whatever the float rounding of the addition).

Invariant (STYLE.md §3.3 item 18): ``backup = apply_edits(model, arch, edits); restore(model, arch, backup)``
leaves every weight ``torch.equal`` to before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from revs_engine.arch import ModelArch, add_to_neurons, neuron_vectors


@dataclass(frozen=True)
class NeuronEdit:
    """An additive change to the write vectors of some neurons of one layer.

    Attributes:
        layer: block index.
        neurons: ``[k]`` int64 neuron indices (columns of FF2; rows of :func:`neuron_vectors`).
        delta: ``[k, d_model]`` added to those write vectors.
        target_index: index of the :class:`~revs_engine.targets.TokenTarget` that produced it (−1: none).
    """

    layer: int
    neurons: torch.Tensor = field(repr=False)
    delta: torch.Tensor = field(repr=False)
    target_index: int = -1

    def __post_init__(self) -> None:
        if self.neurons.dim() != 1 or self.delta.dim() != 2 or self.delta.shape[0] != self.neurons.numel():
            raise ValueError(f"NeuronEdit needs neurons [k] and delta [k, d], got {tuple(self.neurons.shape)} and "
                             f"{tuple(self.delta.shape)}")

    def to_record(self) -> dict[str, int | float]:
        """Return a flat summary (no tensors) for logs and tables."""
        return {"layer": self.layer, "target_index": self.target_index, "n_neurons": int(self.neurons.numel()),
                "delta_norm": float(self.delta.double().norm())}


@dataclass(frozen=True)
class WeightBackup:
    """The original write vectors of every neuron an edit touched.

    Attributes:
        neurons: layer → ``[k]`` sorted unique neuron indices.
        original: layer → ``[k, d_model]`` their vectors before the first edit (same dtype as the weights).
    """

    neurons: dict[int, torch.Tensor] = field(repr=False)
    original: dict[int, torch.Tensor] = field(repr=False)

    @property
    def layers(self) -> list[int]:
        """Edited layers, sorted."""
        return sorted(self.neurons)

    def merged(self, later: WeightBackup) -> WeightBackup:
        """Combine with a backup taken *after* this one: the earlier original wins for shared neurons."""
        neurons, original = dict(self.neurons), dict(self.original)
        for layer in later.layers:
            if layer not in neurons:
                neurons[layer], original[layer] = later.neurons[layer], later.original[layer]
                continue
            idx = torch.cat([neurons[layer], later.neurons[layer]])
            vec = torch.cat([original[layer], later.original[layer]])
            uniq, first = _first_occurrence(idx)
            neurons[layer], original[layer] = uniq, vec[first]
        return WeightBackup(neurons, original)


def _first_occurrence(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return sorted unique values of ``idx`` and, for each, the position of its first occurrence."""
    uniq, inverse = torch.unique(idx, sorted=True, return_inverse=True)
    pos = torch.arange(idx.numel(), device=idx.device)
    first = torch.full((uniq.numel(),), idx.numel(), dtype=torch.long, device=idx.device)
    first.scatter_reduce_(0, inverse, pos, reduce="amin")
    return uniq, first


@torch.no_grad()
def snapshot(arch: ModelArch, neurons: dict[int, torch.Tensor]) -> WeightBackup:
    """Copy the current write vectors of ``neurons`` (layer → ``[k]``) into a :class:`WeightBackup`."""
    idx = {layer: torch.unique(n.long().cpu(), sorted=True) for layer, n in neurons.items()}
    orig = {
        layer: neuron_vectors(arch.mlp_out[layer], arch.spec.transposed).detach()[i].clone().cpu()
        for layer, i in idx.items()
    }
    return WeightBackup(idx, orig)


@torch.no_grad()
def apply_edits(model: nn.Module, arch: ModelArch, edits: Iterable[NeuronEdit]) -> WeightBackup:
    """Add every edit to the model's FF2 write vectors, in order; return the originals of all touched neurons.

    Args:
        model: the model ``arch`` was resolved from (unused except as a reminder of what is mutated).
        arch: ``resolve_arch(model)``.
        edits: the edits; several may touch the same neuron (their deltas accumulate).

    Returns:
        A :class:`WeightBackup` for :func:`restore`.
    """
    edits = list(edits)
    touched: dict[int, list[torch.Tensor]] = {}
    for e in edits:
        touched.setdefault(e.layer, []).append(e.neurons.long().cpu())
    backup = snapshot(arch, {layer: torch.cat(parts) for layer, parts in touched.items()})
    for e in edits:
        add_to_neurons(arch.mlp_out[e.layer], arch.spec.transposed, e.neurons.long(), e.delta)
    return backup


@torch.no_grad()
def write_vectors(arch: ModelArch, layer: int, neurons: torch.Tensor, values: torch.Tensor) -> None:
    """Overwrite the write vectors of ``neurons`` ``[k]`` at ``layer`` with ``values`` ``[k, d_model]``."""
    vectors = neuron_vectors(arch.mlp_out[layer], arch.spec.transposed)
    vectors[neurons.long().to(vectors.device)] = values.to(device=vectors.device, dtype=vectors.dtype)


@torch.no_grad()
def restore(model: nn.Module, arch: ModelArch, backup: WeightBackup) -> None:
    """Write the backed-up original vectors back (bit-exact undo of :func:`apply_edits`)."""
    for layer in backup.layers:
        write_vectors(arch, layer, backup.neurons[layer], backup.original[layer])
