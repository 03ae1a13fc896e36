"""Loosen the context → value association of each secret in the middle layers, before REVS demotes its tokens.

REVS edits the late layers, where the next digit is already decided and shared by everyone who has that digit
there; it demotes one token and leaves the value's other digits readable to a format-aware attacker (greedy
decoding restricted to the format, Hamming neighbours, completion from half the value). This stage trains an
additive change ``ΔW_l = D_l B_lᵀ`` of the FF2 (MLP output projection) of a range of middle layers so that at
every digit position of each secret, after its own prompt, the true digit is no more likely than an average
digit, while the guard is kept:

- ``B_l`` spans the FF2-input ("key") directions orthogonal to every key at the guarded items' value positions
  (the change is exactly zero there on the unedited model) in which the guard's keys vary little (eigenvalues of
  their covariance below ``null_tau`` × the median eigenvalue);
- the objective adds ``covariance_weight`` × the mean squared output change over all guard positions
  (``tr(D Bᵀ C B Dᵀ)``, ``C`` the guard's key covariance) and ``retain_weight`` × the guarded values' negative
  log-likelihood;
- the guard must hold at least ``min_guard_fraction`` × ``d_ff`` positions (retained items, benign texts and
  counterfactual values together), else the stage is skipped: a covariance of fewer positions leaves directions
  it never saw at zero variance, and the change would be free and unpenalised exactly where no guard looked
  (measured: with 2 guarded items and 8 short texts on SmolLM2 it broke an unseen retained value in bf16);
- Adam from ``D = 0`` for ``steps`` steps, full-batch (the secrets and kept items in padded, length-planned
  batches of at most ``BATCH_ROWS``; deterministic), then ``W_l += D_l B_lᵀ``;
- a guarded value the model reproduced greedily before the stage (every token the argmax after its prompt) must
  stay reproduced: the first step after which one is not is undone and training stops there (the keys of later
  layers move with the earlier layers' change, so the null-space constraint alone does not guarantee it).

The guard here is the retained items (prompt and value) and the benign texts, not the decoys: a decoy after the
secret's own prompt shares its keys up to the first digit, and keeping those would keep the secret. Optional
*counterfactual* sequences — other people's prompts continued by values nobody has — add the covariance of the
keys at their value positions (``counterfactual_weight``): the directions every person's number runs through,
which an edit of one person's number must leave alone.

Offers :func:`loosen_associations` → :class:`AssociationResult` (a :class:`~revs_engine.edit.WeightBackup` of
the edited layers, so ``edit.restore`` undoes it and ``patch.make_patch`` records it). Measured in
``benchmarks/RESULTS.md`` (revs_bench, "association").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from revs_engine.arch import ModelArch, add_to_neurons
from revs_engine.capture import hooks, model_forward, stream_hooks
from revs_engine.config import AssociationConfig
from revs_engine.edit import WeightBackup, snapshot
from revs_engine.probes import logits_at, plan_batches, teacher_forced_inputs

logger = logging.getLogger(__name__)

#: Most sequences per forward pass of the stage's training (length-planned, padded).
BATCH_ROWS = 16

#: Singular values below this fraction of the largest count as zero when removing the guarded values' keys.
HARD_NULL_RTOL = 1e-4


@dataclass(frozen=True)
class ValueSequence:
    """One context and its value as ids: ``prompt + value`` is fed, the value's positions are scored."""

    prompt_ids: tuple[int, ...] = field(repr=False)
    value_ids: tuple[int, ...] = field(repr=False)


@dataclass(frozen=True)
class AssociationResult:
    """What :func:`loosen_associations` did (no values: counts and losses only)."""

    layers: tuple[int, ...]
    dims: dict[int, int]  # layer → rank of the edit's key subspace
    loss_before: float
    loss_after: float
    backup: WeightBackup = field(repr=False)
    seconds: float
    steps: int = 0  # Adam steps kept (fewer than ``cfg.steps`` when a guarded value stopped being reproduced)

    def summary(self) -> dict[str, float | int]:
        """Counts and losses for logs and reports."""
        return {"association_layers": len(self.layers), "association_loss_before": round(self.loss_before, 4),
                "association_loss_after": round(self.loss_after, 4), "association_steps": self.steps,
                "association_seconds": round(self.seconds, 2)}


