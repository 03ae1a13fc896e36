"""Secret formats: what a valid value of a kind of personal data looks like, character by character.

Offers :class:`Segment` (a fixed text, a run of character classes, or a choice among strings),
:class:`SecretFormat` (segments plus an optional check rule: US SSN issue rules, Luhn, IBAN mod-97; see
:mod:`revs_engine.format_checks`) with parsing, incremental matching for constrained decoding, a seeded sampler and
Hamming neighbourhoods. Constructors per entity type live in :mod:`revs_engine.format_entities`.

A value is written as the model sees it after its prompt, with its leading space (``" 545-71-4735"``): the space is
a fixed segment. The *variable units* of a value are its characters in ``chars`` segments and one unit per
``choice`` segment; the distance between two values is the number of units that differ (a Hamming distance that
counts a whole e-mail domain or local part as one unit). Formats hold no raw value in their ``repr`` (fixed texts
and choices can be personal: a domain, a person's name).
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import string
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from revs_engine.format_checks import RULES, fix_check, rule_ok

DIGIT, LOWER, UPPER = "9", "a", "A"
#: Character class code → the characters it allows.
CLASS_CHARS = {DIGIT: string.digits, LOWER: string.ascii_lowercase, UPPER: string.ascii_uppercase}
#: A matching state: (segment index, offset in the segment, text of the choice so far). ``END`` = complete.
State = tuple[int, int, str]


@dataclass(frozen=True, slots=True)
class Segment:
    """One part of a format.

    Attributes:
        kind: ``"fixed"`` (``text``, the same in every value: separators, the leading space, ``@``, a country
            code), ``"chars"`` (``classes``: one class code per character, :data:`CLASS_CHARS`) or ``"choice"``
            (``options``: one of these non-empty strings; stored sorted and distinct).
    """

    kind: Literal["fixed", "chars", "choice"]
    text: str = field(default="", repr=False)
    classes: str = ""
    options: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.kind == "fixed" and not self.text:
            raise ValueError("a fixed segment needs a non-empty text")
        if self.kind == "chars" and (not self.classes or set(self.classes) - set(CLASS_CHARS)):
            raise ValueError(f"a chars segment needs class codes from {sorted(CLASS_CHARS)}")
        if self.kind == "choice":
            if not self.options or not all(self.options):
                raise ValueError("a choice segment needs at least one option and no empty option")
            object.__setattr__(self, "options", tuple(sorted(set(self.options))))
        if self.kind not in ("fixed", "chars", "choice"):
            raise ValueError(f"unknown segment kind {self.kind!r}")

    @property
    def alphabets(self) -> tuple[tuple[str, ...], ...]:
        """The values each of this segment's variable units can take (none for a fixed segment)."""
        if self.kind == "chars":
            return tuple(tuple(CLASS_CHARS[k]) for k in self.classes)
        return (self.options,) if self.kind == "choice" else ()


def fixed(text: str) -> Segment:
    """Return a fixed segment."""
    return Segment("fixed", text=text)


def chars(classes: str) -> Segment:
    """Return a run of character classes (e.g. ``"999"`` for three digits)."""
    return Segment("chars", classes=classes)


def choice(options: Iterable[str]) -> Segment:
    """Return a choice among ``options``."""
    return Segment("choice", options=tuple(options))


def _starts(options: tuple[str, ...], prefix: str) -> int:
    """Index of the first option ≥ ``prefix``; options starting with ``prefix`` follow it contiguously."""
    return bisect.bisect_left(options, prefix)


