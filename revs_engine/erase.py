"""The one erase entry point: "these secrets must go, these items must stay" → the edits.

Offers :func:`erase`, with its inputs and results (:class:`Secret`, :class:`EraseInputs`, :class:`TargetOutcome`,
:class:`EraseResult`, defined in :mod:`revs_engine.erase_types`) and its guard (:func:`build_guard`, in
:mod:`revs_engine.erase_guard`). ``revs unlearn``, both
flows, the demo and ``revs_bench`` call :func:`erase` with an :class:`~revs_engine.presets.EraseConfig`; nothing
else assembles guards, positions or fallbacks.

What happens, in order (each step only when the configuration uses it):
0. the association stage (``revs.association``, :mod:`revs_engine.association`): the middle layers stop
   preferring each secret's digits after its prompt, kept away from the retained items and benign text;
1. the retain guard (:mod:`revs_engine.erase_guard`, :mod:`revs_engine.guard`): the retained memorized items,
   benign text and format-preserving decoys of every secret after its own prompt (:mod:`revs_engine.decoys`), each
   cut to its last
   :data:`GUARD_PREFIX_TOKENS` tokens; what the edit needs from its activations on the unedited model is
   computed in one streaming pass (:func:`guard_stats_for`, memory independent of the guard's size);
2. the target positions of each secret: skip/stop rules per entity type, then the ``distinct`` rule (positions
   least like the guard's contexts, :mod:`revs_engine.positions`) or a token-id rule (:mod:`revs_engine.targets`);
   with ``targets.spellings``, the other tokens that begin writing each target's text too;
3. REVS (:func:`revs_engine.revs.unlearn`) or FT-L (:func:`revs_engine.ftl.unlearn_ftl`) on those targets;
   settle rounds (``revs.settle_rounds``): targets that later edits pulled back below the residual window (or
   that stopped short of it) are edited again, until every final rank holds or the rounds run out;
   perturbation rounds (``revs.perturb_rounds``, :mod:`revs_engine.perturb_rounds`): targets whose rank comes
   back below the window after a perturbed prompt are edited again after that prompt;
4. fallback rounds (``targets.fallback``): a secret none of whose targets left the top ranks gets its next
   position edited, one per round;
   With ``revs.relative_demotion`` each digit token is demoted relative to the other digits
   (:func:`format_alternatives`): its logit falls while theirs stay, so the format no longer points at it;
5. cover (``targets.cover_ranks``): every other eligible position of each secret is edited to a shallow final
   rank, so that what format-aware attacks read off the untouched positions is gone too;
6. the joint re-projection (``revs.joint_projection``, ``revs.joint_final``,
   :mod:`revs_engine.joint_reprojection`): each edited block's whole change re-projected at once, keeping the
   MLP output at every context it was edited at and changing least the positions of the guard and/or of a
   corpus sample (``revs.joint_covariance``, :attr:`EraseInputs.corpus`; skipped, and said so, without one);
   then, with ``revs.joint_settle_rounds``, the settle and perturbation checks once more (the targets the joint
   step moved back inside the window are edited again; those edits are not re-projected).
The model's weights are edited in place; ``edit.restore(model, arch, result.backup)`` undoes everything.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence

from torch import nn

from revs_engine.arch import ModelArch
from revs_engine.association import AssociationResult, ValueSequence, loosen_associations
from revs_engine.config import RevsConfig
from revs_engine.decoys import decoy_values
from revs_engine.edit import NeuronEdit
from revs_engine.erase_guard import (
    GUARD_BENIGN,
    GUARD_ITEMS,
    GUARD_PREFIX_TOKENS,
    build_guard,
    guarded_value_tokens,
)
from revs_engine.erase_types import EraseInputs, EraseResult, Secret, TargetOutcome
from revs_engine.ftl import unlearn_ftl
from revs_engine.guard import RetainGuard
from revs_engine.guard_stats import GuardStats, OverlapQuery, guard_statistics
from revs_engine.joint_reprojection import Contexts, add_rewritten_contexts, note_contexts, reproject_erase
from revs_engine.lens import VocabLens
from revs_engine.perturb_rounds import (
    dropped_variants,
    lagging_after_perturbation,
    perturbed_variants,
    rewritten_prompts,
)
from revs_engine.positions import ranked_positions
from revs_engine.presets import EraseConfig, switched_off
from revs_engine.revs import final_ranks, guard_needs, unlearn
from revs_engine.revs_results import settled, with_final
from revs_engine.targets import (
    TokenTarget,
    config_for_entity,
    copied_last,
    copied_positions,
    eligible_positions,
    order_positions,
    shared_positions,
    spelling_targets,
    targets_at,
)

logger = logging.getLogger(__name__)

#: The association stage's covariance reads benign texts up to this many tokens (its guard is only the
#: retained items and the benign texts, so each text's later positions count).
ASSOCIATION_TEXT_TOKENS = 256
#: A token's format alternatives are listed only while there are at most this many (every other digit string of
#: its length: one- and two-digit tokens); longer number tokens keep the paper's demotion direction.
MAX_ALTERNATIVES = 99


def format_alternatives(secrets: Sequence[Secret], encode: Callable[[str], list[int]]
                        ) -> dict[int, tuple[int, ...]]:
    """Return, for every token of ``secrets`` that is a run of ASCII digits (with the whitespace before it, as
    the tokenizer wrote it), the other single tokens of the same shape: every other digit string of its length
    that ``encode`` writes as one token (at most :data:`MAX_ALTERNATIVES`; longer runs get none)."""
    out: dict[int, tuple[int, ...]] = {}
    for s in secrets:
        for tok, text in zip(s.secret_ids, s.token_texts, strict=True):
            core = text.lstrip()
            if tok in out or not (core.isascii() and core.isdigit()) or 10 ** len(core) - 1 > MAX_ALTERNATIVES:
                continue
            lead, alts = text[:len(text) - len(core)], []
            for n in range(10 ** len(core)):
                ids = encode(lead + str(n).zfill(len(core)))
                if len(ids) == 1 and ids[0] != tok:
                    alts.append(ids[0])
            out[tok] = tuple(sorted(set(alts)))
    return {t: a for t, a in out.items() if a}


def _eligible(secrets: Sequence[Secret], cfg: EraseConfig) -> list[list[int]]:
    """Every secret's eligible positions under its entity's skip/stop rules."""
    rules = cfg.revs.targets
    return [eligible_positions(list(s.token_texts), config_for_entity(rules, s.entity_type)) for s in secrets]


def guard_stats_for(model: nn.Module, arch: ModelArch, inputs: EraseInputs, config: EraseConfig, *,
                    pad_id: int = 0, complete: bool = False) -> GuardStats | None:
    """Return what an erase of ``inputs`` with ``config`` reads from its guard (None without one), in one streaming
    pass over the guard (:func:`~revs_engine.guard_stats.guard_statistics`): the covariance for the guard
    projection, the collateral of every secret token for contrast scoring, the overlap of every secret's eligible
    positions for the ``distinct`` rule. ``complete`` computes all three (a caller that erases the same inputs with
    several configurations of the same decoy count, e.g. the benchmark, reuses it)."""
    if not config.uses_guard:
        return None
    guard, _ = build_guard(inputs, config.revs.decoys, config.revs.cross_decoys, config.revs.cross_secrets)
    if guard is None:
        return None
    covariance, collateral, distinct = _stats_needed(config, guard)
    if not (covariance or collateral or distinct or complete):
        return None
    queries = [OverlapQuery(s.prompt_ids, s.secret_ids, tuple(e))
               for s, e in zip(inputs.forget, _eligible(inputs.forget, config), strict=True)]
    return guard_statistics(model, arch, guard, covariance=covariance or complete,
                            collateral=collateral or complete, tokens=_tokens(inputs),
                            queries=queries if distinct or complete else [], pad_id=pad_id,
                            value_weight=config.revs.guard_value_weight)


def _stats_needed(config: EraseConfig, guard: RetainGuard) -> tuple[bool, bool, bool]:
    """Return ``(covariance, collateral, overlap)``: which guard statistics an erase with ``config`` reads."""
    covariance, collateral = guard_needs(config.revs, checked=config.revs.guard_check and bool(guard.items))
    revs = config.method == "revs"  # FT-L reads the guard only for the distinct positions
    return covariance and revs, collateral and revs, config.revs.targets.method == "distinct"


def _tokens(inputs: EraseInputs) -> set[int]:
    """Every token an erase of ``inputs`` may target (any position of any secret)."""
    return {t for s in inputs.forget for t in s.secret_ids}


def ranked_positions_of(secrets: Sequence[Secret], cfg: EraseConfig, stats: GuardStats | None,
                        decode: Callable[[list[int]], str] | None = None,
                        shared: set[int] | None = None) -> list[list[int]]:
    """Every secret's eligible positions in the order targets are taken from them (the first ``max_tokens`` are
    the targets, the next ones the fallbacks): least like the guard's contexts first for the ``distinct`` rule
    (from the guard statistics' overlap; without a guard it is the ``rarest`` rule), else the rule's order; with
    ``targets.shared_last``, the positions whose token is in ``shared`` (:func:`guarded_value_tokens`) after the
    others; with ``targets.copied_last`` and ``decode``, the positions the secret's prompt spells last
    (:func:`~revs_engine.targets.copied_positions`)."""
    rules = cfg.revs.targets
    out = []
    for i, (s, eligible) in enumerate(zip(secrets, _eligible(secrets, cfg), strict=True)):
        if rules.method == "distinct" and stats is not None:
            order = ranked_positions(eligible, stats.overlap(i))
        else:
            rule = config_for_entity(rules, s.entity_type)
            order = order_positions(eligible, list(s.secret_ids), dataclasses.replace(rule, max_tokens=None))
        if rules.shared_last and shared:
            order = copied_last(order, shared_positions(s.secret_ids, shared))
        if rules.copied_last and decode is not None:
            order = copied_last(order, copied_positions(s.token_texts, decode(list(s.prompt_ids))))
        out.append(order)
    return out


def cover_config(cfg: RevsConfig, vocab_size: int) -> RevsConfig:
    """Return ``cfg`` with the residual and MLP windows of the cover edits: final ranks ``targets.cover_ranks``
    (absolute) for a vocabulary of ``vocab_size`` tokens."""
    low, high = cfg.targets.cover_ranks
    window = (low / vocab_size, min(high / vocab_size, 1.0))
    return dataclasses.replace(cfg, residual_rank_window=window, mlp_rank_window=(window[0], 0.9))


def _targets(secrets: Sequence[Secret], picks: Sequence[Sequence[int]]) -> list[TokenTarget]:
    return [t for i, (s, pos) in enumerate(zip(secrets, picks, strict=True))
            for t in targets_at(s.prompt_ids, s.secret_ids, pos, secret_index=i)]


def erase(model: nn.Module, arch: ModelArch, inputs: EraseInputs, config: EraseConfig, *,
          lens: VocabLens | None = None, pad_id: int = 0, progress: bool = False,
          guard_stats: GuardStats | None = None, resume: bool = True, naive: bool = False) -> EraseResult:
    """Erase ``inputs.forget`` from ``model`` (weights edited in place) while guarding ``keep`` and ``benign``.

    Args:
        model, arch: the model (eval mode) and ``resolve_arch(model)``.
        inputs: secrets, retained items, benign text.
        config: a preset (:data:`revs_engine.presets.PRESETS`) or :func:`~revs_engine.presets.resolve_config`.
        lens: a :class:`VocabLens` to reuse (its cached pseudo-inverse).
        pad_id: padding id for batched passes.
        progress: a progress bar over targets.
        guard_stats: :func:`guard_stats_for` these inputs on this (unedited) model when the caller already has
            them (the benchmark edits one model several times and restores it in between); checked to fit.
        resume, naive: REVS's execution modes, for the speed comparison (identical edits).

    Returns:
        An :class:`EraseResult`.
    """
    if not inputs.forget:
        raise ValueError("nothing to erase: EraseInputs.forget is empty")
    if config.method == "revs" and config.revs.perturb_rounds and (inputs.encode is None or inputs.decode is None):
        raise ValueError("revs.perturb_rounds needs EraseInputs.encode and .decode (the prompts are perturbed as "
                         "text): pass the tokenizer both ways, or set perturb_rounds = 0")
    corpus_asked = reads_corpus(config)
    if corpus_asked and not inputs.corpus:
        logger.warning("revs.joint_covariance = %r reads a sample of the training corpus and EraseInputs.corpus "
                       "is empty: the joint re-projection is skipped (the result's configuration says so); pass "
                       "benign corpus documents to have it", config.revs.joint_covariance)
        config = dataclasses.replace(config, revs=switched_off(config.revs, joint_projection=0.0, joint_final=0.0))
    assoc = _associate(model, arch, inputs, config)
    if assoc is not None and guard_stats is not None:  # taken on the model before the association stage
        logger.info("association stage changed the model: the guard statistics are taken again")
        guard_stats = None
    guard, n_decoys = (build_guard(inputs, config.revs.decoys, config.revs.cross_decoys, config.revs.cross_secrets)
                       if config.uses_guard else (None, 0))
    distinct = config.revs.targets.method == "distinct"
    if guard is None:
        guard_stats = None
        if distinct:
            logger.info("targets.method = distinct without a guard: the rarest rule is used")
    elif guard_stats is None:
        guard_stats = guard_stats_for(model, arch, inputs, config, pad_id=pad_id)
    else:
        covariance, collateral, _ = _stats_needed(config, guard)
        guard_stats.check(covariance=covariance, collateral=collateral, tokens=_tokens(inputs),
                          query_positions=_eligible(inputs.forget, config) if distinct else None,
                          value_weight=config.revs.guard_value_weight)
    shared = guarded_value_tokens(inputs) if config.revs.targets.shared_last else None
    ranked = ranked_positions_of(inputs.forget, config, guard_stats, inputs.decode, shared)
    n_first = config.revs.targets.max_tokens
    targets = _targets(inputs.forget, [r[:n_first] for r in ranked])
    if config.revs.targets.spellings and config.method == "revs":
        if inputs.encode is None:
            raise ValueError("targets.spellings needs EraseInputs.encode (text → ids) to find the other tokens "
                             "that spell each target's text: pass the tokenizer, or set spellings = false")
        spelled = spelling_targets(targets, [s.token_texts for s in inputs.forget], inputs.encode)
        logger.info("spellings: %d other token(s) that begin the targets' text demoted as well", len(spelled))
        targets += spelled
    counts = {"guard_items": len(guard.items) if guard else 0,
              "guard_benign": len(guard.benign) + len(guard.lookalikes) - n_decoys if guard else 0,
              "guard_decoys": n_decoys, **({"corpus_texts": len(inputs.corpus)} if corpus_asked else {})}
    logger.info("erase (%s, %s): %d secrets, %d targets; guard %s", config.name, config.method,
                len(inputs.forget), len(targets), counts)
    if config.method == "ftl":
        res = unlearn_ftl(model, arch, targets, config.ftl)
        outcomes = [TargetOutcome(r.secret_index, r.position, r.rank_before, r.rank_after, r.rank_after,
                                  r.rank_after > r.rank_before) for r in res.targets]
        return EraseResult(config, tuple(targets), tuple(outcomes), (), res.backup, res.seconds, counts)
    lens = lens or VocabLens(model, arch)
    run = lambda: _erase_revs(model, arch, inputs, config, lens, guard, guard_stats, targets,  # noqa: E731
                              ranked, counts, progress=progress, pad_id=pad_id, resume=resume, naive=naive)
    if config.revs.relative_demotion:
        if inputs.encode is None:
            raise ValueError("relative_demotion needs EraseInputs.encode (text → ids) to find each digit's "
                             "alternatives")
        saved, lens.alternatives = lens.alternatives, format_alternatives(inputs.forget, inputs.encode)
        try:
            result = run()
        finally:
            lens.alternatives = saved
    else:
        result = run()
    if assoc is None:
        return result
    return dataclasses.replace(result, backup=assoc.backup.merged(result.backup),
                               seconds=result.seconds + assoc.seconds, association=assoc)


def reads_corpus(config: EraseConfig) -> bool:
    """Whether an erase with ``config`` reads a corpus sample (:attr:`EraseInputs.corpus`): REVS with a joint
    re-projection away from the corpus's positions (``revs.joint_covariance`` ``corpus`` or ``both``)."""
    revs = config.revs
    return config.method == "revs" and bool(revs.joint_projection or revs.joint_final) \
        and revs.joint_covariance != "guard"


def _renumbered(edits: Sequence[NeuronEdit], index: Sequence[int]) -> list[NeuronEdit]:
    """A later call's edits with their target indices mapped from the call's targets to the erase's
    (``index[i]``: the erase's index of the call's target ``i``)."""
    return [dataclasses.replace(e, target_index=index[e.target_index]) if e.target_index >= 0 else e
            for e in edits]


def _associate(model: nn.Module, arch: ModelArch, inputs: EraseInputs, config: EraseConfig
               ) -> AssociationResult | None:
    """Run the association stage when ``config`` turns it on (REVS only), guarded by the retained items and
    benign texts within the guard budget, and by ``counterfactuals`` look-alikes of the secrets after each guarded
    item's prompt."""
    cfg = config.revs.association
    if not cfg.steps or config.method != "revs":
        return None
    if inputs.encode is None:
        raise ValueError("the association stage needs EraseInputs.encode (text → ids) to find each digit's "
                         "alternatives")
    cut = GUARD_PREFIX_TOKENS
    kept = [ValueSequence(it.prefix_ids[-cut:], it.target_ids) for it in inputs.keep[:GUARD_ITEMS]]
    # the secrets' look-alikes in turn after the guarded items' prompts (as cross decoys do for REVS's guard)
    counterfactual = [ValueSequence(k.prompt_ids, tuple(inputs.encode(d))) for j, k in enumerate(kept)
                      for d in decoy_values(inputs.forget[j % len(inputs.forget)].text, cfg.counterfactuals,
                                            seed=20_000 + j)] if cfg.counterfactuals and inputs.forget else []
    return loosen_associations(
        model, arch, [ValueSequence(s.prompt_ids, s.secret_ids) for s in inputs.forget],
        format_alternatives(inputs.forget, inputs.encode), kept,
        [b[:ASSOCIATION_TEXT_TOKENS] for b in inputs.benign[:GUARD_BENIGN]], cfg, counterfactual)


def _erase_revs(model: nn.Module, arch: ModelArch, inputs: EraseInputs, config: EraseConfig, lens: VocabLens,
                guard: RetainGuard | None, guard_stats: GuardStats | None, targets: list[TokenTarget],
                ranked: list[list[int]], counts: dict[str, int], *, progress: bool, pad_id: int, resume: bool,
                naive: bool) -> EraseResult:
    """REVS's part of :func:`erase`: the first pass, the settle and perturbation rounds, the fallback rounds and
    the cover pass."""
    n_first = config.revs.targets.max_tokens
    kw = {"lens": lens, "progress": progress, "guard": guard, "pad_id": pad_id, "guard_stats": guard_stats,
          "resume": resume, "naive": naive}
    first = unlearn(model, arch, targets, config.revs, **kw)
    contexts: Contexts = {}
    note_contexts(contexts, targets, first.edits)
    results, edits = list(first.targets), list(first.edits)
    backup, seconds = first.backup, first.seconds
    low = config.revs.bounds(arch.vocab_size)["residual"][0]
    variants = None
    if config.revs.perturb_rounds:  # erase checked encode and decode before the first edit
        tok = ([s.prompt_ids for s in inputs.forget], inputs.decode, inputs.encode)
        variants = perturbed_variants(targets, *tok, config.revs.perturb_prompts)
        variants += dropped_variants(targets, *tok, config.revs.perturb_drops)
        if config.revs.perturb_plain:  # the targets after their own prompts, at every layer
            variants = [list(targets), *variants]

    def redo(index: list[int], again_targets: list[TokenTarget]) -> None:
        """Edit ``again_targets`` (the erase's targets ``index``, perhaps after another prompt) once more."""
        nonlocal results, edits, backup, seconds
        again = unlearn(model, arch, again_targets, config.revs, **kw)
        note_contexts(contexts, again_targets, again.edits)
        for j, r in zip(index, again.targets, strict=True):
            results[j] = settled(results[j], r)
        edits += _renumbered(again.edits, index)
        backup, seconds = backup.merged(again.backup), seconds + again.seconds
        results = [with_final(r, k) for r, k in zip(results, final_ranks(model, arch, targets), strict=True)]

    def rounds(n_settle: int, n_perturb: int) -> None:
        """Edit again the targets below the residual window: at the final layer after their own prompts (up to
        ``n_settle`` rounds), then at some layer after a perturbed prompt (up to ``n_perturb`` rounds)."""
        for _ in range(n_settle):
            lagging = [j for j, r in enumerate(results) if r.rank_final < low]
            if not lagging:
                break
            logger.info("settle: %d target(s) below the residual window after the pass; editing them again",
                        len(lagging))
            redo(lagging, [targets[j] for j in lagging])
        for _ in range(n_perturb if variants else 0):
            lagging = lagging_after_perturbation(model, arch, lens, variants, low)
            if not lagging:
                break
            logger.info("perturbation round: %d target(s) below the residual window at some layer after a "
                        "measured prompt; editing them again after the worst", len(lagging))
            redo([j for j, _, _ in lagging], [t for _, t, _ in lagging])

    rounds(config.revs.settle_rounds, config.revs.perturb_rounds)
    used = [set(r[:n_first]) for r in ranked]
    for _ in range(config.revs.targets.fallback):
        done = {t.secret_index for t, r in zip(targets, results, strict=True) if r.rank_final >= low}
        extra = []
        for i in sorted(set(range(len(inputs.forget))) - done):
            nxt = next((p for p in ranked[i] if p not in used[i]), None)
            if nxt is not None:
                used[i].add(nxt)
                s = inputs.forget[i]
                extra += targets_at(s.prompt_ids, s.secret_ids, [nxt], secret_index=i)
        if not extra:
            break
        # edits of a position that did not converge are kept: on the demo they add up (README: fallback)
        logger.info("%d secret(s) with no converged target: editing one more position of each", len(extra))
        more = unlearn(model, arch, extra, config.revs, **kw)
        note_contexts(contexts, extra, more.edits)
        edits += _renumbered(more.edits, range(len(targets), len(targets) + len(extra)))
        targets += extra
        results += more.targets
        backup, seconds = backup.merged(more.backup), seconds + more.seconds
    cover = config.revs.targets.cover_ranks
    if cover:
        extra = _targets(inputs.forget, [[p for p in r if p not in u] for r, u in zip(ranked, used, strict=True)])
        if extra:
            more = unlearn(model, arch, extra, cover_config(config.revs, arch.vocab_size), **kw)
            note_contexts(contexts, extra, more.edits)
            logger.info("cover: %d more positions edited to ranks %d–%d", len(extra), *cover)
            edits += _renumbered(more.edits, range(len(targets), len(targets) + len(extra)))
            targets += extra
            results += more.targets
            backup, seconds = backup.merged(more.backup), seconds + more.seconds
    if guard_stats is not None and (config.revs.joint_projection or config.revs.joint_final):
        start = time.perf_counter()
        if config.revs.joint_variants:  # erase checked encode and decode (joint_variants needs perturb_rounds)
            prompts = [s.prompt_ids for s in inputs.forget]
            rewrites = rewritten_prompts(prompts, inputs.decode, inputs.encode, config.revs.perturb_prompts,
                                         config.revs.perturb_drops)
            logger.info("joint re-projection: %d rewritten-prompt context(s) kept as well",
                        add_rewritten_contexts(contexts, prompts, rewrites))
        joint = reproject_erase(model, arch, contexts, backup, guard_stats, config.revs, pad_id, inputs.corpus,
                                demoted={t.token_id for t in targets})
        edits += joint
        seconds += time.perf_counter() - start
        results = [with_final(r, k) for r, k in zip(results, final_ranks(model, arch, targets), strict=True)]
        if config.revs.joint_settle_rounds:  # the joint step moved each block's change: check the ranks again
            rounds(config.revs.joint_settle_rounds, config.revs.joint_settle_rounds)
    outcomes = [TargetOutcome(r.secret_index, r.position, r.rank_before, r.rank_after, r.rank_final, r.converged)
                for r in results]
    return EraseResult(config, tuple(targets), tuple(outcomes), tuple(edits), backup, seconds, counts, first)
