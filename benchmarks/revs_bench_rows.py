"""The rows :mod:`benchmarks.revs_bench` can run: ``default`` (what `revs unlearn` does with no flags), every
preset by name, and the opt-in :data:`EXTRA` rows, each a policy ``[revs]`` table on a preset (what the knobs no
preset uses do; ``benchmarks/RESULTS.md`` has their measurements). :func:`variant` turns a name into a label and
an :class:`~revs_engine.presets.EraseConfig` through :func:`~revs_engine.presets.resolve_config`, as a policy
would."""

from __future__ import annotations

from revs_engine.presets import PRESETS, EraseConfig, default_preset, resolve_config

#: The ``digits`` preset's settings before 2026-12-05 (residual window 5–25 %, no settle or perturbation rounds):
#: the rows measured on it keep them, so that ``benchmarks/RESULTS.md``'s rows stay reproducible.
DEEP = {"preset": "digits", "residual_rank_window": [0.05, 0.25], "settle_rounds": 0, "perturb_rounds": 0,
        "joint_variants": False}

#: Opt-in rows that show what the knobs no preset uses are for (each is a policy [revs] table on a preset).
EXTRA = {
    # contrast scoring + verify-and-redo (the guard check), distinct positions, narrow residual window
    "ours": ("REVS, contrast + check (opt-in)",
             {"preset": "paper", "neuron_score": "contrast", "guard_check": True, "guard_retries": 3,
              "residual_rank_window": [0.006, 0.03], "mlp_rank_window": [0.006, 0.9],
              "targets": {"method": "distinct"}}),
    # the digits preset, then every other digit of each SSN to final ranks 4-8 (format-aware erasure, #17)
    "cover": ("digits + cover 4-8", {**DEEP, "targets": {"cover_ranks": [4, 8]}}),
    # the digits preset with each digit demoted relative to the other digits (their logits held, #17)
    "relative": ("digits + relative demotion", {**DEEP, "relative_demotion": True}),
    # the digits preset as it was before cross decoys and spread 512 became its default (2026-12-03)
    "spread256": ("digits without cross decoys, spread 256", {**DEEP, "cross_decoys": 0,
                                                              "guard_spread": 256}),
    # the digits preset demoting only just past the audit's k: residual window 0.4–2 % of the vocabulary (about
    # ranks 200–1,000 on SmolLM2) instead of 5–25 % — less push on the digit other people share
    "shallow": ("digits, residual window 0.4–2 %", {**DEEP, "residual_rank_window": [0.004, 0.02]}),
    # the digits preset with each digit demoted relative to the other digits and the shallow window
    "relative-shallow": ("digits + relative demotion, residual window 0.4–2 %",
                         {**DEEP, "relative_demotion": True, "residual_rank_window": [0.004, 0.02]}),
    # the digits preset with a stronger guard projection (ridge 0.005 instead of 0.02) or a wider spread (1,024
    # neurons instead of 512): the change at guarded positions held smaller
    "projection-strong": ("digits, guard projection ridge 0.005", {**DEEP, "guard_projection": 0.005}),
    "spread1024": ("digits, guard spread 1,024", {**DEEP, "guard_spread": 1024}),
    # the digits preset with the guard check: each secret's edit verified on the guard's retained items and redone
    # stricter (contrast weight doubled, projection ridge quartered) up to 3 times when one of them broke
    "values10": ("digits, guard value weight 10", {**DEEP, "guard_value_weight": 10.0}),
    "values3": ("digits, guard value weight 3", {**DEEP, "guard_value_weight": 3.0}),
    "values10-strong": ("digits, guard value weight 10, ridge 0.005",
                        {**DEEP, "guard_value_weight": 10.0, "guard_projection": 0.005}),
    "values10-wide": ("digits, guard value weight 10, spread 1,024",
                      {**DEEP, "guard_value_weight": 10.0, "guard_spread": 1024}),
    "settle": ("digits, 2 settle rounds", {**DEEP, "settle_rounds": 2}),
    "shallow-settle": ("digits, residual window 0.4–2 %, 2 settle rounds",
                       {**DEEP, "residual_rank_window": [0.004, 0.02], "settle_rounds": 2}),
    # the digits preset as it was until 2026-12-05 (the default's rounds and window undone)
    "deep": ("digits until 2026-12-05: residual window 5–25 %, no rounds", DEEP),
    "first": ("digits, first digit", {**DEEP, "targets": {"method": "first"}}),
    "checked": ("digits + guard check, 3 retries", {**DEEP, "guard_check": True, "guard_retries": 3}),
    # relative demotion with the stronger guard projection and the wider spread
    "relative-strong": ("digits + relative demotion, ridge 0.005, spread 1,024",
                        {**DEEP, "relative_demotion": True, "guard_projection": 0.005,
                         "guard_spread": 1024}),
    # the digits preset with two targets per value instead of one (deeper on e-mail addresses, at a Specificity
    # cost: RESULTS.md "E-mail addresses: what was tried")
    "two-targets": ("digits, two targets per value", {**DEEP, "targets": {"max_tokens": 2}}),
    # the digits preset with each digit demoted relative to the other digits, and every other digit of each SSN
    # too, to final ranks 30-300
    "relative-cover": ("digits + relative + cover 30-300",
                       {**DEEP, "relative_demotion": True, "targets": {"cover_ranks": [30, 300]}}),
    # the digits preset after the middle-layer association stage (every digit of each value, #17): the
    # covariance weight trades depth against Specificity (RESULTS.md "association")
    "association": ("digits + association", {**DEEP, "association": {"steps": 30}}),
    "association-3": ("digits + association, covariance weight 3",
                      {**DEEP, "association": {"steps": 30, "covariance_weight": 3.0}}),
    "association-1": ("digits + association, covariance weight 1",
                      {**DEEP, "association": {"steps": 30, "covariance_weight": 1.0}}),
    # ... with 8 counterfactuals per guarded item (the secrets' look-alikes after other people's prompts)
    "association-cf": ("digits + association, covariance weight 3, 8 counterfactuals",
                       {**DEEP, "association": {"steps": 30, "covariance_weight": 3.0,
                                                            "counterfactuals": 8}}),
    "association-cf10": ("digits + association, covariance weight 3, 8 counterfactuals at weight 10",
                         {**DEEP,
                          "association": {"steps": 30, "covariance_weight": 3.0, "counterfactuals": 8,
                                          "counterfactual_weight": 10.0}}),
    # ... in layers 4–6 of 30 only (fractions 0.14–0.2): layers 7–9 carried the stage's collateral on phone seed 1
    "association-cf10-early": ("digits + association in layers 4–6, covariance weight 3, 8 counterfactuals at "
                               "weight 10",
                               {**DEEP,
                                "association": {"steps": 30, "covariance_weight": 3.0, "counterfactuals": 8,
                                                "counterfactual_weight": 10.0, "layer_range": (0.14, 0.2)}}),
    # the product default with more perturbed prompts per perturbation round, or a third round (the Perturbation
    # attack is what keeps phone and surname Resistance under 99.5; chosen on phone seed 0)
    # (the default since 2026-12-06; before, 2 per round: the row `perturb2`)
    "perturb4": ("digits, 4 perturbed prompts per round", {"preset": "digits", "perturb_prompts": 4}),
    "perturb2": ("digits, 2 perturbed prompts per round (the default before 2026-12-06)",
                 {"preset": "digits", "perturb_prompts": 2}),
    # ... and the rounds also measure each target after 4 prompts with 30 % of their words left out
    "drop4": ("digits, 4 word-dropped prompts per round", {"preset": "digits", "perturb_drops": 4}),
    "perturb4-drop4": ("digits, 4 perturbed and 4 word-dropped prompts per round",
                       {"preset": "digits", "perturb_prompts": 4, "perturb_drops": 4}),
    # ... and layers whose MLP still ranks the target in its top 0.4 % edited past the residual window (the Delta
    # attack's remaining hits on SSN seed 0 were such a layer: rank 1 in its MLP output, the residual at 473)
    "promoting": ("digits, promoting MLPs edited past the window", {"preset": "digits", "promoting_mlp": 0.004}),
    # ... and 4 word-dropped prompts per perturbation round
    "promoting-drop4": ("digits, promoting MLPs edited, 4 word-dropped prompts per round",
                        {"preset": "digits", "promoting_mlp": 0.004, "perturb_drops": 4}),
    "promoting-perturb4": ("digits, promoting MLPs edited, 4 perturbed prompts per round",
                           {"preset": "digits", "promoting_mlp": 0.004, "perturb_prompts": 4}),
    "perturb-rounds3": ("digits, 3 perturbation rounds", {"preset": "digits", "perturb_rounds": 3}),
    # ... and the plain prompt measured in the perturbation rounds too (every layer; the Logit-Lens attack's view)
    "perturb-plain": ("digits, perturbation rounds measure the plain prompt too",
                      {"preset": "digits", "perturb_plain": True}),
    # ... and the last block's edits spread over every one of its 1,536 neurons (its edits carry nearly all of the
    # perplexity cost on prose; chosen on phone seed 1)
    "final-spread": ("digits, last block spread over 1,536 neurons", {"preset": "digits", "final_spread": 1536}),
    # ... and every block's edits spread over all 1,536 neurons
    "spread-all": ("digits, every block spread over 1,536 neurons", {"preset": "digits", "guard_spread": 1536}),
    # ... and positions whose token is also in another person's guarded value taken after the others (the
    # e-mails' broken retained addresses broke at the tokens edited for another person; chosen on e-mail seed 0)
    "shared-last": ("digits, tokens of guarded values targeted last",
                    {"preset": "digits", "targets": {"shared_last": True}}),
    # ... and the guard's value positions weighted 10× in the projection's covariance (the default's window and
    # rounds; `values10` is the same on the old deep window)
    "values10-rounds": ("digits, guard value weight 10", {"preset": "digits", "guard_value_weight": 10.0}),
    # ... and each edited block's whole change re-projected at once once the passes are done (the MLP output
    # kept at every context the block was edited at, the guard's positions changed least; chosen on phone seed 1)
    "joint-final": ("digits, last block re-projected jointly (λ 0.001)",
                    {"preset": "digits", "joint_final": 0.001, "joint_covariance": "guard",
                     "joint_variants": False}),
    "joint-all": ("digits, every block re-projected jointly (λ 0.1, last block 0.001)",
                  {"preset": "digits", "joint_projection": 0.1, "joint_final": 0.001,
                   "joint_covariance": "guard", "joint_variants": False}),
    # ... every block but the last (its joint step raised held-out perplexity on phone seeds 0 and 2)
    "joint-early": ("digits, every block but the last re-projected jointly (λ 0.1)",
                    {"preset": "digits", "joint_projection": 0.1, "joint_final": 0.0,
                     "joint_covariance": "guard", "joint_variants": False}),
    # ... and the last block re-projected away from a covariance over a sample of 600 corpus texts (~33k
    # positions) instead of the guard's few thousand, or from both (chosen on phone seed 1; `joint-both` is the
    # default since 2026-12-06, `no-joint` the default before)
    "joint-corpus": ("digits, last block re-projected jointly away from a corpus sample (λ 0.001)",
                     {"preset": "digits", "joint_final": 0.001, "joint_covariance": "corpus",
                      "joint_variants": False}),
    "joint-both": ("digits, last block re-projected jointly away from the guard and a corpus sample (λ 0.001; "
                   "the default of 2026-12-06 until the seventeenth session)",
                   {"preset": "digits", "joint_final": 0.001, "joint_covariance": "both",
                    "joint_variants": False}),
    "no-joint": ("digits without the last block's joint re-projection (the default until 2026-12-06)",
                 {"preset": "digits", "joint_final": 0.0, "joint_covariance": "guard", "joint_variants": False}),
    # ... also after the perturbation rounds' rewritten prompts (`joint-both`'s step lowered SSN Resistance
    # through the Perturbation attack: it moved the change off perturbed prompts; the default since the
    # seventeenth session)
    "joint-variants": ("digits, the joint step also keeping the change after the perturbation rounds' prompts "
                       "(the default)", {"preset": "digits", "joint_variants": True}),
    # the default's joint step on every edited block, not only the last (λ 0.1 before the last block; the
    # covariance is the default's, guard and corpus sample): does it keep other people's digits (#21)?
    "joint-early-both": ("digits, every edited block re-projected jointly (λ 0.1 before the last, the default's "
                         "covariance)", {"preset": "digits", "joint_projection": 0.1}),
    "joint-early-both-0.01": ("digits, every edited block re-projected jointly (λ 0.01 before the last, the "
                              "default's covariance)", {"preset": "digits", "joint_projection": 0.01}),
    # ... with the corpus positions before a demoted token weighed 10 (chosen on SSN seed 0: unseen Specificity
    # 87.33 → 92.00 over three SSN seeds; phone perplexity rose on all three held-out seeds, so opt-in)
    "joint-early-values10": ("digits, every edited block re-projected jointly (λ 0.1 before the last), the corpus "
                             "positions before a demoted token weighed 10",
                             {"preset": "digits", "joint_projection": 0.1, "corpus_value_weight": 10.0}),
    # ... and the settle and perturbation checks run once more after the joint step (it moves each block's
    # change, and nothing re-checked the ranks after it: `joint-early-values10` lost phone Efficacy there)
    "joint-settle": ("digits, settle and perturbation checks again after the joint step",
                     {"preset": "digits", "joint_settle_rounds": 1}),
    "joint-early-values10-settle": ("digits, every edited block re-projected jointly (λ 0.1 before the last), the "
                                    "corpus positions before a demoted token weighed 10, then the settle and "
                                    "perturbation checks again",
                                    {"preset": "digits", "joint_projection": 0.1, "corpus_value_weight": 10.0,
                                     "joint_settle_rounds": 1}),
    # ... and 4 word-dropped prompts per perturbation round with the checks again after the joint step (`drop4`
    # raised phone Generality on seed 0, 79.45 → 84.30, and lost a target's Efficacy, 100 → 99.05; chosen there)
    "drop4-settle": ("digits, 4 word-dropped prompts per round, the checks again after the joint step",
                     {"preset": "digits", "perturb_drops": 4, "joint_settle_rounds": 1}),
    # ... and, after each target's prefix, the other tokens that begin writing its text demoted too (`c`, `ch`,
    # `che` where the address has `chen`: the one e-mail extraction left, seed 0, was `chen` re-spelled `c|hen`;
    # the default since the twenty-second session, `no-spellings` the default before; no SSN or phone position
    # of the benchmark has another spelling, so on those sets the two are the same edit)
    "spellings": ("digits, the other tokens that begin each target's text demoted too",
                  {"preset": "digits", "targets": {"spellings": True}}),
    "no-spellings": ("digits without demoting other spellings (the default until the twenty-second session)",
                     {"preset": "digits", "targets": {"spellings": False}}),
    # ... and each secret itself guarded after other people's prompts (an e-mail's surname piece that another
    # person's name spells: the e-mail erase breaks other people's addresses at the tokens it edits)
    "cross-secrets": ("digits, each secret itself guarded after other people's prompts",
                      {"preset": "digits", "cross_secrets": True}),
    # ... with the other spellings demoted too, and the perturbation rounds also measuring each target after its
    # own prompt at every layer (cross-secrets lost Logit-Lens and Perturbation Resistance on e-mail seed 0)
    "cross-secrets-plain": ("digits, each secret itself guarded after other people's prompts, other spellings "
                            "demoted, the rounds measuring the plain prompt too",
                            {"preset": "digits", "cross_secrets": True, "perturb_plain": True,
                             "targets": {"spellings": True}}),
    # the default, with the corpus sample's positions before a token the erase demotes (where other text writes
    # those digits) weighed w more in the joint step's covariance (#21: other people's digits)
    "corpus-values10": ("digits, the joint step's corpus positions before a demoted token weighed 10",
                        {"preset": "digits", "corpus_value_weight": 10.0}),
    "corpus-values100": ("digits, the joint step's corpus positions before a demoted token weighed 100",
                         {"preset": "digits", "corpus_value_weight": 100.0}),
    "joint-corpus-all": ("digits, every block re-projected jointly away from a corpus sample (λ 0.1, last 0.001)",
                         {"preset": "digits", "joint_projection": 0.1, "joint_final": 0.001,
                          "joint_covariance": "corpus", "joint_variants": False}),
    "association-cf-deep": ("digits + association, no covariance weight, lr 0.01, 32 counterfactuals",
                            {**DEEP, "association": {"steps": 30, "covariance_weight": 0.0, "lr": 1e-2,
                                                                 "counterfactuals": 32}}),
}


def variant(name: str, encode) -> tuple[str, EraseConfig]:
    """Return a row's label and configuration: ``default`` (what `revs unlearn` does with no flags), a preset
    name, or an :data:`EXTRA` row."""
    if name == "default":
        preset = default_preset(encode)
        return f"product default ({preset})", PRESETS[preset]
    if name in PRESETS:
        return {"paper": "REVS, paper rules", "ftl": "FT-L"}.get(name, name), PRESETS[name]
    label, overrides = EXTRA[name]
    return label, resolve_config(overrides, "paper")
