"""The REVS driver: unlearn target tokens by rank editing in vocabulary space (revs-method.md §1.2, §1.7).

Offers :func:`unlearn` → :class:`~revs_engine.revs_results.RevsResult` (typed per-target
:class:`~revs_engine.revs_results.TargetResult` s, per-layer :class:`~revs_engine.revs_results.LayerResult` s,
every :class:`~revs_engine.edit.NeuronEdit`, and a backup of the original weights), :func:`edit_layer` and
:func:`final_ranks` (every target's final-layer rank on the current weights).

For every target (in list order) and every layer l = 0..L−1: gate the layer (§1.3), select neurons (§1.4), demote
the target in each neuron's projection (§1.5), choose how many neurons to edit from the MLP / residual rank windows
(§1.7) and write the edit into the weights at once, so later layers, tokens and secrets see the edited model
(§1.2).

Deliberate differences from the authors' code (all flagged in results, none change the algorithm's decisions):
- per-neuron deltas do not depend on which other neurons are demoted with them, so the n_max neurons are demoted
  once per layer and the k-loop of §1.7 reads every k's ranks from one table (:mod:`revs_engine.outer`; the code
  re-runs demotion and projection for every k);
- activations after an edit come from resuming the forward at the edited block (``resume=True``, see
  :mod:`revs_engine.resume`) instead of a full forward per layer;
- ``naive=True`` runs the §1.8 pseudocode as written (both of the above undone) and makes identical edits;
- convergence is reported per target (final-layer rank ≥ residual bottom margin) and per layer, never silent.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from revs_engine.arch import ModelArch, neuron_vectors
from revs_engine.capture import capture_activations, last_logits_only
from revs_engine.config import RevsConfig
from revs_engine.edit import NeuronEdit, WeightBackup, apply_edits, restore
from revs_engine.guard import RetainGuard, intact
from revs_engine.guard_projection import project_edit
from revs_engine.guard_stats import GuardStats, guard_statistics
from revs_engine.lens import VocabLens, rank_of
from revs_engine.outer import choose_k, choose_k_naive
from revs_engine.resume import LayerActs, LayerWalker
from revs_engine.revs_results import LayerResult, RevsResult, TargetResult, with_final
from revs_engine.select import GateDecision, gate_layer, select_neurons
from revs_engine.targets import TokenTarget

logger = logging.getLogger(__name__)


def _spread(neuron_act: torch.Tensor, neurons: torch.Tensor, delta: torch.Tensor, n_more: int,
            guard_var: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Append ``n_more`` neurons not in ``neurons``, each with a zero change, for the guard projection to use
    (``RevsConfig.guard_spread``): the most specific to the secret's context, ``|a_j| / (σ_j + ε)`` with ``σ_j²``
    the neuron's mean squared activation on the guard (``guard_var`` ``[d_ff]``; None: by ``|a_j|`` alone;
    ``benchmarks/RESULTS.md`` compares the two)."""
    if n_more <= 0:
        return neurons, delta
    strength = neuron_act.abs().float()
    if guard_var is not None:
        sigma = guard_var.float().clamp(min=0).sqrt()
        strength = strength / (sigma + 1e-3 * sigma.mean() + 1e-12)
    strength[neurons] = -1.0
    n_more = min(n_more, int((strength > 0).sum()))
    extra = torch.sort(strength, descending=True, stable=True).indices[:n_more]
    return torch.cat([neurons, extra]), torch.cat([delta, delta.new_zeros(n_more, delta.shape[1])])


