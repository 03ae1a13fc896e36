"""The retain guard: what an edit must leave alone, and the checks that keep REVS contextual.

Offers :class:`RetainGuard` (retained ``(prefix, target)`` items — other memorized secrets — and optional benign
texts), :func:`guarded_rows` (each guarded sequence and the positions whose predictions it must keep) and
:func:`intact` (which retained items greedy decoding still reproduces exactly — the teacher-forced probe, one
batched forward). What an edit needs from the guard's activations is computed in one streaming pass by
:mod:`revs_engine.guard_stats`.

Why (reference/revs-method.md §8): on a digit-level tokenizer every secret is written with the same ten tokens,
so an edit chosen by activation alone demotes a digit for every secret. Editing neuron ``j`` adds
``a_j(x)·Δ_j`` to the MLP output at any context ``x``; neurons that fire at the forgotten secret's context but not
at the guard's contexts change the former and leave the latter alone. The guard is the data the user already
has: the other memorized findings of the same sweep (they are retained by definition) and benign text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from revs_engine.probes import ProbeConfig, ProbeItem, probe


@dataclass(frozen=True)
class RetainGuard:
    """Contexts whose predictions an edit must not disturb.

    Attributes:
        items: retained ``(prefix, target)`` items; every target position is guarded.
        benign: benign texts as ids; every position is guarded (activations only, no exact-match check).
        lookalikes: ``(prefix, value)`` pairs whose value positions are guarded like an item's target, though the
            model never memorized them (decoys; no exact-match check).
    """

    items: tuple[ProbeItem, ...] = field(default=(), repr=False)
    benign: tuple[tuple[int, ...], ...] = field(default=(), repr=False)
    lookalikes: tuple[ProbeItem, ...] = field(default=(), repr=False)

    @classmethod
    def from_items(cls, items: Sequence[ProbeItem], benign: Sequence[Sequence[int]] = (),
                   lookalikes: Sequence[ProbeItem] = ()) -> RetainGuard:
        """Build a guard from probe items, optional benign id sequences and look-alike pairs."""
        return cls(tuple(items), tuple(tuple(b) for b in benign if len(b) >= 2), tuple(lookalikes))

    def __len__(self) -> int:
        return len(self.items) + len(self.benign) + len(self.lookalikes)


def guarded_rows(guard: RetainGuard) -> list[tuple[list[int], list[int]]]:
    """Return ``(input ids, guarded positions)`` per guarded sequence: an item's positions predict its target
    tokens, a benign text's every next token."""
    rows = []
    for it in (*guard.items, *guard.lookalikes):
        ids = list(it.prefix_ids) + list(it.target_ids)
        rows.append((ids, list(range(len(it.prefix_ids) - 1, len(ids) - 1))))
    for b in guard.benign:
        rows.append((list(b), list(range(len(b) - 1))))
    return rows


@torch.no_grad()
def intact(model: torch.nn.Module, items: Sequence[ProbeItem], *, batch_size: int = 32,
           pad_id: int = 0) -> torch.Tensor:
    """Return ``[n]`` bool: greedy decoding still reproduces each item's target exactly (teacher-forced probe)."""
    if not items:
        return torch.zeros(0, dtype=torch.bool)
    results = probe(model, items, config=ProbeConfig(batch_size=batch_size), pad_id=pad_id)
    return torch.tensor([r.exact_match for r in results], dtype=torch.bool)
