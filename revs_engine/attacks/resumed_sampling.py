"""Sampled continuations that read the teacher-forced pass wherever a sample is still on its target.

Offers :func:`sampled_continuations`: per ``(prefix, target)`` item, ``n_samples`` continuations drawn at
``temperature`` with top-k — the rows ``model.generate(do_sample=True, num_return_sequences=n_samples)`` draws
from the prefix, batch for batch (the same batches, seeds and random draws as
:func:`~revs_engine.attacks.generation.generate_continuations`), with rows stopped where ``settled`` says their
verdict is known.

Why it is cheaper: a sample that has so far written ``target[:s]`` sees exactly the teacher-forced sequence
``prefix + target[:s]``, so its next-token logits are the teacher-forced pass's logits at that position: no forward
pass. Only a sample that leaves its target (draws another token, or completes the target with tokens still to
write) needs the model again; it resumes from the teacher-forced pass's key/value cache (the entries after its
divergence masked out, its token fed at its own position), and all such rows of a batch decode together. A
memorized value's samples follow it for most tokens, and an erased one's leave it where the erasure demoted a
token, usually settled there (too few tokens left to write it).

Every step draws one token for every row of the batch with one ``torch.multinomial`` over the same processed
logits ``generate`` computes (float32, divided by the temperature unless it is 1, top-k filtered to ``-inf``,
softmax), rows already finished included: a row's draw depends on the generator's state and its own
probabilities only, so the draws equal ``generate``'s whenever the logits do (teacher-forced and incremental
logits agree to float rounding, as for :mod:`~revs_engine.attacks.resumed_greedy`). Models whose generation config
adds logits processors of its own (repetition penalty, minimum length, ...) are not handled here:
:func:`plain_sampling` tells, and callers use ``generate`` for them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from revs_engine.attacks.resumed_greedy import Settled
from revs_engine.attacks.row_cache import RowCache, joinable_cache
from revs_engine.probes import ProbeItem, target_logits_and_cache, teacher_forced_inputs

#: Generation-config fields that make ``generate`` add a logits processor, with their neutral values.
_NEUTRAL = {"repetition_penalty": (None, 1.0), "encoder_repetition_penalty": (None, 1.0),
            "no_repeat_ngram_size": (None, 0), "bad_words_ids": (None,), "min_length": (None, 0),
            "min_new_tokens": (None, 0), "suppress_tokens": (None,), "begin_suppress_tokens": (None,),
            "forced_bos_token_id": (None,), "forced_eos_token_id": (None,), "sequence_bias": (None,),
            "typical_p": (None, 1.0), "epsilon_cutoff": (None, 0.0), "eta_cutoff": (None, 0.0), "min_p": (None,),
            "top_h": (None,), "exponential_decay_length_penalty": (None,), "renormalize_logits": (None, False),
            "watermarking_config": (None,)}


def plain_sampling(model: torch.nn.Module) -> bool:
    """True when ``generate`` samples from this model with temperature and top-k alone (no processor its
    generation config adds), i.e. what :func:`sampled_continuations` reproduces."""
    gc = getattr(model, "generation_config", None)
    return gc is not None and all(getattr(gc, k, None) in ok for k, ok in _NEUTRAL.items())


def _processed(logits: torch.Tensor, temperature: float, top_k: int | None) -> torch.Tensor:
    """``generate``'s sampling distribution: temperature (skipped at 1), top-k (ties to the k-th kept), softmax."""
    if temperature != 1.0:
        logits = logits / temperature
    if top_k:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]))[0][..., -1, None]
        logits = logits.masked_fill(logits < kth, -float("inf"))
    return F.softmax(logits, dim=-1)


@torch.no_grad()
def sampled_continuations(model: torch.nn.Module, items: Sequence[ProbeItem], n_samples: int, n: int, *,
                          temperature: float, top_k: int | None, seeds: Sequence[int], batch_size: int,
                          eos_ids: Collection[int], pad_id: int = 0, settled: Settled | None = None,
                          teacher_forced: Mapping[int, tuple[torch.Tensor, Any, torch.Tensor, int]] | None = None,
                          ) -> list[list[tuple[int, ...]]] | None:
    """Return ``n_samples`` continuations of at most ``n`` tokens per item (cut before EOS, or where ``settled``
    stops them), batches of ``batch_size`` items each seeded with ``seeds[batch]``; None when the model's cache
    cannot be cut and joined per row (e.g. sliding-window layers): use ``generate`` then.

    ``teacher_forced``: per item, the teacher-forced pass another attack already ran over the same sequences
    (:class:`~revs_engine.attacks.resumed_greedy.Kept`: logits at the target positions, the batch's cache and mask,
    the item's row); when it holds every item no teacher-forced pass is run here (the same draws: the logits are
    those of the same sequences, equal up to float rounding across batches)."""
    device = next(model.parameters()).device
    out: list[list[tuple[int, ...]]] = []
    reuse = teacher_forced is not None and all(i in teacher_forced for i in range(len(items)))
    if reuse and not all(joinable_cache(teacher_forced[i][1]) for i in range(len(items))):
        return None
    for b, start in enumerate(range(0, len(items), batch_size)):
        chunk = list(items[start:start + batch_size])
        if reuse:
            found = [teacher_forced[start + k] for k in range(len(chunk))]
            tf = [f[0].float() for f in found]
            sources = [(cache, mask, row) for _, cache, mask, row in found]
        else:
            tf, sources = _teacher_forced(model, chunk, pad_id, device)
            if sources is None:
                return None
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seeds[b])
            out += _sample_chunk(model, chunk, tf, sources, n_samples, n, temperature, top_k, set(eos_ids),
                                 settled, start)
    return out


