"""Which layers and which neurons REVS edits for one target token (reference/revs-method.md §1.3–§1.4).

Offers :func:`gate_layer` → :class:`GateDecision` (the implicit per-layer gate), :func:`candidate_neurons` (the
activation pre-filter), :func:`neuron_ranks` (batched rank of the target in many neuron vectors' projections,
chunked so a 1000 × 128k projection never sits in memory at once) and :func:`select_neurons` (filter, score by
rank, keep the ``n_neurons`` best, best first).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from revs_engine.config import RevsConfig
from revs_engine.lens import VocabLens, rank_of


@dataclass(frozen=True, slots=True)
class GateDecision:
    """The layer gate of §1.3 for one target at one layer.

    Attributes:
        edit: True when the layer is edited.
        rank_mlp: target rank in the lens of the layer's MLP output.
        rank_residual: target rank in the lens of the layer's residual output.
        reason: ``edit``, ``residual_demoted`` (rank ≥ residual bottom) or ``mlp_not_promoting`` (rank ≥ MLP top).
        logits: ``[2, V]`` :meth:`~revs_engine.lens.VocabLens.rank_logits` of the MLP output and the residual (the
            outer loop of §1.7 adds each candidate edit's change to them when the lens is linear).
    """

    edit: bool
    rank_mlp: int
    rank_residual: int
    reason: str
    logits: torch.Tensor | None = field(default=None, repr=False, compare=False)


@torch.no_grad()
def gate_layer(lens: VocabLens, mlp_out: torch.Tensor, resid_post: torch.Tensor, token_id: int,
               residual_bottom: int, mlp_top: int) -> GateDecision:
    """Decide whether to edit a layer (§1.3): skip when the residual already ranks the target ≥ ``residual_bottom``
    or the MLP output ranks it ≥ ``mlp_top`` (this MLP does not promote it).

    Args:
        mlp_out, resid_post: ``[d_model]`` at the last position.
    """
    logits = lens.rank_logits(torch.stack([mlp_out, resid_post]))
    r_mlp, r_res = (int(r) for r in rank_of(logits, token_id))
    if r_res >= residual_bottom:
        return GateDecision(False, r_mlp, r_res, "residual_demoted", logits)
    if r_mlp >= mlp_top:
        return GateDecision(False, r_mlp, r_res, "mlp_not_promoting", logits)
    return GateDecision(True, r_mlp, r_res, "edit", logits)


def candidate_neurons(neuron_act: torch.Tensor, act_filter: str, top_k: int) -> torch.Tensor:
    """Return the neurons passing the activation filter, as sorted indices ``[c]``.

    Args:
        neuron_act: ``[d_ff]`` signed FF2 input at the last position.
        act_filter: ``top_k`` (largest ``top_k`` activations), ``positive`` (> 0) or ``none``.
    """
    if act_filter == "top_k":
        k = min(top_k, neuron_act.numel())
        # stable tie-break by index: sort descending with stable=True over the index order
        idx = torch.sort(neuron_act, descending=True, stable=True).indices[:k]
        return torch.sort(idx).values
    if act_filter == "positive":
        return (neuron_act > 0).nonzero().squeeze(-1)
    return torch.arange(neuron_act.numel(), device=neuron_act.device)


@torch.no_grad()
def neuron_ranks(lens: VocabLens, vectors: torch.Tensor, token_id: int, chunk: int = 256) -> torch.Tensor:
    """Return the target's rank in the lens projection of each vector ``[c, d_model]`` → ``[c]``."""
    if vectors.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=vectors.device)
    return torch.cat([lens.ranks(vectors[i:i + chunk], token_id) for i in range(0, vectors.shape[0], chunk)])


def _ranks_keeping_logits(lens: VocabLens, vectors: torch.Tensor, token_id: int
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`neuron_ranks` in one projection, also returning ``W_U·normalize(v)`` ``[c, V]`` (bias excluded) for
    the demotion to reuse (only when all ``c`` rows fit in one chunk — the activation filter's usual 100)."""
    z = lens.unembed(lens.normalize(vectors))
    return rank_of(z if lens.b is None else z + lens.b, token_id), z


def contrast_scores(neuron_act: torch.Tensor, collateral: torch.Tensor, weight: float) -> torch.Tensor:
    """Return ``a_j − weight·c_j`` ``[d_ff]``: activation at the secret's context minus activation where the
    retain guard needs its predictions kept (:meth:`~revs_engine.guard_stats.GuardStats.collateral`).

    Editing neuron j changes the MLP output by ``a_j(x)·Δ_j`` at every context x, so a neuron that fires for the
    secret but not for retained secrets moves the former and leaves the latter (reference/revs-method.md §8).
    """
    return neuron_act - weight * collateral


@torch.no_grad()
def select_neurons(lens: VocabLens, vectors: torch.Tensor, neuron_act: torch.Tensor, token_id: int,
                   cfg: RevsConfig, collateral: torch.Tensor | None = None, *, with_logits: bool = False
                   ) -> tuple[torch.Tensor, ...]:
    """Choose the neurons to edit (§1.4): activation filter, then the smallest target ranks of the raw vectors.

    Args:
        vectors: ``[d_ff, d_model]`` the layer's neuron write vectors (:func:`~revs_engine.arch.neuron_vectors`).
        neuron_act: ``[d_ff]`` activations at the last position.
        collateral: ``[d_ff]`` guard activations; with ``cfg.neuron_score == "contrast"`` the activation filter
            ranks :func:`contrast_scores` instead of raw activations and drops neurons whose score is ≤ 0.

        with_logits: also return the chosen vectors' ``W_U·normalize(v)`` ``[n, V]`` (None when the candidates
            did not fit one projection), so :func:`~revs_engine.demote.demote_neurons` need not project them again.

    Returns:
        ``(neurons [n], ranks [n])`` with n ≤ ``cfg.n_neurons``, best (smallest rank) first; ties keep index order;
        ``(neurons, ranks, logits)`` with ``with_logits``.
    """
    if collateral is not None and cfg.neuron_score == "contrast":
        score = contrast_scores(neuron_act, collateral, cfg.contrast_weight)
        cand = candidate_neurons(score, "top_k", cfg.act_top_k)
        cand = cand[score[cand] > 0]
    else:
        cand = candidate_neurons(neuron_act, cfg.act_filter, cfg.act_top_k)
    logits = None
    if with_logits and cand.numel() <= _ONE_PROJECTION:
        ranks, logits = _ranks_keeping_logits(lens, vectors[cand], token_id)
    else:
        ranks = neuron_ranks(lens, vectors[cand], token_id)
    order = torch.sort(ranks, stable=True).indices[: cfg.n_neurons]
    if with_logits:
        return cand[order], ranks[order], None if logits is None else logits[order]
    return cand[order], ranks[order]


#: The most candidates projected at once when their logits are kept (``256 × 128k`` floats = 128 MB).
_ONE_PROJECTION = 256
