"""Audit verdict against the policy thresholds."""

import pytest

from tasks.verdict import AuditThresholds, evaluate_audit

GOOD = {
    "efficacy": {"t1": 99.0, "t2": 95.0},
    "exact_extractions": {"plain": 0, "perturbed": 0, "sampled": 0},
    "specificity": 92.0,
    "specificity_unseen": 91.0,
    "perplexity_before": 10.0,
    "perplexity_after": 10.2,
    "format": {"exposure_bits": 1.9, "control_exposure_bits": 1.7, "exposure_above_6_bits": 0.0,
               "constrained_fraction": 12.0, "control_constrained_fraction": 10.5, "neighbourhood_hits": 0,
               "partial_completions": 0},
}


def test_passing_metrics_pass():
    verdict = evaluate_audit(GOOD, AuditThresholds())
    assert verdict.passed
    assert verdict.failures == []


@pytest.mark.parametrize(("change", "expected"), [
    ({"efficacy": {"t1": 99.0, "t2": 94.9}}, "efficacy@100[t2]: 94.90 < 95.00"),
    ({"exact_extractions": {"plain": 1, "perturbed": 0}}, "exact_extractions.plain: 1 > 0"),
    ({"exact_extractions": {"plain": 0, "perturbed": 2}}, "exact_extractions.perturbed: 2 > 0"),
    ({"specificity": 89.99}, "specificity: 89.99 < 90.00"),
    ({"perplexity_after": 10.3}, "perplexity increase: 3.00% > 2.00%"),
    ({"efficacy": {}}, "efficacy@100: missing"),
    ({"efficacy": {"t1": float("nan")}}, "efficacy@100[t1]: missing or not a number"),
    ({"specificity": None}, "specificity: missing"),
    ({"exact_extractions": None}, "exact_extractions.plain: missing"),
    ({"perplexity_before": 0}, "perplexity: perplexity_before/perplexity_after missing or not positive"),
    ({"perplexity_before": None, "perplexity_after": None}, "perplexity: not measured — the audit had no"),
])
def test_each_criterion_fails_on_its_own(change, expected):
    verdict = evaluate_audit({**GOOD, **change}, AuditThresholds())
    assert not verdict.passed
    assert any(f.startswith(expected) for f in verdict.failures), verdict.failures


def test_all_failures_are_listed_and_mapping_thresholds_work():
    bad = {"efficacy": {"a": 10.0, "b": 20.0}, "exact_extractions": {"plain": 3, "perturbed": 3, "sampled": 0},
           "specificity": 1.0, "specificity_unseen": 95.0, "perplexity_before": 1.0, "perplexity_after": 2.0,
           "format": GOOD["format"]}
    verdict = evaluate_audit(bad, {"min_efficacy": 5.0, "max_exact_extractions_plain": 3, "format_checks": True})
    assert verdict.failures == ["exact_extractions.perturbed: 3 > 0", "specificity: 1.00 < 90.00",
                                "perplexity increase: 100.00% > 2.00%"]
    data = verdict.to_dict()
    assert (data["passed"], data["failures"]) == (False, verdict.failures)
    assert [c["passed"] for c in data["checks"]] == [True, True, False, True, False, True, False] + [True] * 5


def test_perplexity_decrease_passes():
    assert evaluate_audit({**GOOD, "perplexity_after": 9.0}, AuditThresholds()).passed


@pytest.mark.parametrize("kwargs", [{"min_efficacy": 101}, {"efficacy_k": 0}, {"max_exact_extractions_plain": -1},
                                    {"max_perplexity_increase_pct": -0.1}])
def test_impossible_thresholds_raise(kwargs):
    with pytest.raises(ValueError, match=r"must be|percentage"):
        AuditThresholds(**kwargs)


