"""Memorization probes: does greedy decoding reproduce a target after its prefix? One batched forward pass decides.

Offers :class:`ProbeItem` (token ids of a ``(prefix, target)`` pair), :class:`ProbeConfig`, :class:`ProbeResult`,
:func:`probe` (batched teacher-forced verdicts), :func:`target_logits` (next-token logits at chosen positions, and
:func:`target_logits_and_cache` with the pass's key/value cache), :func:`teacher_forced_inputs` (one padded batch
of such rows), :func:`plan_batches` (length-aware batching),
:func:`batch_size_for` (rows per batch for the model's device memory),
:func:`k_extractable` (fixed prefix lengths, Carlini et al.),
:func:`probes_table` (an Arrow table in :data:`~revs_engine.schema.PROBES_SCHEMA`) and :func:`items_from_texts`
(tokenisation at the edge, the convention of :mod:`revs_engine.targets`).

Why one forward pass is enough (DESIGN §6): greedy decoding emits ``argmax(logits)`` at every step, and as long as
every emitted token equals the target token the model's input is exactly ``prefix + target[:j]`` — the
teacher-forced input. So greedy emits the whole target iff, in one teacher-forced pass over
``prefix + target[:-1]``, the argmax at every target position is the target token; and the first position where it
is not is where greedy decoding first diverges. Ties are broken like ``torch.argmax`` (lowest index), as
``generate(do_sample=False)`` does: a target token at rank 0 (nothing strictly greater) tying with a lower id
is *not* emitted. Caveats: a target that contains the EOS id mid-way is decided as if decoding continued past EOS;
generation-config logits processors (repetition penalty, bad words) are not applied — greedy here is plain argmax.

Definitions used in the probes table:
    exact_match: greedy emits exactly ``target_ids`` (ids, not text).
    first_mismatch: index in the target of the first greedy divergence, -1 when none.
    target_token_ranks: teacher-forced rank of every target token (strictly-greater convention, 0 = top).
    extraction_score: fraction of target positions whose teacher-forced argmax is the target token (1.0 ⇔
        exact_match; an "almost memorized" target scores high even when greedy derails once).
    memorized: ``extraction_score >= ProbeConfig.memorized_threshold`` (default 1.0, i.e. exact match).

Padding: rows are right-padded by default (``padding_side="left"`` is also supported and gives the same verdicts);
position ids count real tokens only (:func:`revs_engine.capture.model_forward`). Long prefixes are never cut
silently: pass ``max_prefix_tokens`` to keep their last tokens (``prefix_truncated`` records it); a sequence
longer than the model's context without it raises :class:`~revs_engine.errors.ShapeError`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa
import torch
from tqdm.auto import tqdm

from revs_engine.arch import ARCH_SPECS
from revs_engine.capture import position_ids_for
from revs_engine.errors import ShapeError
from revs_engine.lens import rank_of
from revs_engine.schema import PROBES_SCHEMA

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProbeItem:
    """A ``(prefix, target)`` pair as token ids (prompt and target encoded separately, concatenated).

    Attributes:
        prefix_ids: ids of the text before the target (≥ 1 token).
        target_ids: ids of the target (≥ 1 token).
    """

    prefix_ids: tuple[int, ...] = field(repr=False)
    target_ids: tuple[int, ...] = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.prefix_ids) == 0 or len(self.target_ids) == 0:
            raise ValueError("a ProbeItem needs at least one prefix token and one target token")


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    """How probes are batched and judged.

    Args:
        batch_size: at most this many rows per forward pass (rows are sorted by length and grouped by
            :func:`plan_batches`, so padding is small).
        max_prefix_tokens: keep only the last this-many prefix tokens (None: never truncate; too-long rows raise).
        padding_side: ``"right"`` (default) or ``"left"``; both give identical verdicts.
        memorized_threshold: ``memorized`` iff ``extraction_score >= threshold`` (1.0 = exact greedy match).
        progress: show a tqdm progress bar.
    """

    batch_size: int = 32
    max_prefix_tokens: int | None = None
    padding_side: Literal["right", "left"] = "right"
    memorized_threshold: float = 1.0
    progress: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {self.batch_size}")
        if self.max_prefix_tokens is not None and self.max_prefix_tokens < 1:
            raise ValueError(f"max_prefix_tokens must be ≥ 1 or None, got {self.max_prefix_tokens}")
        if self.padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {self.padding_side!r}")
        if not 0.0 < self.memorized_threshold <= 1.0:
            raise ValueError(f"memorized_threshold must be in (0, 1], got {self.memorized_threshold}")


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The verdict for one probed pair; fields are the columns of :data:`PROBES_SCHEMA` (no raw values, no ids)."""

    finding_id: str
    prefix_tokens: int
    target_tokens: int
    prefix_truncated: bool
    exact_match: bool
    first_mismatch: int
    target_token_ranks: tuple[int, ...]
    extraction_score: float
    memorized: bool

    def to_record(self) -> dict[str, str | int | float | bool | list[int]]:
        """Return a row for :data:`PROBES_SCHEMA`."""
        return {
            "finding_id": self.finding_id, "prefix_tokens": self.prefix_tokens,
            "target_tokens": self.target_tokens, "prefix_truncated": self.prefix_truncated,
            "exact_match": self.exact_match, "first_mismatch": self.first_mismatch,
            "target_token_ranks": list(self.target_token_ranks), "extraction_score": self.extraction_score,
            "memorized": self.memorized,
        }


