"""Edit-aware neighbourhood attack: is the secret among the most likely values near what the model still says?

Offers :class:`NeighbourhoodResult` and :func:`neighbourhood_attack`.

An erasure that changes one or two characters of a secret leaves the model saying something close to it. The
attacker takes the format-constrained decode ``d``, lists every valid value within ``max_distance`` variable units
of it (``d`` itself, then distance 1, then 2), and tries them in order of the model's likelihood after the prompt.
The secret's rank is the number of those values strictly more likely than the secret (0 = the attacker's first
guess).

Cheap because the auditor knows the secret:
- a secret farther than ``max_distance`` from ``d`` is absent — nothing is scored;
- each candidate shares a token prefix ``d[:k]`` with the decode; one pass over ``prompt + d`` gives
  ``log p(d[:k])`` and the distribution of the next token, so ``log p(d[:k]) + log p(candidate token k)`` bounds
  the candidate's log-likelihood from above (every further token only lowers it). Candidates whose bound is not
  above the secret's cannot outrank it and are never run; when the secret is still likely (a memorized model)
  nearly every candidate is bounded out;
- the rest are scored in batches, most promising bound first, reusing the cached ``prompt + d`` (a row continues
  its own prefix ``d[:k]``); counting stops once ``top_k`` candidates outrank the secret (the rank is then only
  known to be ≥ ``top_k``) unless ``exhaustive``.
Cost: one forward over ``prompt + d``, plus the tokens of the candidates that survive the bound.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from revs_engine.attacks.scoring import ContinuationScorer
from revs_engine.formats import SecretFormat


@dataclass(frozen=True, slots=True)
class NeighbourhoodResult:
    """The secret's place among the valid values near the constrained decode.

    Attributes:
        distance: variable units between the secret and the decode (None when the decode is incomplete).
        present: the secret is within ``max_distance`` of the decode.
        rank: neighbourhood values strictly more likely than the secret (0 = first guess); None when absent. When
            ``rank_exact`` is False counting stopped at ``top_k`` and the true rank is at least this.
        rank_exact: whether ``rank`` is exact.
        in_top_k: present and ``rank < top_k``.
        top_k: the attacker's budget of guesses.
        n_candidates: valid values within ``max_distance`` of the decode (the decode included when valid).
        n_scored: candidates run through the model (the rest were bounded out or not needed).
    """

    distance: int | None
    present: bool
    rank: int | None
    rank_exact: bool
    in_top_k: bool
    top_k: int
    n_candidates: int
    n_scored: int

    def to_record(self) -> dict[str, int | bool | None]:
        """Return the figures as a flat record (names prefixed ``neighbourhood_``)."""
        return {"neighbourhood_distance": self.distance, "neighbourhood_present": self.present,
                "neighbourhood_rank": self.rank, "neighbourhood_rank_exact": self.rank_exact,
                "neighbourhood_in_top_k": self.in_top_k, "neighbourhood_candidates": self.n_candidates,
                "neighbourhood_scored": self.n_scored}


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def neighbourhood_attack(model: torch.nn.Module, prompt_ids: Sequence[int], secret_text: str, decoded: str,
                         fmt: SecretFormat, encode: Callable[[str], list[int]], *, max_distance: int = 2,
                         top_k: int = 100, exhaustive: bool = False, batch_size: int = 64) -> NeighbourhoodResult:
    """Rank the secret among the valid values within ``max_distance`` of ``decoded`` (see module docstring).

    Args:
        model: causal LM in eval mode.
        prompt_ids: the secret's prompt (≥ 1 token).
        secret_text: the secret as written after the prompt; must be valid for ``fmt``.
        decoded: the format-constrained greedy decode after the same prompt.
        fmt: the secret's format.
        encode: text → ids without special tokens (the tokenisation of ``prompt_ids``).
        max_distance: neighbourhood radius in variable units.
        top_k: stop counting once this many values outrank the secret (unless ``exhaustive``).
        exhaustive: count every candidate (exact rank, more forward passes).
    """
    distance = fmt.distance(secret_text, decoded)
    values = [] if distance is None else [decoded] * fmt.is_valid(decoded) + [
        v for r in range(1, max_distance + 1) for v in fmt.neighbours(decoded, r)]
    if distance is None or distance > max_distance:
        return NeighbourhoodResult(distance=distance, present=False, rank=None, rank_exact=True, in_top_k=False,
                                   top_k=top_k, n_candidates=len(values), n_scored=0)
    p, d_ids = len(prompt_ids), encode(decoded)
    scorer = ContinuationScorer(model, list(prompt_ids) + d_ids, keep_from=p, batch_size=batch_size)
    steps = [float(scorer.after(p + j)[t]) for j, t in enumerate(d_ids)]
    cum = [0.0]
    for s in steps:
        cum.append(cum[-1] + s)  # cum[k] = log p(d[:k] | prompt)

    def exact_or_bound(ids: list[int]) -> tuple[float, int, bool]:
        k = _common_prefix(ids, d_ids)
        if k == len(ids):
            return cum[k], k, True
        return cum[k] + float(scorer.after(p + k)[ids[k]]), k, False

    secret_ids = encode(secret_text)
    s_val, s_k, s_done = exact_or_bound(secret_ids)
    secret_logp = s_val if s_done else cum[s_k] + scorer.score([(p + s_k, secret_ids[s_k:])])[0]
    above, pending = 0, []
    for value in values:
        if value == secret_text:
            continue
        ids = encode(value)
        val, k, done = exact_or_bound(ids)
        if done:
            above += val > secret_logp
        elif val > secret_logp:  # otherwise it cannot be more likely than the secret
            pending.append((val, k, ids))
    pending.sort(key=lambda x: -x[0])
    n_scored = 0
    for start in range(0, len(pending), scorer.batch_size):
        if above >= top_k and not exhaustive:
            break
        chunk = pending[start:start + scorer.batch_size]
        scores = scorer.score([(p + k, ids[k:]) for _, k, ids in chunk])
        n_scored += len(chunk)
        above += sum(cum[k] + s > secret_logp for (_, k, _), s in zip(chunk, scores, strict=True))
    rank_exact = exhaustive or above < top_k or n_scored == len(pending)
    return NeighbourhoodResult(distance=distance, present=True, rank=int(above), rank_exact=rank_exact,
                               in_top_k=above < top_k, top_k=top_k, n_candidates=len(values), n_scored=n_scored)