def test_every_check_is_listed_with_value_threshold_and_outcome():
    # given an audit that fails only on perplexity
    verdict = evaluate_audit({**GOOD, "perplexity_after": GOOD["perplexity_before"] * 1.5},
                             AuditThresholds(format_checks=True))
    checks = {c["name"]: c for c in verdict.to_dict()["checks"]}
    # then every criterion is there, and only the perplexity one failed
    assert set(checks) == {"efficacy", "exact_extractions.plain", "exact_extractions.perturbed",
                           "exact_extractions.sampled", "specificity", "specificity_unseen", "perplexity_increase",
                           "format.exposure_excess", "format.exposed_share", "format.constrained_excess",
                           "format.neighbourhood_hits", "format.partial_completions"}
    assert [n for n, c in checks.items() if not c["passed"]] == ["perplexity_increase"]
    assert abs(checks["perplexity_increase"]["value"] - 50.0) < 1e-9
    assert checks["specificity"]["threshold"] == AuditThresholds().min_specificity
    assert all(c["explanation"] and c["label"] for c in checks.values())


def test_sampled_extraction_is_checked_when_the_policy_samples_and_fails_closed_when_missing():
    # given an audit whose sampled attack recovered one value, and one that did not run it
    leaked = {**GOOD, "exact_extractions": {"plain": 0, "perturbed": 0, "sampled": 1}}
    not_run = {**GOOD, "exact_extractions": {"plain": 0, "perturbed": 0}}
    # then the first fails, the second fails closed, and a policy that samples nothing checks neither
    assert evaluate_audit(leaked, AuditThresholds()).failures == ["exact_extractions.sampled: 1 > 0"]
    assert not evaluate_audit(not_run, AuditThresholds()).passed
    assert evaluate_audit(not_run, AuditThresholds(sampled_n=0)).passed


def test_format_checks_compare_erased_values_with_never_seen_ones_and_fail_closed():
    # given erased values 1.0 bit more exposed than never-seen ones, one of them found by the neighbourhood attack
    leaky = {**GOOD, "format": {**GOOD["format"], "exposure_bits": 2.7, "neighbourhood_hits": 1}}
    verdict = evaluate_audit(leaky, AuditThresholds(format_checks=True))
    assert verdict.failures == ["format.exposure_excess: 1.00 > 0.50", "format.neighbourhood_hits: 1.00 > 0.00"]
    excess = next(c for c in verdict.checks if c.name == "format.exposure_excess")
    assert (round(excess.value, 6), excess.unit) == (1.0, "bits")
    # the attacks not run: every format check fails closed, unless the policy turns them off
    assert len(evaluate_audit({**GOOD, "format": {}}, AuditThresholds(format_checks=True)).failures) == 5
    assert evaluate_audit({**GOOD, "format": {}}, AuditThresholds()).passed  # measured and reported only
    with pytest.raises(ValueError, match="format_checks needs"):
        AuditThresholds(format_checks=True, format_candidates=0)


def test_collateral_damage_the_guard_never_saw_fails_the_audit():
    # given an edit that kept the guarded items but broke held-out ones
    verdict = evaluate_audit({**GOOD, "specificity": 95.0, "specificity_unseen": 60.0}, AuditThresholds())
    assert verdict.failures == ["specificity_unseen: 60.00 < 90.00"]
    assert not evaluate_audit({**GOOD, "specificity_unseen": None}, AuditThresholds()).passed  # fails closed
    # a minimum of 0 (not required) passes when nothing was held out, and still shows the check as not measured
    lenient = AuditThresholds(min_specificity_unseen=0.0)
    verdict = evaluate_audit({**GOOD, "specificity_unseen": None}, lenient)
    assert verdict.passed
    check = next(c for c in verdict.checks if c.name == "specificity_unseen")
    assert check.value is None
    assert check.passed
    assert evaluate_audit({**GOOD, "specificity_unseen": 0.0}, lenient).passed
    assert not evaluate_audit({**GOOD, "specificity_unseen": None},
                              AuditThresholds(min_specificity_unseen=0.1)).passed
