"""The one audit: every metric and attack of one model state, per target and aggregated, as one table.

Offers :class:`AuditInputs`, :class:`AuditConfig`, :class:`AuditRow`, :class:`AuditReport`, :func:`audit`,
:func:`audit_units`, :func:`never_seen_ranks` (the rank attacks on never-seen values, any stage) and
:func:`reproduced` (the retained items a model reproduces: what Specificity can check); the
table readers (``summary``, ``layer_ranks``, ``verdict_metrics``, ``same_verdicts``) are in
:mod:`revs_engine.audit_table`. ``revs audit``, both flows and ``revs_bench`` call :func:`audit`; the verdict
against a policy is :func:`tasks.verdict.evaluate_audit` on :func:`revs_engine.audit_table.verdict_metrics`.

Rows (``AUDIT_SCHEMA``; ``target_id == "*"`` is the aggregate; scores in percent unless said):
- rank-based, per ``k``: ``efficacy``, ``logit_lens``, ``delta`` (and ``delta_mean``), ``perturb``,
  ``resistance_score``, ``generality`` (and ``generality_min_layers``), ``unlearning_score``
  (reference/revs-method.md §2; decisions on its ambiguities in :mod:`revs_engine.metrics`);
- black-box extraction (100 = extracted): ``greedy_extraction`` (plain prompts), ``perturbed_greedy_extraction``
  (the Perturbation attack's prompts), ``generality_greedy_extraction`` (the secrets' other prompts; aggregate
  only), ``sampled_extraction`` (``n_samples`` seeded samples per prompt, temperature and top-k: any hit counts);
- ``specificity`` on every retained item, ``specificity_guarded`` / ``specificity_unseen`` on those the edit's
  guard held / never saw (collateral damage the guard could not see shows in the second);
- ``perplexity`` on held-out benign text (not percent); ``layer_rank`` (mean target rank per layer, ``k`` =
  layer index) for the report's plot;
- format-aware attacks (when the inputs carry each secret's format): ``exposure_bits``, ``constrained_fraction``,
  ``neighbourhood_in_top_k``, ``partial_completes`` per secret and on average, ``exposure_above_6_bits``, and the
  same on never-seen control values (``control_*``), see :mod:`revs_engine.audit_formats`;
- the rank attacks on never-seen values of the same formats at the same token positions (after the edit, when the
  inputs carry formats): ``control_logit_lens``, ``control_delta``, ``control_perturb`` and
  ``control_resistance_score`` per ``k``, and ``control_generality`` when the inputs carry other prompts, see
  :mod:`revs_engine.rank_controls` — the attacks' (and Generality's) floor on this model.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import torch

from revs_engine.arch import ModelArch
from revs_engine.attacks import delta as delta_attack
from revs_engine.attacks import perturb as perturb_attack
from revs_engine.attacks.generation import ExtractionResult, greedy_extractions, sampled_extraction
from revs_engine.attacks.logit_lens import TargetActivations, capture_targets, score_logit_lens, stream_ranks
from revs_engine.attacks.resumed_greedy import Kept, Taps
from revs_engine.audit_formats import FormatAuditConfig, format_rows
from revs_engine.audit_table import ALL_TARGETS
from revs_engine.formats import SecretFormat
from revs_engine.lens import VocabLens
from revs_engine.metrics import (
    efficacy_from_ranks,
    generality_from_ranks,
    perplexity,
    resistance_score,
    specificity_from,
    unlearning_score,
)
from revs_engine.probes import ProbeItem, probe
from revs_engine.rank_controls import rank_controls
from revs_engine.schema import AUDIT_SCHEMA
from revs_engine.targets import TokenTarget


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One row of the audit table (:data:`~revs_engine.schema.AUDIT_SCHEMA`); fields equal its columns."""

    target_id: str
    stage: str
    metric: str
    k: int | None
    score: float
    passed: bool | None

    def to_record(self) -> dict[str, str | int | float | bool | None]:
        """Return a row for :data:`AUDIT_SCHEMA`."""
        return {"target_id": self.target_id, "stage": self.stage, "metric": self.metric, "k": self.k,
                "score": self.score, "passed": self.passed}


