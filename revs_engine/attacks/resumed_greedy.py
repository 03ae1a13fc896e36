"""Greedy continuations that resume from the teacher-forced pass instead of re-reading their prompts.

Offers :func:`greedy_continuations`: per ``(prefix, target)`` item, the greedy continuation of up to ``n`` tokens
after its prefix (cut before the first EOS) — what ``model.generate(do_sample=False)`` returns from the prefix —
:class:`Taps` (residual streams captured in the same pass: the rank attacks' inputs) and :class:`Kept` (that pass's
results for chosen items: the sampled attack's).

How: one teacher-forced pass over ``prefix + target[:-1]`` per length-planned batch (as
:func:`revs_engine.probes.probe` runs) tells how each continuation starts — the whole target when greedy
reproduces it, else the target up to the first divergence ``j`` and the token greedy emits there. That pass keeps
its key/value cache. A row that still needs tokens resumes from it: the cache entries after ``prefix + target[:j]``
are masked out, the emitted token is fed at position ``len(prefix) + j``, and decoding continues one token per step
for the rows still running (finished rows leave the batch). No prompt is run through the model twice, and every
row of a batch decodes in the same steps, however its head length differs from the others'.

The continuation is the one decoding from the prefix would give (the model sees the same tokens at the same
positions); floating-point sums over a different batch may differ in the last bits, which only matters when two
logits tie to within rounding (``tests`` compare against ``generate`` on every architecture family).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from revs_engine.arch import ModelArch
from revs_engine.attacks.row_cache import RowCache, joinable_cache
from revs_engine.capture import hooks, stream_hooks
from revs_engine.errors import ShapeError
from revs_engine.probes import (
    CPU_BATCH,
    ProbeItem,
    max_positions,
    plan_batches,
    target_logits_and_cache,
    teacher_forced_inputs,
)


@dataclass
class Taps:
    """Streams to capture during the teacher-forced pass, so no other pass has to run those sequences again.

    Args:
        arch: ``resolve_arch(model)``.
        positions: item index → positions in its teacher-forced sequence ``prefix + target[:-1]``.
        streams: the streams of :data:`~revs_engine.capture.STREAMS` to keep.

    After :func:`greedy_continuations`, ``found[(item, position)][stream]`` is ``[n_layers, d]`` (float32, CPU).
    """

    arch: ModelArch
    positions: dict[int, list[int]]
    streams: tuple[str, ...] = ("resid_post", "attn_out", "mlp_out")
    found: dict[tuple[int, int], dict[str, torch.Tensor]] = field(default_factory=dict)


@dataclass
class Kept:
    """Teacher-forced results to keep for a later pass over the same items (the sampled attack reads them instead
    of running those sequences again).

    Args:
        items: the item indices to keep.

    After :func:`greedy_continuations`, ``found[item]`` is ``(logits, cache, mask, row)``: the next-token logits at
    the item's target positions ``[len(target), V]``, and its teacher-forced batch's key/value cache, attention
    mask and the item's row in them (what :meth:`~revs_engine.attacks.row_cache.RowCache.from_rows` resumes from;
    the batch's cache is left as the pass made it).
    """

    items: frozenset[int]
    found: dict[int, tuple[torch.Tensor, Any, torch.Tensor, int]] = field(default_factory=dict)


#: ``(item, continuation so far, tokens still allowed) → verdict known`` (see ``settled`` below).
Settled = Callable[[int, Sequence[int], int], bool]

#: Rows decoded together at most, in units of the teacher-forced batch size: rows waiting to resume are gathered
#: across batches (one decoding loop for all of them) up to this many batches' worth.
GATHER_BATCHES = 4


@torch.no_grad()
def greedy_continuations(model: torch.nn.Module, items: Sequence[ProbeItem], n: int | Sequence[int], *,
                         eos_ids: Collection[int], batch_size: int = CPU_BATCH, pad_id: int = 0,
                         taps: Taps | None = None, settled: Settled | None = None,
                         keep: Kept | None = None) -> list[tuple[int, ...]]:
    """Return, per item, the greedy continuation after its prefix: its first ``n`` tokens (``n``: one for all, or
    one per item), cut before the first EOS, and cut after the target when greedy reproduces the whole target (the
    continuation contains it, whatever follows). Items are batched by length
    (:func:`~revs_engine.probes.plan_batches`), right-padded; the rows that must resume are decoded together (up
    to :data:`GATHER_BATCHES` batches' worth at a time). ``taps``: streams captured in the same pass.
    ``settled(item, tokens so far, tokens still allowed)``: True stops the row there (its "contains the target"
    verdict is known, :meth:`~revs_engine.attacks.containment.Containment.settled`): the continuation returned
    is then cut at that point. ``keep``: the items whose teacher-forced results are kept (:class:`Kept`)."""
    limits = [n] * len(items) if isinstance(n, int) else list(n)
    if len(limits) != len(items) or any(m < 1 for m in limits):
        raise ValueError(f"n must be ≥ 1, one for all items or one per item; got {n}")
    device = next(model.parameters()).device
    out: list[tuple[int, ...]] = [()] * len(items)
    lengths = [len(it.prefix_ids) + len(it.target_ids) - 1 for it in items]
    limit = max_positions(model)
    after = [max(len(it.target_ids) - 1, m) for it, m in zip(items, limits, strict=True)]
    too_long = [i for i, it in enumerate(items) if limit is not None and len(it.prefix_ids) + after[i] > limit]
    if too_long:
        i = too_long[0]
        raise ShapeError(f"{len(too_long)} item(s) need more positions than the model's {limit} (item {i}: prefix "
                         f"{len(items[i].prefix_ids)} tokens + up to {after[i]} after it); keep only the last "
                         "prefix tokens or ask for fewer new tokens")
    pending: list[_Resume] = []
    for batch in plan_batches(lengths, batch_size):
        ids, mask, rows, positions = teacher_forced_inputs([(items[i].prefix_ids, items[i].target_ids)
                                                            for i in batch], pad_id)
        ids, mask = ids.to(device), mask.to(device)
        with _tapped(taps, batch, device):
            logits, cache = target_logits_and_cache(model, ids, mask, torch.tensor(rows, device=device),
                                                    torch.tensor(positions, device=device))
        greedy = logits.argmax(-1).tolist()  # lowest index among ties, like greedy generate
        resume: list[tuple[int, int, int, list[int]]] = []  # (item, batch row, emitted token position, head)
        cursor = 0
        for r, i in enumerate(batch):
            target = items[i].target_ids
            emitted = greedy[cursor:cursor + len(target)]
            if keep is not None and i in keep.items:
                keep.found[i] = (logits[cursor:cursor + len(target)], cache, mask, r)
            cursor += len(target)
            j = next((j for j, (g, t) in enumerate(zip(emitted, target, strict=True)) if g != t), None)
            head = list(target) if j is None else [*target[:j], emitted[j]]
            cut = next((k for k, t in enumerate(head) if t in eos_ids), None)
            m = limits[i]
            if j is None or cut is not None or len(head) >= m or (settled and settled(i, head, m - len(head))):
                out[i] = tuple(head[:m if cut is None else min(cut, m)])
            else:
                resume.append((i, r, len(items[i].prefix_ids) + j, head))
        if resume:  # the teacher-forced tokens after each divergence are masked out
            rows = RowCache.from_rows(cache, mask, [r for _, r, _, _ in resume], [p for _, _, p, _ in resume])
            pending.append(_Resume(rows, [(i, head) for i, _, _, head in resume]))
        if sum(len(p.rows) for p in pending) >= GATHER_BATCHES * batch_size:
            _flush(model, pending, limits, eos_ids, out, settled)
    _flush(model, pending, limits, eos_ids, out, settled)
    return out


@contextlib.contextmanager
def _tapped(taps: Taps | None, batch: list[int], device: torch.device) -> Iterator[None]:
    """Capture ``taps``' positions of the batch's items during the block's forward pass (nothing without taps)."""
    wanted = [] if taps is None else [(r, i, p) for r, i in enumerate(batch) for p in taps.positions.get(i, ())]
    if not wanted:
        yield
        return
    rows = torch.tensor([r for r, _, _ in wanted], device=device)
    cols = torch.tensor([p for _, _, p in wanted], device=device)
    store: dict[str, dict[int, torch.Tensor]] = {s: {} for s in taps.streams}
    layers = list(range(taps.arch.n_layers))
    with hooks(stream_hooks(taps.arch, lambda x: x[rows, cols], store, layers)):
        yield
    stacked = {s: torch.stack([store[s][layer] for layer in layers], dim=1).float().cpu() for s in taps.streams}
    for k, (_, i, p) in enumerate(wanted):  # [n, L, d] -> one [L, d] per position
        taps.found[(i, p)] = {s: stacked[s][k] for s in taps.streams}


@dataclass
class _Resume:
    """Rows of one teacher-forced batch waiting to resume: their :class:`RowCache` and ``(item, head)`` per row."""

    kv: RowCache
    rows: list[tuple[int, list[int]]]


def _flush(model, pending: list[_Resume], limits: list[int], eos_ids: Collection[int],
           out: list[tuple[int, ...]], settled: Settled | None) -> None:
    """Decode every pending row (one loop when the caches can be joined, else one per batch); empty ``pending``."""
    if len(pending) > 1 and all(joinable_cache(p.kv.cache) for p in pending):
        for p in pending[1:]:
            pending[0].kv.extend(p.kv)
        pending[:] = [_Resume(pending[0].kv, [row for p in pending for row in p.rows])]
    for g in pending:
        stop = None if settled is None else [functools.partial(settled, i) for i, _ in g.rows]
        decoded = _decode(model, g.kv, [(head, limits[i]) for i, head in g.rows], eos_ids, stop)
        for (i, _), tokens in zip(g.rows, decoded, strict=True):
            out[i] = tokens
    pending.clear()


def _decode(model: torch.nn.Module, rows: RowCache, resume: list[tuple[list[int], int]],
            eos_ids: Collection[int], stop: list[Callable[[list[int], int], bool]] | None = None,
            ) -> list[tuple[int, ...]]:
    """Greedy-decode rows ``(head, n)`` (the head's last token not yet fed) from their cache until each holds its
    ``n`` tokens, meets EOS, or its ``stop(tokens, tokens still allowed)`` is True."""
    tokens = [list(head) for head, _ in resume]
    limits = [m for _, m in resume]
    done: list[tuple[int, ...] | None] = [None] * len(resume)
    live = list(range(len(resume)))  # indices into resume of the rows still decoding
    feed = [head[-1] for head, _ in resume]
    while live:
        nxt = rows.step(model, feed).argmax(-1).tolist()
        still = []
        for k, (row, t) in enumerate(zip(live, nxt, strict=True)):
            if t in eos_ids or len(tokens[row]) + 1 >= limits[row]:
                done[row] = tuple(tokens[row] if t in eos_ids else [*tokens[row], t])
                continue
            tokens[row].append(t)
            if stop is not None and stop[row](tokens[row], limits[row] - len(tokens[row])):
                done[row] = tuple(tokens[row])
            else:
                still.append(k)
        if not still:
            break
        rows.keep(still)
        feed = [nxt[k] for k in still]
        live = [live[k] for k in still]
    return [d if d is not None else tuple(t) for d, t in zip(done, tokens, strict=True)]
