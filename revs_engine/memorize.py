"""Memorize: fine-tune a causal LM on texts until greedy decoding reproduces a chosen fraction of targets.

Offers :class:`MemorizeConfig`, :class:`MemorizeResult` and :func:`memorize`.

Used to build test fixtures, benchmark models and the demo's memorizing model (the stand-in for a production model
trained on the corpus, DESIGN §7), and for canary insertion in privacy audits. Full fine-tuning with AdamW and a
linear warmup, causal-LM loss on the whole texts (or only on the target tokens, ``loss_on="target"``); after every
epoch the batched probe (:func:`revs_engine.probes.probe`) measures exact greedy reproduction of the
``(prefix, target)`` items, and training stops as soon as ``target_fraction`` of them is reproduced or after
``max_epochs``. Seeded: ``torch.manual_seed`` and a seeded permutation per epoch fix the data order. The model is
modified in place and left in eval mode with gradients off; the caller saves it.

Rehearsal (``rehearsal`` texts, optional): every optimizer step also takes a loss on a batch of general texts,
weighted by ``rehearsal_weight``, so the model keeps what it knew while it memorizes — the way a production model
meets its personal data, a small part of a large training mix. With a ``reference`` model (the unedited one) the
loss is the KL divergence from the reference's next-token distribution at every position (the model is held to
what it predicted before); without one, the causal-LM loss on the texts' own tokens (the model learns the texts,
and a small pool seen every epoch is learned by heart). Without rehearsal, a few epochs on short
``(prefix, target)`` items wreck the model's language modelling (``benchmarks/RESULTS.md``, "A second stand-in"),
and every "nothing else changed" measured on such a model is measured on a model that has little left to lose.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from tqdm.auto import tqdm

from revs_engine.capture import model_forward
from revs_engine.probes import ProbeConfig, ProbeItem, probe

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MemorizeConfig:
    """Fine-tuning settings.

    Args:
        lr: AdamW peak learning rate (after warmup).
        batch_size: texts per optimizer step.
        max_epochs: budget in passes over the texts.
        target_fraction: stop when this fraction of items is reproduced exactly by greedy decoding.
        warmup_steps: linear warmup from 0 to ``lr``.
        lr_decay: after warmup, decay the rate linearly to 0 at the end of ``max_epochs`` (consolidates the last
            few wrong digits that a constant rate keeps flipping; measured on 200 SSN sentences).
        weight_decay: AdamW weight decay.
        max_grad_norm: gradient clipping (None: off).
        loss_on: ``"text"`` (every token of every text) or ``"target"`` (only the items' target tokens; then
            ``texts`` are ignored and each item's prefix + target is trained on).
        rehearsal_weight: weight of the rehearsal batch's loss in each step (when rehearsal texts are given).
        rehearsal_batch: rehearsal texts per step (drawn in a seeded order, cycling through them).
        seed: torch seed and data order.
        progress: show a tqdm bar per epoch.
    """

    lr: float = 3e-4
    batch_size: int = 8
    max_epochs: int = 20
    target_fraction: float = 1.0
    warmup_steps: int = 5
    lr_decay: bool = False
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    loss_on: Literal["text", "target"] = "text"
    rehearsal_weight: float = 1.0
    rehearsal_batch: int = 8
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.batch_size < 1 or self.max_epochs < 1 or self.warmup_steps < 0:
            raise ValueError("lr > 0, batch_size ≥ 1, max_epochs ≥ 1 and warmup_steps ≥ 0 are required")
        if not 0.0 < self.target_fraction <= 1.0:
            raise ValueError(f"target_fraction must be in (0, 1], got {self.target_fraction}")
        if self.loss_on not in ("text", "target"):
            raise ValueError(f"loss_on must be 'text' or 'target', got {self.loss_on!r}")
        if self.rehearsal_weight < 0 or self.rehearsal_batch < 1:
            raise ValueError("rehearsal_weight ≥ 0 and rehearsal_batch ≥ 1 are required")


@dataclass(frozen=True)
class MemorizeResult:
    """Outcome of :func:`memorize`.

    Attributes:
        epochs: epochs trained.
        fraction_memorized: fraction of items greedy decoding reproduces exactly after the last epoch.
        history: per epoch ``(epoch, mean training loss, fraction memorized)`` (the loss on the memorized rows,
            without rehearsal).
        seconds: wall time.
        converged: whether ``target_fraction`` was reached within ``max_epochs``.
    """

    epochs: int
    fraction_memorized: float
    history: tuple[tuple[int, float, float], ...]
    seconds: float
    converged: bool

    def to_record(self) -> dict[str, int | float | bool]:
        """Return the summary as a flat record."""
        return {"epochs": self.epochs, "fraction_memorized": self.fraction_memorized, "seconds": self.seconds,
                "converged": self.converged}


def _training_rows(texts: Sequence[Sequence[int]], items: Sequence[ProbeItem],
                   loss_on: str) -> list[tuple[list[int], list[int]]]:
    """Return ``(input_ids, labels)`` per training row (labels -100 where no loss is taken)."""
    if loss_on == "target":
        return [(list(it.prefix_ids + it.target_ids), [-100] * len(it.prefix_ids) + list(it.target_ids))
                for it in items]
    return [(list(t), list(t)) for t in texts if len(t) >= 2]


def _cycle(n: int, gen: torch.Generator) -> Iterator[int]:
    """Endless indices into ``n`` rehearsal texts: a fresh seeded permutation each time round."""
    while True:
        yield from torch.randperm(n, generator=gen).tolist()


def _padded(batch: Sequence[tuple[list[int], list[int]]], pad_id: int,
            device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask, labels)`` of ``(input_ids, labels)`` rows, right-padded into one batch."""
    width = max(len(seq) for seq, _ in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for r, (seq, lab) in enumerate(batch):
        ids[r, :len(seq)] = torch.tensor(seq)
        labels[r, :len(seq)] = torch.tensor(lab)
        mask[r, :len(seq)] = 1
    return ids.to(device), mask.to(device), labels.to(device)


def _batch_loss(model: torch.nn.Module, batch: Sequence[tuple[list[int], list[int]]], pad_id: int,
                device: torch.device) -> torch.Tensor:
    """Mean causal-LM loss of ``(input_ids, labels)`` rows, right-padded into one batch."""
    ids, mask, labels = _padded(batch, pad_id, device)
    return model_forward(model, ids, mask, labels=labels).loss


def _batch_kl(model: torch.nn.Module, reference: torch.nn.Module, batch: Sequence[tuple[list[int], list[int]]],
              pad_id: int, device: torch.device) -> torch.Tensor:
    """Mean KL(reference ‖ model) of the next-token distributions over the real positions of the rows."""
    ids, mask, _ = _padded(batch, pad_id, device)
    with torch.no_grad():
        ref = torch.log_softmax(model_forward(reference, ids, mask).logits.float(), -1)
    own = torch.log_softmax(model_forward(model, ids, mask).logits.float(), -1)
    kl = (ref.exp() * (ref - own)).sum(-1)  # [batch, seq]
    return (kl * mask).sum() / mask.sum()


def _rate(cfg: MemorizeConfig, step: int, total_steps: int) -> float:
    """Learning rate at optimizer ``step``: linear warmup, then constant or linear decay to 0."""
    warm = min(1.0, (step + 1) / (cfg.warmup_steps + 1))
    if not cfg.lr_decay:
        return cfg.lr * warm
    return cfg.lr * warm * max(0.0, 1.0 - step / max(total_steps, 1))


def fraction_memorized(model: torch.nn.Module, items: Sequence[ProbeItem], *, batch_size: int = 32) -> float:
    """Return the fraction of ``items`` greedy decoding reproduces exactly (batched probe)."""
    results = probe(model, items, config=ProbeConfig(batch_size=batch_size))
    return sum(r.exact_match for r in results) / max(len(results), 1)


def memorize(model: torch.nn.Module, texts: Sequence[Sequence[int]], items: Sequence[ProbeItem],
             config: MemorizeConfig | None = None, *, pad_id: int = 0,
             rehearsal: Sequence[Sequence[int]] = (),
             reference: torch.nn.Module | None = None) -> MemorizeResult:
    """Fine-tune ``model`` in place on ``texts`` until ``config.target_fraction`` of ``items`` is memorized.

    Args:
        model: causal LM (fp32 recommended); modified in place.
        texts: training texts as id sequences (each typically contains an item's prefix and target).
        items: the ``(prefix, target)`` pairs whose greedy reproduction decides when to stop.
        config: :class:`MemorizeConfig`.
        pad_id: id written into padding slots (masked out of attention and loss).
        rehearsal: general texts as id sequences (≥ 2 tokens each), trained on alongside (see the module doc).
        reference: the model whose predictions on the rehearsal texts are kept (KL); None: their own tokens.

    Returns:
        A :class:`MemorizeResult`.
    """
    cfg = config or MemorizeConfig()
    if not items:
        raise ValueError("memorize needs at least one (prefix, target) item to measure")
    rows = _training_rows(texts, items, cfg.loss_on)
    if not rows:
        raise ValueError("memorize needs at least one training text of ≥ 2 tokens")
    general = [(list(t), list(t)) for t in rehearsal if len(t) >= 2]
    if rehearsal and not general:
        raise ValueError("rehearsal texts must hold at least one text of ≥ 2 tokens")
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    order_gen = torch.Generator().manual_seed(cfg.seed)
    draws = _cycle(len(general), torch.Generator().manual_seed(cfg.seed + 1)) \
        if general and cfg.rehearsal_weight > 0 else None  # weight 0: no rehearsal pass at all
    device = next(model.parameters()).device
    params = list(model.parameters())
    for p in params:
        p.requires_grad_(True)
    optim = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, history, frac = 0, [], fraction_memorized(model, items)
    total_steps = cfg.max_epochs * -(-len(rows) // cfg.batch_size)
    logger.info("memorize: %d rows, %d items, %.0f%% memorized before training", len(rows), len(items),
                100 * frac)
    epoch = 0
    try:
        while frac < cfg.target_fraction and epoch < cfg.max_epochs:
            epoch += 1
            model.train()
            perm = torch.randperm(len(rows), generator=order_gen).tolist()
            batches = [perm[s:s + cfg.batch_size] for s in range(0, len(perm), cfg.batch_size)]
            losses = []
            for batch in tqdm(batches, desc=f"memorize epoch {epoch}", disable=not cfg.progress, leave=False):
                for group in optim.param_groups:
                    group["lr"] = _rate(cfg, step, total_steps)
                loss = _batch_loss(model, [rows[i] for i in batch], pad_id, device)
                total = loss
                if draws is not None:
                    pick = [general[next(draws)] for _ in range(cfg.rehearsal_batch)]
                    kept = _batch_loss(model, pick, pad_id, device) if reference is None \
                        else _batch_kl(model, reference, pick, pad_id, device)
                    total = loss + cfg.rehearsal_weight * kept
                optim.zero_grad(set_to_none=True)
                total.backward()
                if cfg.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                optim.step()
                step += 1
                losses.append(float(loss.detach()))
            model.eval()
            frac = fraction_memorized(model, items)
            history.append((epoch, sum(losses) / len(losses), frac))
            logger.info("memorize epoch %d: loss %.4f, %.0f%% memorized", epoch, history[-1][1], 100 * frac)
    finally:
        model.eval()
        optim.zero_grad(set_to_none=True)
        for p in params:
            p.requires_grad_(False)
    return MemorizeResult(epochs=epoch, fraction_memorized=frac, history=tuple(history),
                          seconds=time.perf_counter() - start, converged=frac >= cfg.target_fraction)
