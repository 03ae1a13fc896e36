"""The one audit (revs_engine.audit): every row, per target and aggregated, and reading the table back."""

import pyarrow as pa
import pytest

from revs_engine import audit as audit_module
from revs_engine.arch import resolve_arch
from revs_engine.attacks import generation, resumed_sampling
from revs_engine.audit import AuditConfig, AuditInputs, AuditRow, audit
from revs_engine.audit_table import ALL_TARGETS, same_verdicts, summary, verdict_metrics
from revs_engine.probes import ProbeItem
from revs_engine.schema import AUDIT_SCHEMA
from revs_engine.targets import TokenTarget
from tests.revs_engine.test_attacks import MEMORIZED, PROMPTS, V, encode, forget_targets, lens_model
from tests.revs_engine.tiny import tiny_model


def decode(ids):
    return " ".join(str(i) for i in ids)


def inputs(**kw):
    forget = forget_targets(secrets=MEMORIZED)
    items = tuple(ProbeItem(tuple(encode(p)), (400, 400)) for p in PROMPTS)
    base = dict(forget=tuple(forget), forget_ids=("f0", "f1"), forget_items=items, prompts=tuple(PROMPTS),
                encode=encode, decode=decode,
                generality=tuple(forget_targets(positions=(1,), secrets=MEMORIZED)), generality_items=items,
                retain=(ProbeItem((3, 4, 5), (7, 8)), ProbeItem((3, 4, 6), (400, 400))),
                retain_ids=("r0", "r1"), retain_guarded=(True, False), benign=((5, 6, 7, 8),))
    return AuditInputs(**{**base, **kw})


def test_audit_reports_every_metric_per_target_and_aggregate_in_the_audit_schema():
    # given the memorizing model (token 400 is top-1 everywhere) and its erased / retained items
    model, arch = lens_model("memorized")
    # when
    report = audit(model, arch, inputs(), AuditConfig(ks=(10, 20), n_samples=3), stage="before")
    table, agg = report.table(), report.summary()
    # then nothing counts as forgotten, every extraction attack recovers every value
    assert table.schema.equals(AUDIT_SCHEMA)
    for k in (10, 20):
        for metric in ("efficacy", "logit_lens", "delta", "perturb", "generality", "resistance_score",
                       "unlearning_score"):
            assert agg[(metric, k)] == 0.0
    for metric in ("greedy_extraction", "perturbed_greedy_extraction", "generality_greedy_extraction",
                   "sampled_extraction"):
        assert agg[(metric, None)] == 100.0, metric
    # the retained item ending in 400 400 is reproduced, the other is not; split by what the guard held
    assert agg[("specificity", None)] == 50.0
    assert (agg[("specificity_guarded", None)], agg[("specificity_unseen", None)]) == (0.0, 100.0)
    assert ("perplexity", None) in agg
    assert len([r for r in report.rows if r.metric == "layer_rank"]) == arch.n_layers
    per_target = [r for r in report.rows if r.target_id == "f0" and r.metric == "efficacy"]
    assert [r.k for r in per_target] == [10, 20]
    assert {r.stage for r in report.rows} == {"before"}


def test_the_audits_shortcuts_give_the_verdicts_of_the_audit_without_them(monkeypatch):
    # given a random model, one erased secret it reproduces and one it leaves mid-way, and retained items it
    # reproduces at once, later in its continuation, or never
    model = tiny_model("gptj", vocab_size=V, layers=3)
    model.generation_config.eos_token_id = None
    arch = resolve_arch(model)
    own = [tuple(generation.generate_continuations(model, [encode(p)], max_new_tokens=8)[0][0]) for p in PROMPTS]
    secrets = [own[0][:3], (own[1][0], 60, own[1][2])]
    items = tuple(ProbeItem(tuple(encode(p)), s) for p, s in zip(PROMPTS, secrets, strict=True))
    targets = [TokenTarget(s, j, it.prefix_ids + it.target_ids[:j], it.target_ids[j])
               for s, it in enumerate(items) for j in range(3)]
    retain = (items[0], ProbeItem(items[1].prefix_ids, own[1][4:7]), ProbeItem(items[0].prefix_ids, (9, 9)))
    data = inputs(forget=tuple(targets), forget_items=items, generality=(), generality_items=items, retain=retain,
                  retain_ids=("r0", "r1", "r2"), retain_guarded=(True, False, True))
    passes, capture = [], audit_module.capture_targets
    monkeypatch.setattr(audit_module, "capture_targets", lambda *a, **kw: passes.append(1) or capture(*a, **kw))
    sampling_passes, own_pass = [], resumed_sampling._teacher_forced
    monkeypatch.setattr(resumed_sampling, "_teacher_forced",
                        lambda *a, **kw: sampling_passes.append(1) or own_pass(*a, **kw))
    # when audited with and without the shortcuts
    fast = audit(model, arch, data, AuditConfig(ks=(10,), n_samples=3))
    # (the shortcuts capture the rank attacks' streams in the continuations' pass: no capture pass of their own;
    # sampled extraction reads that pass too)
    assert passes == []
    assert sampling_passes == []
    slow = audit(model, arch, data, AuditConfig(ks=(10,), n_samples=3, fast=False))
    assert len(passes) == 2
    # then every row and flag agree, and the verdicts are the ones the items were built for
    assert same_verdicts(fast.table(), slow.table())
    # and when the kept logits would not fit their bound, sampling runs its own pass, with the same verdicts
    monkeypatch.setattr(audit_module, "KEPT_LOGITS_BYTES", 0)
    bounded = audit(model, arch, data, AuditConfig(ks=(10,), n_samples=3))
    assert sampling_passes
    assert same_verdicts(bounded.table(), slow.table())
    rows = {(r.target_id, r.metric): r.score for r in fast.rows}
    assert (rows[("f0", "greedy_extraction")], rows[("f1", "greedy_extraction")]) == (100.0, 0.0)
    assert [rows[(r, "specificity")] for r in ("r0", "r1", "r2")] == [100.0, 100.0, 0.0]


