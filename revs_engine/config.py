"""REVS hyperparameters as one frozen, validated dataclass.

Offers :class:`RevsConfig`, :class:`AssociationConfig` and :func:`rank_bounds` (fraction window → integer ranks
for one vocabulary size).

Rank margins are FRACTIONS of the vocabulary size, so one config serves a 49k (SmolLM2) and a 128k (Llama-3)
vocabulary (DESIGN.md §6). The defaults are the authors' GPT-J demo configuration (reference/revs-method.md §1.9:
neuron window 30000–45000, MLP window 1000–45000, residual window 1000–10000 of V = 50400; n_max 30; top-100
activation filter) expressed as fractions.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from revs_engine.targets import TargetConfig

_GPTJ_V = 50400.0


def rank_bounds(window: tuple[float, float], vocab_size: int) -> tuple[int, int]:
    """Return the integer rank window ``[bottom, top]`` of a fraction window for ``vocab_size`` entries.

    Ranks run 0..V−1, so the top bound is capped at V−1.
    """
    lo, hi = window
    return int(lo * vocab_size), min(int(hi * vocab_size), vocab_size - 1)


@dataclass(frozen=True, slots=True)
class AssociationConfig:
    """The middle-layer association stage that runs before REVS (:mod:`revs_engine.association`).

    Args:
        steps: Adam steps; 0 turns the stage off.
        layer_range: first and last edited layer as fractions of the depth (``int(f × n_layers)``, both included:
            layers 4–12 of SmolLM2's 30).
        lr: Adam learning rate of the change.
        covariance_weight: weight of the mean squared output change over the guard's positions.
        retain_weight: weight of the guarded values' negative log-likelihood.
        null_tau: edit only key directions whose guard variance is below this × the median eigenvalue.
        counterfactuals: look-alikes of the secrets (random digits of the same shape) after each guarded item's
            prompt: their value positions are other people's contexts that continue into a number, so their keys
            span the route every person's number shares; 0: none.
        counterfactual_weight: weight of the counterfactual positions' key covariance (normalised over its own
            positions) against the rest of the guard's.
        min_guard_fraction: the stage runs only when the guard holds at least this × ``d_ff`` positions (retained
            items, benign texts and counterfactual values): a smaller guard's covariance leaves key directions it
            never saw free and unpenalised. 0 runs it with any guard, an empty one included (no constraint).
    """

    steps: int = 0
    layer_range: tuple[float, float] = (0.14, 0.42)
    lr: float = 3e-3
    covariance_weight: float = 10.0
    retain_weight: float = 1.0
    null_tau: float = 1.0
    counterfactuals: int = 0
    counterfactual_weight: float = 1.0
    min_guard_fraction: float = 1.0

    def __post_init__(self) -> None:
        lo, hi = self.layer_range
        if self.steps < 0 or self.lr <= 0 or self.covariance_weight < 0 or self.retain_weight < 0 \
                or self.null_tau <= 0 or self.counterfactuals < 0 or self.counterfactual_weight < 0 \
                or not self.min_guard_fraction >= 0:
            raise ValueError(f"association needs steps ≥ 0, lr > 0, covariance_weight ≥ 0, retain_weight ≥ 0, "
                             f"null_tau > 0, counterfactuals ≥ 0, counterfactual_weight ≥ 0 and "
                             f"min_guard_fraction ≥ 0; got {self.steps}, {self.lr}, {self.covariance_weight}, "
                             f"{self.retain_weight}, {self.null_tau}, {self.counterfactuals}, "
                             f"{self.counterfactual_weight}, {self.min_guard_fraction}")
        if not 0 <= lo <= hi < 1:
            raise ValueError(f"association.layer_range must be fractions 0 ≤ first ≤ last < 1, got "
                             f"{self.layer_range!r}")


@dataclass(frozen=True, slots=True)
class RevsConfig:
    """Hyperparameters of REVS (reference/revs-method.md §1.3–§1.7, §1.9).

    Args:
        n_neurons: n_max, the most neurons edited per layer per target token.
        act_filter: activation pre-filter (§1.4): ``top_k`` (the ``act_top_k`` largest signed activations),
            ``positive`` (all > 0) or ``none``.
        act_top_k: K of the ``top_k`` filter; must be ≥ ``n_neurons``.
        neuron_rank_window: ``(bottom, top)`` target-rank window of every edited neuron vector, fractions of V.
        mlp_rank_window: window of the layer's MLP-output rank; the top bound also gates layers (§1.3).
        residual_rank_window: window of the layer's residual rank; the bottom bound gates layers (§1.3) and
            defines convergence of a target (final rank ≥ bottom).
        max_iter_neuron: cap of the per-neuron demotion loop (§1.5).
        max_iter_mlp: cap of the outer loop over the number of edited neurons (§1.7).
        initial_offset: initial logit offset δ of a neuron below the window (§1.5, −10).
        push: δ multiplier when a neuron is not demoted enough (1.3).
        back_off: δ multiplier when a neuron is demoted too far (0.8).
        growth: k multiplier when the MLP rank is below its window (1.6).
        shrink: k multiplier when the MLP rank is above its window (0.8).
        start_k: initial number of edited neurons (5, capped at ``n_neurons``).
        faithful_rmsnorm_inverse: reproduce the authors' approximate RMSNorm inverse
            ``h = ĥ·√(σ²+ε)/γ + μ`` (§1.6) instead of the exact one. No effect on LayerNorm models.
        neuron_score: ``rank`` (the paper: activation filter, then rank) or ``contrast`` (the filter ranks
            activation minus ``contrast_weight`` × the neuron's activation on the retain guard, §8); ``contrast``
            needs a guard and falls back to ``rank`` without one.
        contrast_weight: λ of the contrast score.
        guard_check: with a guard, verify each secret's edit on the guard's retained items and redo it with a
            doubled contrast weight when one of them is no longer reproduced (off by default: the stricter redo
            was measured harmful with a guard full of digits, ``benchmarks/RESULTS.md``; the opt-in bench row
            ``REVS, contrast + check`` shows what it does).
        guard_retries: how many stricter attempts per secret before keeping the one that broke the fewest; > 0
            needs ``guard_check``.
        guard_projection: 0 (off, the paper) or λ > 0: re-weight each layer's neuron edits so that the MLP
            output change at the secret's context stays exactly as REVS computed it while the change at every
            guarded position is as small as possible (least squares over the edited neurons, ridge λ relative
            to their mean squared guard activation). Needs a guard; ignored without one.
        guard_spread: with the guard projection on, also let the projection use this many more neurons beyond
            the ``k`` REVS chose (those most specific to the secret's context: activation there relative to their
            RMS activation on the guard): the same change at the secret spread over neurons the guard sees
            little of. 0 projects over the chosen neurons only.
        final_spread: ``guard_spread`` for the last block instead (0: ``guard_spread`` there too). That block's
            MLP writes straight into the logits, and its edits carry nearly all of an erase's perplexity cost on
            prose (measured on SmolLM2: without them the cost vanishes, and so does the erasure); spreading its
            change over more neurons keeps each edit's trace on other text smaller. Needs the guard projection.
        guard_value_weight: with the guard projection on, weigh the guard's value positions (the retained items'
            and look-alikes' target positions: other people's digits) by this much in the projection's
            covariance, ``C_all + w·C_values`` (:func:`~revs_engine.guard_stats.guard_statistics`); 0 averages
            them with every benign position, where a few hundred are lost among thousands.
        joint_projection: 0 (off) or λ > 0: once the erase's passes are done, re-project each edited block's
            whole change except the last block's (:mod:`revs_engine.joint_reprojection`): the same MLP output at
            every context one of its edits was made at, the least at the guard's positions, solved for the sum of
            the block's edits at once (each edit's own projection leaves a small trace on the guard, and the traces
            add up). Needs the guard projection (its covariance).
        joint_final: the same for the last block, with its own λ (0: that block is not re-projected). The last
            block writes straight into the logits: its edits' summed trace is where the perplexity cost on prose
            comes from (measured on SmolLM2), and a smaller λ there pays.
        joint_covariance: which positions the joint re-projection keeps the change away from: ``guard`` (the
            retain guard's, as the guard projection), ``corpus`` (every position of a sample of the training
            corpus, ``EraseInputs.corpus``: :mod:`revs_engine.corpus_covariance`) or ``both`` (the two, each
            scaled to unit mean variance, weighed equally). The guard's few thousand positions understate what
            ordinary text uses; the corpus sample's tens of thousands do not.
        joint_variants: the joint re-projection also keeps each block's change after the rewritten prompts the
            perturbation rounds measure (spaces inserted, words left out: ``perturb_prompts`` and
            ``perturb_drops``, seeds other than the audit's) of every context it keeps, not only after the
            contexts edited at: without them the re-projection moves the change off perturbed prompts the
            rounds never edited at, which is what the Perturbation attack reads. Needs the perturbation rounds.
        joint_settle_rounds: after the joint re-projection, up to this many settle rounds and then as many
            perturbation rounds again (0: none). The joint step keeps each block's summed change at the contexts
            it was edited at only approximately (its ridge), so a target a shallow window left with little margin
            can fall back inside it; nothing else re-checks the ranks after that step. Those later edits are not
            re-projected.
        corpus_value_weight: with the joint re-projection reading a corpus sample, weigh the sample's positions
            whose next token is one the erase demotes (where other text writes those tokens: other people's
            digits) by this much, ``C_all + w·C_before``
            (:func:`~revs_engine.corpus_covariance.corpus_covariance`); 0 averages them with every other position.
        decoys: format-preserving decoys of each forgotten secret (:mod:`revs_engine.decoys`) that
            :func:`revs_engine.erase.erase` adds to the guard's benign texts; :func:`~revs_engine.revs.unlearn`
            takes the guard as given.
        cross_decoys: for each retained item of the guard (the first
            :data:`~revs_engine.erase_guard.GUARD_CROSS_ITEMS`), this many values shaped like a forgotten secret
            (item ``j`` takes secret ``j mod #secrets``: with fewer guarded items than secrets, the later secrets
            get none — giving every secret its look-alikes was measured no better) written after *that item's*
            prompt; the guard holds their value positions (:attr:`~revs_engine.guard.RetainGuard.lookalikes`):
            the digit positions of other people's values, where the edit must not act either.
        cross_secrets: after those retained items' prompts, also the secrets themselves (in turn, until every
            secret and every prompt had one), their value positions guarded: what the model writes for a
            secret's tokens after another person's context (an e-mail's surname piece, copied from that person's
            name) is not this person's memory and must stay. Only after retained items of other people: after the
            same person's other sentence it would guard the very association the erase removes, so items
            ``EraseInputs.keep_related`` marks are left out.
        relative_demotion: demote each target token relative to the tokens its value's format allows in its place
            (a digit among the other digits, :func:`revs_engine.erase.format_alternatives`): the least-squares
            direction that lowers the token's logit while every alternative's logit stays where it is. The paper's
            direction ``pinv(W_U)·e_t`` lowers every token whose unembedding resembles the target's with it (on a
            digit-level tokenizer all ten digits fall together and the secret's digit stays the likeliest digit,
            which format-constrained decoding reads back). Tokens without alternatives keep the paper's direction.
        settle_rounds: after the first pass, measure every target's final-layer rank on the edited model and
            edit again, the same way, the targets that later edits pulled back below the residual window (or
            that stopped short of it), up to this many rounds (:func:`revs_engine.erase.erase`; 0: one pass, the
            paper). Secrets edited together share their few digit tokens, so one secret's edit can re-promote
            another's digit.
        perturb_rounds: after the settle rounds, measure every target after ``perturb_prompts`` perturbed
            versions of its prompt (spaces inserted, as the Perturbation attack does, with seeds other than the
            audit's; :mod:`revs_engine.perturb_rounds`) and edit again, after the perturbed prompt where its
            logit-lens rank at some layer is lowest, the targets that come back below the residual window there,
            up to this many rounds (0: off). A shallow window stops the push with little margin, and a perturbed
            prompt lifts the token back into the top ranks. Needs the tokenizer both ways in the erase's inputs.
        perturb_prompts: perturbed prompts per target in each perturbation round.
        perturb_plain: the perturbation rounds also measure each target after its own prompt, at every layer (the
            settle rounds look at the final layer only; the Logit-Lens attack at every layer).
        perturb_drops: the perturbation rounds also measure each target after this many versions of its prompt
            with random words left out (:func:`revs_engine.perturb_rounds.drop_words`; 0: none): other wordings
            of the context, which the secret's other sentences use.
        promoting_mlp: a layer whose MLP output still ranks the target within the top ``promoting_mlp × V`` is
            edited even when the residual already ranks it past the residual window (0: the paper's gate, which
            skips it). Earlier edits can demote the residual while a later MLP keeps writing the memorized token
            (what the Delta attack reads, and what lifts it back after a perturbed prompt); such a layer's outer
            loop asks only the MLP output into the MLP window, with no upper bound on the residual rank.
        seed: torch seed set at the start of a run (the algorithm itself is deterministic).
        targets: which tokens of each secret are edited (§1.1).
        association: the middle-layer stage :func:`revs_engine.erase.erase` runs before REVS (off with
            ``steps = 0``).
    """

    n_neurons: int = 30
    act_filter: Literal["top_k", "positive", "none"] = "top_k"
    act_top_k: int = 100
    neuron_rank_window: tuple[float, float] = (30000 / _GPTJ_V, 45000 / _GPTJ_V)
    mlp_rank_window: tuple[float, float] = (1000 / _GPTJ_V, 45000 / _GPTJ_V)
    residual_rank_window: tuple[float, float] = (1000 / _GPTJ_V, 10000 / _GPTJ_V)
    max_iter_neuron: int = 100
    max_iter_mlp: int = 100
    initial_offset: float = -10.0
    push: float = 1.3
    back_off: float = 0.8
    growth: float = 1.6
    shrink: float = 0.8
    start_k: int = 5
    faithful_rmsnorm_inverse: bool = False
    neuron_score: Literal["rank", "contrast"] = "rank"
    contrast_weight: float = 1.0
    guard_check: bool = False
    guard_retries: int = 0
    guard_projection: float = 0.0
    guard_spread: int = 0
    final_spread: int = 0
    guard_value_weight: float = 0.0
    joint_projection: float = 0.0
    joint_final: float = 0.0
    joint_covariance: Literal["guard", "corpus", "both"] = "guard"
    joint_variants: bool = False
    corpus_value_weight: float = 0.0
    joint_settle_rounds: int = 0
    decoys: int = 0
    cross_decoys: int = 0
    cross_secrets: bool = False
    relative_demotion: bool = False
    settle_rounds: int = 0
    perturb_rounds: int = 0
    perturb_prompts: int = 2
    perturb_plain: bool = False
    perturb_drops: int = 0
    promoting_mlp: float = 0.0
    seed: int = 0
    targets: TargetConfig = field(default_factory=TargetConfig)
    association: AssociationConfig = field(default_factory=AssociationConfig)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            values = value if isinstance(value, tuple) else (value,)
            if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values) \
                    and f.type in ("int", "float", "tuple[float, float]"):
                raise ValueError(f"{f.name} must be a number, got {value!r}")
            if any(isinstance(v, float) and not math.isfinite(v) for v in values):
                raise ValueError(f"{f.name} must be a finite number, got {value!r}")
        if self.n_neurons < 1:
            raise ValueError(f"n_neurons must be ≥ 1, got {self.n_neurons}")
        if self.act_filter not in ("top_k", "positive", "none"):
            raise ValueError(f"act_filter must be 'top_k', 'positive' or 'none', got {self.act_filter!r}")
        if self.act_filter == "top_k" and self.act_top_k < self.n_neurons:
            raise ValueError(f"act_top_k ({self.act_top_k}) must be ≥ n_neurons ({self.n_neurons}): the "
                             "activation filter has to leave at least n_neurons candidates")
        for name in ("neuron_rank_window", "mlp_rank_window", "residual_rank_window"):
            window = getattr(self, name)
            if len(window) != 2:
                raise ValueError(f"{name} must be a (bottom, top) pair of fractions, got {window!r}")
            lo, hi = window
            if not (0 < lo <= 1 and 0 < hi <= 1):
                raise ValueError(f"{name} fractions of the vocabulary must lie in (0, 1], got {window!r}")
            if lo > hi:
                raise ValueError(f"{name}: bottom margin {lo} is above top margin {hi}")
        for name in ("max_iter_neuron", "max_iter_mlp", "start_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.initial_offset >= 0:
            raise ValueError(f"initial_offset must be negative (it lowers the target logit), got "
                             f"{self.initial_offset}")
        if not (self.push > 1 and 0 < self.back_off < 1):
            raise ValueError(f"need push > 1 and 0 < back_off < 1, got {self.push}, {self.back_off}")
        if self.neuron_score not in ("rank", "contrast"):
            raise ValueError(f"neuron_score must be 'rank' or 'contrast', got {self.neuron_score!r}")
        if not isinstance(self.relative_demotion, bool):
            raise ValueError(f"relative_demotion must be true or false, got {self.relative_demotion!r}")
        if not isinstance(self.cross_secrets, bool):
            raise ValueError(f"cross_secrets must be true or false, got {self.cross_secrets!r}")
        if not isinstance(self.perturb_plain, bool):
            raise ValueError(f"perturb_plain must be true or false, got {self.perturb_plain!r}")
        if self.settle_rounds < 0 or self.joint_settle_rounds < 0:
            raise ValueError(f"settle_rounds and joint_settle_rounds must be ≥ 0, got {self.settle_rounds}, "
                             f"{self.joint_settle_rounds}")
        if not 0 <= self.promoting_mlp < 1:
            raise ValueError(f"promoting_mlp is a fraction of the vocabulary in [0, 1), got {self.promoting_mlp}")
        if self.perturb_drops < 0:
            raise ValueError(f"perturb_drops must be ≥ 0, got {self.perturb_drops}")
        if self.perturb_rounds < 0 or self.perturb_prompts < 1:
            raise ValueError(f"need perturb_rounds ≥ 0 and perturb_prompts ≥ 1, got {self.perturb_rounds}, "
                             f"{self.perturb_prompts}")
        if self.guard_value_weight < 0 or self.corpus_value_weight < 0:
            raise ValueError(f"guard_value_weight and corpus_value_weight must be ≥ 0, got "
                             f"{self.guard_value_weight}, {self.corpus_value_weight}")
        if min(self.guard_spread, self.final_spread, self.decoys, self.cross_decoys) < 0:
            raise ValueError(f"guard_spread, final_spread, decoys and cross_decoys must be ≥ 0, got "
                             f"{self.guard_spread}, {self.final_spread}, {self.decoys}, {self.cross_decoys}")
        if self.joint_projection < 0 or self.joint_final < 0:
            raise ValueError(f"joint_projection and joint_final must be ≥ 0, got {self.joint_projection}, "
                             f"{self.joint_final}")
        if not isinstance(self.joint_variants, bool):
            raise ValueError(f"joint_variants must be true or false, got {self.joint_variants!r}")
        if self.joint_covariance not in ("guard", "corpus", "both"):
            raise ValueError(f"joint_covariance must be 'guard', 'corpus' or 'both', got "
                             f"{self.joint_covariance!r}")
        if self.contrast_weight < 0 or self.guard_retries < 0 or self.guard_projection < 0:
            raise ValueError(f"contrast_weight, guard_retries and guard_projection must be ≥ 0, got "
                             f"{self.contrast_weight}, {self.guard_retries}, {self.guard_projection}")
        if not (self.growth > 1 and 0 < self.shrink < 1):
            raise ValueError(f"need growth > 1 and 0 < shrink < 1, got {self.growth}, {self.shrink}")
        self._reject_inert()

    def _reject_inert(self) -> None:
        """Refuse settings that would silently do nothing (a knob that only acts through another one)."""
        inert = []
        if self.guard_spread and not self.guard_projection:
            inert.append(f"guard_spread = {self.guard_spread} only acts through the guard projection: set "
                         "guard_projection > 0 (e.g. 0.02) or drop guard_spread")
        if self.final_spread and not self.guard_projection:
            inert.append(f"final_spread = {self.final_spread} only acts through the guard projection: set "
                         "guard_projection > 0 (e.g. 0.02) or drop final_spread")
        if self.guard_value_weight and not self.guard_projection:
            inert.append(f"guard_value_weight = {self.guard_value_weight} only acts through the guard projection: "
                         "set guard_projection > 0 (e.g. 0.02) or drop guard_value_weight")
        for name in ("joint_projection", "joint_final"):
            if getattr(self, name) and not self.guard_projection:
                inert.append(f"{name} = {getattr(self, name)} re-projects with the guard projection's covariance: "
                             f"set guard_projection > 0 (e.g. 0.02) or drop {name}")
        if self.joint_covariance != "guard" and not (self.joint_projection or self.joint_final):
            inert.append(f"joint_covariance = {self.joint_covariance!r} only acts through the joint "
                         "re-projection: set joint_final > 0 (e.g. 0.001) or drop joint_covariance")
        if self.corpus_value_weight and (self.joint_covariance == "guard"
                                         or not (self.joint_projection or self.joint_final)):
            inert.append(f"corpus_value_weight = {self.corpus_value_weight} weighs the joint re-projection's "
                         "corpus covariance: set joint_final > 0 (e.g. 0.001) and joint_covariance = 'both' or "
                         "'corpus', or drop corpus_value_weight")
        if self.joint_settle_rounds and not (self.joint_projection or self.joint_final):
            inert.append(f"joint_settle_rounds = {self.joint_settle_rounds} checks the ranks after the joint "
                         "re-projection: set joint_final > 0 (e.g. 0.001) or drop joint_settle_rounds")
        if self.joint_variants and not (self.joint_projection or self.joint_final):
            inert.append("joint_variants only acts through the joint re-projection: set joint_final > 0 (e.g. "
                         "0.001) or drop joint_variants")
        if self.joint_variants and not (self.perturb_rounds and (self.perturb_prompts or self.perturb_drops)):
            inert.append("joint_variants keeps the change after the perturbation rounds' prompts: set "
                         "perturb_rounds and perturb_prompts (or perturb_drops) > 0, or drop joint_variants")
        if self.contrast_weight != 1.0 and self.neuron_score != "contrast":
            inert.append(f"contrast_weight = {self.contrast_weight} only weighs the contrast score: set "
                         "neuron_score = 'contrast' or drop contrast_weight")
        if self.guard_retries and not self.guard_check:
            inert.append(f"guard_retries = {self.guard_retries} only acts after a guard check: set "
                         "guard_check = true or drop guard_retries")
        if self.act_top_k != 100 and self.act_filter != "top_k":
            inert.append(f"act_top_k = {self.act_top_k} only sizes the top_k filter: set act_filter = 'top_k' "
                         "or drop act_top_k")
        if self.decoys and not self.uses_guard:
            inert.append(f"decoys = {self.decoys} only feed the retain guard, and nothing in this configuration "
                         "uses it: set guard_projection, neuron_score = 'contrast', guard_check or targets.method "
                         "= 'distinct', or drop decoys")
        if self.cross_secrets and not self.uses_guard:
            inert.append("cross_secrets only feeds the retain guard, and nothing in this configuration uses it: "
                         "set guard_projection, neuron_score = 'contrast', guard_check or targets.method = "
                         "'distinct', or drop cross_secrets")
        if inert:
            raise ValueError("; ".join(inert))

    @property
    def uses_guard(self) -> bool:
        """Whether any step of this configuration reads the retain guard (neuron scoring, the projection, the
        check, or the ``distinct`` position rule); a guard given to a configuration that does not is ignored."""
        return (self.neuron_score == "contrast" or self.guard_projection > 0 or self.guard_check
                or self.targets.method == "distinct")

    def bounds(self, vocab_size: int) -> dict[str, tuple[int, int]]:
        """Return the three rank windows as integer ranks for ``vocab_size``."""
        return {
            "neuron": rank_bounds(self.neuron_rank_window, vocab_size),
            "mlp": rank_bounds(self.mlp_rank_window, vocab_size),
            "residual": rank_bounds(self.residual_rank_window, vocab_size),
        }

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (tuples become lists), e.g. for a patch manifest."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("targets", "association"):
            part = getattr(self, name)
            out[name] = {f.name: getattr(part, f.name) for f in dataclasses.fields(part)}
        return _jsonable(out)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RevsConfig:
        """Rebuild a config from :meth:`to_dict` output."""
        data = dict(data)
        tgt = dict(data.pop("targets", {}))
        assoc = {k: tuple(v) if isinstance(v, list) else v for k, v in data.pop("association", {}).items()}
        for key in ("skip_substrings", "stop_substrings", "cover_ranks"):
            if tgt.get(key) is not None:
                tgt[key] = tuple(tgt[key])
        for key in ("neuron_rank_window", "mlp_rank_window", "residual_rank_window"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data, targets=TargetConfig(**tgt), association=AssociationConfig(**assoc))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value
