"""Re-weight one layer's REVS neuron edits so that they act at the secret's context and as little as possible at
the retain guard's (reference/revs-method.md §8).

Editing neurons ``J`` of a layer by ``Δ`` (one row per neuron) changes the MLP output at any context ``x`` by
``a_J(x)ᵀΔ``. REVS picks ``Δ`` neuron by neuron in the vocabulary space; on a digit-level tokenizer the same
neurons also fire where a retained secret needs the same digit, so the edit demotes it there too.
:func:`project_edit` keeps the change at the secret's context exactly (``a_sᵀΔ' = a_sᵀΔ``: every rank REVS
measured for the layer is unchanged) and, among all such ``Δ'``, takes the one minimizing

    mean_g ‖a_J(g)ᵀΔ'‖² + λ·s·‖Δ' − Δ‖²

over the guard's positions ``g`` — every guarded position: a retained secret's digits and number-heavy benign
text alike (``s``: mean squared guard activation of the edited neurons, so ``λ`` is
scale-free). Closed form with ``C = AᵀA/m`` and ``P = (C + λsI)⁻¹``:
``Δ' = P(λsΔ + a_s μᵀ)``, ``μᵀ = (a_sᵀΔ − λs·a_sᵀPΔ) / (a_sᵀPa_s)``.
Small ``λ`` approaches the guard's null space (when the edited neurons span one); large ``λ`` returns ``Δ``.

:func:`project_jointly` solves the same problem for a block's whole change at the end of an erase, with one
constraint per context any of its edits was made at (:mod:`revs_engine.joint_reprojection`): the projection of the
sum, where each edit's own projection leaves a small trace on the guard and an erase's traces add up.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def project_edit(secret_act: torch.Tensor, delta: torch.Tensor, guard_act: torch.Tensor | None, lam: float, *,
                 cov: torch.Tensor | None = None, scale: float | None = None) -> torch.Tensor:
    """Return ``Δ'`` ``[k, d]`` (dtype of ``delta``): same MLP-output change at the secret, least at the guard.

    Args:
        secret_act: ``[k]`` activations of the edited neurons at the secret's context.
        delta: ``[k, d]`` the REVS change of each edited neuron's write vector.
        guard_act: ``[m, k]`` activations of the edited neurons at the guard's positions (ignored with ``cov``).
        lam: ridge weight λ > 0 (relative to the mean squared guard activation).
        cov: ``[k, k]`` ``AᵀA / m`` of those activations when the caller has it
            (:meth:`~revs_engine.guard_stats.GuardStats.covariance`).
        scale: ``s``, the ridge's unit, when it is not ``cov``'s mean diagonal (a covariance with weighted value
            positions keeps the unit of the plain one, :meth:`~revs_engine.guard_stats.GuardStats.plain_variance`).
    """
    if lam <= 0:
        raise ValueError(f"lam must be > 0, got {lam}")
    if cov is None:
        if guard_act is None or guard_act.shape[0] == 0:
            return delta
        g = guard_act.double()
        cov = g.T @ g / g.shape[0]
    cov = cov.double()
    a = secret_act.double()
    d = delta.double()
    k = a.numel()
    scale = float(torch.diagonal(cov).mean()) if scale is None else float(scale)
    if scale <= 0:  # the edited neurons never fire on the guard: nothing to protect
        return delta
    ridge = lam * scale
    p = torch.linalg.inv(cov + ridge * torch.eye(k, dtype=cov.dtype, device=cov.device))
    pa = p @ a
    denom = float(a @ pa)
    if denom <= 0:
        return delta
    mu = (a @ d - ridge * (pa @ d)) / denom  # [d]
    out = p @ (ridge * d) + torch.outer(pa, mu)
    return out.to(delta.dtype)


@torch.no_grad()
def project_jointly(context_acts: torch.Tensor, delta: torch.Tensor, cov: torch.Tensor, lam: float,
                    scale: float | None = None) -> torch.Tensor:
    """Return ``Δ'`` ``[k, d]``: the change ``delta`` of ``k`` neurons' write vectors with the same MLP output at
    each of ``n`` contexts (``context_acts`` ``[n, k]``: ``Aₛ Δ' = Aₛ Δ``) and the least at the guard's positions,

        mean_g ‖a(g)ᵀΔ'‖² + λ·s·‖Δ' − Δ‖²

    (``cov`` ``[k, k]`` = ``AᵀA / m`` of the guard's activations, ``s`` = ``scale`` or its mean diagonal). The
    many-context form of :func:`project_edit`: ``Δ' = P(λsΔ + Aₛᵀ M)``, ``M = (AₛPAₛᵀ)⁻¹ (AₛΔ − λs·AₛPΔ)``
    with ``P = (C + λsI)⁻¹``. Contexts whose activations are linearly dependent are solved in the least-squares
    sense (a pseudo-inverse), keeping every change that can be kept."""
    if lam <= 0:
        raise ValueError(f"lam must be > 0, got {lam}")
    a, d, c = context_acts.double(), delta.double(), cov.double()
    if a.dim() != 2 or a.shape[1] != d.shape[0] or c.shape != (d.shape[0], d.shape[0]):
        raise ValueError(f"need context_acts [n, k], delta [k, d] and cov [k, k]; got {tuple(a.shape)}, "
                         f"{tuple(d.shape)}, {tuple(c.shape)}")
    scale = float(torch.diagonal(c).mean()) if scale is None else float(scale)
    if scale <= 0 or a.shape[0] == 0:
        return delta
    ridge = lam * scale
    p = torch.linalg.inv(c + ridge * torch.eye(c.shape[0], dtype=c.dtype, device=c.device))
    pa = p @ a.T  # [k, n]
    m = torch.linalg.pinv(a @ pa) @ (a @ d - ridge * (pa.T @ d))  # [n, d]
    return (p @ (ridge * d) + pa @ m).to(delta.dtype)
