"""The rank attacks on never-seen values (revs_engine.rank_controls) and their rows in the audit."""

import dataclasses
import statistics

import pytest

from revs_engine.arch import resolve_arch
from revs_engine.attacks import delta as delta_attack
from revs_engine.attacks.logit_lens import capture_targets, score_logit_lens, stream_ranks
from revs_engine.attacks.perturb import perturbed_targets
from revs_engine.audit import AuditConfig, AuditInputs, audit, audit_units
from revs_engine.audit_formats import FormatAuditConfig
from revs_engine.format_entities import ssn_format
from revs_engine.lens import VocabLens
from revs_engine.metrics import generality_from_ranks
from revs_engine.probes import ProbeItem
from revs_engine.rank_controls import CONTROLLED, control_generality_targets, control_targets, rank_controls
from revs_engine.targets import targets_at
from tests.revs_engine.test_format_aware import SSN, SSN_PROMPT, char_decode, char_encode, plant

OTHER_PROMPT, OTHER = "His number:", " 212-48-9160"


@pytest.fixture(scope="module")
def planted():
    """A tiny llama on a digit-level tokenizer that memorized two SSNs after their prompts."""
    model = plant(char_encode, 100, [SSN_PROMPT + SSN, OTHER_PROMPT + OTHER])
    items = tuple(ProbeItem(tuple(char_encode(p)), tuple(char_encode(s)))
                  for p, s in ((SSN_PROMPT, SSN), (OTHER_PROMPT, OTHER)))
    forget = tuple(t for i, it in enumerate(items)
                   for t in targets_at(it.prefix_ids, it.target_ids, [5, 11], secret_index=i))
    return model, resolve_arch(model), items, forget


def _inputs(items, forget, formats=None):
    formats = (ssn_format(SSN), ssn_format(OTHER)) if formats is None else formats
    return AuditInputs(forget, ("f0", "f1"), items, (SSN_PROMPT, OTHER_PROMPT), char_encode, char_decode,
                       formats=formats)


def test_control_targets_keep_each_token_s_secret_position_and_prompt_on_a_never_seen_value(planted):
    _, _, items, forget = planted
    formats = (ssn_format(SSN), ssn_format(OTHER))
    # when
    tt = control_targets(forget, items, formats, char_encode, char_decode, seed=0)
    # then one control token per evaluated token, at its place after its prompt
    assert [(t.secret_index, t.position) for t in tt] == [(t.secret_index, t.position) for t in forget]
    for t in tt:
        prompt = items[t.secret_index].prefix_ids
        assert t.prefix_ids[:len(prompt)] == prompt
        value = t.prefix_ids[len(prompt):] + (t.token_id,)
        assert len(value) == t.position + 1
    # the two tokens of one secret lie on the same never-seen value, which is a valid SSN and not the secret
    full = [char_decode(list(t.prefix_ids[len(items[t.secret_index].prefix_ids):]) + [t.token_id])
            for t in tt if t.position == 11]
    assert all(formats[i].is_valid(v) for i, v in enumerate(full))
    assert SSN not in full
    assert OTHER not in full
    assert control_targets(forget, items, formats, char_encode, char_decode, seed=0) == tt  # seeded
    assert control_targets(forget, items, formats, char_encode, char_decode, seed=1) != tt


def test_rank_controls_score_the_attacks_on_each_set_and_average_over_sets(planted):
    model, arch, items, forget = planted
    lens = VocabLens(model, arch)
    formats = (ssn_format(SSN), ssn_format(OTHER))
    kw = {"ks": (3, 10), "n_spaces": 2, "perturb_seed": 0}
    # when
    both = rank_controls(model, arch, lens, forget, items, (SSN_PROMPT, OTHER_PROMPT), formats, char_encode,
                         char_decode, sets=2, seed=5, **kw)
    # then each set is the attacks on its control tokens, as the audit scores the erased tokens
    per_set = []
    for seed in (5, 6):
        tt = control_targets(forget, items, formats, char_encode, char_decode, seed)
        acts = capture_targets(model, arch, tt)
        positions, ranks = delta_attack.positions_and_ranks(acts, lens)
        pert = capture_targets(model, arch, perturbed_targets(tt, [SSN_PROMPT, OTHER_PROMPT], char_encode,
                                                              n_spaces=2, seed=0))
        pranks = stream_ranks(pert, lens)
        per_set.append({k: (score_logit_lens(ranks, acts.secret_index, arch.vocab_size, k).score,
                            delta_attack.score_delta(positions, acts.secret_index, k).score,
                            score_logit_lens(pranks, pert.secret_index, arch.vocab_size, k).score)
                        for k in (3, 10)})
    assert set(both) == {(m, k) for m in CONTROLLED for k in (3, 10)}
    for k in (3, 10):
        for i, metric in enumerate(("logit_lens", "delta", "perturb")):
            assert both[(metric, k)] == pytest.approx(statistics.fmean(s[k][i] for s in per_set))
        assert 0.0 <= both[("resistance_score", k)] <= 100.0
    with pytest.raises(ValueError, match="sets"):
        rank_controls(model, arch, lens, forget, items, (SSN_PROMPT, OTHER_PROMPT), formats, char_encode,
                      char_decode, sets=0, **kw)


