"""Extraction attacks (reference/revs-method.md §2.6).

White-box attacks share one signature, ``run(model, arch, targets, *, k, lens=None, ...) -> AttackResult``, and are
gathered in :data:`ATTACKS`:
    logit_lens  top-k / bottom-k of every layer's residual stream (LLA@k)
    delta       top-500 |logit change| between consecutive layers, residual/attention/MLP streams (DA@k)
    perturb     Logit-Lens on prompts with seeded random spaces (PA@k); also needs ``prompts`` and ``encode``
Black-box attacks live in :mod:`revs_engine.attacks.generation` (greedy and sampled extraction); greedy and
sampled continuations resume from the teacher-forced pass's cache (:mod:`revs_engine.attacks.resumed_greedy`,
:mod:`revs_engine.attacks.resumed_sampling`, both decoding through :mod:`revs_engine.attacks.row_cache`) and stop
once their verdict is settled (:mod:`revs_engine.attacks.containment`).
"""

from revs_engine.attacks import delta, generation, logit_lens, perturb
from revs_engine.attacks.generation import ExtractionResult, greedy_extraction, sampled_extraction
from revs_engine.attacks.logit_lens import AttackResult

ATTACKS = {"logit_lens": logit_lens.run, "delta": delta.run, "perturb": perturb.run}

__all__ = ["ATTACKS", "AttackResult", "ExtractionResult", "delta", "generation", "greedy_extraction",
           "logit_lens", "perturb", "sampled_extraction"]