@torch.no_grad()
def edit_layer(lens: VocabLens, arch: ModelArch, layer: int, acts: LayerActs, token_id: int, cfg: RevsConfig,
               bounds: dict[str, tuple[int, int]], gate_ranks: tuple[int, int],
               collateral: torch.Tensor | None = None, guard_act: torch.Tensor | None = None,
               guard_cov: torch.Tensor | None = None, *, guard_var: torch.Tensor | None = None,
               gate_logits: torch.Tensor | None = None,
               naive: bool = False) -> tuple[NeuronEdit, LayerResult] | None:
    """Compute (do not apply) the edit of one layer for one target (§1.4–§1.7); None when no neuron qualifies.

    ``guard_act`` ``[m, d_ff]`` (the guard's activations at this layer) with ``cfg.guard_projection > 0``
    re-weights the chosen neurons' changes (:func:`~revs_engine.guard_projection.project_edit`), spread over
    ``cfg.guard_spread`` more neurons (``cfg.final_spread`` at the last block when set); ranks are unchanged.
    ``guard_cov`` ``[d_ff, d_ff]`` (their ``AᵀA / m``, :meth:`~revs_engine.guard_stats.GuardStats.covariance`,
    on any device) replaces ``guard_act`` when given; ``guard_var`` ``[d_ff]`` (the unweighted mean
    squared activations, :meth:`~revs_engine.guard_stats.GuardStats.plain_variance`) sets the ridge's unit when
    the covariance weighs the value positions, and then also ranks the spread's neurons. Everything is computed
    in float32 or wider (``acts`` as the walker gives them, cast here; the weights may be bf16/fp16); the delta
    is float32.
    ``gate_logits``: the gate's ``rank_logits`` of the two streams, reused by the outer loop. ``naive``: run the
    outer loop as the §1.8 pseudocode does (:func:`~revs_engine.outer.choose_k_naive`; same edit, slower).
    """
    vectors = _wide(neuron_vectors(arch.mlp_out[layer], arch.spec.transposed).detach())  # [d_ff, d]
    acts = LayerActs(*(_wide(getattr(acts, name)) for name in _STREAMS))
    order, _, base_logits = select_neurons(lens, vectors, acts.neuron_act, token_id, cfg, collateral,
                                           with_logits=True)
    if order.numel() == 0:
        return None
    args = (lens, vectors[order], acts.neuron_act[order], acts.mlp_out, acts.resid_post, token_id, cfg, bounds)
    choice = (choose_k_naive(*args) if naive
              else choose_k(*args, base_logits=base_logits, gate_logits=gate_logits))
    k = choice.k
    neurons, delta = order[:k].clone(), choice.delta
    if (guard_act is not None or guard_cov is not None) and cfg.guard_projection > 0:
        spread = cfg.final_spread if layer == arch.n_layers - 1 and cfg.final_spread else cfg.guard_spread
        if spread > 0:  # the guard's per-neuron variance only when spreading (free with the cache)
            if guard_var is not None:  # unweighted: specific to the secret against every guarded position alike
                var = guard_var.to(neurons.device)
            else:
                var = (torch.diagonal(guard_cov).to(neurons.device) if guard_cov is not None
                       else guard_act.double().pow(2).mean(0))
            neurons, delta = _spread(acts.neuron_act, neurons, delta, spread, var)
        cov = None if guard_cov is None else _block(guard_cov, neurons)
        unit = None if guard_var is None else float(guard_var[neurons.to(guard_var.device)].double().mean())
        delta = project_edit(acts.neuron_act[neurons], delta, None if cov is not None else guard_act[:, neurons],
                             cfg.guard_projection, cov=cov, scale=unit)
    edit = NeuronEdit(layer, neurons, delta)
    result = LayerResult(layer, k, gate_ranks[0], gate_ranks[1], choice.rank_mlp, choice.rank_residual,
                         choice.accepted, choice.iterations, choice.neurons_converged, choice.neuron_iterations)
    return edit, result


_STREAMS = ("resid_pre", "resid_post", "attn_out", "mlp_out", "neuron_act")


