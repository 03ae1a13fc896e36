"""Span geometry: chunking long texts with overlap, and resolving duplicate/overlapping spans.

Offers :func:`chunk_bounds` (whitespace-snapped windows such that any span no longer than the overlap lies whole
inside the chunk that owns its start) and :func:`resolve_spans` (drop exact duplicates, same-entity overlaps and
spans contained in a longer, at-least-as-confident span of another entity, e.g. the URL ``example.com`` inside an
email address; over the very same characters a validated entity beats a lenient one, and a lenient span loses to
any overlapping span of another entity scored at least as high, see :data:`LENIENT_ENTITIES`).
"""

from __future__ import annotations

from collections.abc import Iterable

from pii_detect.findings import Span

#: Entities whose recognizer accepts many shapes (``phonenumbers`` reads ``214.97.98.242`` as a phone number).
#: When one of them covers exactly the characters of a span of another, validated entity (an IPv4 address, a
#: Luhn-valid card), the validated one is kept whatever the scores: the context boost ("Phone: ...") should not
#: turn an address into a phone number.
LENIENT_ENTITIES = frozenset({"PHONE_NUMBER"})


def _snap(text: str, pos: int, floor: int) -> int:
    """Move a cut point back to just after whitespace (no token is split), not below ``floor``."""
    for i in range(pos, floor, -1):
        if text[i - 1].isspace():
            return i
    return pos


def chunk_bounds(text: str, size: int, overlap: int) -> list[tuple[int, int, int]]:
    """Return ``(start, end, owned_until)`` windows covering ``text``.

    A span found in a window is kept only when it starts before ``owned_until`` (the next window's start), so
    each span is reported once; because windows overlap by at least ``overlap`` characters, any span of length
    <= ``overlap`` that starts in a window ends inside it.
    """
    n = len(text)
    if n <= size:
        return [(0, n, n)]
    out: list[tuple[int, int, int]] = []
    start = 0
    while True:
        end = min(start + size, n)
        if end == n:
            out.append((start, n, n))
            return out
        nxt = _snap(text, end - overlap, start + overlap)
        out.append((start, end, nxt))
        start = nxt


def resolve_spans(spans: Iterable[Span]) -> list[Span]:
    """Return spans sorted by position with duplicates and dominated overlaps removed."""
    best: dict[tuple[int, int, str], Span] = {}
    for s in spans:
        k = (s.start, s.end, s.entity_type)
        if k not in best or s.score > best[k].score:
            best[k] = s
    ordered = sorted(best.values(),
                     key=lambda s: (s.start, -(s.end - s.start), s.entity_type in LENIENT_ENTITIES, -s.score))
    kept: list[Span] = []
    active: list[Span] = []  # kept spans that may still contain later ones
    for s in ordered:
        active = [a for a in active if a.end > s.start]
        dominated = False
        for a in active:
            if a.entity_type == s.entity_type and a.start < s.end:
                dominated = True  # same entity overlapping a longer/earlier one (Presidio keeps the container)
            elif a.start <= s.start and s.end <= a.end:
                validated_wins = ((a.start, a.end) == (s.start, s.end) and s.entity_type in LENIENT_ENTITIES
                                  and a.entity_type not in LENIENT_ENTITIES)
                dominated = a.score >= s.score or validated_wins
            if dominated:
                break
        if not dominated:
            kept.append(s)
            active.append(s)
    return _drop_lenient_overlaps(kept)


def _drop_lenient_overlaps(spans: list[Span]) -> list[Span]:
    """Drop a lenient span (a phone number) that overlaps a span of another entity scored at least as high,
    e.g. ``(025 49 2174`` read as a phone number around the SSN ``025 49 2174``."""
    lenient = [s for s in spans if s.entity_type in LENIENT_ENTITIES]
    if not lenient:
        return spans
    others = [s for s in spans if s.entity_type not in LENIENT_ENTITIES]
    drop = {id(p) for p in lenient for o in others if o.start < p.end and p.start < o.end and o.score >= p.score}
    return [s for s in spans if id(s) not in drop]