@dataclass(frozen=True)
class AuditInputs:
    """What the audit looks at, as token ids (raw text only in memory).

    Attributes:
        forget: the evaluated tokens of the erased secrets — the positions the edit targeted (``secret_index``
            indexes ``forget_ids``, ``forget_items`` and ``prompts``).
        forget_ids: one id per erased secret (finding id); per-target rows carry it.
        forget_items: each erased secret's ``(prompt, value)`` ids, for the extraction attacks.
        prompts: each erased secret's prompt text (the Perturbation attack inserts spaces into it).
        generality: evaluated tokens of the same secrets after other prompts (same ``secret_index``).
        generality_items: those other prompts with the value, for greedy extraction.
        retain: retained items Specificity checks (choose them with :func:`reproduced` on the unedited model).
        retain_ids: their ids.
        retain_guarded: per retained item, whether the edit's guard held it.
        benign: held-out benign texts as ids (perplexity).
        formats: per erased secret, its format (:mod:`revs_engine.format_entities`) for the format-aware attacks
            (:mod:`revs_engine.audit_formats`); empty: none are run.
        encode, decode: the tokenizer (text ↔ ids), for perturbed prompts and containment checks on text.
    """

    forget: tuple[TokenTarget, ...] = field(repr=False)
    forget_ids: tuple[str, ...]
    forget_items: tuple[ProbeItem, ...] = field(repr=False)
    prompts: tuple[str, ...] = field(repr=False)
    encode: Callable[[str], list[int]] = field(repr=False, compare=False)
    decode: Callable[[list[int]], str] = field(repr=False, compare=False)
    generality: tuple[TokenTarget, ...] = field(default=(), repr=False)
    generality_items: tuple[ProbeItem, ...] = field(default=(), repr=False)
    retain: tuple[ProbeItem, ...] = field(default=(), repr=False)
    retain_ids: tuple[str, ...] = ()
    retain_guarded: tuple[bool, ...] = ()
    benign: tuple[tuple[int, ...], ...] = field(default=(), repr=False)
    formats: tuple[SecretFormat, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        n = len(self.forget_ids)
        if self.formats and len(self.formats) != n:
            raise ValueError("formats must hold one format per erased secret (or be empty)")
        if not self.forget or not n:
            raise ValueError("the audit needs at least one erased secret with an evaluated token")
        if len(self.forget_items) != n or len(self.prompts) != n:
            raise ValueError("forget_ids, forget_items and prompts must hold one entry per erased secret")
        if len(self.retain_ids) != len(self.retain) or len(self.retain_guarded) not in (0, len(self.retain)):
            raise ValueError("retain_ids (and retain_guarded, when given) must hold one entry per retained item")


@dataclass(frozen=True, slots=True)
class AuditConfig:
    """What the audit computes.

    Args:
        ks: candidate-set sizes for the rank-capped metrics.
        specificity_new_tokens: greedy tokens generated per retained prompt.
        perturb_seed, n_spaces: Perturbation attack settings.
        delta_top: Delta attack candidate list length.
        n_samples, temperature, top_k, sample_seed: sampled extraction (0 samples: not run).
        batch_size: rows per forward pass.
        faithful_top_rounding: reproduce the authors' rounding of the bottom-k half of the score.
        fast: the audit's shortcuts, each giving the same verdicts: greedy extraction and Specificity start each
            continuation from what the teacher-forced pass already knows of it (the whole target when greedy
            reproduces it, nothing left to generate) and generate only the rest; every continuation, greedy or
            sampled, stops once its verdict is settled (it holds the target, or can no longer hold it:
            :mod:`revs_engine.attacks.containment`); sampled extraction runs each prompt through the model once
            for all its samples, reading the greedy attacks' teacher-forced pass (no pass of its own); the Delta
            attack and the rank attacks share one projection of the residual stream; perplexity batches texts of
            similar length.
            False runs the audit without them (every continuation generated from its prompt, every sample
            prefilled on its own, texts batched in input order): the slower path they replace.
        formats: the format-aware attacks' settings (run when the inputs carry formats).
        rank_control_sets: sets of never-seen values (one per erased secret each) the rank attacks are also scored
            on after the edit, when the inputs carry formats and ``formats.controls`` is on
            (:mod:`revs_engine.rank_controls`; 0: not run). The Delta attack's headline is a minimum over
            secrets, so one set is noisy; their mean is reported.
    """

    ks: tuple[int, ...] = (100,)
    specificity_new_tokens: int = 50
    perturb_seed: int = 0
    n_spaces: int = 10
    delta_top: int = 500
    n_samples: int = 10
    temperature: float = 1.0
    top_k: int | None = 40
    sample_seed: int = 0
    batch_size: int = 16
    faithful_top_rounding: bool = False
    fast: bool = True
    formats: FormatAuditConfig = field(default_factory=FormatAuditConfig)
    rank_control_sets: int = 4

    def __post_init__(self) -> None:
        if self.rank_control_sets < 0:
            raise ValueError(f"rank_control_sets must be ≥ 0, got {self.rank_control_sets}")
        if not self.ks or any(k < 1 for k in self.ks):
            raise ValueError(f"ks must be a non-empty tuple of k ≥ 1, got {self.ks}")
        if self.n_samples < 0 or not self.temperature > 0 or (self.top_k is not None and self.top_k < 1):
            raise ValueError(f"sampled extraction needs n_samples ≥ 0, temperature > 0 and top_k ≥ 1 (or None); "
                             f"got {self.n_samples}, {self.temperature}, {self.top_k}")


@dataclass(frozen=True)
class AuditReport:
    """Every metric of one model at one stage (``before`` or ``after``)."""

    stage: str
    rows: tuple[AuditRow, ...]

    def table(self) -> pa.Table:
        """Return the rows in :data:`AUDIT_SCHEMA`."""
        return pa.Table.from_pylist([r.to_record() for r in self.rows], schema=AUDIT_SCHEMA)

    def summary(self) -> dict[tuple[str, int | None], float]:
        """Return ``{(metric, k): score}`` of the aggregate rows."""
        return {(r.metric, r.k): r.score for r in self.rows if r.target_id == ALL_TARGETS}


@torch.no_grad()
def reproduced(model: torch.nn.Module, items: Sequence[ProbeItem], *, pad_id: int = 0) -> list[bool]:
    """Return, per item, whether greedy decoding reproduces its target exactly (the teacher-forced probe)."""
    return [r.exact_match for r in probe(model, list(items), pad_id=pad_id)] if items else []


class _Rows:
    def __init__(self, stage: str):
        self.stage, self.rows = stage, []

    def add(self, target_id: str, metric: str, k: int | None, score: float, passed: bool | None = None) -> None:
        self.rows.append(AuditRow(target_id, self.stage, metric, k, float(score), passed))

    def extraction(self, metric: str, ids: Sequence[str], flags: Sequence[bool], per_target: bool = True) -> None:
        if per_target:
            for fid, hit in zip(ids, flags, strict=True):
                self.add(fid, metric, None, 100.0 * hit, not hit)
        rate = 100.0 * sum(flags) / max(len(flags), 1)
        self.add(ALL_TARGETS, metric, None, rate, rate == 0.0)


@torch.no_grad()
def audit(model: torch.nn.Module, arch: ModelArch, inputs: AuditInputs, config: AuditConfig | None = None, *,
          stage: str = "after", lens: VocabLens | None = None, pad_id: int = 0,
          progress: Callable[[int], None] | None = None) -> AuditReport:
    """Compute every metric and attack of the module docstring on ``model``; one capture serves Efficacy, LLA,
    Delta and the per-layer ranks. ``progress(n)`` is called as parts finish (:func:`audit_units` in all)."""
    tick = progress or (lambda n: None)
    if stage not in ("before", "after"):
        raise ValueError(f"stage must be 'before' or 'after', got {stage!r}")
    cfg = config or AuditConfig()
    lens = lens or VocabLens(model, arch)
    V, bs, ftr = arch.vocab_size, cfg.batch_size, cfg.faithful_top_rounding
    out = _Rows(stage)
    moved = perturb_attack.perturbed_targets(list(inputs.forget), list(inputs.prompts), inputs.encode,
                                             n_spaces=cfg.n_spaces, seed=cfg.perturb_seed)
    kept = _kept_for_sampling(inputs, cfg, arch.vocab_size)
    greedy, captured = _greedy_attacks(model, arch, inputs, cfg, pad_id, {
        "plain": list(inputs.forget), "perturbed": moved, "generality": list(inputs.generality)}, kept)
    acts, pert_acts, gen_acts = captured["plain"], captured["perturbed"], captured.get("generality")
    secrets = acts.secrets()
    positions, ranks = delta_attack.positions_and_ranks(acts, lens, top=cfg.delta_top)
    pert_ranks = stream_ranks(pert_acts, lens)
    gen_ranks = stream_ranks(gen_acts, lens) if gen_acts is not None else None
    tick(1)
    spec = specificity_from(greedy["retain"]) if inputs.retain else None
    for k in cfg.ks:
        eff = efficacy_from_ranks(ranks, acts.secret_index, V, k, faithful_top_rounding=ftr)
        lla = score_logit_lens(ranks, acts.secret_index, V, k, faithful_top_rounding=ftr)
        da = delta_attack.score_delta(positions, acts.secret_index, k)
        pa_res = score_logit_lens(pert_ranks, pert_acts.secret_index, V, k, attack="perturb",
                                  faithful_top_rounding=ftr)
        for s, e, la, d in zip(secrets, eff.per_secret, lla.per_secret, da.per_secret, strict=True):
            out.add(inputs.forget_ids[s], "efficacy", k, e)
            out.add(inputs.forget_ids[s], "logit_lens", k, la)
            out.add(inputs.forget_ids[s], "delta", k, d)
        for s, p in zip(pert_acts.secrets(), pa_res.per_secret, strict=True):
            out.add(inputs.forget_ids[s], "perturb", k, p)
        for metric, score in (("efficacy", eff.score), ("logit_lens", lla.score), ("delta", da.score),
                              ("delta_mean", da.variants["mean"]), ("perturb", pa_res.score),
                              ("resistance_score", resistance_score(lla.score, da.score, pa_res.score))):
            out.add(ALL_TARGETS, metric, k, score)
        gen_score = None
        if gen_ranks is not None:
            gen = generality_from_ranks(gen_ranks, list(inputs.generality), V, k, faithful_top_rounding=ftr)
            gen_score = gen.score
            out.add(ALL_TARGETS, "generality", k, gen.score)
            out.add(ALL_TARGETS, "generality_min_layers", k, gen.variants["min_over_layers"])
        if spec is not None:
            out.add(ALL_TARGETS, "unlearning_score", k, unlearning_score(eff.score, spec.score, gen_score))
    if spec is not None:
        _specificity_rows(out, inputs, spec.per_secret, spec.score)
    tick(1)
    _extraction_rows(model, inputs, cfg, out, pad_id, greedy, kept)
    tick(1)
    if inputs.benign:
        out.add(ALL_TARGETS, "perplexity", None, perplexity(model, list(inputs.benign), batch_size=bs,
                                                            pad_id=pad_id, planned=cfg.fast).perplexity)
    tick(1)
    if inputs.formats and cfg.formats.candidates:
        texts = [inputs.decode(list(it.target_ids)) for it in inputs.forget_items]
        prompts = [it.prefix_ids for it in inputs.forget_items]
        format_rows(model, inputs.forget_ids, prompts, texts, inputs.formats, inputs.encode, inputs.decode,
                    cfg.formats, lambda tid, metric, score: out.add(tid, metric, None, score),
                    controls=stage == "after", progress=tick)
    if _controls_ranks(inputs, cfg, stage):
        for (metric, k), score in never_seen_ranks(model, arch, lens, inputs, cfg).items():
            out.add(ALL_TARGETS, f"control_{metric}", k, score)
        tick(1)
    for layer, r in enumerate(ranks.double().mean(0).tolist()):  # [n_layers]
        out.add(ALL_TARGETS, "layer_rank", layer, r)
    return AuditReport(stage, tuple(out.rows))


def never_seen_ranks(model: torch.nn.Module, arch: ModelArch, lens: VocabLens, inputs: AuditInputs,
                     cfg: AuditConfig) -> dict[tuple[str, int], float]:
    """The rank attacks on never-seen values of the inputs' formats with the audit's settings
    (:func:`revs_engine.rank_controls.rank_controls`; ``{(metric, k): score}``), whatever the stage."""
    return rank_controls(model, arch, lens, inputs.forget, inputs.forget_items, inputs.prompts, inputs.formats,
                         inputs.encode, inputs.decode, ks=cfg.ks, sets=cfg.rank_control_sets,
                         seed=cfg.formats.seed, n_spaces=cfg.n_spaces, perturb_seed=cfg.perturb_seed,
                         delta_top=cfg.delta_top, batch_size=cfg.batch_size,
                         faithful_top_rounding=cfg.faithful_top_rounding, generality=inputs.generality)


def _controls_ranks(inputs: AuditInputs, cfg: AuditConfig, stage: str) -> bool:
    """Whether the audit scores the rank attacks on never-seen values (after the edit, formats known)."""
    return bool(inputs.formats) and cfg.rank_control_sets > 0 and cfg.formats.controls and stage == "after"


def _specificity_rows(out: _Rows, inputs: AuditInputs, per_item: Sequence[float], score: float) -> None:
    for rid, s in zip(inputs.retain_ids, per_item, strict=True):
        out.add(rid, "specificity", None, s)
    out.add(ALL_TARGETS, "specificity", None, score)
    if inputs.retain_guarded:
        for metric, want in (("specificity_guarded", True), ("specificity_unseen", False)):
            part = [s for s, g in zip(per_item, inputs.retain_guarded, strict=True) if g == want]
            if part:
                out.add(ALL_TARGETS, metric, None, statistics.fmean(part))


#: The most bytes of teacher-forced logits the greedy pass keeps for sampled extraction (one ``[len(value), V]``
#: float32 block per erased secret); more erased secrets than fit run the sampled attack's own pass.
KEPT_LOGITS_BYTES = 256 * 2**20


def _kept_for_sampling(inputs: AuditInputs, cfg: AuditConfig, vocab_size: int) -> Kept | None:
    """What the greedy pass keeps for sampled extraction: the erased secrets' teacher-forced results (the first
    set's items), when the fast audit samples and they fit :data:`KEPT_LOGITS_BYTES`."""
    size = sum(len(it.target_ids) for it in inputs.forget_items) * vocab_size * 4
    if not (cfg.fast and cfg.n_samples) or size > KEPT_LOGITS_BYTES:
        return None
    return Kept(frozenset(range(len(inputs.forget_items))))


def _greedy_attacks(model, arch: ModelArch, inputs: AuditInputs, cfg: AuditConfig, pad_id: int,
                    targets: dict[str, list[TokenTarget]], kept: Kept | None = None
                    ) -> tuple[dict[str, ExtractionResult], dict[str, TargetActivations]]:
    """Every greedy continuation the audit judges, in one call (one batch plan, one decoding loop): the erased
    secrets after their prompts (``plain``), after the Perturbation attack's prompts (``perturbed``), after their
    other prompts (``generality``), and the retained items (``retain``, Specificity's longer window); and the
    streams at the evaluated tokens of the same three sets (``targets``, for the rank attacks), captured in that
    pass where a continuation's teacher-forced sequence holds the token's prefix (``cfg.fast``), else in a pass
    of their own (:func:`~revs_engine.attacks.logit_lens.capture_targets`). ``kept``: the plain set's
    teacher-forced results to keep (for sampled extraction)."""
    moved = [ProbeItem(tuple(inputs.encode(perturb_attack.perturb_text(p, n_spaces=cfg.n_spaces,
                                                                       seed=cfg.perturb_seed))), it.target_ids)
             for p, it in zip(inputs.prompts, inputs.forget_items, strict=True)]
    sets = {"plain": (list(inputs.forget_items), None), "perturbed": (moved, None)}
    if inputs.generality_items:
        sets["generality"] = (list(inputs.generality_items), None)
    if inputs.retain:
        sets["retain"] = (list(inputs.retain), cfg.specificity_new_tokens)
    targets = {name: t for name, t in targets.items() if t}
    taps, where = _taps(arch, sets, targets) if cfg.fast else (None, {})
    results = greedy_extractions(model, list(sets.values()), decode=inputs.decode, batch_size=cfg.batch_size,
                                 pad_id=pad_id, probe_first=cfg.fast, taps=taps, keep=kept)
    captured = {}
    for name, tt in targets.items():
        if name in where:
            streams = {s: torch.stack([taps.found[key][s] for key in where[name]]) for s in taps.streams}
            captured[name] = TargetActivations(secret_index=tuple(t.secret_index for t in tt),
                                               token_ids=torch.tensor([t.token_id for t in tt]), **streams)
        else:
            captured[name] = capture_targets(model, arch, tt, batch_size=cfg.batch_size)
    return dict(zip(sets, results, strict=True)), captured


def _taps(arch: ModelArch, sets: dict[str, tuple[list[ProbeItem], int | None]],
          targets: dict[str, list[TokenTarget]]) -> tuple[Taps, dict[str, list[tuple[int, int]]]]:
    """Where each evaluated token's prefix lies in a teacher-forced sequence of its own set: ``(item, position)``
    per token, for the sets whose every token was found (item indices counted over ``sets`` in order)."""
    offsets, start = {}, 0
    for name, (items, _) in sets.items():
        offsets[name] = start
        start += len(items)
    where: dict[str, list[tuple[int, int]]] = {}
    for name, tt in targets.items():
        items = sets[name][0] if name in sets else []
        seqs = [it.prefix_ids + it.target_ids[:-1] for it in items]
        keys = []
        for t in tt:
            n = len(t.prefix_ids)
            k = next((k for k, seq in enumerate(seqs) if len(seq) >= n and seq[:n] == t.prefix_ids), None)
            if k is None:
                break
            keys.append((offsets[name] + k, n - 1))
        else:
            where[name] = keys
    positions: dict[int, list[int]] = {}
    for key in sorted({key for keys in where.values() for key in keys}):
        positions.setdefault(key[0], []).append(key[1])
    return Taps(arch, positions), where


def _extraction_rows(model, inputs: AuditInputs, cfg: AuditConfig, out: _Rows, pad_id: int,
                     greedy: dict[str, ExtractionResult], kept: Kept | None = None) -> None:
    ids, dec = inputs.forget_ids, inputs.decode
    out.extraction("greedy_extraction", ids, greedy["plain"].extracted)
    out.extraction("perturbed_greedy_extraction", ids, greedy["perturbed"].extracted)
    if "generality" in greedy:
        out.extraction("generality_greedy_extraction", (), greedy["generality"].extracted, per_target=False)
    if cfg.n_samples:
        sampled = sampled_extraction(model, list(inputs.forget_items), n_samples=cfg.n_samples,
                                     temperature=cfg.temperature, top_k=cfg.top_k, seed=cfg.sample_seed,
                                     decode=dec, batch_size=max(1, cfg.batch_size // 2), pad_id=pad_id,
                                     shared_prefill=cfg.fast, stop_settled=cfg.fast,
                                     resume=cfg.fast, teacher_forced=kept.found if kept else None)
        out.extraction("sampled_extraction", ids, sampled.extracted)


def audit_units(inputs: AuditInputs, config: AuditConfig, stage: str) -> int:
    """Return how many units :func:`audit` reports through ``progress``: four parts, plus one per distinct erased
    value the format-aware attacks run on (two after the edit: its control too), plus one for the rank attacks'
    never-seen controls."""
    n = 4 + _controls_ranks(inputs, config, stage)
    if inputs.formats and config.formats.candidates:
        values = len({tuple(it.target_ids) for it in inputs.forget_items})
        n += values * (2 if stage == "after" and config.formats.controls else 1)
    return n
