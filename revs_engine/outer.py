"""How many of a layer's chosen neurons to edit (reference/revs-method.md §1.7), fast or as the pseudocode says.

Offers :func:`choose_k` (ours) and :func:`choose_k_naive` (§1.8 as written), both → :class:`OuterChoice`, and
:func:`next_k` (the §1.7 update rule). They make the same choices and return the same deltas:

- :func:`choose_k_naive` re-demotes the first k neurons for every k it evaluates and projects the two edited
  streams (MLP output and residual) each time — what the authors' code does;
- :func:`choose_k` demotes the ``n_max`` neurons once (a neuron's delta does not depend on which others are edited
  with it) and reads the ranks for every k from one table. With the exact RMSNorm inverse and no unembedding bias
  every delta is ``coef_j · direction`` (one direction per token), and ranks under the lens are ranks of
  ``W·(γ⊙h)`` (:attr:`~revs_engine.lens.VocabLens.linear`), so the streams' logits after editing the first k
  neurons are the gate's logits plus ``C_k`` times one cached vector, ``C_k = Σ_{j<k} a_j·coef_j``: no pass over
  the unembedding at all. Elsewhere the table is one ``[2·n_max, V]`` projection.

The stored edit is always the delta of the last *evaluated* k (§1.7), also when the iteration cap ends the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from revs_engine.config import RevsConfig
from revs_engine.demote import DemotionResult, demote_neurons
from revs_engine.lens import VocabLens, rank_of


@dataclass(frozen=True)
class OuterChoice:
    """The outcome of §1.7 for one layer: edit the first ``k`` chosen neurons by ``delta`` ``[k, d_model]``."""

    k: int
    delta: torch.Tensor = field(repr=False)
    rank_mlp: int = 0
    rank_residual: int = 0
    accepted: bool = False
    iterations: int = 0
    neurons_converged: int = 0
    neuron_iterations: int = 0


def next_k(k: int, r_mlp: int, r_res: int, b: dict[str, tuple[int, int]], n_max: int,
           cfg: RevsConfig) -> tuple[int, bool]:
    """The §1.7 update rule: return ``(new k, accepted)``."""
    (mlp_lo, mlp_hi), (res_lo, res_hi) = b["mlp"], b["residual"]
    if mlp_lo <= r_mlp <= mlp_hi:
        if res_lo <= r_res <= res_hi:
            return k, True
        return (min(k + 1, n_max), False) if r_res < res_lo else (max(k - 1, 1), False)
    if r_mlp < mlp_lo:
        return min(int(cfg.growth * k), n_max), False
    return min(max(int(cfg.shrink * k), 2), n_max), False  # never more neurons than were selected


def _search(n_max: int, cfg: RevsConfig, bounds: dict[str, tuple[int, int]],
            ranks_for: Callable[[int], tuple[int, int]]) -> tuple[int, int, int, bool, int]:
    """Walk k from ``start_k`` with :func:`next_k`; return ``(k, r_mlp, r_res, accepted, iterations)`` of the
    last evaluated k."""
    k = min(cfg.start_k, n_max)
    tried = {k}
    for it in range(1, cfg.max_iter_mlp + 1):
        r_mlp, r_res = ranks_for(k)
        k_new, accepted = next_k(k, r_mlp, r_res, bounds, n_max, cfg)
        if accepted or k_new in tried or it == cfg.max_iter_mlp:
            return k, r_mlp, r_res, accepted, it
        tried.add(k_new)
        k = k_new
    raise AssertionError("unreachable: max_iter_mlp ≥ 1")


def _demote(lens: VocabLens, vectors: torch.Tensor, token_id: int, cfg: RevsConfig,
            bounds: dict[str, tuple[int, int]], base_logits: torch.Tensor | None = None) -> DemotionResult:
    return demote_neurons(lens, vectors, token_id, bounds["neuron"], max_iter=cfg.max_iter_neuron,
                          initial_offset=cfg.initial_offset, push=cfg.push, back_off=cfg.back_off,
                          faithful_rmsnorm_inverse=cfg.faithful_rmsnorm_inverse, base_logits=base_logits)


@torch.no_grad()
def choose_k(lens: VocabLens, vectors: torch.Tensor, neuron_act: torch.Tensor, mlp_out: torch.Tensor,
             resid_post: torch.Tensor, token_id: int, cfg: RevsConfig, bounds: dict[str, tuple[int, int]], *,
             base_logits: torch.Tensor | None = None, gate_logits: torch.Tensor | None = None) -> OuterChoice:
    """Choose k for one layer with one demotion and one rank table.

    Args:
        vectors: ``[n_max, d_model]`` the chosen neurons' write vectors, best first; ``neuron_act`` ``[n_max]``
            their activations at the target's context.
        mlp_out, resid_post: ``[d_model]`` the layer's streams at that context.
        base_logits: ``W_U·normalize(vectors)`` when already computed (neuron selection).
        gate_logits: ``lens.rank_logits([mlp_out, resid_post])`` ``[2, V]`` when already computed (the gate).
    """
    n_max = vectors.shape[0]
    dem = _demote(lens, vectors, token_id, cfg, bounds, base_logits)
    if dem.coef is not None:  # the linear path (see module docstring)
        logits = gate_logits if gate_logits is not None else lens.rank_logits(torch.stack([mlp_out, resid_post]))
        step = lens.unembed_cached(dem.direction * lens.norm.weight.detach(),
                                   ("direction", *lens.direction_key(token_id)))
        c = torch.cumsum(neuron_act * dem.coef, 0)  # [n_max]: the streams move by c[k-1]·direction
        table = torch.stack([rank_of(torch.addcmul(logits[i], c[:, None], step[None]), token_id) for i in (0, 1)])
    else:
        contrib = neuron_act[:, None] * dem.delta  # [n, d]: change of the MLP output per edited neuron
        change = torch.cumsum(contrib, 0)  # [n_max, d]
        table = lens.ranks(torch.cat([mlp_out + change, resid_post + change]), token_id).view(2, n_max)
    k, r_mlp, r_res, accepted, it = _search(n_max, cfg, bounds, lambda k: (int(table[0, k - 1]),
                                                                          int(table[1, k - 1])))
    return OuterChoice(k, dem.delta[:k].clone(), r_mlp, r_res, accepted, it, int(dem.converged[:k].sum()),
                       dem.iterations)


@torch.no_grad()
def choose_k_naive(lens: VocabLens, vectors: torch.Tensor, neuron_act: torch.Tensor, mlp_out: torch.Tensor,
                   resid_post: torch.Tensor, token_id: int, cfg: RevsConfig, bounds: dict[str, tuple[int, int]]
                   ) -> OuterChoice:
    """Choose k as the §1.8 pseudocode does: for every evaluated k, demote the first k neurons afresh and project
    the edited MLP output and residual. Same arguments, same choice and delta as :func:`choose_k`; slower."""
    last: dict[int, DemotionResult] = {}

    def ranks_for(k: int) -> tuple[int, int]:
        last.clear()
        last[k] = dem = _demote(lens, vectors[:k], token_id, cfg, bounds)
        change = (neuron_act[:k, None] * dem.delta).sum(0)
        r_mlp, r_res = lens.ranks(torch.stack([mlp_out + change, resid_post + change]), token_id).tolist()
        return r_mlp, r_res

    k, r_mlp, r_res, accepted, it = _search(vectors.shape[0], cfg, bounds, ranks_for)
    dem = last[k]
    return OuterChoice(k, dem.delta.clone(), r_mlp, r_res, accepted, it, int(dem.converged.sum()),
                       dem.iterations)
