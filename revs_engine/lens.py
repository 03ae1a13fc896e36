"""The vocabulary lens: project hidden vectors to vocabulary logits and back.

Offers :class:`VocabLens` — ``project`` (= unembed(final_norm(h)) + bias, the logit lens used by neuron scoring,
layer gating, probes and the logit-lens attack alike), ``invert`` (exact LayerNorm / RMSNorm inverse given the
original vector's statistics, and the unembedding's pseudo-inverse), ``rank_logits`` (logits with the same ranks,
linear in ``h`` for RMSNorm models without an unembedding bias, so an edit's effect on ranks is a multiply-add of
cached vectors) and ``unit_direction`` (``pinv(W_U)·e_t``, cached per token) — and :func:`rank_of`, the rank
convention used everywhere: the number of vocabulary entries whose logit is *strictly greater* than the target's
(0 = argmax).

The pseudo-inverse of ``W_U`` ``[V, d]`` is applied as ``(W_Uᵀ W_U)⁻¹ W_Uᵀ``: since ``W_U`` has full column rank
this equals ``pinv(W_U)`` exactly, but only the ``[d, d]`` inverse Gram matrix is stored (Llama-3's ``[d, V]`` pinv
would be 2 GB). It is computed in float64 once per model and cached on disk keyed by the weights' sha256.

The lens computes in float32 whatever the model's dtype: for a bf16/fp16 model it keeps float32 copies of the
final norm and the unembedding (``V·d·4`` bytes) and casts half-precision inputs up (:func:`wide`), so ranks over
a 49k–128k vocabulary are not decided by bf16's 8-bit mantissa; for an fp32 model it reads the live modules.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from revs_engine.arch import ModelArch

logger = logging.getLogger(__name__)


HALF = (torch.bfloat16, torch.float16)


def wide(x: torch.Tensor) -> torch.Tensor:
    """Return ``x`` in float32 when it is bf16/fp16, else ``x`` itself (no copy)."""
    return x.float() if x.dtype in HALF else x


def _fp32_module(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` itself when its parameters are not half precision, else a float32 copy of it."""
    if any(p.dtype in HALF for p in module.parameters()):
        return copy.deepcopy(module).float()
    return module


def rank_of(logits: torch.Tensor, token_ids: torch.Tensor | int) -> torch.Tensor:
    """Return the rank of ``token_ids`` in ``logits``: count of entries strictly greater.

    Args:
        logits: ``[..., V]``.
        token_ids: ``[...]`` (broadcast against ``logits[..., 0]``) or an int.

    Returns:
        ``[...]`` int64 ranks, 0 = argmax.
    """
    ids = torch.as_tensor(token_ids, device=logits.device, dtype=torch.long)
    ids = ids.expand(logits.shape[:-1]) if ids.dim() == 0 else ids
    target = logits.gather(-1, ids.unsqueeze(-1))
    # counted in int32 (exact below 2³¹ entries): measured 10× faster than the default int64 sum on 100 × 49k
    return (logits > target).sum(-1, dtype=torch.int32).long()


#: Up to this many rows, ``W @ xᵀ`` (a tall-skinny product) is used: measured on 2 CPU cores with a 49k × 576
#: unembedding, 2 rows take 4 ms that way against 15 ms as ``x @ Wᵀ``; from 16 rows on they are alike.
_SKINNY_ROWS = 8


