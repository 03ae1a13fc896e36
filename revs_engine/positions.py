"""Which positions of a secret REVS edits when the tokenizer writes every secret with the same few tokens.

Offers :func:`ranked_positions` (eligible positions, least like the guard first, from their overlap),
:func:`context_overlap` (how much the model's internal state at each position of a secret resembles its state at
the retain guard's positions) and :func:`distinct_positions` (the first ``max_tokens`` of the ranking, in secret
order). :func:`revs_engine.erase.erase` computes the overlap of every secret in the guard's one streaming pass
(:func:`revs_engine.guard_stats.guard_statistics` with one :class:`~revs_engine.guard_stats.OverlapQuery` per
secret); the two helpers below run that pass for one secret.

Why (reference/revs-method.md §8): on SmolLM2 an SSN is ten digit tokens, so "rarest token id" picks the same few
digits for every SSN and says nothing about where the secret lives. Editing neuron ``j`` changes the MLP output
by ``a_j(x)·Δ_j`` at every context ``x``; the neurons REVS picks are the most active ones at the target position,
so the edit reaches exactly the guarded contexts whose FF2 activation pattern resembles the target's. A position
whose pattern is unlike every retained secret's and benign text's is where an edit stays contextual.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from revs_engine.arch import ModelArch
from revs_engine.guard import RetainGuard
from revs_engine.guard_stats import OverlapQuery, guard_statistics


def ranked_positions(eligible: Sequence[int], overlap: torch.Tensor) -> list[int]:
    """Return ``eligible`` ordered from the least to the most ``overlap`` ``[len(eligible)]`` (ties keep secret
    order)."""
    eligible = list(eligible)
    return [eligible[i] for i in torch.sort(overlap, stable=True).indices.tolist()]


def context_overlap(model: torch.nn.Module, arch: ModelArch, prompt_ids: Sequence[int], secret_ids: Sequence[int],
                    positions: Sequence[int], guard: RetainGuard, *, pad_id: int = 0) -> torch.Tensor:
    """Return ``[len(positions)]``: mean over layers of the largest cosine similarity between the FF2 activation
    that predicts ``secret_ids[p]`` and the activation at any guarded position (1 = an identical context)."""
    query = OverlapQuery(tuple(prompt_ids), tuple(secret_ids), tuple(positions))
    return guard_statistics(model, arch, guard, covariance=False, collateral=False, queries=[query],
                            pad_id=pad_id).overlap(0)


def distinct_positions(model: torch.nn.Module, arch: ModelArch, prompt_ids: Sequence[int],
                       secret_ids: Sequence[int], eligible: Sequence[int], guard: RetainGuard,
                       max_tokens: int | None, *, pad_id: int = 0) -> list[int]:
    """Return up to ``max_tokens`` of ``eligible`` with the least :func:`context_overlap`, in secret order."""
    overlap = context_overlap(model, arch, prompt_ids, secret_ids, eligible, guard, pad_id=pad_id)
    order = ranked_positions(eligible, overlap)
    return sorted(order if max_tokens is None else order[:max_tokens])
