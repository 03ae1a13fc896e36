"""FT-L baseline: constrained fine-tuning of the MLP output projections (reference/revs-method.md §5).

Offers :class:`FtlConfig`, :func:`unlearn_ftl` → :class:`FtlResult` (per-target ranks/probabilities before and
after, and a :class:`~revs_engine.edit.WeightBackup` of every FF2 column, so ``edit.restore`` undoes it and
``patch.make_patch`` records it exactly like a REVS run).

As in the paper's baseline: trains the FF2 weights of all layers (or ``layers``), objective = the *probability* of
the target token at the last prefix position (minimised, not NLL ascent), Adam, batch 1, ``steps`` passes over the
targets, stop when the mean loss falls below ``loss_break`` (a target already below it is skipped), and after every
step each weight is clamped to its original value ± ``epsilon`` (L∞ constraint).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from revs_engine.arch import ModelArch
from revs_engine.edit import WeightBackup, snapshot
from revs_engine.lens import rank_of
from revs_engine.targets import TokenTarget


@dataclass(frozen=True, slots=True)
class FtlConfig:
    """FT-L hyperparameters (§5 defaults).

    Args:
        lr: Adam learning rate.
        steps: passes over the targets (``num_grad_steps``).
        epsilon: L∞ radius around the original weights.
        loss_break: stop when the mean target probability is below this.
        layers: layers whose FF2 is trained (None: all).
        seed: torch seed.
    """

    lr: float = 1e-5
    steps: int = 5
    epsilon: float = 5e-4
    loss_break: float = 1e-3
    layers: tuple[int, ...] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.epsilon <= 0 or self.steps < 1 or self.loss_break < 0:
            raise ValueError(f"FT-L needs lr > 0, epsilon > 0, steps ≥ 1, loss_break ≥ 0; got lr={self.lr}, "
                             f"epsilon={self.epsilon}, steps={self.steps}, loss_break={self.loss_break}")


@dataclass(frozen=True, slots=True)
class FtlTargetResult:
    """One target before and after FT-L (final-layer rank and probability)."""

    target_index: int
    secret_index: int
    position: int
    rank_before: int
    rank_after: int
    prob_before: float
    prob_after: float

    def to_record(self) -> dict[str, str | int | float | bool]:
        """Return a flat row."""
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True)
class FtlResult:
    """Everything :func:`unlearn_ftl` did.

    Attributes:
        targets: per-target outcome, in input order.
        backup: original FF2 write vectors of every trained layer (all neurons).
        steps_run: passes completed; ``seconds``: wall time.
    """

    targets: tuple[FtlTargetResult, ...]
    backup: WeightBackup = field(repr=False)
    steps_run: int
    seconds: float


def _last_logits(model: nn.Module, target: TokenTarget, device) -> torch.Tensor:
    ids = torch.tensor([target.prefix_ids], dtype=torch.long, device=device)
    return model(input_ids=ids, use_cache=False).logits[0, -1].float()  # [V]


@torch.no_grad()
def _measure(model, targets, device) -> list[tuple[int, float]]:
    out = []
    for t in targets:
        logits = _last_logits(model, t, device)
        out.append((int(rank_of(logits, t.token_id)), float(logits.softmax(-1)[t.token_id])))
    return out


def unlearn_ftl(model: nn.Module, arch: ModelArch, targets: list[TokenTarget], cfg: FtlConfig) -> FtlResult:
    """Fine-tune FF2 weights to lower each target's probability under an L∞ constraint; weights change in place.

    Args:
        model: causal LM in eval mode (dropout off).
        arch: ``resolve_arch(model)``.
        targets: teacher-forced target tokens.
        cfg: hyperparameters.
    """
    torch.manual_seed(cfg.seed)
    start = time.perf_counter()
    device = arch.unembed.weight.device
    layers = list(range(arch.n_layers)) if cfg.layers is None else list(cfg.layers)
    backup = snapshot(arch, {layer: torch.arange(arch.d_ff) for layer in layers})
    before = _measure(model, targets, device)
    params = [arch.mlp_out[layer].weight for layer in layers]
    originals = [p.detach().clone() for p in params]
    flags = {id(p): p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    steps_run = 0
    try:
        for _ in range(cfg.steps):
            losses = []
            for target in targets:
                opt.zero_grad(set_to_none=True)
                loss = _last_logits(model, target, device).softmax(-1)[target.token_id]
                value = float(loss.detach())
                losses.append(value)
                if value < cfg.loss_break:
                    continue
                loss.backward()
                opt.step()
                with torch.no_grad():
                    for p, orig in zip(params, originals, strict=True):
                        p.copy_(torch.minimum(torch.maximum(p, orig - cfg.epsilon), orig + cfg.epsilon))
            steps_run += 1
            if sum(losses) / max(len(losses), 1) < cfg.loss_break:
                break
    finally:
        opt.zero_grad(set_to_none=True)
        for p in model.parameters():
            p.requires_grad_(flags[id(p)])
    after = _measure(model, targets, device)
    results = tuple(
        FtlTargetResult(i, t.secret_index, t.position, b[0], a[0], b[1], a[1])
        for i, (t, b, a) in enumerate(zip(targets, before, after, strict=True))
    )
    return FtlResult(results, backup, steps_run, time.perf_counter() - start)