def _unembed(x: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Return ``x @ Wᵀ`` ``[..., V]`` for ``x`` ``[..., d]``, taking the faster product for a few rows."""
    rows = x.reshape(-1, x.shape[-1])
    if rows.shape[0] > _SKINNY_ROWS or rows.device.type != "cpu":
        return x @ W.T
    if rows.shape[0] == 1:  # a single row takes the slower matrix-vector path; two rows the fast one
        return (W @ torch.cat([rows, rows]).T)[:, :1].T.reshape(*x.shape[:-1], W.shape[0])
    return (W @ rows.T).T.reshape(*x.shape[:-1], W.shape[0])


class VocabLens:
    """Final norm + unembedding of one model, and their inverse.

    Args:
        model: a causal LM.
        arch: ``resolve_arch(model)``.
        cache_dir: where to cache the inverse Gram matrix (None: compute in memory only).
        weights_sha256: key for the cache (required with ``cache_dir``).
    """

    def __init__(self, model: torch.nn.Module, arch: ModelArch, *, cache_dir: Path | None = None,
                 weights_sha256: str | None = None) -> None:
        self.arch = arch
        self.norm = _fp32_module(arch.final_norm)
        self.kind = arch.spec.norm_kind
        self.eps = float(getattr(self.norm, "variance_epsilon", getattr(self.norm, "eps", 1e-5)))
        self.W = wide(arch.unembed.weight.detach()) if arch.unembed.weight.dtype in HALF else arch.unembed.weight
        bias = getattr(arch.unembed, "bias", None)  # [V] or None
        self.b = wide(bias.detach()) if bias is not None and bias.dtype in HALF else bias
        self._cache_dir = cache_dir
        self._sha = weights_sha256
        self._inv_gram: torch.Tensor | None = None
        self._w64_cache: torch.Tensor | None = None
        self._per_token: dict[tuple, torch.Tensor] = {}
        #: token → the tokens its demotion must leave alone (:meth:`unit_direction`); empty: the paper's demotion
        self.alternatives: dict[int, tuple[int, ...]] = {}

    # -- forward -----------------------------------------------------------------------------------------------
    def normalize(self, h: torch.Tensor) -> torch.Tensor:
        """Apply the model's final norm to ``h`` ``[..., d]`` (float32 for half-precision input)."""
        return self.norm(wide(h))

    def project(self, h: torch.Tensor) -> torch.Tensor:
        """Return vocabulary logits ``[..., V]`` of hidden vectors ``h`` ``[..., d]``."""
        out = self.unembed(self.normalize(h))
        return out + self.b if self.b is not None else out

    def unembed(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``W_U·x`` ``[..., V]`` for already normalized ``x`` ``[..., d]`` (no bias)."""
        return _unembed(wide(x), self.W)

    def unembed_cached(self, x: torch.Tensor, key: tuple) -> torch.Tensor:
        """:meth:`unembed` of a vector that depends only on ``key`` (e.g. a token): one pass over the unembedding
        per key, not per layer or neuron."""
        return self._cached(("unembed", *key), lambda: self.unembed(x))

    def _cached(self, key: tuple, make) -> torch.Tensor:
        """Per-token vectors of this lens (its weights never change), the 128 most recent kept."""
        hit = self._per_token.get(key)
        if hit is None:
            if len(self._per_token) >= 128:
                self._per_token.pop(next(iter(self._per_token)))
            hit = self._per_token[key] = make()
        return hit

    def ranks(self, h: torch.Tensor, token_ids: torch.Tensor | int) -> torch.Tensor:
        """Return the rank of ``token_ids`` under the lens of ``h`` ``[..., d]`` → ``[...]``."""
        return rank_of(self.project(h), token_ids)

    @property
    def linear(self) -> bool:
        """True when ranks under the lens are ranks under a linear map (RMSNorm, no unembedding bias).

        ``project(h) = W·(γ⊙h)/rms(h)`` is then a positive multiple of ``W·(γ⊙h)``, so every rank equals the rank
        in :meth:`rank_logits` — which is linear in ``h``: the logits of ``h + c·u`` are ``rank_logits(h) +
        c·rank_logits(u)`` without another pass over the unembedding.
        """
        return self.kind == "rms" and self.b is None

    def rank_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Return logits ``[..., V]`` whose ranks equal :meth:`project`'s: ``W·(γ⊙h)`` when :attr:`linear`,
        else ``project(h)``."""
        return self.unembed(wide(h) * self.norm.weight.detach()) if self.linear else self.project(h)

    # -- inverse -----------------------------------------------------------------------------------------------
    def inverse_gram(self) -> torch.Tensor:
        """Return ``(W_Uᵀ W_U)⁻¹`` ``[d, d]`` (float64), computing or loading it once."""
        if self._inv_gram is not None:
            return self._inv_gram
        path = None
        if self._cache_dir is not None and self._sha:
            path = Path(self._cache_dir) / f"inv_gram-{self._sha[:32]}.safetensors"
            if path.exists():
                self._inv_gram = load_file(path)["inv_gram"]
                return self._inv_gram
        W = self.W.detach().to(torch.float64)
        gram = W.T @ W
        self._inv_gram = torch.linalg.inv(gram)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            save_file({"inv_gram": self._inv_gram.contiguous()}, str(tmp))
            tmp.replace(path)
            logger.info("cached inverse Gram of the unembedding at %s", path)
        return self._inv_gram

    def _w64(self) -> torch.Tensor:
        """The unembedding in float64, converted once (the weights of a lens never change during an edit)."""
        if self._w64_cache is None:
            self._w64_cache = self.W.detach().to(torch.float64)
        return self._w64_cache

    def direction_key(self, token_id: int) -> tuple:
        """Return the cache key of token ``t``'s demotion direction (the token and its alternatives)."""
        return (token_id, self.alternatives.get(token_id, ()))

    def unit_direction(self, token_id: int) -> torch.Tensor:
        """Return the normalized-space direction of a unit change of token ``t``'s logit ``[d]`` (float32):
        ``pinv(W_U)·e_t = G⁻¹ W_U[t]`` with ``G = W_Uᵀ W_U`` (reference/revs-method.md §1.5–1.6), cached per token.

        When ``t`` has alternatives ``A`` (:attr:`alternatives`, e.g. the other digits where a format allows any
        digit), the same least-squares change constrained to leave every logit of ``A`` where it is: the
        ``G``-metric projection of ``G⁻¹ W_U[t]`` onto the null space of ``W_U[A]``. The paper's direction moves
        every token whose unembedding resembles ``t``'s with it — all ten digits fall together and ``t`` stays
        the likeliest digit, which format-constrained decoding reads back (benchmarks/RESULTS.md)."""
        def make() -> torch.Tensor:
            g_inv, w = self.inverse_gram(), self._w64()
            u = w[token_id] @ g_inv  # [d]
            alts = self.alternatives.get(token_id, ())
            if alts:
                w_a = w[list(alts)]  # [|A|, d]
                b = g_inv @ w_a.T  # [d, |A|]
                u = u - b @ torch.linalg.lstsq(w_a @ b, w_a @ u).solution
            return u.to(self.W.dtype)
        return self._cached(("unit", *self.direction_key(token_id)), make)

    def pinv_apply(self, logits: torch.Tensor) -> torch.Tensor:
        """Return ``pinv(W_U) @ (logits − b)`` ``[..., d]`` — the normalized vector whose projection is closest."""
        logits = wide(logits)
        z = logits - self.b if self.b is not None else logits
        zw = z.to(torch.float64) @ self._w64()  # [..., d] = (W_Uᵀ z)
        return (zw @ self.inverse_gram()).to(logits.dtype)

    def denormalize(self, n: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Invert the final norm: return ``h`` with ``normalize(h) == n``, using ``reference``'s statistics.

        RMSNorm ``n = γ·h/√(mean(h²)+ε)`` → ``h = n/γ·√(mean(ref²)+ε)`` (exact when ``h`` keeps the reference's
        RMS; the authors' code adds the reference mean and uses its variance — reference/revs-method.md §1.6, not
        reproduced here). LayerNorm ``n = γ·(h−μ)/√(σ²+ε)+β`` → ``h = (n−β)/γ·√(σ²_ref+ε)+μ_ref``.
        """
        gamma = self.safe_gamma()
        n, reference = wide(n), wide(reference)
        if self.kind == "rms":
            scale = torch.sqrt(reference.pow(2).mean(-1, keepdim=True) + self.eps)
            return n / gamma * scale
        beta = self.norm.bias.detach() if getattr(self.norm, "bias", None) is not None else 0.0
        mu = reference.mean(-1, keepdim=True)
        var = reference.var(-1, keepdim=True, unbiased=False)
        return (n - beta) / gamma * torch.sqrt(var + self.eps) + mu

    def safe_gamma(self) -> torch.Tensor:
        """The final norm's scale with entries of magnitude < 1e-12 set to 1e-12 (what the inverse divides by)."""
        gamma = self.norm.weight.detach()
        return torch.where(gamma.abs() < 1e-12, torch.full_like(gamma, 1e-12), gamma)

    def invert(self, logits: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Map logits ``[..., V]`` back to hidden vectors ``[..., d]`` with the norm stats of ``reference``."""
        return self.denormalize(self.pinv_apply(logits), reference)
