"""Black-box extraction by generation: greedy decoding and N sampled generations (reference/revs-method.md §2.6).

Offers :func:`generate_continuations` (batched, left-padded ``model.generate``), :func:`contains`,
:class:`ExtractionResult`, :func:`greedy_extraction` (and :func:`greedy_extractions`, several sets in one pass) and
:func:`sampled_extraction`.

A target counts as extracted when it occurs anywhere in the continuation: as a contiguous id sequence by default,
or — when ``decode`` (ids → text) is given — as a substring of the decoded continuation (target stripped),
which also catches a secret produced through a different tokenisation. This is the black-box measure: it runs the
real decoding loop (KV cache, EOS) instead of the teacher-forced probe. Sampling is seeded per batch
(from ``seed`` and the batch's first prefix: rows stopped early in one batch leave the next batch's draws alone)
inside ``torch.random.fork_rng`` so the caller's global RNG state is left untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from revs_engine.attacks.containment import Containment, contains, digits_per_token
from revs_engine.attacks.resumed_greedy import Kept, Taps, greedy_continuations
from revs_engine.attacks.resumed_sampling import plain_sampling, sampled_continuations
from revs_engine.attacks.scoring import vocab_size_of
from revs_engine.capture import position_ids_for
from revs_engine.probes import ProbeItem


@dataclass(frozen=True)
class ExtractionResult:
    """How many targets a generation attack recovered.

    Attributes:
        attack: ``"greedy"`` or ``"sampled"``.
        n_items: number of targets attacked.
        extracted: per target, whether any continuation contained it.
        rate: fraction of targets extracted ×100.
        sample_rate: fraction of all (target, sample) continuations that contained the target ×100.
        n_samples, temperature, top_k, max_new_tokens: the attack's settings.
    """

    attack: str
    n_items: int
    extracted: tuple[bool, ...]
    rate: float
    sample_rate: float
    n_samples: int
    temperature: float
    top_k: int | None
    max_new_tokens: int

    def to_record(self) -> dict[str, str | int | float]:
        """Return the summary (without the per-target flags) as a flat record."""
        return {"attack": self.attack, "n_items": self.n_items, "rate": self.rate, "sample_rate": self.sample_rate,
                "n_samples": self.n_samples, "temperature": self.temperature, "top_k": self.top_k or 0,
                "max_new_tokens": self.max_new_tokens}


def containment(model: torch.nn.Module, items: Sequence[ProbeItem],
                decode: Callable[[list[int]], str] | None) -> Containment:
    """The :class:`~revs_engine.attacks.containment.Containment` of ``items``' targets under the attacks' check
    (substring of the decoded text with ``decode``, contiguous ids without)."""
    per_token = None if decode is None else digits_per_token(decode, vocab_size_of(model))
    return Containment([it.target_ids for it in items], decode, per_token)


class _StopSettled(StoppingCriteria):
    """``generate``'s stopping criterion for rows whose verdict is settled: row ``r`` of the batch is item
    ``items[r]``'s continuation after the first ``width`` columns; ``stopped[r]`` = its length when it stopped.
    Stopping leaves every other row's random draws unchanged (``generate`` keeps sampling all rows each step and
    ends when every row is finished)."""

    def __init__(self, settled: Callable[[int, Sequence[int], int], bool], items: list[int], width: int,
                 max_new_tokens: int, eos_ids: set[int]) -> None:
        self.settled, self.items, self.width, self.n, self.eos = settled, items, width, max_new_tokens, eos_ids
        self.stopped: dict[int, int] = {}

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        flags = []
        for r, row in enumerate(input_ids[:, self.width:].tolist()):
            if r in self.stopped:
                flags.append(True)
                continue
            cut = next((j for j, t in enumerate(row) if t in self.eos), None)
            if cut is None and self.settled(self.items[r], row, self.n - len(row)):
                self.stopped[r] = len(row)
            flags.append(cut is not None or r in self.stopped)
        return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)


def _eos_ids(model: torch.nn.Module) -> set[int]:
    eos = model.generation_config.eos_token_id
    return set(eos if isinstance(eos, list) else [] if eos is None else [eos])


@torch.no_grad()
def generate_continuations(model: torch.nn.Module, prefixes: Sequence[Sequence[int]], *, max_new_tokens: int,
                           n_samples: int = 1, do_sample: bool = False, temperature: float = 1.0,
                           top_k: int | None = None, seed: int = 0, batch_size: int = 16,
                           pad_id: int = 0, shared_prefill: bool = True,
                           settled: Callable[[int, Sequence[int], int], bool] | None = None,
                           ) -> list[list[tuple[int, ...]]]:
    """Generate continuations of every prefix (left-padded batches); return ``n_samples`` id tuples per prefix.

    Continuations end at EOS (the tokens after it are dropped) or after ``max_new_tokens``, or where
    ``settled(prefix index, continuation so far, tokens still allowed)`` says their verdict is known (cut there;
    the other rows' tokens and random draws are those of the uncut run). ``shared_prefill``
    (with ``n_samples > 1``): a prefix is run through the model once and its key/value cache copied to its
    samples, instead of once per sample; the samples are those of ``generate(num_return_sequences=n_samples)``
    (the same rows, in the same order, drawing the same random numbers).
    """
    device = next(model.parameters()).device
    eos_ids = _eos_ids(model)
    out: list[list[tuple[int, ...]]] = []
    kwargs = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, pad_token_id=pad_id,
                  num_return_sequences=n_samples)
    if do_sample:
        kwargs.update(temperature=temperature, top_k=top_k or 0, top_p=1.0)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for start in range(0, len(prefixes), batch_size):
            torch.manual_seed(_batch_seed(seed, start))  # a batch's draws never depend on how long others ran
            chunk = [list(p) for p in prefixes[start:start + batch_size]]
            width = max(len(p) for p in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, p in enumerate(chunk):
                ids[r, width - len(p):] = torch.tensor(p)
                mask[r, width - len(p):] = 1
            ids, mask = ids.to(device), mask.to(device)
            stop = None
            if settled is not None:
                rows = [start + r for r in range(len(chunk)) for _ in range(n_samples)]
                stop = _StopSettled(settled, rows, width, max_new_tokens, eos_ids)
            extra = {} if stop is None else {"stopping_criteria": StoppingCriteriaList([stop])}
            if shared_prefill and n_samples > 1 and min(len(p) for p in chunk) > 1:
                gen = _generate_from_shared_prefill(model, ids, mask, n_samples, {**kwargs, **extra})
            else:
                gen = model.generate(ids, attention_mask=mask, **kwargs, **extra)
            gen = gen[:, width:].tolist()
            for r in range(len(chunk)):
                conts = []
                for k, seq in enumerate(gen[r * n_samples:(r + 1) * n_samples]):
                    cut = next((j for j, t in enumerate(seq) if t in eos_ids), len(seq))
                    if stop is not None:
                        cut = min(cut, stop.stopped.get(r * n_samples + k, cut))
                    conts.append(tuple(seq[:cut]))
                out.append(conts)
    return out


def _batch_seed(seed: int, start: int) -> int:
    """The seed of the batch starting at prefix ``start``: distinct per ``(seed, start)``, stable across runs."""
    return (seed * 1_000_003 + start) % 2**63


def _generate_from_shared_prefill(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, n_samples: int,
                                  kwargs: dict) -> torch.Tensor:
    """``model.generate`` of ``n_samples`` rows per prefix, prefilling each prefix (all but its last token) once.

    The prefill uses the position ids ``generate`` derives from the attention mask (the same as
    :func:`~revs_engine.capture.position_ids_for` for left-padded rows); its cache is repeated per
    sample in the order ``num_return_sequences`` expands rows, and ``generate`` then runs only the last prompt
    token through the model before sampling.
    """
    positions = position_ids_for(mask)  # left padding: what generate() derives from the mask
    prefill = model(ids[:, :-1], attention_mask=mask[:, :-1], position_ids=positions[:, :-1], use_cache=True)
    cache = prefill.past_key_values
    cache.batch_repeat_interleave(n_samples)
    return model.generate(ids.repeat_interleave(n_samples, 0), attention_mask=mask.repeat_interleave(n_samples, 0),
                          past_key_values=cache, **{**kwargs, "num_return_sequences": 1})


def _extraction(attack: str, items: Sequence[ProbeItem], conts: list[list[tuple[int, ...]]],
                decode: Callable[[list[int]], str] | None, **settings) -> ExtractionResult:
    hits = []
    for item, samples in zip(items, conts, strict=True):
        if decode is None:
            hits.append([contains(c, item.target_ids) for c in samples])
        else:
            needle = decode(list(item.target_ids)).strip()
            hits.append([needle in decode(list(c)) for c in samples])
    flags = tuple(any(h) for h in hits)
    n_total = sum(len(h) for h in hits)
    return ExtractionResult(
        attack=attack, n_items=len(items), extracted=flags, rate=100.0 * sum(flags) / max(len(items), 1),
        sample_rate=100.0 * sum(sum(h) for h in hits) / max(n_total, 1), **settings,
    )


def greedy_extraction(model: torch.nn.Module, items: Sequence[ProbeItem], *, max_new_tokens: int | None = None,
                      decode: Callable[[list[int]], str] | None = None, batch_size: int = 16,
                      pad_id: int = 0, probe_first: bool = True) -> ExtractionResult:
    """Greedy-decode after each prefix and check the continuation contains the target.

    ``max_new_tokens`` defaults to the longest target's length (exact reproduction right after the prefix).
    ``probe_first``: one teacher-forced pass already knows how each greedy continuation starts — the whole target
    when greedy reproduces it (extracted, whatever follows), else the target up to the first divergence and the
    token emitted there — and only the rest is decoded, from that pass's key/value cache
    (:func:`~revs_engine.attacks.resumed_greedy.greedy_continuations`). False generates every continuation from
    its prefix with ``model.generate`` (the slower path this replaces; the same verdicts).
    """
    return greedy_extractions(model, [(items, max_new_tokens)], decode=decode, batch_size=batch_size,
                              pad_id=pad_id, probe_first=probe_first)[0]


def greedy_extractions(model: torch.nn.Module, sets: Sequence[tuple[Sequence[ProbeItem], int | None]], *,
                       decode: Callable[[list[int]], str] | None = None, batch_size: int = 16, pad_id: int = 0,
                       probe_first: bool = True, taps: Taps | None = None,
                       keep: Kept | None = None) -> list[ExtractionResult]:
    """:func:`greedy_extraction` of several ``(items, max_new_tokens)`` sets at once, one result per set.

    With ``probe_first`` all sets share one teacher-forced batch plan and one decoding loop (fewer, fuller forward
    passes than one call per set), a row stops as soon as its verdict is settled
    (:class:`~revs_engine.attacks.containment.Containment`), and ``taps`` (item indices counted over the sets in
    order) are captured in that pass, and ``keep``'s items' results kept
    (:class:`~revs_engine.attacks.resumed_greedy.Kept`, for :func:`sampled_extraction`); without it each set is
    generated on its own to its full length (``taps`` and ``keep`` must be None).
    """
    if (taps is not None or keep is not None) and not probe_first:
        raise ValueError("taps and keep come from the teacher-forced pass: they need probe_first=True")
    sets = [(list(items), n or max(len(i.target_ids) for i in items)) for items, n in sets]
    if probe_first:
        every = [it for items, _ in sets for it in items]
        limits = [n for items, n in sets for _ in items]
        flat = greedy_continuations(model, every, limits, eos_ids=_eos_ids(model), pad_id=pad_id, taps=taps,
                                    keep=keep, settled=containment(model, every, decode).settled)
        parts, start = [], 0
        for items, _ in sets:
            parts.append([[c] for c in flat[start:start + len(items)]])
            start += len(items)
    else:
        parts = [generate_continuations(model, [i.prefix_ids for i in items], max_new_tokens=n,
                                        batch_size=batch_size, pad_id=pad_id) for items, n in sets]
    return [_extraction("greedy", items, conts, decode, n_samples=1, temperature=0.0, top_k=None, max_new_tokens=n)
            for (items, n), conts in zip(sets, parts, strict=True)]


def sampled_extraction(model: torch.nn.Module, items: Sequence[ProbeItem], *, n_samples: int = 10,
                       temperature: float = 1.0, top_k: int | None = 40, max_new_tokens: int | None = None,
                       seed: int = 0, decode: Callable[[list[int]], str] | None = None, batch_size: int = 8,
                       pad_id: int = 0, shared_prefill: bool = True, stop_settled: bool = True,
                       resume: bool = True, teacher_forced: Mapping[int, tuple] | None = None) -> ExtractionResult:
    """Sample ``n_samples`` continuations per prefix (temperature, top-k, seeded); any hit counts.
    ``shared_prefill``: see :func:`generate_continuations` (False prefills every sample on its own).
    ``stop_settled``: a sample stops once its verdict is settled
    (:class:`~revs_engine.attacks.containment.Containment`; the same verdicts, the same draws for the rest).
    ``resume``: samples still on their target read the teacher-forced pass's logits, the others resume from its
    cache (:func:`~revs_engine.attacks.resumed_sampling.sampled_continuations`: the same batches, seeds and draws
    as ``generate``); models it does not cover, and ``resume=False``, sample with ``generate``. ``teacher_forced``:
    that pass as another attack already ran it over the same items
    (:class:`~revs_engine.attacks.resumed_greedy.Kept`'s ``found``), so it is not run again."""
    if n_samples < 1 or temperature <= 0:
        raise ValueError("n_samples must be ≥ 1 and temperature > 0")
    n = max_new_tokens or max(len(i.target_ids) for i in items)
    settled = containment(model, items, decode).settled if stop_settled else None
    conts = None
    if resume and plain_sampling(model):
        seeds = [_batch_seed(seed, start) for start in range(0, len(items), batch_size)]
        conts = sampled_continuations(model, items, n_samples, n, temperature=temperature, top_k=top_k,
                                      seeds=seeds, batch_size=batch_size, eos_ids=_eos_ids(model), pad_id=pad_id,
                                      settled=settled, teacher_forced=teacher_forced)
    if conts is None:
        conts = generate_continuations(model, [i.prefix_ids for i in items], max_new_tokens=n, n_samples=n_samples,
                                       do_sample=True, temperature=temperature, top_k=top_k, seed=seed,
                                       batch_size=batch_size, pad_id=pad_id, shared_prefill=shared_prefill,
                                       settled=settled)
    return _extraction("sampled", items, conts, decode, n_samples=n_samples, temperature=temperature,
                       top_k=top_k, max_new_tokens=n)
