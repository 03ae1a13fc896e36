"""How a block's MLP activations vary over a sample of the model's training corpus: ``AᵀA / m`` per layer.

The joint re-projection (:mod:`revs_engine.joint_reprojection`) keeps each edited block's change away from the
directions other text uses. The retain guard gives it those directions from a few thousand positions — too few
to say which directions ordinary text leaves alone (the least-used directions of a covariance estimated on few
positions look emptier than they are). This module estimates the same matrix over many more positions of
ordinary corpus text, as AlphaEdit does for the keys it preserves: one streaming pass, batches of texts,
``[k, k]`` float64 per layer in memory whatever the sample's size.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import torch
from torch import nn

from revs_engine.arch import ModelArch
from revs_engine.capture import hooks, model_forward, right_padded

#: Each corpus text is read up to this many tokens (its first ones).
CORPUS_TEXT_TOKENS = 128


@torch.no_grad()
def corpus_covariance(model: nn.Module, arch: ModelArch, texts: Sequence[Sequence[int]],
                      neurons: Mapping[int, torch.Tensor], *, max_tokens: int = CORPUS_TEXT_TOKENS,
                      batch_size: int = 16, pad_id: int = 0, before: Collection[int] = (),
                      weight: float = 0.0) -> tuple[dict[int, torch.Tensor], int]:
    """Return ``({layer: AᵀA / m [k, k] float64}, m)``: the second moment of the MLP activations (FF2's input)
    of ``neurons[layer]`` (``k`` indices) over every position of ``texts`` (each cut to its first ``max_tokens``),
    on the model as it is; ``m`` = positions read. Texts shorter than one token are skipped.

    With ``before`` (token ids) and ``weight`` > 0 the matrix is ``C_all + weight · C_before``, ``C_before`` the
    second moment over the positions whose next token is in ``before`` alone (the contexts that predict such a
    token: for an erase, where other text writes the tokens it demotes); none there leaves ``C_all``."""
    seqs = [list(t)[:max_tokens] for t in texts if len(t)]
    if not seqs:
        raise ValueError("corpus_covariance needs at least one non-empty text")
    if weight < 0:
        raise ValueError(f"corpus_covariance's weight must be ≥ 0, got {weight}")
    device = arch.unembed.weight.device
    picks = {layer: idx.to(device) for layer, idx in neurons.items()}
    zeros = lambda: {layer: torch.zeros(len(idx), len(idx), dtype=torch.float64, device=device)  # noqa: E731
                     for layer, idx in picks.items()}
    acc, acc_before = zeros(), zeros()
    weighs = bool(weight and before)
    wanted = torch.tensor(sorted(set(before)), dtype=torch.long, device=device)
    keep: list[torch.Tensor] = []  # the current batch's real positions, flattened; then those before a wanted one

    def reader(layer: int):
        def hook(module, args, kwargs):
            x = (args[0] if args else kwargs["input"]).reshape(-1, arch.d_ff)[:, picks[layer]].double()
            real = x[keep[0]]
            acc[layer].addmm_(real.T, real)
            if weighs:
                sel = x[keep[1]]
                acc_before[layer].addmm_(sel.T, sel)
        return hook

    body = getattr(model, "base_model", model)  # no unembedding: only the blocks' inputs are read
    m = m_before = 0
    with hooks([(arch.mlp_out[layer], "pre", reader(layer)) for layer in picks]):
        for start in range(0, len(seqs), batch_size):
            ids, mask = right_padded(seqs[start:start + batch_size], pad_id)
            ids, mask = ids.to(device), mask.to(device).bool()
            nxt = torch.zeros_like(mask)  # position i is kept when token i + 1 is real and wanted
            nxt[:, :-1] = mask[:, 1:] & torch.isin(ids[:, 1:], wanted)
            keep[:] = [mask.reshape(-1), nxt.reshape(-1)]
            model_forward(body, ids, mask.long())
            m += int(mask.sum())
            m_before += int(nxt.sum())
    out = {layer: a / m for layer, a in acc.items()}
    if weighs and m_before:
        out = {layer: a + weight * acc_before[layer] / m_before for layer, a in out.items()}
    return out, m
