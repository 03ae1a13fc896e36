"""The guard's full activation tensor, the way the streaming statistics' reference is defined (tests only).

``full_activations`` keeps ``[n_layers, m, d_ff]`` — what :mod:`revs_engine.guard_stats` must not keep — so that
the tests can compute every statistic from it directly and compare.
"""

from __future__ import annotations

import torch

from revs_engine.capture import capture_activations
from revs_engine.guard import RetainGuard, guarded_rows


@torch.no_grad()
def full_activations(model, arch, guard: RetainGuard) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(acts [L, m, d_ff], next_ids [m])`` at every guarded position, one sequence at a time."""
    acts, nxt = [], []
    for ids, pos in guarded_rows(guard):
        cap = capture_activations(model, arch, torch.tensor([ids]), positions=torch.tensor([pos]))
        acts.append(cap.neuron_act[0].transpose(0, 1).float())  # [L, n, d_ff]
        nxt += [ids[p + 1] for p in pos]
    return torch.cat(acts, 1), torch.tensor(nxt)


def at_risk(acts: torch.Tensor, next_ids: torch.Tensor, layer: int, token_id: int | None = None) -> torch.Tensor:
    """``[m', d_ff]``: the activations of ``layer`` at the positions predicting ``token_id`` (all when none
    does)."""
    a = acts[layer]
    if token_id is not None and (next_ids == token_id).any():
        a = a[next_ids == token_id]
    return a
