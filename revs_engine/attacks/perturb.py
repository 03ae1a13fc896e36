"""Perturbation attack (PA@k, reference/revs-method.md §2.6): Logit-Lens on prompts with random spaces inserted.

Offers :func:`perturb_text`, :func:`perturbed_targets` and :func:`run`.

Each prompt gets ``n_spaces`` (10) space characters inserted one by one at uniformly random places of the current
text, then one trailing space. The generator is re-seeded with ``seed`` before each prompt (as the authors' code
re-seeds numpy), so the same prompt is always perturbed the same way. Perturbation works on the prompt *text*, so
the caller passes ``encode`` (text → ids, no special tokens) — the core stays tokenizer-free. The secret's tokens
keep their ids; only the prompt part of each teacher-forced prefix is replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from revs_engine.arch import ModelArch
from revs_engine.attacks.logit_lens import AttackResult, capture_targets, score_logit_lens, stream_ranks
from revs_engine.lens import VocabLens
from revs_engine.targets import TokenTarget


def perturb_text(text: str, *, n_spaces: int = 10, seed: int = 0) -> str:
    """Insert ``n_spaces`` spaces at seeded random positions and append one trailing space."""
    rng = np.random.default_rng(seed)
    for _ in range(n_spaces):
        pos = int(rng.integers(0, len(text) + 1))
        text = text[:pos] + " " + text[pos:]
    return text + " "


def perturbed_targets(targets: Sequence[TokenTarget], prompts: Sequence[str], encode: Callable[[str], list[int]],
                      *, n_spaces: int = 10, seed: int = 0) -> list[TokenTarget]:
    """Rebuild each target's prefix on its perturbed prompt.

    Args:
        targets: evaluated tokens; ``prefix_ids`` must start with ``encode(prompts[secret_index])``.
        prompts: prompt text per secret index.
        encode: text → ids without special tokens (the tokenisation used to build ``targets``).
    """
    cache: dict[int, tuple[int, list[int]]] = {}
    out = []
    for t in targets:
        if t.secret_index not in cache:
            prompt = prompts[t.secret_index]
            n_prompt = len(encode(prompt)) if prompt else 0
            cache[t.secret_index] = (n_prompt, list(encode(perturb_text(prompt, n_spaces=n_spaces, seed=seed))))
        n_prompt, new_prompt = cache[t.secret_index]
        if len(t.prefix_ids) < n_prompt:
            raise ValueError(f"target of secret {t.secret_index}: its prefix is shorter than its encoded prompt; "
                             "pass the prompts the targets were built from")
        out.append(TokenTarget(t.secret_index, t.position, tuple(new_prompt) + t.prefix_ids[n_prompt:],
                               t.token_id))
    return out


def run(model: torch.nn.Module, arch: ModelArch, targets: Sequence[TokenTarget], *, k: int = 100,
        prompts: Sequence[str], encode: Callable[[str], list[int]], lens: VocabLens | None = None,
        n_spaces: int = 10, seed: int = 0, batch_size: int = 16,
        faithful_top_rounding: bool = False) -> AttackResult:
    """Run the Perturbation attack: Logit-Lens (all layers, min over layers) on perturbed prompts."""
    lens = lens or VocabLens(model, arch)
    moved = perturbed_targets(targets, prompts, encode, n_spaces=n_spaces, seed=seed)
    acts = capture_targets(model, arch, moved, batch_size=batch_size)
    return score_logit_lens(stream_ranks(acts, lens), acts.secret_index, arch.vocab_size, k, attack="perturb",
                            faithful_top_rounding=faithful_top_rounding)
