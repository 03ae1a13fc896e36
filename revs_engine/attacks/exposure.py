"""Exposure of a secret (Carlini et al., "The Secret Sharer", USENIX Security 2019): how far up the model ranks it
among every value of its format.

Offers :class:`ExposureResult`, :func:`exposure` (score the secret and N sampled candidates after the prompt),
:func:`exposure_from_scores` (the arithmetic alone), :func:`fit_skew_normal` (moment fit) and
:func:`skew_normal_log_cdf`.

Definitions (reference/revs-method.md §9). The log-perplexity of a value is ``−log2 p(value | prompt)`` (bits,
summed over its tokens). With ``c`` = the number of the N candidates at least as likely as the secret (ties count
against the secret), the secret's estimated rank among the N + 1 values is ``c + 1`` and

    exact exposure = log2(N + 1) − log2(c + 1)        (0 … log2(N + 1) bits)

A value the model never saw is exchangeable with the candidates, so its rank is uniform and its exposure averages
≈ 1/ln 2 ≈ 1.44 bits; a value the model ranks above every candidate scores log2(N + 1) — the most N candidates can
tell. Beyond that the paper fits a skew-normal distribution to the candidates' log-perplexities and reads the
exposure from its tail: ``−log2 F(secret's log-perplexity)``. Here the fit is by moments (mean, variance,
skewness; the paper used scipy's maximum-likelihood fit) and the tail is integrated in log space, so values deep in
the tail are not lost to rounding; the result is capped at the format's ``log2 |R|`` (no value ranks above 1).
The headline ``exposure_bits`` is the exact value while some candidate is at least as likely as the secret, and the
larger of the two once none is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from revs_engine.attacks.scoring import ContinuationScorer

_LN2 = math.log(2.0)
#: Largest skewness a skew-normal distribution can have (|δ| → 1).
_MAX_SKEW = 0.995


@dataclass(frozen=True, slots=True)
class ExposureResult:
    """Where the secret's likelihood falls among random values of its format.

    Attributes:
        exposure_bits: headline (see module docstring).
        exact_bits: ``log2(N + 1) − log2(c + 1)``.
        extrapolated_bits: ``−log2`` of the fitted skew-normal CDF at the secret, in ``[0, max_bits]``.
        n_candidates: N.
        n_at_least_as_likely: c.
        max_bits: ``log2 |R|`` of the format (the exposure of a value ranked first among all).
        secret_log_perplexity: ``−log2 p(secret | prompt)``.
        fit: ``(loc, scale, shape)`` of the skew-normal fitted to the candidates' log-perplexities.
    """

    exposure_bits: float
    exact_bits: float
    extrapolated_bits: float
    n_candidates: int
    n_at_least_as_likely: int
    max_bits: float
    secret_log_perplexity: float
    fit: tuple[float, float, float]

    def to_record(self) -> dict[str, float | int]:
        """Return the figures as a flat record (names prefixed ``exposure_``)."""
        return {"exposure_bits": self.exposure_bits, "exposure_exact_bits": self.exact_bits,
                "exposure_extrapolated_bits": self.extrapolated_bits, "exposure_candidates": self.n_candidates,
                "exposure_max_bits": self.max_bits, "secret_log_perplexity": self.secret_log_perplexity}


def fit_skew_normal(x: Sequence[float]) -> tuple[float, float, float]:
    """Fit a skew-normal by moments; return ``(loc, scale, shape α)`` (skewness clipped to the family's range)."""
    t = torch.as_tensor(list(x), dtype=torch.float64)
    if t.numel() < 3:
        raise ValueError(f"a skew-normal fit needs ≥ 3 values, got {t.numel()}")
    mean, sd = t.mean(), t.std(correction=1)
    if sd <= 0:
        raise ValueError("all candidate scores are equal: no distribution to fit")
    g = float((((t - mean) / sd) ** 3).mean())
    g = max(-_MAX_SKEW, min(_MAX_SKEW, g))
    a = abs(g) ** (2 / 3)
    delta = math.copysign(math.sqrt(math.pi / 2 * a / (a + ((4 - math.pi) / 2) ** (2 / 3))), g)
    scale = float(sd) / math.sqrt(1 - 2 * delta**2 / math.pi)
    loc = float(mean) - scale * delta * math.sqrt(2 / math.pi)
    return loc, scale, delta / math.sqrt(1 - delta**2)


def skew_normal_log_cdf(x: float, loc: float, scale: float, shape: float, *, n_grid: int = 20001) -> float:
    """Natural log of the skew-normal CDF at ``x``: ``log ∫_{−∞}^{z} 2 φ(t) Φ(α t) dt`` with ``z = (x − loc) /
    scale``, integrated by the trapezoid rule in log space (accurate deep in the left tail)."""
    z = (x - loc) / scale
    zt = torch.tensor(z, dtype=torch.float64)
    # the log-integrand is concave; its slope at z bounds how fast it falls below z
    slope = float(-zt + shape * torch.exp(-0.5 * (shape * zt) ** 2 - 0.5 * math.log(2 * math.pi)
                                          - torch.special.log_ndtr(shape * zt)))
    lo = z - 40.0 / slope if slope > 2.0 else min(z, -12.0) - 15.0  # the integrand is negligible below lo
    t = torch.linspace(lo, z, n_grid, dtype=torch.float64)
    log_f = math.log(2.0) - 0.5 * t**2 - 0.5 * math.log(2 * math.pi) + torch.special.log_ndtr(shape * t)
    w = torch.full_like(t, math.log((z - lo) / (n_grid - 1)))
    w[0] = w[-1] = w[0] - _LN2
    return min(0.0, float(torch.logsumexp(log_f + w, 0)))


def exposure_from_scores(secret_logp: float, candidate_logps: Sequence[float], max_bits: float) -> ExposureResult:
    """Exposure from natural-log likelihoods of the secret and of N candidates (see module docstring)."""
    n = len(candidate_logps)
    if n < 3:
        raise ValueError(f"exposure needs ≥ 3 candidates, got {n}")
    c = sum(lp >= secret_logp for lp in candidate_logps)
    exact = math.log2(n + 1) - math.log2(c + 1)
    perplexities = [-lp / _LN2 for lp in candidate_logps]
    secret_perplexity = -secret_logp / _LN2
    if max(perplexities) - min(perplexities) <= 1e-12 * max(1.0, abs(perplexities[0])):
        # no spread to fit (a degenerate model): beyond every candidate is as far as it goes
        fit = (perplexities[0], 0.0, 0.0)
        extrapolated = max_bits if c == 0 else exact
    else:
        fit = fit_skew_normal(perplexities)
        extrapolated = min(max_bits, max(0.0, -skew_normal_log_cdf(secret_perplexity, *fit) / _LN2))
    headline = exact if c > 0 else max(exact, extrapolated)
    return ExposureResult(exposure_bits=headline, exact_bits=exact, extrapolated_bits=extrapolated,
                          n_candidates=n, n_at_least_as_likely=int(c), max_bits=max_bits,
                          secret_log_perplexity=secret_perplexity, fit=fit)


def exposure(model: torch.nn.Module, prompt_ids: Sequence[int], secret_ids: Sequence[int],
             candidate_ids: Sequence[Sequence[int]], max_bits: float, *, batch_size: int = 64,
             scorer: ContinuationScorer | None = None) -> ExposureResult:
    """Score the secret and the candidates after ``prompt_ids`` (prompt run once) and return their exposure.

    Args:
        model: causal LM in eval mode.
        prompt_ids: the secret's prompt (≥ 1 token).
        secret_ids: the secret's ids as written after the prompt (leading space included).
        candidate_ids: ids of N random valid values of the secret's format (none of them the secret).
        max_bits: ``log2`` of the format's size (:attr:`revs_engine.formats.SecretFormat.log2_size`).
        scorer: a scorer over ``prompt_ids`` to reuse (default: a new one).
    """
    scorer = scorer or ContinuationScorer(model, prompt_ids, batch_size=batch_size)
    p = scorer.n
    scores = scorer.score([(p, secret_ids), *((p, c) for c in candidate_ids)])
    return exposure_from_scores(scores[0], scores[1:], max_bits)
