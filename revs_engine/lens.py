"""The vocabulary lens: project hidden vectors to vocabulary logits and back.

Offers :class:`VocabLens` — ``project`` (= unembed(final_norm(h)) + bias, the logit lens used by neuron scoring,
layer gating, probes and the logit-lens attack alike), ``invert`` (exact LayerNorm / RMSNorm inverse given the
original vector's statistics, and the unembedding's pseudo-inverse) — and :func:`rank_of`, the rank convention used
everywhere: the number of vocabulary entries whose logit is *strictly greater* than the target's (0 = argmax).

The pseudo-inverse of ``W_U`` ``[V, d]`` is applied as ``(W_Uᵀ W_U)⁻¹ W_Uᵀ``: since ``W_U`` has full column rank
this equals ``pinv(W_U)`` exactly, but only the ``[d, d]`` inverse Gram matrix is stored (Llama-3's ``[d, V]`` pinv
would be 2 GB). It is computed in float64 once per model and cached on disk keyed by the weights' sha256.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from revs_engine.arch import ModelArch

logger = logging.getLogger(__name__)


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
    return (logits > target).sum(-1)


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
        self.norm = arch.final_norm
        self.kind = arch.spec.norm_kind
        self.eps = float(getattr(self.norm, "variance_epsilon", getattr(self.norm, "eps", 1e-5)))
        self.W = arch.unembed.weight  # [V, d]
        self.b = getattr(arch.unembed, "bias", None)  # [V] or None
        self._cache_dir = cache_dir
        self._sha = weights_sha256
        self._inv_gram: torch.Tensor | None = None
        self._w64_cache: torch.Tensor | None = None

    # -- forward -----------------------------------------------------------------------------------------------
    def normalize(self, h: torch.Tensor) -> torch.Tensor:
        """Apply the model's final norm to ``h`` ``[..., d]``."""
        return self.norm(h)

    def project(self, h: torch.Tensor) -> torch.Tensor:
        """Return vocabulary logits ``[..., V]`` of hidden vectors ``h`` ``[..., d]``."""
        out = self.normalize(h) @ self.W.T
        return out + self.b if self.b is not None else out

    def ranks(self, h: torch.Tensor, token_ids: torch.Tensor | int) -> torch.Tensor:
        """Return the rank of ``token_ids`` under the lens of ``h`` ``[..., d]`` → ``[...]``."""
        return rank_of(self.project(h), token_ids)

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

    def pinv_apply(self, logits: torch.Tensor) -> torch.Tensor:
        """Return ``pinv(W_U) @ (logits − b)`` ``[..., d]`` — the normalized vector whose projection is closest."""
        z = logits - self.b if self.b is not None else logits
        zw = z.to(torch.float64) @ self._w64()  # [..., d] = (W_Uᵀ z)
        return (zw @ self.inverse_gram()).to(logits.dtype)

    def denormalize(self, n: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Invert the final norm: return ``h`` with ``normalize(h) == n``, using ``reference``'s statistics.

        RMSNorm ``n = γ·h/√(mean(h²)+ε)`` → ``h = n/γ·√(mean(ref²)+ε)`` (exact when ``h`` keeps the reference's
        RMS; the authors' code adds the reference mean and uses its variance — reference/revs-method.md §1.6, not
        reproduced here). LayerNorm ``n = γ·(h−μ)/√(σ²+ε)+β`` → ``h = (n−β)/γ·√(σ²_ref+ε)+μ_ref``.
        """
        gamma = self.norm.weight.detach()
        gamma = torch.where(gamma.abs() < 1e-12, torch.full_like(gamma, 1e-12), gamma)
        if self.kind == "rms":
            scale = torch.sqrt(reference.pow(2).mean(-1, keepdim=True) + self.eps)
            return n / gamma * scale
        beta = self.norm.bias.detach() if getattr(self.norm, "bias", None) is not None else 0.0
        mu = reference.mean(-1, keepdim=True)
        var = reference.var(-1, keepdim=True, unbiased=False)
        return (n - beta) / gamma * torch.sqrt(var + self.eps) + mu

    def invert(self, logits: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Map logits ``[..., V]`` back to hidden vectors ``[..., d]`` with the norm stats of ``reference``."""
        return self.denormalize(self.pinv_apply(logits), reference)
