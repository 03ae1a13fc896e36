"""Content hash of a model's weights.

Offers:
    weights_sha256(model) -> str   deterministic sha256 over the state dict, tied weights counted once.

The hash identifies a model version in patches, the registry and audit reports: two models hash equal iff they
have the same parameter/buffer names, dtypes, shapes and bytes (and the same weight tying).
"""

from __future__ import annotations

import hashlib

import torch

__all__ = ["weights_sha256"]


def _tensor_bytes(t: torch.Tensor) -> memoryview:
    """Return the raw bytes of ``t`` (on CPU, contiguous) without a Python loop over elements."""
    flat = t.detach().to("cpu").contiguous().reshape(-1)
    # Viewing as uint8 also covers dtypes numpy cannot represent (bfloat16, float8).
    return memoryview(flat.view(torch.uint8).numpy())


def weights_sha256(model: torch.nn.Module) -> str:
    """Hash a model's state dict deterministically.

    Entries are visited in sorted name order; each contributes its name, dtype, shape and raw bytes. A tensor that
    shares storage with an earlier entry (tied embeddings / ``lm_head``) contributes only a reference to that
    earlier name, so tied weights are hashed once while tying itself still changes the hash.

    Args:
        model: any ``nn.Module``; its ``state_dict()`` (parameters and persistent buffers) is hashed.

    Returns:
        The hex sha256 digest (64 characters).
    """
    h = hashlib.sha256()
    seen: dict[tuple[int, str, tuple[int, ...], tuple[int, ...]], str] = {}
    state = model.state_dict()
    for name in sorted(state):
        t = state[name]
        key = (t.data_ptr(), str(t.dtype), tuple(t.shape), tuple(t.stride()))
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        if t.numel() and key in seen:
            h.update(f"tied:{seen[key]}\0".encode())
            continue
        if t.numel():
            seen[key] = name
        h.update(_tensor_bytes(t))
    return h.hexdigest()
