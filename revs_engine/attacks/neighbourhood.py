"""Edit-aware neighbourhood attack: is the secret among the most likely values near what the model still says?

Offers :class:`NeighbourhoodResult` and :func:`neighbourhood_attack`.

An erasure that changes one or two characters of a secret leaves the model saying something close to it. The
attacker takes the format-constrained decode ``d``, lists every valid value within ``max_distance`` variable units
of it (``d`` itself, then distance 1, then 2), and tries them in order of the model's likelihood after the prompt.
The secret's rank is the number of those values strictly more likely than the secret (0 = the attacker's first
guess).

Cheap because the auditor knows the secret:
- a secret farther than ``max_distance`` from ``d`` is absent — nothing is scored;
- each candidate shares a token prefix with something already scored: the decode (one pass over
  ``prompt + d`` gives the log-likelihood of every ``d[:k]`` and the next-token distribution after it), or a
  distance-1 candidate scored earlier (its pass gives the same for its own prefixes). The known prefix's
  log-likelihood plus the log-probability of the candidate's next token there bounds the candidate's
  log-likelihood from above (every further token only lowers it). Candidates whose bound is not above the
  secret's cannot outrank it and are never run: when the secret is still likely (a memorized model) nearly every
  candidate is bounded out, and a distance-2 candidate is bounded by its scored distance-1 parent up to its
  second change;
- the rest are scored in batches, most promising bound first, distance 1 before distance 2, reusing the cached
  ``prompt + d`` (a row continues its own prefix ``d[:k]``); counting stops once ``top_k`` candidates outrank the
  secret (the rank is then only known to be ≥ ``top_k``) unless ``exhaustive``.
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
    if distance is None or distance > max_distance:
        n = 0 if distance is None else int(fmt.is_valid(decoded)) + sum(
            sum(1 for _ in fmt.neighbours(decoded, r)) for r in range(1, max_distance + 1))
        return NeighbourhoodResult(distance=distance, present=False, rank=None, rank_exact=True, in_top_k=False,
                                   top_k=top_k, n_candidates=n, n_scored=0)
    stages = [[decoded] if fmt.is_valid(decoded) else []] + [list(fmt.neighbours(decoded, r))
                                                               for r in range(1, max_distance + 1)]
    p, d_ids = len(prompt_ids), encode(decoded)
    encoded = {v: encode(v) for stage in stages for v in stage if v != secret_text}
    secret_ids = encode(secret_text)
    union = sorted({t for ids in [d_ids, secret_ids, *encoded.values()] for t in ids})
    keep = torch.tensor(union)
    scorer = ContinuationScorer(model, list(prompt_ids) + d_ids, keep_from=p, batch_size=batch_size)
    known = _Prefixes(union)
    known.add(d_ids, 0, 0.0, [float(scorer.after(p + j)[t]) for j, t in enumerate(d_ids)],
              torch.stack([scorer.after(p + j)[keep] for j in range(len(d_ids))]).cpu())

    def score(batch: list[list[int]], details: bool) -> list[float]:
        """Exact log-likelihoods; a scored candidate's prefixes tighten later bounds when ``details``."""
        ks = [_common_prefix(ids, d_ids) for ids in batch]
        rows = [(p + k, ids[k:]) for k, ids in zip(ks, batch, strict=True)]
        results = scorer.score_steps(rows, keep) if details else [(s, None) for s in scorer.score(rows)]
        out = []
        for k, ids, (steps, rows_k) in zip(ks, batch, results, strict=True):
            base = known.get(ids[:k])
            if details:
                known.add(ids, k, base, steps, rows_k)
            out.append(base + (sum(steps) if details else steps))
        return out

    s_val, s_exact = known.bound(secret_ids)
    secret_logp = s_val if s_exact else score([secret_ids], details=False)[0]
    above, n_scored, stopped = 0, 0, False
    for r, stage in enumerate(stages):
        pending = []
        for value in stage:
            if value == secret_text:
                continue
            val, exact = known.bound(encoded[value])
            if exact:
                above += val > secret_logp
            elif val > secret_logp:  # otherwise it cannot be more likely than the secret
                pending.append((val, encoded[value]))
        pending.sort(key=lambda x: -x[0])
        for start in range(0, len(pending), scorer.batch_size):
            if above >= top_k and not exhaustive:
                stopped = True
                break
            chunk = [ids for _, ids in pending[start:start + scorer.batch_size]]
            above += sum(v > secret_logp for v in score(chunk, details=r < max_distance))
            n_scored += len(chunk)
    return NeighbourhoodResult(distance=distance, present=True, rank=int(above), rank_exact=not stopped,
                               in_top_k=above < top_k, top_k=top_k, n_candidates=sum(map(len, stages)),
                               n_scored=n_scored)


class _Prefixes:
    """Token prefixes whose log-likelihood after the prompt is known, with the next-token log-probabilities after
    each (over the tokens the candidates use): the tightest known upper bound on a candidate's likelihood is its
    longest known prefix's log-likelihood plus its next token's log-probability there."""

    def __init__(self, union: list[int]) -> None:
        self.col = {t: i for i, t in enumerate(union)}
        self.known: dict[tuple[int, ...], tuple[float, torch.Tensor | None]] = {}

    def add(self, ids: list[int], start: int, cum: float, steps: list[float], rows: torch.Tensor) -> None:
        """Record ``ids[:t]`` for ``t ≥ start``: ``cum`` is the log-likelihood of ``ids[:start]``, ``steps`` the
        log-probabilities of ``ids[start:]``, ``rows[j]`` the next-token row before ``ids[start + j]``."""
        for j, step in enumerate(steps):
            self.known[tuple(ids[:start + j])] = (cum, rows[j])
            cum += step
        self.known.setdefault(tuple(ids), (cum, None))

    def get(self, prefix: list[int]) -> float:
        """Log-likelihood of a recorded prefix."""
        return self.known[tuple(prefix)][0]

    def bound(self, ids: list[int]) -> tuple[float, bool]:
        """Return ``(value, exact)``: the exact log-likelihood of ``ids`` when recorded, else an upper bound."""
        for t in range(len(ids), -1, -1):
            entry = self.known.get(tuple(ids[:t]))
            if entry is None:
                continue
            if t == len(ids):
                return entry[0], True
            if entry[1] is not None:
                return entry[0] + float(entry[1][self.col[ids[t]]]), False
        raise AssertionError("the empty prefix is always recorded")