def _teacher_forced(model, chunk: list[ProbeItem], pad_id: int, device: torch.device):
    """One teacher-forced pass over the chunk: per item its target positions' logits ``[len(target), V]`` and its
    ``(cache, mask, row)``; ``(…, None)`` when the cache cannot be cut and joined per row."""
    pairs = [(it.prefix_ids, it.target_ids) for it in chunk]
    ids, mask, rows, positions = teacher_forced_inputs(pairs, pad_id)
    mask = mask.to(device)
    logits, cache = target_logits_and_cache(model, ids.to(device), mask, torch.tensor(rows, device=device),
                                            torch.tensor(positions, device=device))
    if not joinable_cache(cache):
        return [], None
    starts = [0]
    for it in chunk:
        starts.append(starts[-1] + len(it.target_ids))
    tf = [logits[starts[i]:starts[i + 1]].float() for i in range(len(chunk))]
    return tf, [(cache, mask, i) for i in range(len(chunk))]


def _resumed_rows(sources: list[tuple[Any, torch.Tensor, int]], joins: list[tuple[int, int, int]]
                  ) -> tuple[RowCache, list[tuple[int, int, int]]]:
    """The rows ``joins`` (``(sample row, item, position of its next token)``) cut out of their items'
    teacher-forced batches and joined, with ``joins`` in the order of the joined rows (grouped by batch)."""
    groups: dict[int, list[tuple[int, int, int]]] = {}
    for j in joins:
        groups.setdefault(id(sources[j[1]][0]), []).append(j)
    joined, ordered = None, []
    for group in groups.values():
        cache, mask, _ = sources[group[0][1]]
        part = RowCache.from_rows(cache, mask, [sources[i][2] for _, i, _ in group], [p for _, _, p in group])
        if joined is None:
            joined = part
        else:
            joined.extend(part)
        ordered += group
    return joined, ordered


def _sample_chunk(model, chunk: list[ProbeItem], tf: list[torch.Tensor],
                  sources: list[tuple[Any, torch.Tensor, int]], n_samples: int, n: int, temperature: float,
                  top_k: int | None, eos: set[int], settled: Settled | None,
                  first_item: int) -> list[list[tuple[int, ...]]]:
    """Sample one batch (rows item-major, ``n_samples`` per item) as ``generate`` would (module docstring); item
    ``k``'s samples resume from ``sources[k]`` (its teacher-forced batch's cache and mask, and its row there)."""
    n_rows = len(chunk) * n_samples
    item_of = [r // n_samples for r in range(n_rows)]
    tokens: list[list[int]] = [[] for _ in range(n_rows)]
    on_path = [True] * n_rows
    finished = [False] * n_rows
    off: RowCache | None = None  # the rows that left their target, decoding on their own
    off_rows: list[int] = []
    off_logits: torch.Tensor | None = None
    vocab = tf[0].shape[-1]
    for s in range(n):
        step = torch.zeros(n_rows, vocab, device=tf[0].device)
        for r in range(n_rows):
            if on_path[r] and not finished[r]:
                step[r] = tf[item_of[r]][s]
        if off_rows:
            step[torch.tensor(off_rows, device=step.device)] = off_logits
        drawn = torch.multinomial(_processed(step, temperature, top_k), num_samples=1).squeeze(1).tolist()
        joins = []
        for r in range(n_rows):
            if finished[r]:
                continue
            t, i = drawn[r], item_of[r]
            if t in eos:
                finished[r] = True
                continue
            tokens[r].append(t)
            target = chunk[i].target_ids
            if settled is not None and settled(first_item + i, tokens[r], n - len(tokens[r])):
                finished[r] = True
            elif s + 1 < n:
                if on_path[r] and (s + 1 >= len(target) or t != target[s]):
                    on_path[r] = False
                    joins.append((r, i, len(chunk[i].prefix_ids) + s))
            else:
                finished[r] = True
        if all(finished):
            break
        if off is not None:
            off.keep([k for k, r in enumerate(off_rows) if not finished[r]])
            off_rows = [r for r in off_rows if not finished[r]]
        if joins:  # their teacher-forced entries from the divergence on are masked out
            new, joins = _resumed_rows(sources, joins)
            if off is None or not off_rows:
                off = new
            else:
                off.extend(new)
            off_rows += [r for r, _, _ in joins]
        if off_rows:
            off_logits = off.step(model, [tokens[r][-1] for r in off_rows]).float()
    return [[tuple(tokens[r]) for r in range(i * n_samples, (i + 1) * n_samples)] for i in range(len(chunk))]