def association_layers(cfg: AssociationConfig, n_layers: int) -> list[int]:
    """The layers ``cfg.layer_range`` (fractions of the depth, both ends included) names for ``n_layers``."""
    lo, hi = (int(f * n_layers) for f in cfg.layer_range)
    return list(range(lo, min(hi, n_layers - 1) + 1))


def _keys(model: nn.Module, arch: ModelArch, layers: Sequence[int], ids: Sequence[int]) -> dict[int, torch.Tensor]:
    """FF2 inputs ``[len(ids), d_ff]`` (float64, CPU) of ``layers`` for one sequence (the base model only: no
    logits are computed)."""
    store: dict[str, dict[int, torch.Tensor]] = {"neuron_act": {}}
    body = getattr(model, "base_model", model)
    with torch.no_grad(), hooks(stream_hooks(arch, lambda x: x[0], store, list(layers))):
        model_forward(body, torch.tensor([list(ids)], device=arch.unembed.weight.device))
    return {layer: act.double().cpu() for layer, act in store["neuron_act"].items()}


def _shared_prompt_value_keys(model: nn.Module, arch: ModelArch, layers: Sequence[int], prompt: Sequence[int],
                              values: Sequence[Sequence[int]]) -> dict[int, torch.Tensor]:
    """FF2 inputs ``[len(values), L, d_ff]`` (float64, CPU) of ``layers`` at the ``L`` positions that predict each
    of ``values`` (all of length ``L``) after the same ``prompt``: the prompt but its last token runs once, its
    key/value cache is repeated per value, and only the last prompt token and the values run per row (the same
    keys as one full pass per sequence)."""
    device = arch.unembed.weight.device
    body = getattr(model, "base_model", model)
    store: dict[str, dict[int, torch.Tensor]] = {"neuron_act": {}}
    tail = torch.tensor([[prompt[-1], *v[:-1]] for v in values], device=device)
    start, width = len(prompt) - 1, len(prompt) - 1 + tail.shape[1]
    cache = None
    with torch.no_grad():
        if start:
            head = torch.tensor([list(prompt[:-1])], device=device)
            cache = body(input_ids=head, use_cache=True).past_key_values
            cache.batch_repeat_interleave(len(values))
        with hooks(stream_hooks(arch, lambda x: x, store, list(layers))):
            body(input_ids=tail, past_key_values=cache, use_cache=cache is not None,
                 position_ids=torch.arange(start, width, device=device).expand(len(values), -1),
                 attention_mask=torch.ones(len(values), width, dtype=torch.long, device=device))
    return {layer: act.double().cpu() for layer, act in store["neuron_act"].items()}


def _value_covariance(model: nn.Module, arch: ModelArch, layers: Sequence[int], seqs: Sequence[ValueSequence]
                      ) -> dict[int, torch.Tensor]:
    """Mean ``k kᵀ`` (float64) per layer over the keys that predict each value token of ``seqs`` ({} when
    none). Consecutive sequences with the same prompt and value length share one run of the prompt."""
    if not seqs:
        return {}
    cov = {layer: torch.zeros(arch.d_ff, arch.d_ff, dtype=torch.float64) for layer in layers}
    n = 0
    groups: list[tuple[tuple[int, ...], list[tuple[int, ...]]]] = []
    for s in (s for s in seqs if s.value_ids):
        if groups and groups[-1][0] == s.prompt_ids and len(groups[-1][1][0]) == len(s.value_ids):
            groups[-1][1].append(s.value_ids)
        else:
            groups.append((s.prompt_ids, [s.value_ids]))
    for prompt, values in groups:
        keys = _shared_prompt_value_keys(model, arch, layers, prompt, values)
        n += sum(len(v) for v in values)
        for layer in layers:
            k = keys[layer].reshape(-1, arch.d_ff)
            cov[layer] += k.T @ k
    return {layer: c / n for layer, c in cov.items()}