@dataclass(frozen=True, slots=True)
class KExtractableResult:
    """k-extractability at one fixed prefix length ``k`` (the last ``k`` prefix tokens are the context).

    Attributes:
        k: prefix length in tokens.
        flags: per item: True/False, or None when its prefix is shorter than ``k`` (not testable at this k).
        eligible: number of items with a prefix of ≥ ``k`` tokens.
        extractable: number of eligible items greedy reproduces exactly.
    """

    k: int
    flags: tuple[bool | None, ...]
    eligible: int
    extractable: int

    @property
    def rate(self) -> float:
        """Fraction of eligible items that are extractable (0.0 when none is eligible)."""
        return self.extractable / self.eligible if self.eligible else 0.0

    def to_record(self) -> dict[str, int | float]:
        """Return the summary as a flat record."""
        return {"k": self.k, "eligible": self.eligible, "extractable": self.extractable, "rate": self.rate}


def max_positions(model: torch.nn.Module) -> int | None:
    """Return the model's maximum sequence length from its config, or None when it declares none."""
    cfg = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


#: Rows per probe batch on the CPU (:class:`ProbeConfig`'s default).
CPU_BATCH = 32
#: Share of an accelerator's free memory one probe batch may take.
DEVICE_MEMORY_SHARE = 0.5
MAX_BATCH = 1024