@dataclass(frozen=True, slots=True)
class SecretFormat:
    """The values a secret could have been, as segments plus a check rule.

    Attributes:
        name: what it is (``"US_SSN"``, ``"shape"``, ...).
        segments: the value's parts, in order (at least one variable segment).
        rule: ``"none"``, ``"ssn"`` (area not 000/666/9xx, group not 00, serial not 0000), ``"luhn"`` (the last
            digit is the Luhn check digit) or ``"iban"`` (ISO 13616 check digits, mod 97 = 1).
    """

    name: str
    segments: tuple[Segment, ...]
    rule: Literal["none", "ssn", "luhn", "iban"] = "none"

    def __post_init__(self) -> None:
        if not any(s.kind != "fixed" for s in self.segments):
            raise ValueError(f"format {self.name!r} has no variable segment: nothing to guess")
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}; use one of {RULES}")

    # ----------------------------------------------------------------------------------------- size and layout
    @property
    def size(self) -> int:
        """Number of valid values (exact for every rule)."""
        raw = math.prod(len(a) for s in self.segments for a in s.alphabets)
        if self.rule == "ssn":
            return raw // 10**9 * 898 * 99 * 9999
        return raw // {"none": 1, "luhn": 10, "iban": 100}[self.rule]

    @property
    def log2_size(self) -> float:
        """log2 of :attr:`size`: the exposure of a value the model ranks first among all valid values."""
        return math.log2(self.size)

    @property
    def max_length(self) -> int:
        """Characters in the longest value."""
        return sum(len(s.text) if s.kind == "fixed" else len(s.classes) if s.kind == "chars"
                   else max(map(len, s.options)) for s in self.segments)

    @property
    def charset(self) -> frozenset[str]:
        """Every character that can occur in a value."""
        out: set[str] = set()
        for s in self.segments:
            out |= set(s.text) if s.kind == "fixed" else {c for a in s.alphabets for o in a for c in o}
        return frozenset(out)

    def layout(self) -> str:
        """A value-free picture of the format, e.g. ``' 999-99-9999'`` or ``' {412}@{9}'`` (choices counted)."""
        parts = {"fixed": lambda s: s.text, "chars": lambda s: s.classes,
                 "choice": lambda s: "{" + str(len(s.options)) + "}"}
        return "".join(parts[s.kind](s) for s in self.segments)

    # ----------------------------------------------------------------------------------------- parsing
    def units(self, text: str) -> tuple[str, ...] | None:
        """Return the variable units of ``text`` (None when it does not fit the segments; rules not checked)."""
        return self._parse(text, 0, 0)

    def _parse(self, text: str, seg: int, pos: int) -> tuple[str, ...] | None:
        if seg == len(self.segments):
            return () if pos == len(text) else None
        s = self.segments[seg]
        if s.kind == "fixed":
            return self._parse(text, seg + 1, pos + len(s.text)) if text.startswith(s.text, pos) else None
        if s.kind == "chars":
            piece = text[pos:pos + len(s.classes)]
            if len(piece) < len(s.classes) or any(c not in CLASS_CHARS[k]
                                                  for c, k in zip(piece, s.classes, strict=True)):
                return None
            rest = self._parse(text, seg + 1, pos + len(piece))
            return None if rest is None else tuple(piece) + rest
        for end in range(pos + 1, len(text) + 1):  # shortest option first
            piece = text[pos:end]
            i = _starts(s.options, piece)
            if i == len(s.options) or not s.options[i].startswith(piece):
                return None
            if s.options[i] == piece:
                rest = self._parse(text, seg + 1, end)
                if rest is not None:
                    return (piece,) + rest
        return None

    def render(self, units: Sequence[str]) -> str:
        """Return the value whose variable units are ``units``."""
        out, it = [], iter(units)
        for s in self.segments:
            out.append(s.text if s.kind == "fixed" else "".join(next(it) for _ in s.alphabets))
        return "".join(out)

    def fits(self, text: str) -> bool:
        """Return whether ``text`` fits the segments (the rule is not checked)."""
        return self.units(text) is not None

    def is_valid(self, text: str) -> bool:
        """Return whether ``text`` fits the segments and passes the rule."""
        return self.fits(text) and rule_ok(self.rule, text)

    def variable_mask(self, text: str) -> tuple[bool, ...] | None:
        """Per character of ``text``: True where it belongs to a variable unit (None when it does not fit)."""
        units = self.units(text)
        if units is None:
            return None
        mask, it = [], iter(units)
        for s in self.segments:
            if s.kind == "fixed":
                mask += [False] * len(s.text)
            else:
                mask += [True] * sum(len(next(it)) for _ in s.alphabets)
        return tuple(mask)

    def distance(self, a: str, b: str) -> int | None:
        """Number of variable units in which ``a`` and ``b`` differ (None when either does not fit)."""
        ua, ub = self.units(a), self.units(b)
        if ua is None or ub is None:
            return None
        return sum(x != y for x, y in zip(ua, ub, strict=True))

    # ------------------------------------------------------------------------------------- incremental matching
    def start(self) -> frozenset[State]:
        """The matching states before any character."""
        return frozenset(self._normal(0, 0, ""))

    def is_end(self, state: State) -> bool:
        """Return whether ``state`` is a complete value."""
        return state[0] == len(self.segments)

    def _normal(self, seg: int, off: int, prefix: str) -> list[State]:
        if seg == len(self.segments):
            return [(seg, 0, "")]
        s = self.segments[seg]
        if s.kind != "choice":
            size = len(s.text) if s.kind == "fixed" else len(s.classes)
            return self._normal(seg + 1, 0, "") if off == size else [(seg, off, "")]
        i = _starts(s.options, prefix)
        out = []
        if i < len(s.options) and s.options[i] == prefix:
            out += self._normal(seg + 1, 0, "")
            i += 1
        if i < len(s.options) and s.options[i].startswith(prefix):
            out.append((seg, len(prefix), prefix))
        return out

    def advance(self, states: Iterable[State], text: str) -> frozenset[State]:
        """Return the states after reading ``text`` from ``states`` (empty: ``text`` cannot continue a value)."""
        current = set(states)
        for c in text:
            nxt: set[State] = set()
            for seg, off, prefix in current:
                if seg == len(self.segments):
                    continue
                s = self.segments[seg]
                if s.kind == "choice":
                    p = prefix + c
                    i = _starts(s.options, p)
                    if i < len(s.options) and s.options[i].startswith(p):
                        nxt.update(self._normal(seg, len(p), p))
                elif c == s.text[off] if s.kind == "fixed" else c in CLASS_CHARS[s.classes[off]]:
                    nxt.update(self._normal(seg, off + 1, ""))
            if not nxt:
                return frozenset()
            current = nxt
        return frozenset(current)

    def next_chars(self, states: Iterable[State]) -> frozenset[str]:
        """Characters that can come next after ``states``."""
        out: set[str] = set()
        for seg, off, prefix in states:
            if seg == len(self.segments):
                continue
            s = self.segments[seg]
            if s.kind == "fixed":
                out.add(s.text[off])
            elif s.kind == "chars":
                out |= set(CLASS_CHARS[s.classes[off]])
            else:
                i = _starts(s.options, prefix)
                while i < len(s.options) and s.options[i].startswith(prefix):
                    if len(s.options[i]) > len(prefix):
                        out.add(s.options[i][len(prefix)])
                    i += 1
        return frozenset(out)

    # ------------------------------------------------------------------------------------- sampling, neighbours
    def sample(self, n: int, *, seed: int = 0, exclude: Iterable[str] = ()) -> list[str]:
        """Return up to ``n`` distinct valid values, none in ``exclude`` (seeded; uniform over the valid values).

        When the format has at most ``4 n`` values they are enumerated and ``n`` drawn without replacement (fewer
        when the format has fewer); otherwise values are drawn at random and repeats skipped.
        """
        if n < 0:
            raise ValueError(f"n must be ≥ 0, got {n}")
        rng, excluded = random.Random(seed), set(exclude)
        if self.size <= 4 * n + len(excluded):
            pool = [v for v in self.enumerate() if v not in excluded]
            rng.shuffle(pool)
            return pool[:n]
        out: dict[str, None] = {}
        alphabets = [a for s in self.segments for a in s.alphabets]
        while len(out) < n:
            value = fix_check(self.rule, self.render([rng.choice(a) for a in alphabets]))
            if value not in excluded and rule_ok(self.rule, value):
                out[value] = None
        return list(out)

    def enumerate(self) -> Iterator[str]:
        """Yield every valid value (only sensible for small formats)."""
        alphabets = [a for s in self.segments for a in s.alphabets]
        for units in itertools.product(*alphabets):
            value = self.render(units)
            if rule_ok(self.rule, value):
                yield value

    def neighbours(self, text: str, distance: int) -> Iterator[str]:
        """Yield every valid value that differs from ``text`` in exactly ``distance`` variable units."""
        units = self.units(text)
        if units is None:
            raise ValueError(f"the value does not fit format {self.name!r} ({len(text)} characters)")
        alphabets = [a for s in self.segments for a in s.alphabets]
        for where in itertools.combinations(range(len(units)), distance):
            alts = [[x for x in alphabets[p] if x != units[p]] for p in where]
            for values in itertools.product(*alts):
                new = list(units)
                for p, x in zip(where, values, strict=True):
                    new[p] = x
                value = self.render(new)
                if rule_ok(self.rule, value):
                    yield value