def test_sampled_extraction_is_skipped_with_zero_samples_and_the_inputs_are_checked():
    model, arch = lens_model("memorized")
    report = audit(model, arch, inputs(generality=(), generality_items=()), AuditConfig(ks=(10,), n_samples=0))
    metrics = {r.metric for r in report.rows}
    assert "sampled_extraction" not in metrics
    assert "generality" not in metrics
    with pytest.raises(ValueError, match="one entry per erased secret"):
        inputs(prompts=(PROMPTS[0],))
    with pytest.raises(ValueError, match="retain_ids"):
        inputs(retain_guarded=(True,))
    with pytest.raises(ValueError, match="n_samples"):
        AuditConfig(n_samples=-1)


def test_verdict_metrics_read_the_after_stage_of_the_table():
    rows = [AuditRow("f0", "after", "efficacy", 5, 100.0, None),
            AuditRow("f1", "after", "efficacy", 5, 40.0, None),
            AuditRow("f0", "after", "greedy_extraction", None, 0.0, True),
            AuditRow("f1", "after", "greedy_extraction", None, 100.0, False),
            AuditRow("f0", "after", "sampled_extraction", None, 100.0, False),
            AuditRow(ALL_TARGETS, "after", "sampled_extraction", None, 50.0, False),
            AuditRow(ALL_TARGETS, "after", "specificity", None, 90.0, None),
            AuditRow(ALL_TARGETS, "after", "specificity_unseen", None, 80.0, None),
            AuditRow(ALL_TARGETS, "before", "perplexity", None, 10.0, None),
            AuditRow(ALL_TARGETS, "after", "perplexity", None, 11.0, None)]
    table = pa.Table.from_pylist([r.to_record() for r in rows], schema=AUDIT_SCHEMA)
    metrics = verdict_metrics(table, 5)
    assert metrics["efficacy"] == {"f0": 100.0, "f1": 40.0}
    assert metrics["exact_extractions"] == {"plain": 1, "perturbed": 0, "sampled": 1}
    assert (metrics["specificity"], metrics["specificity_unseen"]) == (90.0, 80.0)
    assert (metrics["perplexity_before"], metrics["perplexity_after"]) == (10.0, 11.0)
    assert summary(table, "after")["sampled_extraction"] == 50.0


def test_format_attacks_join_the_audit_with_never_seen_controls():
    # given a tiny model that memorized one SSN after its prompt (the format-attack tests' planted secret)
    from revs_engine.arch import resolve_arch
    from revs_engine.audit_formats import FormatAuditConfig
    from revs_engine.format_entities import ssn_format
    from revs_engine.targets import targets_at
    from tests.revs_engine.test_format_aware import SSN, SSN_PROMPT, bpe_decode, bpe_encode, plant

    model = plant(bpe_encode, 300, [SSN_PROMPT + SSN])
    arch = resolve_arch(model)
    item = ProbeItem(tuple(bpe_encode(SSN_PROMPT)), tuple(bpe_encode(SSN)))
    forget = tuple(targets_at(item.prefix_ids, item.target_ids, [1], secret_index=0))
    inputs = AuditInputs(forget, ("f0",), (item,), (SSN_PROMPT,), bpe_encode, bpe_decode,
                         formats=(ssn_format(SSN),))
    cfg = AuditConfig(ks=(10,), n_samples=0, formats=FormatAuditConfig(candidates=64))
    # when
    agg = audit(model, arch, inputs, cfg, stage="after").summary()
    # then the memorized SSN is exposed and recovered, a never-seen one after the same prompt is not
    assert agg[("exposure_bits", None)] >= 6.0
    assert agg[("exposure_above_6_bits", None)] == 100.0
    assert agg[("constrained_fraction", None)] == 100.0
    assert agg[("neighbourhood_in_top_k", None)] == 100.0
    assert agg[("partial_completes", None)] == 100.0
    assert agg[("format_typed", None)] == 100.0  # attacked with the SSN rule, not its shape
    assert agg[("control_exposure_bits", None)] < 6.0
    assert agg[("control_constrained_fraction", None)] < 100.0
    with pytest.raises(ValueError, match="one format per erased secret"):
        AuditInputs(forget, ("f0",), (item,), (SSN_PROMPT,), bpe_encode, bpe_decode,
                    formats=(ssn_format(SSN),) * 2)


def test_same_verdicts_needs_equal_flags_and_scores_and_lets_the_rank_plot_round():
    def table(eff, passed, rank):
        rows = [AuditRow("f0", "after", "efficacy", 100, eff, None),
                AuditRow("f0", "after", "greedy_extraction", None, 0.0, passed),
                AuditRow(ALL_TARGETS, "after", "layer_rank", 3, rank, None)]
        return pa.Table.from_pylist([r.to_record() for r in rows], schema=AUDIT_SCHEMA)

    base = table(95.0, True, 33846.85)
    assert same_verdicts(base, table(95.0, True, 33846.9))  # a rank swap far down the vocabulary
    assert not same_verdicts(base, table(95.01, True, 33846.85))
    assert not same_verdicts(base, table(95.0, False, 33846.85))
    assert not same_verdicts(base, table(95.0, True, 33900.0))
