"""Never-seen controls for the rank attacks: what the Logit-Lens, Delta and Perturbation attacks score on values
the model never saw, after the same prompts, at the same token positions as the erased secrets.

Why: the rank attacks ask whether one token of a value stands out in the model's layers, and a value the model
never saw is not silent there. On a tokenizer that writes numbers digit by digit, every digit is a likely next
token wherever a number is being written, and attention copies digits of the context; the Delta attack's list of
the tokens that move most between two layers then holds the evaluated digit for values the model never saw about as
often as for memorized ones. A secret's score only means something next to this floor: an erased value that scores
at the control's level is, to that attack, a value the model never saw; demanding more than the control asks the
edit to hide the value better than ignorance would (and the Logit-Lens attack's usual 100 after an edit is exactly
that: a never-seen digit sits near the top of the last layer's candidates, an erased one far below).

Offers :func:`control_targets` (the evaluated tokens of one set of never-seen values) and :func:`rank_controls`
(the attacks' aggregate scores on ``sets`` such sets, averaged). Each set draws one value per erased secret with
:func:`revs_engine.audit_formats.control_values` (the format-aware attacks' control, seeded by ``seed + set``),
tokenizes it and keeps each evaluated token's position within the value (a position past the control value's end
is left out). Scores are computed exactly as for the erased secrets (per secret, then the attack's aggregate over
secrets), then averaged over the sets: the Delta attack's headline is a minimum over secrets, so one set is noisy.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

import torch

from revs_engine.arch import ModelArch
from revs_engine.attacks import delta as delta_attack
from revs_engine.attacks.logit_lens import capture_targets, score_logit_lens, stream_ranks
from revs_engine.attacks.perturb import perturbed_targets
from revs_engine.audit_formats import control_values
from revs_engine.formats import SecretFormat
from revs_engine.lens import VocabLens
from revs_engine.metrics import generality_from_ranks, resistance_score
from revs_engine.probes import ProbeItem
from revs_engine.targets import TokenTarget

#: The rank attacks the controls score (audit metric names; ``control_<name>`` rows).
CONTROLLED = ("logit_lens", "delta", "perturb", "resistance_score")


def control_targets(forget: Sequence[TokenTarget], forget_items: Sequence[ProbeItem],
                    formats: Sequence[SecretFormat], encode: Callable[[str], list[int]],
                    decode: Callable[[list[int]], str], seed: int) -> list[TokenTarget]:
    """The evaluated tokens of ``forget`` moved onto one never-seen value per secret (module docstring): the same
    secret index, position within the value and prompt; the control value's own tokens before that position."""
    values = _control_ids(forget_items, formats, encode, decode, seed)
    return _moved(forget, values, _own_prompts(forget, forget_items))


def control_generality_targets(generality: Sequence[TokenTarget], forget_items: Sequence[ProbeItem],
                               formats: Sequence[SecretFormat], encode: Callable[[str], list[int]],
                               decode: Callable[[list[int]], str], seed: int) -> list[TokenTarget]:
    """The evaluated tokens of the erased secrets after their *other* prompts (``generality``: each token's prefix
    is its prompt then the value's tokens before it) moved onto the same never-seen values as
    :func:`control_targets` with ``seed``: the same prompt and position, the control value's tokens."""
    values = _control_ids(forget_items, formats, encode, decode, seed)
    return _moved(generality, values, _other_prompts(generality))


def _own_prompts(targets: Sequence[TokenTarget], forget_items: Sequence[ProbeItem]) -> list[tuple[int, ...]]:
    """Each target's secret's prompt."""
    return [tuple(forget_items[t.secret_index].prefix_ids) for t in targets]


def _other_prompts(targets: Sequence[TokenTarget]) -> list[tuple[int, ...]]:
    """Each target's prompt: its prefix without the value's tokens before it."""
    return [tuple(t.prefix_ids[:len(t.prefix_ids) - t.position]) for t in targets]