def _wide(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 when it is a half type (bf16/fp16 weights or activations), else ``x`` itself."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def _block(cov: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Return ``cov[idx][:, idx]`` on ``idx``'s device (the covariance may live in host memory)."""
    at = idx.to(cov.device)
    return cov[at][:, at].to(idx.device)


def _final_and_residual_ranks(model, arch, ids: torch.Tensor, token_id: int, lens: VocabLens):
    cap = capture_activations(model, arch, ids)
    final = int(rank_of(cap.logits[0, 0], token_id))
    per_layer = tuple(int(r) for r in lens.ranks(cap.resid_post[0, 0], token_id))
    return final, per_layer


@torch.no_grad()
def unlearn_target(model: nn.Module, arch: ModelArch, lens: VocabLens, target: TokenTarget, cfg: RevsConfig, *,
                   target_index: int = 0, resume: bool = True, guard_stats: GuardStats | None = None,
                   naive: bool = False) -> tuple[TargetResult, list[NeuronEdit], WeightBackup | None, int]:
    """Edit every gated layer for one target, applying each edit at once; return result, edits, backup, calls."""
    start = time.perf_counter()
    ids = torch.tensor(target.prefix_ids, dtype=torch.long, device=arch.unembed.weight.device)[None]
    bounds = cfg.bounds(arch.vocab_size)
    t = target.token_id
    walker = LayerWalker(model, arch, ids, resume=resume and not naive)
    full_forwards = 2
    if walker.resume:  # the forward that recorded the block inputs already holds the "before" streams
        logits, resid = walker.initial_streams()
        rank_before, res_before = int(rank_of(logits, t)), tuple(int(r) for r in lens.ranks(resid, t))
        full_forwards = 0
    else:
        rank_before, res_before = _final_and_residual_ranks(model, arch, ids, t, lens)
    edits, results, backup = [], [], None
    for layer in range(arch.n_layers):
        acts = walker.layer(layer)
        gate = gate_layer(lens, acts.mlp_out, acts.resid_post, t, bounds["residual"][0], bounds["mlp"][1])
        done = None
        promote = promoting(gate, cfg, arch.vocab_size)  # the residual is demoted, this MLP still writes the token
        layer_bounds = {**bounds, "residual": (bounds["residual"][0], arch.vocab_size)} if promote else bounds
        if gate.edit or promote:
            contrast = guard_stats is not None and cfg.neuron_score == "contrast"
            collateral = guard_stats.collateral(layer, t) if contrast else None
            # the projection protects every guarded position: the measured ppl damage comes from positions
            # that do not predict t itself (number-heavy text), which the per-token collateral does not see
            project = guard_stats is not None and cfg.guard_projection > 0
            guard_cov = guard_stats.covariance(layer) if project else None
            weighted = project and guard_stats.value_weight > 0
            done = edit_layer(lens, arch, layer, acts, t, cfg, layer_bounds, (gate.rank_mlp, gate.rank_residual),
                              collateral, None, guard_cov, gate_logits=gate.logits, naive=naive,
                              guard_var=guard_stats.plain_variance(layer) if weighted else None)
        if done is not None:
            edit, res = done
            edit = NeuronEdit(edit.layer, edit.neurons, edit.delta, target_index)
            taken = apply_edits(model, arch, [edit])
            backup = taken if backup is None else backup.merged(taken)
            edits.append(edit)
            results.append(res)
        walker.commit(layer, edited=done is not None)
    if walker.resume:  # the walk's committed outputs are the edited model's residuals; the last one's lens
        resid = walker.final_residuals()  # projection is the model's own logits
        ranks = lens.ranks(resid, t)
        rank_after, res_after = int(ranks[-1]), tuple(int(r) for r in ranks)
    else:
        rank_after, res_after = _final_and_residual_ranks(model, arch, ids, t, lens)
    converged = rank_after >= bounds["residual"][0]
    result = TargetResult(target_index, target.secret_index, target.position, rank_before, rank_after,
                          rank_after, res_before, res_after, tuple(results), converged,
                          sum(r.outer_iterations for r in results), time.perf_counter() - start)
    return result, edits, backup, walker.forward_blocks + full_forwards * arch.n_layers


def promoting(gate: GateDecision, cfg: RevsConfig, vocab_size: int) -> bool:
    """Whether ``cfg.promoting_mlp`` edits a layer the gate skipped: its residual already ranks the target past
    the window, but its MLP output ranks it within the top ``promoting_mlp × vocab_size``."""
    return (cfg.promoting_mlp > 0 and gate.reason == "residual_demoted"
            and gate.rank_mlp < int(cfg.promoting_mlp * vocab_size))


def _secret_groups(targets: list[TokenTarget]) -> list[list[int]]:
    """Group consecutive target indices of the same secret (a secret's tokens are edited and checked together)."""
    groups: list[list[int]] = []
    for i, t in enumerate(targets):
        if groups and targets[groups[-1][-1]].secret_index == t.secret_index:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _stricter(cfg: RevsConfig) -> RevsConfig:
    """The next, more conservative attempt after the guard broke: weigh collateral twice as much (and, with the
    guard projection on, a quarter of its ridge: closer to the guard's null space)."""
    return dataclasses.replace(cfg, neuron_score="contrast", contrast_weight=max(2 * cfg.contrast_weight, 1.0),
                               guard_projection=cfg.guard_projection / 4)


@dataclass
class _Attempt:
    broken: int  # guarded items this secret's edit broke (intact before it, not after)
    results: list[TargetResult]
    edits: list[NeuronEdit]
    backup: WeightBackup
    guard_ok: torch.Tensor | None  # guarded items intact after it


@torch.no_grad()
def _unlearn_secret(model, arch, lens, targets, group, cfg, *, resume, guard, guard_stats, guard_ok, pad_id,
                    naive=False) -> tuple[_Attempt, int]:
    """Edit one secret's targets; with a guard, verify and redo stricter when retained items broke (§8).

    Returns the kept attempt (its edits are in the model) and the block calls of all attempts.
    """
    retries = cfg.guard_retries if guard_ok is not None else 0
    attempt_cfg, best, last, calls = cfg, None, None, 0
    for attempt in range(1, retries + 2):
        results, edits, backup = [], [], WeightBackup({}, {})
        for i in group:
            res, target_edits, taken, n_calls = unlearn_target(model, arch, lens, targets[i], attempt_cfg,
                                                               target_index=i, resume=resume,
                                                               guard_stats=guard_stats, naive=naive)
            results.append(res)
            edits += target_edits
            calls += n_calls
            if taken is not None:
                backup = backup.merged(taken)
        now_ok = None if guard_ok is None else intact(model, guard.items, pad_id=pad_id)
        broken = 0 if guard_ok is None else int((guard_ok & ~now_ok).sum())
        last = _Attempt(broken, [dataclasses.replace(r, guard_broken=broken, attempts=attempt) for r in results],
                        edits, backup, now_ok)
        if best is None or broken < best.broken:
            best = last
        if broken == 0 or attempt == retries + 1:
            break
        logger.info("secret %d: the edit broke %d retained item(s); redoing it stricter (attempt %d)",
                    targets[group[0]].secret_index, broken, attempt + 1)
        restore(model, arch, backup)
        attempt_cfg = _stricter(attempt_cfg)
    if best is not last:  # an earlier attempt broke fewer retained items: put its edits back
        restore(model, arch, last.backup)
        best.backup = apply_edits(model, arch, best.edits)
    return best, calls


def guard_needs(cfg: RevsConfig, *, checked: bool) -> tuple[bool, bool]:
    """Return ``(covariance, collateral)``: which guard statistics an edit with ``cfg`` reads — the covariance for
    the guard projection, the collateral for contrast scoring (the config's own, or the stricter redo after a
    failed guard check when ``checked``)."""
    return cfg.guard_projection > 0, cfg.neuron_score == "contrast" or (checked and cfg.guard_retries > 0)


@torch.no_grad()
def unlearn(model: nn.Module, arch: ModelArch, targets: list[TokenTarget], cfg: RevsConfig, *,
            lens: VocabLens | None = None, progress: bool = False, resume: bool = True,
            guard: RetainGuard | None = None, pad_id: int = 0,
            guard_stats: GuardStats | None = None, naive: bool = False) -> RevsResult:
    """Unlearn ``targets`` in order with REVS; the model's weights are edited in place.

    Args:
        model: causal LM in eval mode, in any dtype: the lens, pseudo-inverse and demotion compute in float32
            and the edits are written back rounded once to the weights' dtype (restored bit-exactly in any dtype).
        arch: ``resolve_arch(model)``.
        targets: teacher-forced target tokens (:func:`~revs_engine.targets.select_targets`); the tokens of one
            secret must be consecutive.
        cfg: hyperparameters.
        lens: a :class:`VocabLens` to reuse (its cached pseudo-inverse); built if None.
        progress: show a tqdm progress bar over targets.
        resume: resume forwards from the edited block (fast); False runs a full forward per layer.
        naive: the §1.8 pseudocode as written, for the speed comparison — a full forward per layer, and per outer
            iteration a fresh demotion of the first k neurons and a fresh projection of the edited streams. Makes
            the same edits as the default, slower.
        guard: retained items / benign text the edit must leave alone (:mod:`revs_engine.guard`). Its activations
            feed ``neuron_score="contrast"``; with ``cfg.guard_check`` every secret's edit is verified on the
            guard's items and redone stricter (up to ``cfg.guard_retries`` times) when one of them broke.
        pad_id: padding id for the guard's batched passes.
        guard_stats: the guard's :class:`~revs_engine.guard_stats.GuardStats` on the unedited model when the
            caller already has them (they must hold what :func:`guard_needs` asks, for these targets' tokens);
            computed in one streaming pass otherwise.

    Returns:
        A :class:`RevsResult`; ``edit.restore(model, arch, result.backup)`` undoes the whole call bit-exactly.
    """
    torch.manual_seed(cfg.seed)
    lens = lens or VocabLens(model, arch)
    start = time.perf_counter()
    guard_ok = None
    if guard is not None and len(guard):
        if cfg.guard_check and guard.items:
            guard_ok = intact(model, guard.items, pad_id=pad_id)
        covariance, collateral = guard_needs(cfg, checked=guard_ok is not None)
        tokens = {t.token_id for t in targets}
        if guard_stats is not None:
            guard_stats.check(covariance=covariance, collateral=collateral, tokens=tokens)
        elif covariance or collateral:
            guard_stats = guard_statistics(model, arch, guard, covariance=covariance, collateral=collateral,
                                           tokens=tokens, pad_id=pad_id)
    else:
        guard_stats = None
    results: list[TargetResult | None] = [None] * len(targets)
    edits, calls = [], 0
    backup = WeightBackup({}, {})
    bounds = cfg.bounds(arch.vocab_size)
    bar = tqdm(total=len(targets), desc="REVS", unit="target", disable=not progress)
    for group in _secret_groups(targets):
        kept, n_calls = _unlearn_secret(model, arch, lens, targets, group, cfg, resume=resume, guard=guard,
                                        guard_stats=guard_stats, guard_ok=guard_ok, pad_id=pad_id, naive=naive)
        for i, r in zip(group, kept.results, strict=True):
            results[i] = r
            if not r.converged:
                logger.warning("target %d (secret %d, position %d) did not converge: final rank %d < %d", i,
                               r.secret_index, r.position, r.rank_after, bounds["residual"][0])
        edits += kept.edits
        calls += n_calls
        guard_ok = kept.guard_ok
        backup = backup.merged(kept.backup)
        bar.update(len(group))
    ranks = final_ranks(model, arch, targets)  # later edits may re-promote earlier targets
    bar.close()
    finals = [with_final(res, rank) for res, rank in zip(results, ranks, strict=True)]
    out = RevsResult(tuple(finals), tuple(edits), backup, time.perf_counter() - start, calls)
    logger.info("REVS: %s", out.summary())
    return out


@torch.no_grad()
def final_ranks(model: nn.Module, arch: ModelArch, targets: Sequence[TokenTarget]) -> list[int]:
    """Return each target's rank in the model's output at its prefix, on the current weights."""
    out = []
    for target in targets:
        ids = torch.tensor(target.prefix_ids, dtype=torch.long, device=arch.unembed.weight.device)[None]
        logits = model(input_ids=ids, use_cache=False, **last_logits_only(model)).logits[0, -1]
        out.append(int(rank_of(logits, target.token_id)))
    return out
