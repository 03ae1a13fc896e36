"""Format-preserving decoys: the forgotten secret's own context with a value of the same shape that is not it.

Offers :func:`decoy_values` (random values shaped like a secret: digits → digits, letters → letters of the same
case, every other character kept, never the secret itself) and :func:`decoy_sequences` (the secret's prompt ids
followed by each decoy's ids — benign texts for a :class:`~revs_engine.guard.RetainGuard`).

Why (reference/revs-method.md §8): on a digit-level tokenizer an SSN's digit is predicted from a context that
every SSN shares (the template, "a digit of an SSN comes next") plus what is specific to this one (its person and
its earlier digits). An edit keyed on the shared part demotes the digit for every retained SSN. Guarding the
secret's own prompt followed by random look-alike values tells the guard projection
(:mod:`revs_engine.guard_projection`) what the shared part looks like at exactly these positions, so the edit keeps
only what separates the real secret from any other value in the same place. The decoys need no other data: a
deletion request with nothing else memorized still gets them.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Sequence


def decoy_values(value: str, n: int, *, seed: int = 0) -> list[str]:
    """Return ``n`` distinct-from-``value`` strings of ``value``'s shape (seeded, deterministic).

    Digits become random digits and ASCII letters random letters of the same case; everything else (spaces,
    ``-``, ``@``, ``.``) is kept, so the tokenizer splits a decoy like the secret. A value with no digit or letter
    has no decoy (returns ``[]``).
    """
    if n < 0:
        raise ValueError(f"n must be ≥ 0, got {n}")
    if not any(c.isascii() and c.isalnum() for c in value):
        return []
    rng = random.Random(f"{seed}:{value}")  # str seeds are hashed (sha512): stable across runs
    out: list[str] = []
    while len(out) < n:
        decoy = "".join(_swap(c, rng) for c in value)
        if decoy != value:
            out.append(decoy)
    return out


def _swap(c: str, rng: random.Random) -> str:
    if not c.isascii():
        return c
    if c.isdigit():
        return rng.choice(string.digits)
    if c.islower():
        return rng.choice(string.ascii_lowercase)
    if c.isupper():
        return rng.choice(string.ascii_uppercase)
    return c


def decoy_sequences(prompt_ids: Sequence[int], value: str, encode: Callable[[str], list[int]], n: int, *,
                    seed: int = 0) -> list[list[int]]:
    """Return ``prompt_ids + encode(decoy)`` for each of :func:`decoy_values` (``value`` as the secret is written
    after the prompt, e.g. with its leading space)."""
    return [list(prompt_ids) + list(encode(d)) for d in decoy_values(value, n, seed=seed)]
