"""The retain guard: what an edit must leave alone, and the checks that keep REVS contextual.

Offers :class:`RetainGuard` (retained ``(prefix, target)`` items — other memorized secrets — and optional benign
texts), :class:`GuardActivations` (FF2 input activations at every guarded position, per layer, from one batched
forward pass) with :meth:`GuardActivations.collateral` (how strongly each neuron fires where the guard needs its
predictions kept), and :func:`intact` (which retained items greedy decoding still reproduces exactly — the
teacher-forced probe, one batched forward).

Why (reference/revs-method.md §8): on a digit-level tokenizer every secret is written with the same ten tokens,
so an edit chosen by activation alone demotes a digit for every secret. Editing neuron ``j`` adds
``a_j(x)·Δ_j`` to the MLP output at any context ``x``; neurons that fire at the forgotten secret's context but not
at the guard's contexts change the former and leave the latter alone. The guard is the data the user already
has: the other memorized findings of the same sweep (they are retained by definition) and benign text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from revs_engine.arch import ModelArch
from revs_engine.capture import capture_activations
from revs_engine.probes import ProbeConfig, ProbeItem, probe


@dataclass(frozen=True)
class RetainGuard:
    """Contexts whose predictions an edit must not disturb.

    Attributes:
        items: retained ``(prefix, target)`` items; every target position is guarded.
        benign: benign texts as ids; every position is guarded (activations only, no exact-match check).
    """

    items: tuple[ProbeItem, ...] = field(default=(), repr=False)
    benign: tuple[tuple[int, ...], ...] = field(default=(), repr=False)

    @classmethod
    def from_items(cls, items: Sequence[ProbeItem], benign: Sequence[Sequence[int]] = ()) -> RetainGuard:
        """Build a guard from probe items and optional benign id sequences."""
        return cls(tuple(items), tuple(tuple(b) for b in benign if len(b) >= 2))

    def __len__(self) -> int:
        return len(self.items) + len(self.benign)


#: Widest MLP whose per-layer guard covariance is cached (SmolLM2-135M: 1536 → 19 MB a layer in float64; an 8B
#: model's 14336 would need 1.6 GB a layer, so it multiplies the activations per edit instead).
COVARIANCE_MAX_DFF = 4096


@dataclass(frozen=True)
class GuardActivations:
    """FF2 input activations at the guarded positions.

    Attributes:
        acts: ``[n_layers, n_pos, d_ff]`` activation of every neuron at every guarded position.
        next_ids: ``[n_pos]`` the token each guarded position must keep predicting.
    """

    acts: torch.Tensor = field(repr=False)
    next_ids: torch.Tensor = field(repr=False)
    _cov: dict[int, torch.Tensor] = field(default_factory=dict, repr=False, compare=False)

    def covariance(self, layer: int) -> torch.Tensor | None:
        """Return ``[d_ff, d_ff]`` ``AᵀA / m`` over the guarded positions of ``layer`` (computed once per layer, on
        first use: the guard projection then indexes it instead of multiplying ``[m, k]`` activations per edit);
        None when ``d_ff`` exceeds :data:`COVARIANCE_MAX_DFF` (``n_layers`` such matrices would not fit)."""
        if self.acts.shape[-1] > COVARIANCE_MAX_DFF:
            return None
        if layer not in self._cov:
            a = self.acts[layer].float()
            self._cov[layer] = (a.T @ a / max(a.shape[0], 1)).double()
        return self._cov[layer]

    def at_risk(self, layer: int, token_id: int | None = None) -> torch.Tensor:
        """Return ``[m, d_ff]``: activations of ``layer`` at the guarded positions an edit of ``token_id`` risks.

        Those are the positions whose next token is ``token_id`` (where demoting it would break a retained
        prediction); all positions when ``token_id`` is None or no position predicts it.
        """
        a = self.acts[layer]
        if token_id is not None:
            rows = self.next_ids == token_id
            if rows.any():
                a = a[rows]
        return a

    def collateral(self, layer: int, token_id: int | None = None) -> torch.Tensor:
        """Return ``[d_ff]``: the largest |activation| of each neuron over :meth:`at_risk` positions."""
        a = self.at_risk(layer, token_id)
        if a.shape[0] == 0:
            return torch.zeros(self.acts.shape[-1], dtype=self.acts.dtype, device=self.acts.device)
        return a.abs().amax(0)


def _rows(guard: RetainGuard) -> list[tuple[list[int], list[int]]]:
    """Return ``(input ids, guarded positions)`` per guarded sequence."""
    rows = []
    for it in guard.items:
        ids = list(it.prefix_ids) + list(it.target_ids)
        rows.append((ids, list(range(len(it.prefix_ids) - 1, len(ids) - 1))))
    for b in guard.benign:
        rows.append((list(b), list(range(len(b) - 1))))
    return rows


@torch.no_grad()
def guard_activations(model: torch.nn.Module, arch: ModelArch, guard: RetainGuard, *,
                      batch_size: int = 16, pad_id: int = 0) -> GuardActivations:
    """Capture FF2 input activations at every guarded position (batched, right-padded)."""
    rows = _rows(guard)
    if not rows:
        raise ValueError("the retain guard is empty")
    device = arch.unembed.weight.device
    acts, nxt = [], []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        width = max(len(ids) for ids, _ in chunk)
        n_pos = max(len(p) for _, p in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        pos = torch.zeros((len(chunk), n_pos), dtype=torch.long)
        valid = torch.zeros((len(chunk), n_pos), dtype=torch.bool)
        for r, (seq, p) in enumerate(chunk):
            ids[r, :len(seq)] = torch.tensor(seq)
            mask[r, :len(seq)] = 1
            pos[r, :len(p)] = torch.tensor(p)
            valid[r, :len(p)] = True
        cap = capture_activations(model, arch, ids.to(device), mask.to(device), positions=pos.to(device))
        a = cap.neuron_act  # [batch, n_pos, L, d_ff]
        acts.append(a[valid.to(device)].transpose(0, 1))  # [L, n_valid, d_ff]
        nxt.append(ids.gather(1, (pos + 1).clamp(max=width - 1))[valid])
    return GuardActivations(torch.cat(acts, 1), torch.cat(nxt).to(device))


@torch.no_grad()
def intact(model: torch.nn.Module, items: Sequence[ProbeItem], *, batch_size: int = 32,
           pad_id: int = 0) -> torch.Tensor:
    """Return ``[n]`` bool: greedy decoding still reproduces each item's target exactly (teacher-forced probe)."""
    if not items:
        return torch.zeros(0, dtype=torch.bool)
    results = probe(model, items, config=ProbeConfig(batch_size=batch_size), pad_id=pad_id)
    return torch.tensor([r.exact_match for r in results], dtype=torch.bool)