#: Another prompt before each planted SSN (the audit's Generality reads the secret after such prompts).
THIRD_PROMPT = "Records:"


def _generality(items):
    """Each planted secret's evaluated tokens (places 5 and 11) after :data:`THIRD_PROMPT`, not its prompt."""
    prompt = tuple(char_encode(THIRD_PROMPT))
    return tuple(t for i, it in enumerate(items)
                 for t in targets_at(prompt, it.target_ids, [5, 11], secret_index=i))


def test_generality_controls_put_the_never_seen_values_after_the_other_prompts_and_score_them(planted):
    model, arch, items, forget = planted
    lens = VocabLens(model, arch)
    formats = (ssn_format(SSN), ssn_format(OTHER))
    gen = _generality(items)
    # when
    tt = control_generality_targets(gen, items, formats, char_encode, char_decode, seed=3)
    scores = rank_controls(model, arch, lens, forget, items, (SSN_PROMPT, OTHER_PROMPT), formats, char_encode,
                           char_decode, ks=(3, 10), sets=2, seed=3, n_spaces=2, generality=gen)
    # then each control token keeps its secret, place and other prompt, on the same never-seen value the rank
    # attacks' controls of that seed use
    same_seed = {(t.secret_index, t.position): t.token_id
                 for t in control_targets(forget, items, formats, char_encode, char_decode, seed=3)}
    prompt = tuple(char_encode(THIRD_PROMPT))
    assert [(t.secret_index, t.position) for t in tt] == [(t.secret_index, t.position) for t in gen]
    for t in tt:
        assert t.prefix_ids[:len(prompt)] == prompt
        assert len(t.prefix_ids) == len(prompt) + t.position
        assert t.token_id == same_seed[(t.secret_index, t.position)]
    # and Generality@k of the controls is averaged over the sets, as the audit scores the erased secrets
    for k in (3, 10):
        want = statistics.fmean(
            generality_from_ranks(stream_ranks(capture_targets(model, arch, c), lens), c, arch.vocab_size, k).score
            for c in (control_generality_targets(gen, items, formats, char_encode, char_decode, seed)
                      for seed in (3, 4)))
        assert scores[("generality", k)] == pytest.approx(want)
    # without other prompts there is no Generality control
    assert ("generality", 3) not in rank_controls(model, arch, lens, forget, items, (SSN_PROMPT, OTHER_PROMPT),
                                                  formats, char_encode, char_decode, ks=(3,), sets=1, n_spaces=2)


def test_the_audit_adds_the_never_seen_rank_rows_after_an_edit_when_it_knows_the_formats(planted):
    model, arch, items, forget = planted
    cfg = AuditConfig(ks=(10,), n_samples=0, n_spaces=2, formats=FormatAuditConfig(candidates=0),
                      rank_control_sets=2)
    lens = VocabLens(model, arch)
    # when
    after = audit(model, arch, _inputs(items, forget), cfg, stage="after", lens=lens)
    before = audit(model, arch, _inputs(items, forget), cfg, stage="before", lens=lens)
    without = audit(model, arch, _inputs(items, forget, formats=()), cfg, stage="after", lens=lens)
    off = audit(model, arch, _inputs(items, forget), AuditConfig(ks=(10,), n_samples=0, n_spaces=2,
                formats=FormatAuditConfig(candidates=0), rank_control_sets=0), stage="after", lens=lens)
    # then only the first carries them, aggregated, equal to the library's scores
    want = rank_controls(model, arch, lens, forget, items, (SSN_PROMPT, OTHER_PROMPT),
                         (ssn_format(SSN), ssn_format(OTHER)), char_encode, char_decode, ks=(10,), sets=2,
                         n_spaces=2)
    rows = {(r.metric, r.k): r for r in after.rows if r.metric.startswith("control_")}
    assert set(rows) == {(f"control_{m}", 10) for m in CONTROLLED}
    assert all(r.target_id == "*" for r in rows.values())
    assert {key: rows[(f"control_{key[0]}", key[1])].score for key in want} == pytest.approx(want)
    for report in (before, without, off):
        assert not [r for r in report.rows if r.metric.startswith("control_")]
    # with other prompts in the inputs, the Generality control joins them
    with_gen = dataclasses.replace(_inputs(items, forget), generality=_generality(items))
    rows = {(r.metric, r.k): r.score for r in audit(model, arch, with_gen, cfg, stage="after", lens=lens).rows
            if r.metric.startswith("control_")}
    assert set(rows) == {(f"control_{m}", 10) for m in (*CONTROLLED, "generality")}
    assert rows[("control_generality", 10)] == pytest.approx(rank_controls(
        model, arch, lens, forget, items, (SSN_PROMPT, OTHER_PROMPT), (ssn_format(SSN), ssn_format(OTHER)),
        char_encode, char_decode, ks=(10,), sets=2, n_spaces=2, generality=_generality(items))[("generality", 10)])
    assert audit_units(_inputs(items, forget), cfg, "after") == audit_units(_inputs(items, forget), cfg,
                                                                               "before") + 1
    with pytest.raises(ValueError, match="rank_control_sets"):
        AuditConfig(rank_control_sets=-1)
