"""Perturbation rounds (``RevsConfig.perturb_rounds``): the edit checked, and redone, after perturbed prompts.

REVS stops pushing a target once its final-layer rank after the secret's prompt reaches the residual window. A
shallow window leaves little margin: the Perturbation attack (spaces inserted into the prompt,
:mod:`revs_engine.attacks.perturb`) moves the activations enough to lift the token back into the top ranks at the
last layers. A perturbation round measures each target after ``perturb_prompts`` perturbed versions of its
prompt, as that attack does (the logit-lens rank at every layer, the lowest one counts), and edits again, after
the perturbed prompt where it is lowest, every target whose rank there falls below the residual window.

The perturbations use seeds :data:`FIRST_SEED` onwards; the audit's Perturbation attack uses seed 0 by default,
so the attack it reports is one the edit never saw.

Optionally (``RevsConfig.perturb_drops``) the rounds also measure each target after prompts with random words
left out (:func:`drop_words`): the same person's value after other wordings of the context, which inserted spaces
never reach — the value is memorized after the other sentences that hold it too, and the edit sees only one.

Offers :func:`perturbed_variants`, :func:`drop_words`, :func:`dropped_variants`, :func:`rewritten_prompts`
(the same rewritings as ids, for the joint re-projection) and :func:`lagging_after_perturbation`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
from torch import nn

from revs_engine.arch import ModelArch
from revs_engine.attacks.logit_lens import capture_targets, stream_ranks
from revs_engine.attacks.perturb import perturb_text
from revs_engine.lens import VocabLens
from revs_engine.targets import TokenTarget

#: The first perturbation seed the edit trains on (the audit's Perturbation attack uses ``perturb_seed`` = 0).
FIRST_SEED = 1
#: Share of a prompt's words :func:`drop_words` leaves out, and the closing words it always keeps (the value
#: follows them).
DROP_RATE = 0.3
KEEP_LAST = 2


def perturbed_variants(targets: Sequence[TokenTarget], prompt_ids: Sequence[Sequence[int]],
                       decode: Callable[[list[int]], str], encode: Callable[[str], list[int]], n: int
                       ) -> list[list[TokenTarget]]:
    """Return ``n`` perturbed copies of ``targets`` (spaces inserted as the Perturbation attack does,
    :func:`~revs_engine.attacks.perturb.perturb_text`; one list per perturbation seed, in target order).

    Args:
        targets: the erase's targets; ``prefix_ids`` start with ``prompt_ids[secret_index]``.
        prompt_ids: each secret's prompt as ids (decoded to text, perturbed, encoded again).
        decode, encode: the tokenizer.
        n: perturbed prompts per target.
    """
    return _rewritten(targets, prompt_ids, decode, encode, n, lambda text, seed: perturb_text(text, seed=seed))


def drop_words(text: str, *, seed: int, rate: float = DROP_RATE, keep_last: int = KEEP_LAST) -> str:
    """Return ``text`` with a seeded random ``rate`` of its words left out (at least one when it has more than
    ``keep_last`` words); the last ``keep_last`` words are always kept. Words are split on whitespace and joined
    with one space; the text's leading and trailing whitespace is kept."""
    words = text.split()
    head = len(words) - keep_last
    if head <= 0:
        return text
    rng = np.random.default_rng(seed)
    drop = rng.random(head) < rate
    if not drop.any():
        drop[int(rng.integers(0, head))] = True
    kept = [w for w, d in zip(words, [*drop.tolist(), *[False] * keep_last], strict=True) if not d]
    lead, trail = text[:len(text) - len(text.lstrip())], text[len(text.rstrip()):]
    return lead + " ".join(kept) + trail


def dropped_variants(targets: Sequence[TokenTarget], prompt_ids: Sequence[Sequence[int]],
                     decode: Callable[[list[int]], str], encode: Callable[[str], list[int]], n: int
                     ) -> list[list[TokenTarget]]:
    """Return ``n`` copies of ``targets`` after their prompts with words left out (:func:`drop_words`; arguments
    as :func:`perturbed_variants`)."""
    return _rewritten(targets, prompt_ids, decode, encode, n, lambda text, seed: drop_words(text, seed=seed))


def rewritten_prompts(prompt_ids: Sequence[Sequence[int]], decode: Callable[[list[int]], str],
                      encode: Callable[[str], list[int]], n_perturbed: int, n_dropped: int
                      ) -> list[list[tuple[int, ...]]]:
    """Return, per secret, the rewritings of its prompt the perturbation rounds measure, as ids: ``n_perturbed``
    with spaces inserted (:func:`perturbed_variants`), then ``n_dropped`` with words left out
    (:func:`dropped_variants`), in seed order."""
    spaced = _rewrites(prompt_ids, decode, encode, n_perturbed, lambda text, seed: perturb_text(text, seed=seed))
    dropped = _rewrites(prompt_ids, decode, encode, n_dropped, lambda text, seed: drop_words(text, seed=seed))
    return [[v[i] for v in (*spaced, *dropped)] for i in range(len(prompt_ids))]


def _rewrites(prompt_ids, decode, encode, n: int, rewrite: Callable[[str, int], str]
              ) -> list[list[tuple[int, ...]]]:
    """``n`` rewritings of every prompt, ``encode(rewrite(prompt text, seed))`` for seeds :data:`FIRST_SEED`
    onwards (one list per seed, in prompt order)."""
    return [[tuple(encode(rewrite(decode(list(p)), FIRST_SEED + v))) for p in prompt_ids] for v in range(n)]


def _rewritten(targets, prompt_ids, decode, encode, n: int, rewrite: Callable[[str, int], str]
               ) -> list[list[TokenTarget]]:
    """``n`` copies of ``targets``, each after its prompt's rewriting of one seed (:func:`_rewrites`; one list
    per seed, in target order); the value's tokens after the prompt keep their ids."""
    out = []
    for moved in _rewrites(prompt_ids, decode, encode, n, rewrite):
        out.append([dataclasses.replace(t, prefix_ids=moved[t.secret_index]
                                        + t.prefix_ids[len(prompt_ids[t.secret_index]):]) for t in targets])
    return out


def lagging_after_perturbation(model: nn.Module, arch: ModelArch, lens: VocabLens,
                               variants: Sequence[Sequence[TokenTarget]], floor: int, *, batch_size: int = 16
                               ) -> list[tuple[int, TokenTarget, int]]:
    """Return ``(target index, perturbed target, rank)`` for every target whose lowest logit-lens rank over the
    layers, after its worst perturbed prompt, is below ``floor``; the perturbed target is that worst one."""
    if not variants:
        return []
    worst: dict[int, tuple[int, TokenTarget]] = {}
    for moved in variants:
        ranks = stream_ranks(capture_targets(model, arch, list(moved), batch_size=batch_size), lens)
        for j, (target, rank) in enumerate(zip(moved, ranks.min(1).values.tolist(), strict=True)):
            if rank < floor and (j not in worst or rank < worst[j][0]):
                worst[j] = (int(rank), target)
    return [(j, worst[j][1], worst[j][0]) for j in sorted(worst)]