def _control_ids(forget_items, formats, encode, decode, seed: int) -> list[list[int]]:
    """One never-seen value per secret as ids (:func:`~revs_engine.audit_formats.control_values`)."""
    texts = [decode(list(it.target_ids)) for it in forget_items]
    return [encode(v) for v in control_values(formats, texts, seed)]


def _moved(targets: Sequence[TokenTarget], values: list[list[int]], prompts: list[tuple[int, ...]]
           ) -> list[TokenTarget]:
    """``targets`` on ``values[secret_index]``, each after its own entry of ``prompts``; a position past the
    control value's end is left out."""
    out = []
    for j, t in enumerate(targets):
        ids = values[t.secret_index]
        if t.position < len(ids):
            out.append(TokenTarget(t.secret_index, t.position, prompts[j] + tuple(ids[:t.position]),
                                   int(ids[t.position])))
    return out


@torch.no_grad()
def rank_controls(model: torch.nn.Module, arch: ModelArch, lens: VocabLens, forget: Sequence[TokenTarget],
                  forget_items: Sequence[ProbeItem], prompts: Sequence[str], formats: Sequence[SecretFormat],
                  encode: Callable[[str], list[int]], decode: Callable[[list[int]], str], *, ks: Sequence[int],
                  sets: int, seed: int = 0, n_spaces: int = 10, perturb_seed: int = 0, delta_top: int = 500,
                  batch_size: int = 16, faithful_top_rounding: bool = False,
                  generality: Sequence[TokenTarget] = ()) -> dict[tuple[str, int], float]:
    """Return ``{(metric, k): score}`` for every metric of :data:`CONTROLLED` and ``k`` of ``ks``: its mean over
    ``sets`` sets of never-seen values (the Perturbation attack with the audit's ``n_spaces`` / ``perturb_seed``,
    the Delta attack's lists ``delta_top`` long); with ``generality`` (the erased secrets' tokens after their
    other prompts) also ``("generality", k)``: Generality@k of the same never-seen values after those prompts
    (:func:`control_generality_targets`), the floor of the audit's Generality."""
    if sets < 1:
        raise ValueError(f"sets must be ≥ 1, got {sets}")
    V, ftr = arch.vocab_size, faithful_top_rounding
    scores: dict[tuple[str, int], list[float]] = {}
    for j in range(sets):
        values = _control_ids(forget_items, formats, encode, decode, seed + j)
        gen = _moved(generality, values, _other_prompts(generality))
        if gen:
            gen_ranks = stream_ranks(capture_targets(model, arch, gen, batch_size=batch_size), lens)
            for k in ks:
                scores.setdefault(("generality", k), []).append(
                    generality_from_ranks(gen_ranks, gen, V, k, faithful_top_rounding=ftr).score)
        tt = _moved(forget, values, _own_prompts(forget, forget_items))
        if not tt:
            continue
        acts = capture_targets(model, arch, tt, batch_size=batch_size)
        positions, ranks = delta_attack.positions_and_ranks(acts, lens, top=delta_top)
        moved = perturbed_targets(tt, prompts, encode, n_spaces=n_spaces, seed=perturb_seed)
        pert = capture_targets(model, arch, moved, batch_size=batch_size)
        pert_ranks = stream_ranks(pert, lens)
        for k in ks:
            lla = score_logit_lens(ranks, acts.secret_index, V, k, faithful_top_rounding=ftr).score
            da = delta_attack.score_delta(positions, acts.secret_index, k).score
            pa = score_logit_lens(pert_ranks, pert.secret_index, V, k, attack="perturb",
                                  faithful_top_rounding=ftr).score
            for metric, score in zip(CONTROLLED, (lla, da, pa, resistance_score(lla, da, pa)), strict=True):
                scores.setdefault((metric, k), []).append(score)
    return {key: statistics.fmean(values) for key, values in scores.items()}
