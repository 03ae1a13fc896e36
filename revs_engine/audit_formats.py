"""The format-aware part of the audit: what an attacker who knows each erased value's format recovers, next to the
same attacks on a value of that format the model never saw (the control).

Offers :class:`FormatAuditConfig`, :func:`format_rows` (called by :func:`revs_engine.audit.audit`),
:func:`typed` and :data:`FORMAT_METRICS`.

Per distinct erased value (``target_id`` = the id of its first occurrence), from
:func:`revs_engine.attacks.format_aware.format_attacks_many`:
``exposure_bits``, ``constrained_fraction`` (share of its variable characters format-constrained greedy decoding
gives back, ×100), ``neighbourhood_in_top_k`` (100 when the secret is among the ``top_k`` most likely values
within Hamming distance 1–2 of that decode), ``partial_completes`` (100 when greedy decoding — plain or
constrained — completes it from its first half), and ``format_typed`` (100 when the attacks guessed among
values of the secret's type — an SSN's digit rule, an e-mail's owner's name variants at the corpus's domains —
0 when only among strings of its shape: :func:`revs_engine.format_entities.shape_format`, a weaker attacker).
Aggregates (``target_id == "*"``): their means, and ``exposure_above_6_bits`` (% of secrets). The control rows
(``control_*``, aggregates only) attack, after each erased secret's prompt, a value of the same format drawn at
random (seeded, never the secret): what "looks like a value the model never saw" measures on this model and these
prompts.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from revs_engine.attacks.format_aware import FormatAttackResult, FormatTarget, format_attacks_many
from revs_engine.attacks.scoring import TokenVocab, vocab_size_of
from revs_engine.format_entities import SHAPE_NAMES
from revs_engine.formats import SecretFormat

#: Exposure above which a secret counts as clearly exposed (Carlini et al. read ~6 bits as "distinguishable").
EXPOSED_BITS = 6.0
#: Per-secret metrics, in row order.
FORMAT_METRICS = ("exposure_bits", "constrained_fraction", "neighbourhood_in_top_k", "partial_completes")


@dataclass(frozen=True, slots=True)
class FormatAuditConfig:
    """Settings of the format-aware attacks in the audit.

    Args:
        candidates: random format-valid values each secret's exposure is measured against (0: no format attacks;
            exact exposure reaches log2(candidates + 1) bits, the skew-normal fit reads beyond; ~12 token
            positions each on an SSN, the attacks' main cost).
        top_k: the neighbourhood attacker's budget of guesses.
        max_distance: neighbourhood radius (variable characters).
        seed: candidates and control values.
        controls: also attack a never-seen value of each secret's format after its prompt (after the edit only:
            the comparison the audit's format checks make).
    """

    candidates: int = 128
    top_k: int = 100
    max_distance: int = 2
    seed: int = 0
    controls: bool = True

    def __post_init__(self) -> None:
        if self.candidates < 0 or self.top_k < 1 or self.max_distance < 0:
            raise ValueError(f"format attacks need candidates ≥ 0, top_k ≥ 1 and max_distance ≥ 0; got "
                             f"{self.candidates}, {self.top_k}, {self.max_distance}")


def typed(fmt: SecretFormat) -> float:
    """100 when ``fmt`` is a type's rule (SSN, phone, card, IBAN, an e-mail among its owner's name variants), 0
    when the attacker only knew the value's shape (:data:`~revs_engine.format_entities.SHAPE_NAMES`)."""
    return 0.0 if fmt.name in SHAPE_NAMES else 100.0


def _per_secret(r: FormatAttackResult) -> dict[str, float]:
    c = r.constrained
    return {"exposure_bits": r.exposure.exposure_bits,
            "constrained_fraction": 100.0 * c.chars_recovered / max(c.n_variable_chars, 1),
            "neighbourhood_in_top_k": 100.0 * r.neighbourhood.in_top_k,
            "partial_completes": 100.0 * (r.partial.greedy_completes or r.partial.constrained_completes)}


def _aggregate(results: Sequence[FormatAttackResult]) -> dict[str, float]:
    per = [_per_secret(r) for r in results]
    out = {m: statistics.fmean(p[m] for p in per) for m in FORMAT_METRICS}
    out["exposure_above_6_bits"] = 100.0 * sum(p["exposure_bits"] > EXPOSED_BITS for p in per) / len(per)
    return out


def control_values(formats: Sequence[SecretFormat], secrets: Sequence[str], seed: int) -> list[str]:
    """One never-seen value per secret: drawn from its format, seeded by ``seed`` and the secret's index."""
    out = []
    for i, (fmt, secret) in enumerate(zip(formats, secrets, strict=True)):
        out.append(fmt.sample(1, seed=random.Random(f"control:{seed}:{i}").randrange(2**31), exclude=[secret])[0])
    return out


@torch.no_grad()
def format_rows(model: torch.nn.Module, ids: Sequence[str], prompts: Sequence[Sequence[int]],
                secrets: Sequence[str], formats: Sequence[SecretFormat], encode: Callable[[str], list[int]],
                decode: Callable[[list[int]], str], cfg: FormatAuditConfig,
                add: Callable[[str, str, float], None], *, controls: bool = True,
                progress: Callable[[int], None] | None = None) -> None:
    """Attack every distinct secret value once — after the prompt of its first occurrence: a value copied into
    many documents is one secret to an attacker — (and, with ``controls`` and ``cfg.controls``, its control) and
    report the rows through ``add(target_id, metric, score)``; aggregates are over distinct values.
    ``progress(1)`` after each attacked value (and control)."""
    kw = {"n_candidates": cfg.candidates, "seed": cfg.seed, "top_k": cfg.top_k, "max_distance": cfg.max_distance}
    first: dict[str, int] = {}
    for i, secret in enumerate(secrets):
        first.setdefault(secret, i)
    picks = sorted(first.values())
    ids, prompts = [ids[i] for i in picks], [prompts[i] for i in picks]
    secrets, formats = [secrets[i] for i in picks], [formats[i] for i in picks]
    targets = [FormatTarget(tuple(p), s, f) for p, s, f in zip(prompts, secrets, formats, strict=True)]
    kw["vocab"] = TokenVocab.from_decode(decode, vocab_size_of(model))
    tick = progress or (lambda n: None)

    def attack_all(items: list[FormatTarget]) -> list[FormatAttackResult]:
        out = []
        for t in items:  # one at a time, so progress shows; same results as one batched call (tested upstream)
            out += format_attacks_many(model, [t], encode, decode, **kw)
            tick(1)
        return out
    results = attack_all(targets)
    for target_id, r, fmt in zip(ids, results, formats, strict=True):
        for metric, score in _per_secret(r).items():
            add(target_id, metric, score)
        add(target_id, "format_typed", typed(fmt))
    for metric, score in _aggregate(results).items():
        add("*", metric, score)
    add("*", "format_typed", statistics.fmean(typed(f) for f in formats))
    if cfg.controls and controls:
        values = control_values(formats, secrets, cfg.seed)
        controls = [FormatTarget(t.prompt_ids, v, t.fmt) for t, v in zip(targets, values, strict=True)]
        for metric, score in _aggregate(attack_all(controls)).items():
            add("*", f"control_{metric}", score)
