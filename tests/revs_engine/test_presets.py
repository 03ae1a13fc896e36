"""Presets: named configurations, the default per tokenizer family, a policy's overrides, inert knobs refused."""

import dataclasses

import pytest

from revs_engine.config import RevsConfig
from revs_engine.presets import PRESETS, default_preset, resolve_config, switched_off, tokenizer_family
from tests.revs_engine._tokenizer import make_tiny_tokenizer


def test_the_default_follows_the_tokenizer_family():
    one_per_digit = lambda text: [ord(c) for c in text]  # noqa: E731
    three_per_token = lambda text: [int(text[i:i + 3]) for i in range(0, len(text), 3)]  # noqa: E731
    assert tokenizer_family(one_per_digit) == "digit-level"
    assert default_preset(one_per_digit) == "digits"
    assert tokenizer_family(three_per_token) == "multi-digit"
    assert default_preset(three_per_token) == "paper"
    tok = make_tiny_tokenizer()
    assert default_preset(lambda t: tok(t, add_special_tokens=False)["input_ids"]) in PRESETS


def test_a_policy_names_a_preset_and_overrides_fields():
    cfg = resolve_config({"preset": "digits", "n_neurons": 40, "residual_rank_window": [0.1, 0.3],
                          "targets": {"fallback": 2}, "ftl": {"lr": 1e-3}}, default="paper")
    assert cfg.name == "digits"
    assert cfg.method == "revs"
    assert (cfg.revs.n_neurons, cfg.revs.residual_rank_window, cfg.revs.targets.fallback) == (40, (0.1, 0.3), 2)
    assert cfg.revs.guard_projection == PRESETS["digits"].revs.guard_projection  # the rest is the preset's
    assert cfg.overrides == ("ftl.lr", "n_neurons", "residual_rank_window", "targets.fallback")
    assert resolve_config(None, default="digits") == PRESETS["digits"]
    assert cfg.to_dict()["preset"] == "digits"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"preset": "best"}, "unknown preset 'best'"),
    ({"bogus": 1, "targets": {"nope": 2}}, "unknown key.*bogus.*targets.nope"),
    ({"guard_spread": 64}, "guard_spread = 64 only acts through the guard projection"),
    ({"contrast_weight": 2.0}, "contrast_weight = 2.0 only weighs the contrast score"),
    ({"guard_retries": 2}, "guard_retries = 2 only acts after a guard check"),
    ({"decoys": 4}, "decoys = 4 only feed the retain guard"),
    ({"act_filter": "positive", "act_top_k": 300}, "act_top_k = 300 only sizes the top_k filter"),
    ({"preset": "ftl", "targets": {"fallback": 1}}, "do nothing for FT-L"),
    ({"preset": "ftl", "targets": {"cover_ranks": [4, 8]}}, "do nothing for FT-L"),
    ({"targets": {"cover_ranks": [0, 8]}}, "cover_ranks must be"),
    ({"guard_projection": float("nan")}, "finite"),
    ({"n_neurons": "many"}, "must be a number"),
    ({"n_neurons": 50, "act_top_k": 10}, "act_top_k"),
])
def test_settings_that_are_wrong_or_do_nothing_are_refused_by_name(overrides, message):
    with pytest.raises(ValueError, match=message):
        resolve_config(overrides, default="paper")


def test_every_preset_is_a_valid_configuration_and_the_library_default_is_the_papers():
    assert PRESETS["paper"].revs == RevsConfig()
    assert not RevsConfig().uses_guard
    assert PRESETS["digits"].uses_guard
    assert PRESETS["ftl"].method == "ftl"


def test_revs_knobs_under_the_ftl_preset_are_refused():
    with pytest.raises(ValueError, match="runs FT-L, which does not use REVS's guard_projection, n_neurons"):
        resolve_config({"preset": "ftl", "n_neurons": 7, "guard_projection": 0.02}, default="paper")
    cfg = resolve_config({"preset": "ftl", "ftl": {"lr": 1e-3}, "targets": {"max_tokens": 2}}, "paper")
    assert cfg.ftl.lr == 1e-3


def test_settings_that_act_through_a_step_a_policy_switches_off_follow_it():
    # the digits preset re-projects jointly, away from a corpus sample too, after the rounds' prompts too
    base = resolve_config({}, "digits").revs
    assert (base.joint_covariance, base.joint_variants) == ("both", True)
    # a policy that turns the joint step off does not have to undo what only acts through it
    off = resolve_config({"joint_final": 0}, "digits").revs
    assert (off.joint_final, off.joint_covariance, off.joint_variants) == (0, "guard", False)
    # nor one that turns the perturbation rounds off (the joint step itself stays)
    no_rounds = resolve_config({"perturb_rounds": 0}, "digits").revs
    assert (no_rounds.joint_final, no_rounds.joint_covariance, no_rounds.joint_variants) == (0.001, "both", False)
    # a policy that asks for the inert combination itself is still refused
    with pytest.raises(ValueError, match="joint_variants only acts through the joint re-projection"):
        resolve_config({"joint_final": 0, "joint_variants": True}, "digits")
    with pytest.raises(ValueError, match="joint_covariance = 'corpus' only acts through"):
        resolve_config({"joint_final": 0, "joint_covariance": "corpus"}, "digits")


def test_switching_a_step_off_in_code_resets_what_only_acts_through_it():
    # given the digits preset with the corpus positions before demoted tokens weighed too
    weighed = dataclasses.replace(resolve_config({}, "digits").revs, corpus_value_weight=2.0,
                                  joint_settle_rounds=1)
    # when the joint step is switched off (as an erase without a corpus sample does)
    off = switched_off(weighed, joint_projection=0.0, joint_final=0.0)
    # then everything that acts only through it is back at its default, and the rest is kept
    assert (off.joint_final, off.joint_covariance, off.joint_variants, off.corpus_value_weight,
            off.joint_settle_rounds) == (0.0, "guard", False, 0.0, 0)
    assert (off.perturb_rounds, off.guard_projection) == (weighed.perturb_rounds, weighed.guard_projection)
    # and switching the corpus off alone keeps the joint step, without the weight
    guard_only = switched_off(weighed, joint_covariance="guard")
    assert (guard_only.joint_final, guard_only.corpus_value_weight, guard_only.joint_settle_rounds) == \
        (0.001, 0.0, 1)
