"""Re-project each edited block's whole change once an erase's passes are done (``RevsConfig.joint_projection``).

Each REVS edit is projected on its own (:func:`~revs_engine.guard_projection.project_edit`): its change at its
secret's context is kept and its change at the guard's positions is small, but not zero (the ridge keeps it near
REVS's change), and an erase makes dozens of edits per block whose small traces add up — on SmolLM2 they add up
on the digits, which then gain probability on ordinary prose. This step takes each block's total change ``Δ``
over the neurons the erase touched and replaces it with the ``Δ'`` that keeps the MLP output at *every* context
an edit of the block was made at (``A Δ' = A Δ``, :func:`~revs_engine.guard_projection.project_jointly`) while
changing the guard's positions least: the ranks the erase reached at those contexts are kept; what the sum does
elsewhere is minimised as one.

What "the guard's positions" are is ``RevsConfig.joint_covariance``'s choice: the retain guard's covariance, a
covariance over a sample of the training corpus (:mod:`revs_engine.corpus_covariance`), or both.

Blocks are taken in order, each context's activations read on the model as the earlier blocks left it (a block's
MLP input depends on the blocks before it, not on its own write vectors): in one forward pass over every context
when they fit in memory (a hook on each block re-projects it just before it writes), else one pass per block.
The result is one more :class:`~revs_engine.edit.NeuronEdit` per block (``target_index`` −1), applied in place;
the erase's backup already holds those neurons' originals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

import torch
from torch import nn

from revs_engine.arch import ModelArch, neuron_vectors
from revs_engine.capture import capture_activations, hooks, model_forward, right_padded
from revs_engine.config import RevsConfig
from revs_engine.corpus_covariance import corpus_covariance
from revs_engine.edit import NeuronEdit, WeightBackup, apply_edits
from revs_engine.guard_projection import project_jointly
from revs_engine.guard_stats import GuardStats
from revs_engine.probes import batch_size_for
from revs_engine.targets import TokenTarget

logger = logging.getLogger(__name__)

Contexts = dict[int, list[tuple[int, ...]]]


def note_contexts(contexts: Contexts, targets: Sequence[TokenTarget], edits: Sequence[NeuronEdit]) -> None:
    """Add to ``contexts`` (layer → prefixes, each once, in order) the prefix of every edit of one
    :func:`~revs_engine.revs.unlearn` call (``edits``' target indices index that call's ``targets``)."""
    for e in edits:
        if e.target_index >= 0:
            prefix = tuple(targets[e.target_index].prefix_ids)
            seen = contexts.setdefault(e.layer, [])
            if prefix not in seen:
                seen.append(prefix)


def add_rewritten_contexts(contexts: Contexts, prompt_ids: Sequence[Sequence[int]],
                           rewrites: Sequence[Sequence[tuple[int, ...]]]) -> int:
    """Add to each layer's contexts, for every context that starts with a secret's prompt, the same context after
    each rewriting of that prompt (``rewrites[i]``: :func:`~revs_engine.perturb_rounds.rewritten_prompts`), so
    the re-projection keeps the block's change after those prompts too (``RevsConfig.joint_variants``); return
    how many contexts were added. A context matching no prompt (one already rewritten) gets none."""
    by_prompt: dict[tuple[int, ...], int] = {}
    for i, p in enumerate(prompt_ids):
        by_prompt.setdefault(tuple(p), i)
    widths = sorted({len(p) for p in by_prompt}, reverse=True)  # the longest matching prompt wins
    added = 0
    for seen in contexts.values():
        for prefix in list(seen):
            i = next((by_prompt[prefix[:w]] for w in widths if w <= len(prefix) and prefix[:w] in by_prompt), None)
            if i is None:
                continue
            rest = prefix[len(prompt_ids[i]):]
            for moved in rewrites[i]:
                extra = tuple(moved) + rest
                if extra not in seen:
                    seen.append(extra)
                    added += 1
    return added


@torch.no_grad()
def reproject_blocks(model: nn.Module, arch: ModelArch, contexts: Mapping[int, Sequence[tuple[int, ...]]],
                     backup: WeightBackup, stats: GuardStats, lam: float | Mapping[int, float], *, pad_id: int = 0,
                     corpus: Mapping[int, torch.Tensor] | None = None, covariance: str = "guard"
                     ) -> list[NeuronEdit]:
    """Re-project the change of every block in ``contexts`` (module docstring) with ridge ``lam``, in place;
    return the applied edits (one per block whose change moved).

    Args:
        contexts: layer → the prefixes its edits were made at (:func:`note_contexts`).
        backup: the erase's backup: the blocks' touched neurons and their original write vectors.
        stats: the guard's statistics with the covariance (the guard projection's).
        lam: ridge weight (one for every block, or layer → its own) relative to the touched neurons' mean
            squared activation (over the positions ``covariance`` names).
        corpus: layer → the corpus covariance of its touched neurons (:func:`corpus_covariances`), needed when
            ``covariance`` is ``corpus`` or ``both``.
        covariance: ``guard``, ``corpus`` or ``both`` (each scaled to unit mean variance, weighed equally).
    """
    if covariance != "guard" and corpus is None:
        raise ValueError(f"covariance = {covariance!r} needs the corpus covariance of every re-projected block")
    layers = [ly for ly in sorted(contexts) if ly in backup.neurons and contexts[ly]]

    def solve(layer: int, acts: torch.Tensor) -> NeuronEdit | None:  # acts: [n, d_ff] at the layer's contexts
        neurons = backup.neurons[layer]
        weights = neuron_vectors(arch.mlp_out[layer], arch.spec.transposed)
        idx = neurons.to(weights.device)
        now = weights[idx].double() - backup.original[layer].to(weights.device).double()  # [k, d]
        cov, unit = _covariance(stats, layer, neurons, None if corpus is None else corpus[layer], covariance)
        dev = cov.device
        ridge = lam if isinstance(lam, int | float) else lam[layer]
        new = project_jointly(acts[:, idx.to(acts.device)].to(dev), now.to(dev), cov, ridge, scale=unit)
        change = (new - now.to(dev)).float().to(weights.device)
        if not bool(change.abs().max() > 0):
            return None
        edit = NeuronEdit(layer, neurons, change)
        apply_edits(model, arch, [edit])
        return edit

    union = _distinct(contexts[ly] for ly in layers)
    if _fits_one_pass(model, union, len(layers)):
        return _in_one_pass(model, arch, {ly: contexts[ly] for ly in layers}, union, solve, pad_id)
    out = []
    for layer in layers:
        edit = solve(layer, _context_acts(model, arch, layer, contexts[layer], pad_id))
        if edit is not None:
            out.append(edit)
    return out


#: Memory taken as free on the CPU when deciding whether one forward pass holds every context of a joint
#: re-projection (:func:`~revs_engine.probes.batch_size_for` lets a pass use
#: :data:`~revs_engine.probes.DEVICE_MEMORY_SHARE` of it; on a CUDA device, of its free memory); more contexts than
#: fit are read one pass per block.
ONE_PASS_CPU_BYTES = 8 * 2**30


def _distinct(per_layer: Iterable[Sequence[tuple[int, ...]]]) -> dict[tuple[int, ...], int]:
    """Every distinct context of the blocks, in first-seen order → its row in a batch of them."""
    union: dict[tuple[int, ...], int] = {}
    for prefixes in per_layer:
        for p in prefixes:
            union.setdefault(tuple(p), len(union))
    return union


def _fits_one_pass(model: nn.Module, union: Collection[tuple[int, ...]], blocks: int) -> bool:
    """Whether the ``blocks``' distinct contexts ``union`` fit one forward pass (:data:`ONE_PASS_CPU_BYTES`)."""
    if not union:
        return False
    width = max(len(p) for p in union)
    free = None if next(model.parameters()).device.type == "cuda" else ONE_PASS_CPU_BYTES
    fits = len(union) <= batch_size_for(model, width, free, most=len(union))
    logger.info("joint re-projection: %d block(s), %d distinct context(s) of up to %d tokens, %s", blocks,
                len(union), width, "one pass" if fits else "one pass per block (too many for one)")
    return fits


