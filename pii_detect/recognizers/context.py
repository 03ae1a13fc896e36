"""Context-word score boost, as Presidio's ``LemmaContextAwareEnhancer`` does, but without spaCy lemmas.

Offers :func:`apply_context`: a match whose preceding words include one of its recognizer's context words gets
``score + 0.35`` (at least 0.4, at most 1.0) — Presidio's defaults. The window stops at a sentence end, so
"SSN: 123-45-6780. Order #12345-6789" does not lift the order number. Words are lower-cased ``\\w+`` tokens; a
context word also matches its simple plural, and multi-word context phrases match the joined window.
"""

from __future__ import annotations

import re

CONTEXT_SIMILARITY_FACTOR = 0.35
MIN_SCORE_WITH_CONTEXT = 0.4
_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"[.!?;]\s|\n")
_LOOKBACK_CHARS = 120


def preceding_words(text: str, start: int, window: int) -> list[str]:
    """Return the last ``window`` lower-cased words before offset ``start``, within the same sentence."""
    before = text[max(0, start - _LOOKBACK_CHARS) : start]
    ends = [m.end() for m in _SENTENCE_END.finditer(before)]
    if ends:
        before = before[ends[-1] :]
    return [w.lower() for w in _WORD.findall(before)][-window:]


def has_context(words: list[str], context: list[str]) -> bool:
    """Return True when any context word (or phrase) occurs among ``words``."""
    if not words:
        return False
    wordset = set(words)
    joined = " ".join(words)
    for cw in context:
        cw = cw.lower()
        if (" " in cw and cw in joined) or cw in wordset or f"{cw}s" in wordset:
            return True
    return False


def apply_context(text: str, start: int, score: float, context: list[str] | None, window: int) -> float:
    """Return ``score`` boosted when a context word precedes the match at ``start``."""
    if not context or score >= 1.0 or not has_context(preceding_words(text, start, window), context):
        return score
    return min(1.0, max(score + CONTEXT_SIMILARITY_FACTOR, MIN_SCORE_WITH_CONTEXT))