def edit_subspace(cov: torch.Tensor, kept_keys: torch.Tensor | None, tau: float) -> torch.Tensor:
    """Return ``B`` ``[d_ff, r]`` (float32): orthonormal directions in which the guard's keys vary less than
    ``tau`` × the median eigenvalue of ``cov`` (at least its null space, when the guard has fewer positions than
    ``d_ff``), with every row of ``kept_keys`` ``[n, d_ff]`` projected out."""
    ev, vecs = torch.linalg.eigh(cov.double())  # ascending
    # a covariance's eigenvalues are squared singular values: its null space is below HARD_NULL_RTOL² × the largest
    basis = vecs[:, ev < max(tau * float(ev.median()), HARD_NULL_RTOL ** 2 * float(ev.max()))]
    if kept_keys is not None and kept_keys.shape[0] and basis.shape[1]:
        _, s, vh = torch.linalg.svd(kept_keys.double() @ basis, full_matrices=True)
        rank = int((s > s.max() * HARD_NULL_RTOL).sum())
        basis = basis @ vh[rank:].T
    return basis.float()


@dataclass(frozen=True)
class _Batch:
    """One padded batch of sequences for the stage's losses: ids, mask, the ``(row, position)`` of each scored
    prediction (its row is the sequence it belongs to) and its option set (the true token, then its alternatives,
    padded with −1: the hinge; the true token alone: the retained values' likelihood)."""

    ids: torch.Tensor
    mask: torch.Tensor
    rows: torch.Tensor
    positions: torch.Tensor
    options: torch.Tensor  # [n, width]: true token first (the retain batches: width 1)
    n_rows: int


def _batches(pairs: Sequence[tuple[Sequence[int], Sequence[int]]], scored: Sequence[Sequence[int]],
             options: Sequence[Sequence[Sequence[int]]], device: torch.device) -> list[_Batch]:
    """Length-planned padded batches (at most :data:`BATCH_ROWS` rows) of ``(prompt, value)`` ``pairs``; of pair
    ``i`` the value positions ``scored[i]`` are scored with ``options[i][j]`` for its ``j``-th scored position."""
    out = []
    for batch in plan_batches([len(p) + len(v) - 1 for p, v in pairs], BATCH_ROWS):
        ids, mask, rows, positions = teacher_forced_inputs([pairs[i] for i in batch])
        starts = [0]
        for i in batch:
            starts.append(starts[-1] + len(pairs[i][1]))
        pick = [starts[r] + j for r, i in enumerate(batch) for j in scored[i]]
        sets = [list(o) for i in batch for o in options[i]]
        width = max(map(len, sets))
        out.append(_Batch(ids.to(device), mask.to(device), torch.tensor([rows[k] for k in pick], device=device),
                          torch.tensor([positions[k] for k in pick], device=device),
                          torch.tensor([r + [-1] * (width - len(r)) for r in sets], device=device), len(batch)))
    return out


