"""Scoring and decoding helpers shared by the format-aware attacks: one context, many continuations.

Offers :class:`ContinuationScorer` (the context's keys and values computed once; batched log-likelihoods of
continuations after any prefix of it), :class:`TokenVocab` (every token's text, indexed by first character) and
:func:`greedy_decode` (a KV-cached greedy loop whose choice at each step is the caller's).

Why a scorer: exposure scores a thousand candidates after the same prompt, and the neighbourhood attack scores
candidates that share a prefix with the model's own answer. Running the context once and reusing its keys and
values for every batch costs ``n_candidates × candidate_length`` token positions instead of
``n_candidates × (context + candidate_length)``. A batch row may continue any prefix ``context[:k]`` of the
context: the cached positions from ``k`` on are masked out for that row and its positions start at ``k``, so rows
with different prefixes share one forward pass.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from transformers import DynamicCache


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


class ContinuationScorer:
    """Log-likelihoods (natural log) of continuations of ``context_ids`` or of any of its prefixes.

    Args:
        model: causal LM in eval mode (any family whose forward accepts ``past_key_values``).
        context_ids: the context, ≥ 1 token (the prompt, or the prompt followed by the model's answer).
        keep_from: the shortest prefix length that will be continued (default ``len(context_ids)``); the
            next-token distributions after every prefix from ``keep_from`` to the whole context are kept.
        batch_size: rows per forward pass (reduced for long contexts so that rows × context ≤
            ``max_cache_positions``).
        max_cache_positions: bound on cached positions per batch (memory: the cache is copied per row).
    """

    def __init__(self, model: torch.nn.Module, context_ids: Sequence[int], *, keep_from: int | None = None,
                 batch_size: int = 64, max_cache_positions: int = 16384) -> None:
        n = len(context_ids)
        keep_from = n if keep_from is None else keep_from
        if n == 0 or not 1 <= keep_from <= n:
            raise ValueError(f"need a non-empty context and 1 ≤ keep_from ≤ {n}, got keep_from={keep_from}")
        self.model, self.n, self.keep_from = model, n, keep_from
        self.batch_size = max(1, min(batch_size, max_cache_positions // n))
        self.n_positions_run = n  # token positions through the model so far (cost accounting)
        ids = torch.tensor([list(context_ids)], device=_device(model))
        extra = {"logits_to_keep": n - keep_from + 1} if _accepts(model, "logits_to_keep") else {}
        with torch.no_grad():
            out = model(input_ids=ids, use_cache=True, **extra)
        self._kv = [(k, v) for k, v, *_ in out.past_key_values]
        # [n - keep_from + 1, V]: row i is the distribution after context[:keep_from + i]
        self.next_logp = out.logits[0, -(n - keep_from + 1):].float().log_softmax(-1)

    def after(self, k: int) -> torch.Tensor:
        """Log-probabilities of the next token after ``context[:k]`` ``[V]``."""
        if not self.keep_from <= k <= self.n:
            raise ValueError(f"prefix length {k} outside [{self.keep_from}, {self.n}]")
        return self.next_logp[k - self.keep_from]

    @torch.no_grad()
    def score(self, rows: Sequence[tuple[int, Sequence[int]]]) -> list[float]:
        """Return ``log p(continuation | context[:k])`` for each ``(k, continuation)`` (non-empty)."""
        out: list[float] = []
        for start in range(0, len(rows), self.batch_size):
            out += [sum(steps) for steps, _ in self._score_batch(rows[start:start + self.batch_size], None)]
        return out

    @torch.no_grad()
    def score_steps(self, rows: Sequence[tuple[int, Sequence[int]]],
                    keep_ids: torch.Tensor) -> list[tuple[list[float], torch.Tensor]]:
        """Per row: the log-probability of each continuation token, and the next-token log-probabilities of
        ``keep_ids`` before each token ``[len(continuation), len(keep_ids)]`` (row ``t``: after ``c[:t]``)."""
        out: list[tuple[list[float], torch.Tensor]] = []
        for start in range(0, len(rows), self.batch_size):
            out += self._score_batch(rows[start:start + self.batch_size], keep_ids)
        return out

    def _score_batch(self, rows: Sequence[tuple[int, Sequence[int]]],
                     keep_ids: torch.Tensor | None) -> list[tuple[list[float], torch.Tensor | None]]:
        if any(len(c) == 0 for _, c in rows):
            raise ValueError("every continuation needs at least one token")
        device = _device(self.model)
        first = torch.stack([self.after(k)[c[0]] for k, c in rows]).cpu()  # [B]
        heads = None if keep_ids is None else [self.after(k)[keep_ids].cpu() for k, _ in rows]
        width = max(len(c) for _, c in rows) - 1
        if width == 0:
            return [([float(x)], None if heads is None else heads[r].unsqueeze(0)) for r, x in enumerate(first)]
        B = len(rows)
        inp = torch.zeros(B, width, dtype=torch.long)
        tgt = torch.zeros(B, width, dtype=torch.long)
        valid = torch.zeros(B, width, dtype=torch.bool)
        ctx_mask = torch.zeros(B, self.n, dtype=torch.long)
        for r, (k, c) in enumerate(rows):
            m = len(c) - 1
            inp[r, :m], tgt[r, :m], valid[r, :m] = torch.tensor(c[:-1]), torch.tensor(c[1:]), True
            ctx_mask[r, :k] = 1
        pos = torch.tensor([k for k, _ in rows]).unsqueeze(1) + torch.arange(width)
        cache = DynamicCache(ddp_cache_data=[(k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1))
                                             for k, v in self._kv])
        mask = torch.cat([ctx_mask, valid.long()], dim=1)
        logits = self.model(input_ids=inp.to(device), attention_mask=mask.to(device), position_ids=pos.to(device),
                            past_key_values=cache, use_cache=True).logits
        self.n_positions_run += B * width
        lp = logits.float().log_softmax(-1)  # [B, width, V]: position j predicts c[j + 1]
        steps = lp.gather(-1, tgt.to(device).unsqueeze(-1)).squeeze(-1).cpu()
        kept = None if keep_ids is None else lp[:, :, keep_ids.to(device)].cpu()
        out = []
        for r, (_, c) in enumerate(rows):
            m = len(c) - 1
            detail = None if kept is None else torch.cat([heads[r].unsqueeze(0), kept[r, :m]])
            out.append(([float(first[r])] + steps[r, :m].tolist(), detail))
        return out


def _accepts(model: torch.nn.Module, name: str) -> bool:
    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class TokenVocab:
    """Every token's text, and the ids of non-empty texts grouped by first character.

    Attributes:
        texts: ``texts[i]`` = text of token ``i`` alone.
        by_first: first character → ids of tokens whose text starts with it.
    """

    texts: tuple[str, ...]
    by_first: dict[str, tuple[int, ...]]

    @classmethod
    def from_decode(cls, decode: Callable[[list[int]], str], vocab_size: int) -> TokenVocab:
        """Build from ``decode`` (ids → text) over ids ``0 .. vocab_size - 1``.

        Suits tokenizers that decode one token to its own text (byte-level BPE such as SmolLM2's, GPT-2's); for
        tokenizers that drop a leading space when decoding a lone token, build :class:`TokenVocab` from texts.
        """
        return cls.from_texts([decode([i]) for i in range(vocab_size)])

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> TokenVocab:
        """Build from the token texts."""
        groups: dict[str, list[int]] = {}
        for i, t in enumerate(texts):
            if t and "\ufffd" not in t:
                groups.setdefault(t[0], []).append(i)
        return cls(tuple(texts), {c: tuple(ids) for c, ids in groups.items()})


def vocab_size_of(model: torch.nn.Module) -> int:
    """Rows of the model's output embedding (the ids its logits cover)."""
    return int(model.get_output_embeddings().weight.shape[0])


@torch.no_grad()
def greedy_decode(model: torch.nn.Module, context_ids: Sequence[int],
                  choose: Callable[[torch.Tensor], int | None], max_steps: int) -> list[int]:
    """Decode after ``context_ids`` with a KV cache: at each step ``choose(logits [V])`` returns the next id, or
    None to stop; at most ``max_steps`` tokens."""
    device = _device(model)
    out = model(input_ids=torch.tensor([list(context_ids)], device=device), use_cache=True)
    cache, logits, ids = out.past_key_values, out.logits[0, -1], []
    for _ in range(max_steps):
        nxt = choose(logits.float())
        if nxt is None:
            break
        ids.append(nxt)
        if len(ids) == max_steps:
            break
        out = model(input_ids=torch.tensor([[nxt]], device=device), past_key_values=cache, use_cache=True)
        cache, logits = out.past_key_values, out.logits[0, -1]
    return ids
