"""Format-aware attacks on one secret: exposure, constrained decoding, neighbourhood, partial knowledge.

Offers :class:`FormatAttackResult`, :func:`format_attacks` (all four attacks on one secret), :class:`FormatTarget`
and :func:`format_attacks_many` (many secrets, sharing the token table and the candidate tokenisations).

These ask what an attacker who knows the secret's format asks (reference/revs-method.md §9), where the paper's
metrics only ask whether the edited tokens left the top-k:
    exposure       where the secret's likelihood falls among N random values of its format (bits)
                   (:mod:`revs_engine.attacks.exposure`)
    constrained    greedy decoding allowed only tokens that fit the format: characters that come back
                   (:mod:`revs_engine.attacks.format_decoding`)
    neighbourhood  the secret's rank among valid values within Hamming distance 1–2 of that decode
                   (:mod:`revs_engine.attacks.neighbourhood`)
    partial        given the first half of the secret, does greedy decoding (plain / constrained) complete it?
Token ids and callables in (``encode``: text → ids without special tokens, ``decode``: ids → text), typed frozen
results out; the results hold no raw value in their records (the decode is kept in memory, ``repr=False``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from revs_engine.attacks.exposure import ExposureResult, exposure
from revs_engine.attacks.format_decoding import (
    ConstrainedDecodeResult,
    PartialKnowledgeResult,
    constrained_attack,
    partial_knowledge,
)
from revs_engine.attacks.neighbourhood import NeighbourhoodResult, neighbourhood_attack
from revs_engine.attacks.scoring import TokenVocab, vocab_size_of
from revs_engine.formats import SecretFormat

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FormatAttackResult:
    """All four format-aware attacks on one secret.

    Attributes:
        format_name: the format's name (``"US_SSN"``, ...).
        format_bits: ``log2`` of the format's number of valid values.
        exposure, constrained, neighbourhood, partial: the attacks' results.
    """

    format_name: str
    format_bits: float
    exposure: ExposureResult
    constrained: ConstrainedDecodeResult
    neighbourhood: NeighbourhoodResult
    partial: PartialKnowledgeResult

    def to_record(self) -> dict[str, str | int | float | bool | None]:
        """Return every figure as one flat record (no raw value)."""
        c, p = self.constrained, self.partial
        return {"format": self.format_name, "format_bits": self.format_bits, **self.exposure.to_record(),
                "constrained_chars_recovered": c.chars_recovered, "constrained_variable_chars": c.n_variable_chars,
                "constrained_fraction": c.fraction, "constrained_exact": c.exact,
                "constrained_complete": c.complete, **self.neighbourhood.to_record(),
                "partial_given_chars": p.given_chars, "partial_completes": p.greedy_completes,
                "partial_constrained_completes": p.constrained_completes}

    def to_rows(self) -> list[dict[str, str | float]]:
        """Return numeric metric rows ``{"metric": name, "value": float}`` (booleans as 0/1; the neighbourhood
        rank only when the secret is in the neighbourhood)."""
        rows = []
        for name, value in self.to_record().items():
            if isinstance(value, bool | int | float):
                rows.append({"metric": name, "value": float(value)})
        return rows


def _check(fmt: SecretFormat, secret_text: str, prompt_ids: Sequence[int]) -> None:
    if not prompt_ids:
        raise ValueError("format attacks need a prompt of at least one token")
    if not fmt.is_valid(secret_text):
        raise ValueError(f"the secret is not a valid value of format {fmt.name!r} ({fmt.layout()!r}, rule "
                         f"{fmt.rule!r}); build its format with revs_engine.format_entities.format_for or "
                         "shape_format so that the secret is one of its values")


def format_attacks(model: torch.nn.Module, prompt_ids: Sequence[int], secret_text: str, fmt: SecretFormat,
                   encode: Callable[[str], list[int]], decode: Callable[[list[int]], str], *,
                   n_candidates: int = 1000, seed: int = 0, top_k: int = 100, max_distance: int = 2,
                   exhaustive_neighbourhood: bool = False, batch_size: int = 64,
                   vocab: TokenVocab | None = None) -> FormatAttackResult:
    """Run the four format-aware attacks on one secret.

    Args:
        model: causal LM in eval mode.
        prompt_ids: the secret's prompt (≥ 1 token).
        secret_text: the secret as written after the prompt, leading space included (``" 545-71-4735"``).
        fmt: its format (:mod:`revs_engine.format_entities`); the secret must be one of its values.
        encode: text → ids without special tokens; ``decode``: ids → text.
        n_candidates: random valid values for exposure (seeded by ``seed``; never the secret).
        top_k: the neighbourhood attacker's budget of guesses.
        max_distance: neighbourhood radius in variable units.
        exhaustive_neighbourhood: exact neighbourhood rank even beyond ``top_k``.
        batch_size: rows per forward pass.
        vocab: token texts (default: built from ``decode`` over the model's vocabulary; pass one to reuse it).
    """
    _check(fmt, secret_text, prompt_ids)
    vocab = vocab or TokenVocab.from_decode(decode, vocab_size_of(model))
    candidates = _candidates(fmt.sample(n_candidates + 1, seed=seed), secret_text, n_candidates)
    return _run(model, prompt_ids, secret_text, fmt, encode, decode, [encode(c) for c in candidates], vocab,
                top_k=top_k, max_distance=max_distance, exhaustive=exhaustive_neighbourhood, batch_size=batch_size)


def _candidates(pool: list[str], secret_text: str, n: int) -> list[str]:
    """The format's seeded draw of ``n + 1`` values without the secret (or without the last value): the same
    candidates for every secret of a format."""
    return [c for c in pool if c != secret_text][:n]


def _run(model, prompt_ids, secret_text, fmt, encode, decode, candidate_ids, vocab, *, top_k, max_distance,
         exhaustive, batch_size) -> FormatAttackResult:
    secret_ids = encode(secret_text)
    exp = exposure(model, prompt_ids, secret_ids, candidate_ids, fmt.log2_size, batch_size=batch_size)
    con = constrained_attack(model, prompt_ids, secret_text, fmt, vocab)
    hood = neighbourhood_attack(model, prompt_ids, secret_text, con.text, fmt, encode, max_distance=max_distance,
                                top_k=top_k, exhaustive=exhaustive, batch_size=batch_size)
    part = partial_knowledge(model, prompt_ids, secret_text, fmt, secret_ids, decode, vocab)
    return FormatAttackResult(format_name=fmt.name, format_bits=fmt.log2_size, exposure=exp, constrained=con,
                              neighbourhood=hood, partial=part)


@dataclass(frozen=True, slots=True)
class FormatTarget:
    """One secret to attack: its prompt ids, its text (leading space included) and its format."""

    prompt_ids: tuple[int, ...] = field(repr=False)
    secret_text: str = field(repr=False)
    fmt: SecretFormat = field(repr=False)


def format_attacks_many(model: torch.nn.Module, targets: Sequence[FormatTarget],
                        encode: Callable[[str], list[int]], decode: Callable[[list[int]], str], *,
                        n_candidates: int = 1000, seed: int = 0, top_k: int = 100, max_distance: int = 2,
                        exhaustive_neighbourhood: bool = False, batch_size: int = 64,
                        vocab: TokenVocab | None = None) -> list[FormatAttackResult]:
    """Run :func:`format_attacks` on every target (same settings and results), building the token table once and
    tokenising each format's candidates once; results in target order. Every secret is checked before any is
    attacked."""
    for t in targets:
        _check(t.fmt, t.secret_text, t.prompt_ids)
    vocab = vocab or TokenVocab.from_decode(decode, vocab_size_of(model))
    by_format: dict[SecretFormat, list[int]] = {}
    for i, t in enumerate(targets):
        by_format.setdefault(t.fmt, []).append(i)
    out: list[FormatAttackResult | None] = [None] * len(targets)
    for fmt, members in by_format.items():  # one format's candidates in memory at a time
        pool = fmt.sample(n_candidates + 1, seed=seed)
        encoded = {c: encode(c) for c in pool}
        for i in members:
            t = targets[i]
            ids = [encoded[c] for c in _candidates(pool, t.secret_text, n_candidates)]
            out[i] = _run(model, t.prompt_ids, t.secret_text, fmt, encode, decode, ids, vocab, top_k=top_k,
                          max_distance=max_distance, exhaustive=exhaustive_neighbourhood, batch_size=batch_size)
        logger.debug("format attacks: %d targets of one format done", len(members))
    return [r for r in out if r is not None]
