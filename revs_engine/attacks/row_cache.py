"""Rows that continue decoding from a teacher-forced pass's key/value cache, one token per step.

Offers :class:`RowCache` (rows cut out of a teacher-forced batch with the entries from each row's divergence on
masked out; joined with other rows; stepped with explicit position ids) and :func:`joinable_cache`. Both
:mod:`~revs_engine.attacks.resumed_greedy` and :mod:`~revs_engine.attacks.resumed_sampling` resume their
continuations with it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from transformers.cache_utils import DynamicLayer


def joinable_cache(cache) -> bool:
    """True when every layer of ``cache`` is a plain :class:`DynamicLayer` (rows can be cut, padded and joined;
    sliding-window layers cannot)."""
    layers = getattr(cache, "layers", None)
    return layers is not None and all(type(x) is DynamicLayer for x in layers)


class RowCache:
    """A batch of decoding rows: their key/value cache, attention mask (holes where a row's teacher-forced tokens
    no longer apply) and the position each row's next token takes."""

    def __init__(self, cache: Any, mask: torch.Tensor, pos: torch.Tensor) -> None:
        self.cache, self.mask, self.pos = cache, mask, pos

    @classmethod
    def from_rows(cls, cache: Any, mask: torch.Tensor, rows: Sequence[int], positions: Sequence[int]) -> RowCache:
        """Rows ``rows`` of a teacher-forced batch (``cache`` and ``mask`` are left as they are), row ``k`` to feed
        its next token at ``positions[k]``: its cached entries from that position on are masked out."""
        idx = torch.tensor(list(rows), dtype=torch.long, device=mask.device)
        picked = copy.copy(cache)
        picked.layers = [copy.copy(layer) for layer in cache.layers]
        picked.batch_select_indices(idx)  # sets new tensors on the copied layers
        mask = mask[idx].clone()
        for k, p in enumerate(positions):
            mask[k, p:] = 0
        return cls(picked, mask, torch.tensor(list(positions), dtype=torch.long, device=mask.device))

    def __len__(self) -> int:
        return self.mask.shape[0]

    def extend(self, other: RowCache) -> None:
        """Append ``other``'s rows (both :func:`joinable_cache`): keys, values and masks right-padded to the
        wider of the two, the padding masked."""
        width = max(self.mask.shape[1], other.mask.shape[1])
        for layer, extra in zip(self.cache.layers, other.cache.layers, strict=True):
            for name in ("keys", "values"):  # [rows, heads, seq, head_dim]
                parts = (getattr(layer, name), getattr(extra, name))
                setattr(layer, name, torch.cat([F.pad(t, (0, 0, 0, width - t.shape[-2])) for t in parts]))
        self.mask = torch.cat([F.pad(m, (0, width - m.shape[1])) for m in (self.mask, other.mask)])
        self.pos = torch.cat([self.pos, other.pos])

    def keep(self, keep: Sequence[int]) -> None:
        """Keep only rows ``keep`` (indices into the current rows, in order)."""
        if len(keep) == len(self):
            return
        sel = torch.tensor(list(keep), dtype=torch.long, device=self.mask.device)
        if len(keep):
            self.cache.batch_select_indices(sel)
        self.mask, self.pos = self.mask[sel], self.pos[sel]

    def step(self, model: torch.nn.Module, tokens: Sequence[int]) -> torch.Tensor:
        """Feed each row its token at its position; return the next-token logits ``[rows, V]``."""
        device = self.mask.device
        self.mask = torch.cat([self.mask, torch.ones(len(self), 1, dtype=self.mask.dtype, device=device)], dim=1)
        logits = model(input_ids=torch.tensor(list(tokens), device=device)[:, None], attention_mask=self.mask,
                       position_ids=self.pos[:, None], past_key_values=self.cache, use_cache=True).logits[:, -1]
        self.pos = self.pos + 1
        return logits
