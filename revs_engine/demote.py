"""Per-neuron rank demotion in vocabulary space (reference/revs-method.md §1.5–§1.6), vectorised over neurons.

Offers :func:`demote_neurons` → :class:`DemotionResult`, :func:`invert_logits` (lens inverse with the exact or the
authors' approximate RMSNorm inverse) and :func:`faithful_rms_inverse`.

For m neuron vectors at once: project them (``[m, V]``), lower the target's logit by a per-neuron offset δ, map
back, re-rank, and adapt δ (×``push`` when not demoted enough, ×``back_off`` when demoted too far) until every
neuron's target rank lies in the window. One ``[m_active, V]`` projection per iteration; no Python loop over
neurons or vocabulary.

Speed-ups that do not change the result (up to float rounding):
- ``W_U`` has full column rank, so the pseudo-inverse round trip of an unchanged neuron's logits is its
  normalized vector: ``pinv(W_U)·(W_U·n̂) = n̂`` is taken as is instead of a ``[m, V] × [V, d]`` product;
- the pseudo-inverse is linear, so ``pinv(z + δ·e_t) = pinv(z) + δ·pinv(e_t)``: ``pinv(z)`` ``[m, d]`` is computed
  once and ``pinv(e_t)`` is one ``[d]`` vector, instead of an ``[m, V] × [V, d]`` product per iteration;
- a neuron inside its window keeps its δ, so only the neurons still outside are re-projected;
- a neuron that starts above the window has δ = 0 forever (§1.5 quirk), so when only such neurons are left the loop
  stops instead of idling to ``max_iter``. They are reported ``converged=False`` — never silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from revs_engine.lens import VocabLens, rank_of


@dataclass(frozen=True)
class DemotionResult:
    """Outcome of :func:`demote_neurons`.

    Attributes:
        delta: ``[m, d_model]`` change of each neuron vector (``n' − n``).
        ranks_before / ranks_after: ``[m]`` target rank of each neuron's projection.
        converged: ``[m]`` bool, rank inside the window.
        iterations: iterations run.
        coef / direction: on the exact-RMSNorm-inverse path, ``delta[j] = coef[j]·direction`` up to float
            rounding (``[m]`` and ``[d_model]``, one direction per token); None elsewhere.
    """

    delta: torch.Tensor = field(repr=False)
    ranks_before: torch.Tensor = field(repr=False)
    ranks_after: torch.Tensor = field(repr=False)
    converged: torch.Tensor = field(repr=False)
    iterations: int = 0
    coef: torch.Tensor | None = field(default=None, repr=False)
    direction: torch.Tensor | None = field(default=None, repr=False)


def faithful_rms_inverse(n_hat: torch.Tensor, reference: torch.Tensor, gamma: torch.Tensor,
                         eps: float) -> torch.Tensor:
    """Return the authors' approximate RMSNorm inverse ``ĥ·√(σ²+ε)/γ + μ`` (reference/revs-method.md §1.6).

    ``σ²`` (unbiased) and ``μ`` are the variance and mean of ``reference`` ``[..., d]``; the exact inverse (the
    default, :meth:`VocabLens.denormalize`) is ``ĥ·√(mean(ref²)+ε)/γ``.
    """
    var = reference.var(-1, keepdim=True, unbiased=True)
    mu = reference.mean(-1, keepdim=True)
    return n_hat * torch.sqrt(var + eps) / gamma + mu


def _denormalize(lens: VocabLens, n_hat: torch.Tensor, reference: torch.Tensor, faithful: bool) -> torch.Tensor:
    if faithful and lens.kind == "rms":
        return faithful_rms_inverse(n_hat, reference, lens.norm.weight.detach(), lens.eps)
    return lens.denormalize(n_hat, reference)


def invert_logits(lens: VocabLens, logits: torch.Tensor, reference: torch.Tensor, *,
                  faithful_rmsnorm_inverse: bool = False) -> torch.Tensor:
    """Map logits ``[..., V]`` back to hidden vectors ``[..., d]`` with ``reference``'s norm statistics."""
    return _denormalize(lens, lens.pinv_apply(logits), reference, faithful_rmsnorm_inverse)


@torch.no_grad()
def demote_neurons(lens: VocabLens, vectors: torch.Tensor, token_id: int, window: tuple[int, int], *,
                   max_iter: int = 100, initial_offset: float = -10.0, push: float = 1.3, back_off: float = 0.8,
                   faithful_rmsnorm_inverse: bool = False, base_logits: torch.Tensor | None = None
                   ) -> DemotionResult:
    """Demote ``token_id`` into ``window`` in the vocabulary projection of each neuron vector.

    Args:
        lens: the model's vocabulary lens.
        vectors: ``[m, d_model]`` original neuron write vectors.
        token_id: the target token.
        window: ``(bottom, top)`` target-rank window (integer ranks).
        max_iter: iteration cap.
        initial_offset, push, back_off: δ schedule (§1.5: −10, ×1.3, ×0.8).
        faithful_rmsnorm_inverse: use the authors' approximate RMSNorm inverse.
        base_logits: ``W_U·n̂`` ``[m, V]`` of the normalized vectors (without the bias) when the caller already
            projected them (:func:`~revs_engine.select.select_neurons`); computed when None.

    Returns:
        A :class:`DemotionResult`; the delta of a neuron with δ = 0 is its pure round-trip error, as in §1.5.
    """
    lo, hi = window
    base_hat = lens.normalize(vectors)  # [m, d] = pinv(W_U)·(W_U·n̂): W_U has full column rank, so the
    # round trip of the original logits is n̂ itself (no [m, V] × [V, d])
    z = base_logits if base_logits is not None else lens.unembed(base_hat)
    ranks_before = rank_of(z if lens.b is None else z + lens.b, token_id)
    # pinv(W_U) e_t = (W_Uᵀ W_U)⁻¹ W_U[t]: the normalized-space direction of a unit change of the target logit
    u_t = lens.unit_direction(token_id).to(z.dtype)  # [d]
    delta = torch.where(ranks_before < lo, torch.full_like(z[:, 0], initial_offset), torch.zeros_like(z[:, 0]))
    fast = _linear_path(lens, faithful_rmsnorm_inverse)
    ranks_at = _rank_function(lens, vectors, base_hat, z, u_t, token_id, faithful_rmsnorm_inverse)
    ranks = ranks_before.clone()
    active = torch.ones_like(ranks, dtype=torch.bool)
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        idx = active.nonzero().squeeze(-1)
        ranks[idx] = ranks_at(idx, delta[idx])
        low, high = ranks < lo, ranks > hi
        outside = low | high
        active = outside & (delta != 0)
        if not active.any() or iterations == max_iter:
            break
        delta = torch.where(low, delta * push, torch.where(high, delta * back_off, delta))
    new = _denormalize(lens, base_hat + delta[:, None] * u_t, vectors, faithful_rmsnorm_inverse)
    coef = direction = None
    if fast:
        # every neuron's ranks were last computed at its final δ (a neuron inside the window keeps its δ), and on
        # this path they are the ranks of the round-tripped vectors: no second [m, V] projection. The change is
        # n' − n = δ·s·u_t/γ (s the vector's RMS): one direction per token, scaled per neuron.
        direction = u_t / lens.safe_gamma()
        coef = delta * torch.sqrt(vectors.pow(2).mean(-1) + lens.eps)
    else:
        ranks = lens.ranks(new, token_id)  # reported on the real vectors, whatever path the loop took
    converged = (ranks >= lo) & (ranks <= hi)
    return DemotionResult(new - vectors, ranks_before, ranks, converged, iterations, coef, direction)


def _linear_path(lens: VocabLens, faithful: bool) -> bool:
    """The exact RMSNorm inverse with no unembedding bias: ranks of an offset neuron are one multiply-add away."""
    return lens.linear and not faithful


def _rank_function(lens: VocabLens, vectors: torch.Tensor, base_hat: torch.Tensor, base_logits: torch.Tensor,
                   u_t: torch.Tensor, token_id: int, faithful: bool):
    """Return ``f(idx, δ) -> ranks``: the target's rank in the projection of neuron ``idx`` offset by ``δ``.

    RMSNorm with the exact inverse and no unembedding bias (Llama, Mistral, Qwen2, SmolLM): the round-tripped
    vector is ``n' = x·s/γ`` with ``x = n̂ + δ·u_t`` and ``s`` the reference RMS, so ``norm(n') = c·x`` for a
    positive scalar ``c`` and ``rank(t, W·norm(n')) = rank(t, W·n̂ + δ·W·u_t)``. ``W·n̂`` ``[m, V]`` and
    ``W·u_t`` ``[V]`` are computed once, so an iteration is one fused multiply-add and a comparison instead of a
    denormalize-normalize-matmul round trip. Every other case projects the round-tripped vectors.
    """
    if _linear_path(lens, faithful):
        step = lens.unembed_cached(u_t, ("unit", *lens.direction_key(token_id)))  # W·u_t [V]; W·n̂ [m, V]

        def fast(idx: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
            return rank_of(torch.addcmul(base_logits[idx], delta[:, None], step[None]), token_id)

        return fast

    def exact(idx: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        n_hat = base_hat[idx] + delta[:, None] * u_t
        return lens.ranks(_denormalize(lens, n_hat, vectors[idx], faithful), token_id)

    return exact