def _per_row_mean(values: torch.Tensor, rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    """Mean of ``values`` per row index in ``rows`` → ``[n_rows]`` (rows without values: 0)."""
    total = torch.zeros(n_rows, device=values.device).index_add(0, rows, values)
    count = torch.zeros(n_rows, device=values.device).index_add(0, rows, torch.ones_like(values))
    return total / count.clamp(min=1)


def _digit_hinge(model: nn.Module, b: _Batch) -> float:
    """Back-propagate the sum over the batch's secrets of each one's mean over its digit positions of
    relu(log p(true) − log mean p(option)). Return that sum."""
    logp = torch.log_softmax(logits_at(model, b.ids, b.mask, b.rows, b.positions)[0].float(), -1)
    options = logp.gather(1, b.options.clamp(min=0)).masked_fill(b.options < 0, float("-inf"))
    mean = torch.logsumexp(options, 1) - torch.log((b.options >= 0).sum(1).float())
    loss = _per_row_mean(torch.relu(options[:, 0] - mean), b.rows, b.n_rows).sum()
    loss.backward()
    return float(loss.detach())


def _kept_values(model: nn.Module, b: _Batch, weight: float) -> torch.Tensor:
    """Back-propagate ``weight`` × the sum over the batch's retained values of each one's mean negative
    log-likelihood (nothing when 0); return, per value, whether it is still the greedy choice at every one of its
    positions (``[n_rows]`` bool)."""
    with torch.set_grad_enabled(bool(weight)):
        logits = logits_at(model, b.ids, b.mask, b.rows, b.positions)[0].float()
        if weight:
            logp = torch.log_softmax(logits, -1)
            (-weight * _per_row_mean(logp.gather(1, b.options[:, :1])[:, 0], b.rows, b.n_rows).sum()).backward()
    hit = (logits.detach().argmax(-1) == b.options[:, 0]).float()
    return _per_row_mean(hit, b.rows, b.n_rows) == 1


def loosen_associations(model: nn.Module, arch: ModelArch, secrets: Sequence[ValueSequence],
                        alternatives: Mapping[int, Sequence[int]], kept: Sequence[ValueSequence],
                        benign: Sequence[Sequence[int]], cfg: AssociationConfig,
                        counterfactual: Sequence[ValueSequence] = ()) -> AssociationResult | None:
    """Train and apply the middle-layer change (module docstring); None when no secret has a digit position.

    Args:
        model, arch: the model (eval mode) and ``resolve_arch(model)``; its FF2 weights are edited in place.
        secrets: each secret's prompt and value.
        alternatives: digit token → the other tokens of its shape (``erase.format_alternatives``); a value
            position is scored when its token has alternatives.
        kept: the guarded retained items (their values keep their likelihood).
        benign: benign texts (every position guarded).
        cfg: the stage's settings (``cfg.steps`` > 0).
        counterfactual: other contexts continued by values nobody has (their value positions' keys form a
            covariance of their own, added with ``cfg.counterfactual_weight``).
    """
    start = time.perf_counter()
    device = arch.unembed.weight.device
    secrets = [s for s in secrets if any(alternatives.get(t) for t in s.value_ids)]
    if not secrets:
        logger.info("association: no secret has a digit position; skipped")
        return None
    positions = [[j for j, t in enumerate(s.value_ids) if alternatives.get(t)] for s in secrets]
    scored = _batches([(s.prompt_ids, s.value_ids) for s in secrets], positions,
                      [[[s.value_ids[j], *alternatives[s.value_ids[j]]] for j in pos]
                       for s, pos in zip(secrets, positions, strict=True)], device)
    seen = sum(len(k.prompt_ids) + len(k.value_ids) for k in kept) + sum(map(len, benign)) \
        + sum(len(s.value_ids) for s in counterfactual)
    if seen < cfg.min_guard_fraction * arch.d_ff:
        logger.info("association: the guard has %d positions, fewer than the %g × d_ff = %d it needs to see every "
                    "key direction (those it never saw would be free and unpenalised); skipped", seen,
                    cfg.min_guard_fraction, cfg.min_guard_fraction * arch.d_ff)
        return None
    layers = association_layers(cfg, arch.n_layers)
    cov = {layer: torch.zeros(arch.d_ff, arch.d_ff, dtype=torch.float64) for layer in layers}
    kept_keys: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    n = 0
    for seq, value_start in [(list(k.prompt_ids) + list(k.value_ids), len(k.prompt_ids)) for k in kept] + \
            [(list(b), None) for b in benign]:
        keys = _keys(model, arch, layers, seq)
        n += len(seq)
        for layer in layers:
            cov[layer] += keys[layer].T @ keys[layer]
            if value_start is not None:
                kept_keys[layer].append(keys[layer][value_start - 1:])
    cf_cov = _value_covariance(model, arch, layers, counterfactual)
    bases, penalties = {}, {}
    for layer in layers:
        c = cov[layer] / max(n, 1) + (cfg.counterfactual_weight * cf_cov[layer] if cf_cov else 0)
        held = torch.cat(kept_keys[layer]) if kept_keys[layer] else None
        b = edit_subspace(c, held, cfg.null_tau) if n or cf_cov else torch.eye(arch.d_ff)  # no guard: all
        bases[layer] = b.to(device)
        penalties[layer] = (b.double().T @ c @ b.double()).float().to(device)
    dims = {layer: int(b.shape[1]) for layer, b in bases.items()}
    if not any(dims.values()):
        logger.info("association: the guard leaves no key direction free in layers %d–%d; skipped", layers[0],
                    layers[-1])
        return None
    logger.info("association: layers %d–%d, edit subspace ranks %s", layers[0], layers[-1], dims)
    deltas = {layer: torch.zeros(arch.d_model, dims[layer], device=device, requires_grad=True)
              for layer in layers}
    retain = _batches([(k.prompt_ids, k.value_ids) for k in kept], [range(len(k.value_ids)) for k in kept],
                      [[[t] for t in k.value_ids] for k in kept], device) if kept else []
    def add_change(layer: int):  # forward hook: FF2 output + the trained change (float32, weights' dtype out)
        return lambda mod, args, out: out + ((args[0].float() @ bases[layer]) @ deltas[layer].T).to(out.dtype)

    changes = [(arch.mlp_out[layer], "forward", add_change(layer)) for layer in layers if dims[layer]]
    frozen = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in frozen:
        p.requires_grad_(False)
    opt = torch.optim.Adam(list(deltas.values()), lr=cfg.lr)
    losses, steps, reproduced = [], 0, None
    last: dict[int, torch.Tensor] = {}  # the deltas before the latest step (kept only when there is a check)
    try:
        with torch.enable_grad(), hooks(changes):
            while True:
                opt.zero_grad()
                # the guarded values the model reproduced before the stage must stay reproduced: the first pass
                # that loses one undoes the last step and ends training (the retain loss's pass, read for free)
                weight = cfg.retain_weight if steps < cfg.steps else 0.0
                held = torch.cat([_kept_values(model, b, weight) for b in retain]) if retain else None
                if reproduced is None:
                    reproduced = held
                elif held is not None and bool((reproduced & ~held).any()):
                    with torch.no_grad():
                        for layer, d in deltas.items():
                            d.copy_(last[layer])
                    steps -= 1
                    logger.info("association: a guarded value stopped being reproduced after step %d; that step "
                                "is undone and training stops", steps + 1)
                    break
                if steps == cfg.steps:
                    break
                if retain:
                    last = {layer: d.detach().clone() for layer, d in deltas.items()}
                losses.append(sum(_digit_hinge(model, b) for b in scored) / len(secrets))
                if cfg.covariance_weight:
                    sum(((deltas[layer] @ penalties[layer]) * deltas[layer]).sum()
                        for layer in layers).mul(cfg.covariance_weight).backward()
                opt.step()
                steps += 1
    finally:
        for p, flag in frozen:
            p.requires_grad_(flag)
    backup = snapshot(arch, {layer: torch.arange(arch.d_ff) for layer in layers if dims[layer]})
    with torch.no_grad():
        for layer in backup.layers:
            change = bases[layer] @ deltas[layer].detach().T  # [d_ff, d_model]: each neuron's write vector
            add_to_neurons(arch.mlp_out[layer], arch.spec.transposed, torch.arange(arch.d_ff), change)
    seconds = time.perf_counter() - start
    logger.info("association: loss %.4f → %.4f over %d of %d steps (%.1f s)", losses[0], losses[-1], steps,
                cfg.steps, seconds)
    return AssociationResult(tuple(layers), dims, losses[0], losses[-1], backup, seconds, steps)