class _DoneSignal(Exception):  # noqa: N818 (a signal, not an error)
    """Raised by the last re-projected block's hook: nothing after its MLP input is needed."""


def _in_one_pass(model: nn.Module, arch: ModelArch, contexts: Mapping[int, Sequence[tuple[int, ...]]],
                 union: Mapping[tuple[int, ...], int], solve: Callable[[int, torch.Tensor], NeuronEdit | None],
                 pad_id: int) -> list[NeuronEdit]:
    """Re-project every block of ``contexts`` during one forward pass over all their contexts: a hook on each
    block's FF2 reads its MLP input at the block's contexts and applies ``solve``'s edit before the block writes,
    so each block reads its input as the earlier blocks' re-projections left it — what one pass per block gives,
    at the cost of one. ``union``: every context → its row (:func:`_distinct`)."""
    device = arch.unembed.weight.device
    ids, mask = right_padded(list(union), pad_id)
    last = (mask.sum(1) - 1).to(device)
    final = max(contexts)
    out: list[NeuronEdit] = []

    def hook_for(layer: int) -> Callable:
        rows = torch.tensor([union[tuple(p)] for p in contexts[layer]], device=device)

        def hook(module, args, kwargs):
            x = args[0] if args else kwargs["input"]  # [batch, seq, d_ff]; blocks may sit on several devices
            here = rows.to(x.device)
            edit = solve(layer, x[here, last.to(x.device)[here]].double())
            if edit is not None:
                out.append(edit)
            if layer == final:
                raise _DoneSignal
        return hook

    body = getattr(model, "base_model", model)  # no unembedding: only the blocks' inputs are read
    try:
        with hooks([(arch.mlp_out[layer], "pre", hook_for(layer)) for layer in sorted(contexts)]):
            model_forward(body, ids.to(device), mask.to(device))
    except _DoneSignal:
        pass
    return out


