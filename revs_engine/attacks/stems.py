"""Shared stems: teacher-forced sequences that start with the same tokens run those tokens through the model once.

Offers :func:`stem_groups` (which sequences share which stem), :class:`Stems` and :func:`run_stems` (one pass over
the stems, keeping their key/value caches) and :func:`stem_rows` (a batch's rows continuing from their stems'
caches). :func:`~revs_engine.attacks.resumed_greedy.greedy_continuations` runs the audit's teacher-forced pass this
way: the audit's prompts come from templates (a form's opening words, "At the clinic visit on"), so many share
their first tokens; on the REVS benchmark's audit the stems hold about 15 % of the pass's positions.

A sequence continued from its stem's cache sees the same tokens at the same positions as when run whole (its own
positions are passed explicitly after the stem, the stem batch's padding is masked out), so its logits are the
whole pass's up to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from revs_engine.attacks.row_cache import RowCache, joinable_cache
from revs_engine.probes import logits_at, plan_batches

#: Shortest stem worth sharing, in tokens (a batch of stems costs a forward pass of its own).
MIN_STEM = 4
#: Most sequences sharing one stem (bounds the grouping's work; larger groups save little more).
MAX_GROUP = 64


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def stem_groups(seqs: Sequence[Sequence[int]], limits: Sequence[int], *, min_len: int = MIN_STEM,
                max_group: int = MAX_GROUP) -> list[tuple[int, list[int]]]:
    """Return ``(stem length, member indices)`` for groups of ≥ 2 sequences that start with the same stem of
    ≥ ``min_len`` tokens, at most ``limits[i]`` tokens of member ``i``, chosen to save the most positions
    (``(members − 1) × stem length`` per group): runs of the sorted sequences, by dynamic programming. Sequences in
    no group are not listed."""
    if len(limits) != len(seqs):
        raise ValueError("limits must hold one entry per sequence")
    order = sorted(range(len(seqs)), key=lambda i: tuple(seqs[i]))
    n = len(order)
    adjacent = [_common(seqs[order[k]], seqs[order[k + 1]]) for k in range(n - 1)]
    best = [0] * (n + 1)  # best[j]: positions saved on the first j sorted sequences
    choice: list[tuple[int, int]] = [(0, 0)] * (n + 1)  # (run start, stem length; 0 = alone)
    for j in range(1, n + 1):
        best[j], choice[j] = best[j - 1], (j - 1, 0)
        stem = limits[order[j - 1]]
        for i in range(j - 2, max(-1, j - 1 - max_group), -1):  # the run order[i:j]
            stem = min(stem, adjacent[i], limits[order[i]])  # a sorted run's common prefix: its adjacent minimum
            if stem < min_len:
                break
            if best[i] + (j - i - 1) * stem > best[j]:
                best[j], choice[j] = best[i] + (j - i - 1) * stem, (i, stem)
    groups, j = [], n
    while j:
        i, stem = choice[j]
        if stem:
            groups.append((stem, [order[k] for k in range(i, j)]))
        j = i
    return groups[::-1]


@dataclass
class Stems:
    """The stems' pass: per member sequence, its stem's length and ``(cache, mask, row)`` in the stem batch."""

    length: dict[int, int] = field(default_factory=dict)
    source: dict[int, tuple[Any, torch.Tensor, int]] = field(default_factory=dict)


@torch.no_grad()
def run_stems(model: torch.nn.Module, seqs: Sequence[Sequence[int]], groups: list[tuple[int, list[int]]], *,
              batch_size: int, pad_id: int = 0) -> Stems | None:
    """Run every group's stem through the model once (right-padded, length-planned batches), keeping the caches;
    None when the model's cache cannot be cut and joined per row (e.g. sliding-window layers)."""
    device = next(model.parameters()).device
    stems = [tuple(seqs[members[0]][:length]) for length, members in groups]
    out = Stems()
    for batch in plan_batches([len(s) for s in stems], batch_size):
        width = max(len(stems[g]) for g in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, g in enumerate(batch):
            ids[r, :len(stems[g])] = torch.tensor(stems[g])
            mask[r, :len(stems[g])] = 1
        ids, mask = ids.to(device), mask.to(device)
        zero = torch.zeros(1, dtype=torch.long, device=device)
        _, cache = logits_at(model, ids, mask, zero, zero, use_cache=True)
        if not joinable_cache(cache):
            return None
        for r, g in enumerate(batch):
            length, members = groups[g]
            for i in members:
                out.length[i], out.source[i] = length, (cache, mask, r)
    return out


def stem_rows(stems: Stems, batch: Sequence[int]) -> tuple[list[int], RowCache]:
    """The batch's sequences, reordered so that those of one stem batch are adjacent, and a :class:`RowCache` of
    their stems (row ``k`` = the ``k``-th reordered sequence, its next position its stem's length)."""
    by_cache: dict[int, list[int]] = {}
    for i in batch:
        by_cache.setdefault(id(stems.source[i][0]), []).append(i)
    ordered, rows = [], None
    for members in by_cache.values():
        cache, mask, _ = stems.source[members[0]]
        part = RowCache.from_rows(cache, mask, [stems.source[i][2] for i in members],
                                  [stems.length[i] for i in members])
        if rows is None:
            rows = part
        else:
            rows.extend(part)
        ordered += members
    return ordered, rows
