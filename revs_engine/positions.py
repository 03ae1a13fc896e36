"""Which positions of a secret REVS edits when the tokenizer writes every secret with the same few tokens.

Offers :func:`context_overlap` (how much the model's internal state at each position of a secret resembles its
state at the retain guard's positions), :func:`ranked_positions` (eligible positions, least like the guard first)
and :func:`distinct_positions` (the first ``max_tokens`` of them, in secret order).

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
from revs_engine.capture import capture_activations
from revs_engine.guard import GuardActivations


@torch.no_grad()
def context_overlap(model: torch.nn.Module, arch: ModelArch, prompt_ids: Sequence[int], secret_ids: Sequence[int],
                    positions: Sequence[int], guard_acts: GuardActivations) -> torch.Tensor:
    """Return ``[len(positions)]``: mean over layers of the largest cosine similarity between the FF2 activation
    that predicts ``secret_ids[p]`` and the activation at any guarded position (1 = an identical context)."""
    if not positions:
        return torch.zeros(0)
    device = arch.unembed.weight.device
    ids = torch.tensor(list(prompt_ids) + list(secret_ids), dtype=torch.long, device=device)[None]
    at = torch.tensor([len(prompt_ids) - 1 + p for p in positions], dtype=torch.long, device=device)[None]
    acts = capture_activations(model, arch, ids, positions=at).neuron_act[0]  # [n, L, d_ff]
    a = torch.nn.functional.normalize(acts.transpose(0, 1).float(), dim=-1)  # [L, n, d_ff]
    g = torch.nn.functional.normalize(guard_acts.acts.float(), dim=-1)  # [L, n_guard, d_ff]
    best = torch.stack([(a[layer] @ g[layer].T).amax(-1) for layer in range(a.shape[0])])  # [L, n]
    return best.mean(0).cpu()


def ranked_positions(model: torch.nn.Module, arch: ModelArch, prompt_ids: Sequence[int],
                     secret_ids: Sequence[int], eligible: Sequence[int], guard_acts: GuardActivations
                     ) -> list[int]:
    """Return ``eligible`` ordered from the least to the most :func:`context_overlap` (ties keep secret order)."""
    eligible = list(eligible)
    overlap = context_overlap(model, arch, prompt_ids, secret_ids, eligible, guard_acts)
    return [eligible[i] for i in torch.sort(overlap, stable=True).indices.tolist()]


def distinct_positions(model: torch.nn.Module, arch: ModelArch, prompt_ids: Sequence[int],
                       secret_ids: Sequence[int], eligible: Sequence[int], guard_acts: GuardActivations,
                       max_tokens: int | None) -> list[int]:
    """Return up to ``max_tokens`` of ``eligible`` with the least :func:`context_overlap`, in secret order."""
    order = ranked_positions(model, arch, prompt_ids, secret_ids, eligible, guard_acts)
    return sorted(order if max_tokens is None else order[:max_tokens])