def reproject_erase(model: nn.Module, arch: ModelArch, contexts: Contexts, backup: WeightBackup, stats: GuardStats,
                    cfg: RevsConfig, pad_id: int = 0, corpus: Sequence[Sequence[int]] = (),
                    demoted: Collection[int] = ()) -> list[NeuronEdit]:
    """The joint re-projection of an erase's edited blocks (``cfg.joint_projection`` before the last block,
    ``cfg.joint_final`` for it; a λ of 0 leaves those blocks as they are), away from the positions
    ``cfg.joint_covariance`` names (the corpus covariance read in one pass before any block moves; its positions
    before a ``demoted`` token weighed by ``cfg.corpus_value_weight``)."""
    last = arch.n_layers - 1
    ridge = {ly: cfg.joint_final if ly == last else cfg.joint_projection for ly in contexts}
    ridge = {ly: lam for ly, lam in ridge.items() if lam}  # one pass for every block the settings re-project
    if not ridge:  # no edited block the settings re-project
        logger.info("joint re-projection: 0 block(s) re-projected")
        return []
    covs = None
    if cfg.joint_covariance != "guard":
        covs = corpus_covariances(model, arch, list(ridge), backup, corpus, pad_id=pad_id, before=demoted,
                                  weight=cfg.corpus_value_weight)
    edits = reproject_blocks(model, arch, {ly: contexts[ly] for ly in ridge}, backup, stats, ridge, pad_id=pad_id,
                             corpus=covs, covariance=cfg.joint_covariance)
    logger.info("joint re-projection: %d block(s) re-projected", len(edits))
    return edits


def corpus_covariances(model: nn.Module, arch: ModelArch, layers: Sequence[int], backup: WeightBackup,
                       texts: Sequence[Sequence[int]], *, pad_id: int = 0, before: Collection[int] = (),
                       weight: float = 0.0) -> dict[int, torch.Tensor]:
    """Return layer → the corpus covariance ``[k, k]`` of the neurons the erase touched in it (``backup``), over
    ``texts`` on the model as it is (one streaming pass for every layer; positions before a token of ``before``
    weighed by ``weight`` more, :func:`~revs_engine.corpus_covariance.corpus_covariance`)."""
    if not texts:
        raise ValueError("joint_covariance 'corpus' / 'both' needs EraseInputs.corpus: a sample of the training "
                         "corpus (texts holding none of the secrets) — pass one, or set joint_covariance = "
                         "'guard'")
    picks = {layer: backup.neurons[layer] for layer in layers if layer in backup.neurons}
    covs, m = corpus_covariance(model, arch, texts, picks, pad_id=pad_id, before=before, weight=weight)
    logger.info("joint re-projection: corpus covariance of %d block(s) over %d positions", len(covs), m)
    return covs


def _covariance(stats: GuardStats, layer: int, neurons: torch.Tensor, corpus: torch.Tensor | None,
                which: str) -> tuple[torch.Tensor, float]:
    """``(covariance [k, k], its ridge unit)`` of the touched ``neurons`` for ``which`` (module docstring)."""
    cov = stats.covariance(layer)
    dev = cov.device
    on_dev = neurons.to(dev)
    guard = cov[on_dev][:, on_dev].double()
    unit = float(stats.plain_variance(layer)[on_dev].double().mean())
    if which == "guard":
        return guard, unit
    mine = corpus.to(dev).double()
    own = float(torch.diagonal(mine).mean())
    if which == "corpus":
        return mine, own
    if unit <= 0 or own <= 0:  # one side never fires: the other alone says where the change may go
        return (mine, own) if unit <= 0 else (guard, unit)
    return 0.5 * (guard / unit + mine / own), 1.0


def _context_acts(model: nn.Module, arch: ModelArch, layer: int, prefixes: Sequence[tuple[int, ...]],
                  pad_id: int, batch: int = 16) -> torch.Tensor:
    """Return ``[n, d_ff]`` float64: the block's MLP input (FF2 activations) at the last token of each prefix."""
    device = arch.unembed.weight.device
    rows = []
    for start in range(0, len(prefixes), batch):
        ids, mask = right_padded(prefixes[start:start + batch], pad_id)
        cap = capture_activations(model, arch, ids.to(device), mask.to(device), layers=[layer], logits=False)
        rows.append(cap.neuron_act[:, 0, 0].double())
    return torch.cat(rows)