def batch_size_for(model: torch.nn.Module, max_len: int, free_bytes: int | None = None,
                   most: int = MAX_BATCH) -> int:
    """Return the rows per probe batch for ``model`` on its device, for rows of up to ``max_len`` tokens.

    On a CUDA device (or when ``free_bytes`` is given): as many rows as :data:`DEVICE_MEMORY_SHARE` of the free
    memory holds, counting per token the hidden state and the attention and MLP activations of one layer in the
    model's dtype plus one fp32 row of attention scores — a forward pass without gradients keeps one layer's
    activations at a time — between 1 and ``most`` (:data:`MAX_BATCH`). On the CPU: :data:`CPU_BATCH`.
    """
    param = next(model.parameters())
    if free_bytes is None:
        if param.device.type != "cuda":
            return CPU_BATCH
        free_bytes = torch.cuda.mem_get_info(param.device)[0]
    cfg = model.config
    hidden = int(cfg.hidden_size)
    inner = int(getattr(cfg, "intermediate_size", None) or 4 * hidden)
    heads = int(getattr(cfg, "num_attention_heads", 1))
    per_token = (4 * hidden + 2 * inner) * param.element_size() + heads * max_len * 4
    return int(max(1, min(most, free_bytes * DEVICE_MEMORY_SHARE // (max_len * per_token))))


@torch.no_grad()
def target_logits(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  rows: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Return next-token logits at ``(rows[i], positions[i])`` → ``[n, V]``, unembedding only those positions.

    For the families of the architecture table the base model's last hidden state is the final-norm output, so
    ``unembed(h[rows, positions])`` equals ``model(...).logits[rows, positions]`` without the ``[batch, seq, V]``
    tensor; other models fall back to the full logits.
    """
    return logits_at(model, input_ids, attention_mask, rows, positions)[0]


@torch.no_grad()
def target_logits_and_cache(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                            rows: torch.Tensor, positions: torch.Tensor):
    """:func:`target_logits`, and the pass's key/value cache (to continue decoding from it)."""
    return logits_at(model, input_ids, attention_mask, rows, positions, use_cache=True)


def logits_at(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, rows: torch.Tensor,
              positions: torch.Tensor, *, use_cache: bool = False):
    """``(logits [n, V], key/value cache or None)`` of :func:`target_logits`, under the caller's grad mode (the
    association stage trains through it)."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    unembed = model.get_output_embeddings()
    kw = {"attention_mask": attention_mask, "position_ids": position_ids_for(attention_mask),
          "use_cache": use_cache}
    if model_type in ARCH_SPECS and unembed is not None and model.base_model is not model:
        out = model.base_model(input_ids=input_ids, **kw)
        return unembed(out.last_hidden_state[rows, positions]), out.past_key_values  # [b, seq, d] -> [n, V]
    out = model(input_ids=input_ids, **kw)
    return out.logits[rows, positions], out.past_key_values


#: Fixed cost of one forward pass (kernel launches, masks, Python), in padded positions: what a batch must save
#: in padding to be worth cutting. Rough CPU measurement on SmolLM2 (30 layers); only affects speed, not results.
BATCH_OVERHEAD_POSITIONS = 64


def plan_batches(lengths: Sequence[int], max_rows: int,
                 overhead: int = BATCH_OVERHEAD_POSITIONS) -> list[list[int]]:
    """Split items into batches of at most ``max_rows``, minimising padded positions plus a per-batch overhead.

    Items are sorted by length and cut into contiguous runs by dynamic programming, minimising
    ``sum(rows × longest + overhead)`` over batches: a few long rows no longer pad a batch of short ones, and
    similar lengths still share one forward pass. Returns item indices per batch (shortest batches first).
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    n = len(order)
    best = [0] + [float("inf")] * n  # best[j]: cost of the first j sorted items
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        longest = lengths[order[j - 1]]
        for i in range(max(0, j - max_rows), j):
            cost = best[i] + (j - i) * longest + overhead
            if cost < best[j]:
                best[j], cut[j] = cost, i
    batches = []
    while n:
        batches.append(order[cut[n]:n])
        n = cut[n]
    return batches[::-1]


def _prepare(item: ProbeItem, cfg: ProbeConfig, limit: int | None) -> tuple[tuple[int, ...], bool]:
    prefix = item.prefix_ids
    truncated = cfg.max_prefix_tokens is not None and len(prefix) > cfg.max_prefix_tokens
    if truncated:
        prefix = prefix[-cfg.max_prefix_tokens:]
    total = len(prefix) + len(item.target_ids) - 1
    if limit is not None and total > limit:
        raise ShapeError(f"a probe needs {total} positions but the model has {limit}; pass "
                         f"ProbeConfig(max_prefix_tokens=...) to keep only the last prefix tokens")
    return prefix, truncated


@dataclass(frozen=True, slots=True)
class _Scored:
    """One probed item's teacher-forced outcome per target position."""

    hits: list[bool]
    ranks: list[int]
    greedy: list[int]


def teacher_forced_inputs(pairs: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int = 0,
                          padding_side: Literal["right", "left"] = "right"
                          ) -> tuple[torch.Tensor, torch.Tensor, list[int], list[int]]:
    """One padded batch of ``prefix + target[:-1]`` rows (on the CPU) for ``(prefix, target)`` id pairs: input ids,
    attention mask, and the ``(row, position)`` of every target token's prediction (the logits there predict it),
    in pair order."""
    seqs = [tuple(prefix) + tuple(target[:-1]) for prefix, target in pairs]
    width = max(len(s) for s in seqs)
    input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    rows: list[int] = []
    positions: list[int] = []
    for r, ((prefix, target), seq) in enumerate(zip(pairs, seqs, strict=True)):
        offset = width - len(seq) if padding_side == "left" else 0
        input_ids[r, offset:offset + len(seq)] = torch.tensor(seq)
        mask[r, offset:offset + len(seq)] = 1
        start = offset + len(prefix) - 1  # the logits here predict target[0]
        rows += [r] * len(target)
        positions += range(start, start + len(target))
    return input_ids, mask, rows, positions


def _teacher_forced(model: torch.nn.Module, items: Sequence[ProbeItem],
                    prepared: list[tuple[tuple[int, ...], bool]], cfg: ProbeConfig, pad_id: int) -> list[_Scored]:
    """Score every item in one teacher-forced pass per length-planned batch: per target position, whether greedy
    emits the target token, the target's rank and the greedy (argmax) token."""
    lengths = [len(prepared[i][0]) + len(items[i].target_ids) - 1 for i in range(len(items))]
    device = next(model.parameters()).device
    out: list[_Scored | None] = [None] * len(items)
    for batch in tqdm(plan_batches(lengths, cfg.batch_size), desc="probe", unit="batch", disable=not cfg.progress):
        pairs = [(prepared[i][0], items[i].target_ids) for i in batch]
        input_ids, mask, rows, positions = teacher_forced_inputs(pairs, pad_id, cfg.padding_side)
        targets = [t for i in batch for t in items[i].target_ids]
        logits = target_logits(model, input_ids.to(device), mask.to(device),
                               torch.tensor(rows, device=device), torch.tensor(positions, device=device))
        tgt = torch.tensor(targets, device=device)
        ranks = rank_of(logits, tgt).tolist()  # strictly-greater convention
        greedy = logits.argmax(-1)  # lowest index among ties, like greedy generate
        hits, greedy = (greedy == tgt).tolist(), greedy.tolist()
        cursor = 0
        for i in batch:
            n = len(items[i].target_ids)
            out[i] = _Scored(hits[cursor:cursor + n], ranks[cursor:cursor + n], greedy[cursor:cursor + n])
            cursor += n
    return [s for s in out if s is not None]


@torch.no_grad()
def probe(model: torch.nn.Module, items: Sequence[ProbeItem], *, finding_ids: Sequence[str] | None = None,
          config: ProbeConfig | None = None, pad_id: int = 0) -> list[ProbeResult]:
    """Decide greedy reproduction of every item with teacher-forced, batched forward passes.

    Args:
        model: causal LM (eval mode; its dtype and device are used as they are).
        items: the pairs to probe.
        finding_ids: one id per item for the results (default: the item's index as a string).
        config: batching, truncation and threshold (default :class:`ProbeConfig`).
        pad_id: id written into padding slots (masked out; any valid id works).

    Returns:
        One :class:`ProbeResult` per item, in input order.
    """
    cfg = config or ProbeConfig()
    if finding_ids is not None and len(finding_ids) != len(items):
        raise ValueError(f"{len(finding_ids)} finding_ids for {len(items)} items")
    ids = [str(i) for i in range(len(items))] if finding_ids is None else [str(f) for f in finding_ids]
    prepared = [_prepare(item, cfg, max_positions(model)) for item in items]
    results = []
    for i, scored in enumerate(_teacher_forced(model, items, prepared, cfg, pad_id)):
        score = sum(scored.hits) / len(scored.hits)
        results.append(ProbeResult(
            finding_id=ids[i], prefix_tokens=len(prepared[i][0]), target_tokens=len(scored.hits),
            prefix_truncated=prepared[i][1], exact_match=all(scored.hits),
            first_mismatch=next((j for j, h in enumerate(scored.hits) if not h), -1),
            target_token_ranks=tuple(int(x) for x in scored.ranks), extraction_score=float(score),
            memorized=score >= cfg.memorized_threshold,
        ))
    logger.info("probed %d items: %d memorized", len(items), sum(r.memorized for r in results))
    return results


def k_extractable(model: torch.nn.Module, items: Sequence[ProbeItem], ks: Sequence[int] = (32, 50), *,
                  config: ProbeConfig | None = None, pad_id: int = 0) -> dict[int, KExtractableResult]:
    """Check k-extractability: does greedy reproduce the target from exactly the last ``k`` prefix tokens?

    An item whose prefix is shorter than ``k`` is not testable at that ``k`` (flag None) rather than silently
    tested with a shorter context.
    """
    base = config or ProbeConfig()
    out = {}
    for k in ks:
        if k < 1:
            raise ValueError(f"prefix lengths must be ≥ 1, got {k}")
        idx = [i for i, item in enumerate(items) if len(item.prefix_ids) >= k]
        cut = [ProbeItem(items[i].prefix_ids[-k:], items[i].target_ids) for i in idx]
        cfg = ProbeConfig(batch_size=base.batch_size, max_prefix_tokens=None, padding_side=base.padding_side,
                          progress=base.progress)
        res = probe(model, cut, config=cfg, pad_id=pad_id) if cut else []
        flags: list[bool | None] = [None] * len(items)
        for i, r in zip(idx, res, strict=True):
            flags[i] = r.exact_match
        out[k] = KExtractableResult(k=k, flags=tuple(flags), eligible=len(idx),
                                    extractable=sum(r.exact_match for r in res))
    return out


def probes_table(results: Sequence[ProbeResult]) -> pa.Table:
    """Return ``results`` as an Arrow table in :data:`PROBES_SCHEMA`."""
    return pa.Table.from_pylist([r.to_record() for r in results], schema=PROBES_SCHEMA)


def items_from_texts(tokenizer, pairs: Sequence[tuple[str, str]]) -> list[ProbeItem]:
    """Tokenise ``(prefix, target)`` texts: encoded separately without special tokens, ids concatenated.

    The target keeps its leading space when the corpus has one (the text right after the prefix), which is the
    convention of :func:`revs_engine.targets.encode_pair`.
    """
    out = []
    for prefix, target in pairs:
        p = tokenizer(prefix, add_special_tokens=False)["input_ids"] if prefix else []
        t = tokenizer(target, add_special_tokens=False)["input_ids"]
        out.append(ProbeItem(tuple(p), tuple(t)))
    return out
