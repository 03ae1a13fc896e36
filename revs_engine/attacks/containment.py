"""When a continuation's verdict is settled: it already contains its target, or can no longer contain it.

The generation attacks ask whether a continuation of at most ``n`` tokens contains the target. :class:`Containment`
answers, for a continuation still being decoded, whether that question is already answered, so decoding can stop
the row there without changing any verdict:

- **contained**: the continuation so far holds the target (more tokens cannot take it out);
- **out of reach** (a sound bound, never a guess): with target ids, the longest suffix of the continuation that
  is a prefix of the target leaves more target tokens than remain. With a ``decode`` (the substring check of
  :mod:`revs_engine.attacks.generation`) the bound counts ASCII digits: if the target text occurs in the final
  text, its digits are a contiguous run of the final text's digits (decoding and its space clean-up never add,
  drop or reorder ASCII digits: each one is a byte of exactly one token); so the digits still missing after the
  longest suffix of the digits so far that starts the target's digit string need at least
  ``ceil(missing / d)`` more tokens, ``d`` the most ASCII digits any single token decodes to
  (:func:`digits_per_token`; one on tokenizers that split numbers into single digits). Targets without digits
  are only ever settled as contained.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

DIGITS = frozenset("0123456789")


def digits_per_token(decode: Callable[[list[int]], str], vocab_size: int) -> int:
    """Return the most ASCII digits one token of ``0 .. vocab_size - 1`` decodes to (ids ``decode`` rejects count
    as none: they decode to nothing in a continuation either). Remembered per ``(decode, vocab_size)`` when
    ``decode`` is hashable: an audit's attacks share one pass over the vocabulary."""
    try:
        return _remembered(decode, vocab_size)
    except TypeError:  # an unhashable decode
        return _digits_per_token(decode, vocab_size)


@functools.lru_cache(maxsize=4)
def _remembered(decode: Callable[[list[int]], str], vocab_size: int) -> int:
    return _digits_per_token(decode, vocab_size)


def _digits_per_token(decode: Callable[[list[int]], str], vocab_size: int) -> int:
    most = 0
    for i in range(vocab_size):
        try:
            text = decode([i])
        except (IndexError, KeyError, ValueError, TypeError, OverflowError):
            continue
        most = max(most, sum(c in DIGITS for c in text))
    return most


def contains(haystack: Sequence[int], needle: Sequence[int]) -> bool:
    """Return whether ``needle`` occurs as a contiguous subsequence of ``haystack``."""
    n = len(needle)
    if n == 0:
        return True
    needle = list(needle)
    return any(list(haystack[i:i + n]) == needle for i in range(len(haystack) - n + 1))


def _digits(text: str) -> str:
    return "".join(c for c in text if c in DIGITS)


def _missing(done: Sequence, wanted: Sequence) -> int:
    """How many elements of ``wanted`` are missing after the longest suffix of ``done`` that starts ``wanted``."""
    for k in range(min(len(done), len(wanted)), 0, -1):
        if list(done[len(done) - k:]) == list(wanted[:k]):
            return len(wanted) - k
    return len(wanted)


class Containment:
    """Per item, whether a continuation's "contains the target" verdict is settled (module docstring).

    Args:
        targets: each item's target ids.
        decode: ids → text for the substring check (the target text stripped, as the attacks compare), or None
            for the contiguous-ids check.
        digits_per_token: :func:`digits_per_token` of ``decode``'s tokenizer (needed with ``decode``).
    """

    def __init__(self, targets: Sequence[Sequence[int]], decode: Callable[[list[int]], str] | None = None,
                 digits_per_token: int | None = None) -> None:
        if decode is not None and digits_per_token is None:
            raise ValueError("a substring check needs digits_per_token (revs_engine.attacks.containment."
                             "digits_per_token of the tokenizer)")
        self.targets = [tuple(t) for t in targets]
        self.decode = decode
        self.per_token = digits_per_token or 0
        self.needles = [decode(list(t)).strip() for t in self.targets] if decode is not None else []
        self.needle_digits = [_digits(s) for s in self.needles]

    def settled(self, item: int, tokens: Sequence[int], remaining: int) -> bool:
        """True when ``tokens`` (the continuation so far, at most ``remaining`` more to come) already contains
        item ``item``'s target, or no ``remaining`` tokens can complete it."""
        if self.decode is None:
            target = self.targets[item]
            return contains(tokens, target) or _missing(tokens, target) > remaining
        text = self.decode(list(tokens))
        if self.needles[item] in text:
            return True
        wanted = self.needle_digits[item]
        if not wanted:
            return False
        missing = _missing(_digits(text), wanted)
        return missing > remaining * self.per_token
