"""The one erase entry point (revs_engine.erase): guard, positions, fallback, REVS or FT-L behind one call."""

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from revs_engine import erase as erase_module
from revs_engine.config import RevsConfig
from revs_engine.edit import WeightBackup, restore
from revs_engine.erase import (
    GUARD_PREFIX_TOKENS,
    EraseInputs,
    Secret,
    build_guard,
    erase,
    guarded_value_tokens,
)
from revs_engine.erase_guard import GUARD_CROSS_ITEMS
from revs_engine.guard import guarded_rows
from revs_engine.hashing import weights_sha256
from revs_engine.presets import PRESETS, EraseConfig
from revs_engine.probes import ProbeItem
from revs_engine.targets import TargetConfig
from tests.revs_engine.test_guard import _greedy_items
from tests.revs_engine.test_revs import CFG, _model

V = 1000
LOW = RevsConfig().bounds(V)["residual"][0]


def _secret(prompt=(1, 2), value=(5, 6, 7, 8), entity="US_SSN"):
    return Secret(tuple(prompt), tuple(value), tuple(str(v % 10) for v in value), entity)


def _encode(text):
    return [10 + int(c) if c.isdigit() else 3 for c in text]


# -- guard -----------------------------------------------------------------------------------------------------
def test_the_guard_holds_retained_items_and_benign_text_cut_to_the_budget():
    keep = (ProbeItem(tuple(range(2, 102)), (7, 8)),)
    inputs = EraseInputs((_secret(),), keep, (tuple(range(200)),), _encode)
    guard, n_decoys = build_guard(inputs, decoys=0)
    (item,) = guard.items
    assert item.prefix_ids == tuple(range(2, 102))[-GUARD_PREFIX_TOKENS:]
    assert item.target_ids == (7, 8)
    assert guard.benign == (tuple(range(GUARD_PREFIX_TOKENS)),)
    assert n_decoys == 0
    assert build_guard(EraseInputs((_secret(),)), decoys=0) == (None, 0)


def test_decoys_follow_each_secrets_own_prompt_with_a_value_of_its_shape():
    secrets = (_secret((1, 2), (5, 6, 7)), _secret((3, 4, 9), (8, 9)))
    guard, n_decoys = build_guard(EraseInputs(secrets, encode=_encode), decoys=3)
    assert n_decoys == 6
    assert not guard.items
    for i, s in enumerate(secrets):
        for seq in guard.benign[3 * i:3 * i + 3]:
            assert seq[:len(s.prompt_ids)] == s.prompt_ids
            decoy = seq[len(s.prompt_ids):]
            assert len(decoy) == len(s.secret_ids)
            assert decoy != tuple(_encode(s.text))
    with pytest.raises(ValueError, match="encode"):
        build_guard(EraseInputs(secrets), decoys=2)


def test_cross_decoys_follow_each_retained_items_prompt_with_a_secrets_shape():
    # given two secrets and three retained items of other people
    secrets = (_secret((1, 2), (5, 6, 7)), _secret((3, 4, 9), (8, 9)))
    keep = tuple(ProbeItem((40 + j, 41 + j), (7, 8)) for j in range(3))
    # when the guard is built with two cross decoys per retained item
    guard, n_decoys = build_guard(EraseInputs(secrets, keep, encode=_encode), decoys=0, cross_decoys=2)
    # then each retained item's prompt is followed by two look-alikes of the secrets, taken in turn, and only their
    # value positions are guarded (like a retained item's target, but never checked for reproduction)
    assert n_decoys == 6
    assert guard.items == keep
    assert not guard.benign
    for j, item in enumerate(keep):
        shape = secrets[j % 2]
        for look in guard.lookalikes[2 * j:2 * j + 2]:
            assert look.prefix_ids == item.prefix_ids
            assert len(look.target_ids) == len(shape.secret_ids)
            assert look.target_ids != tuple(_encode(shape.text))
    rows = guarded_rows(guard)
    assert rows[len(keep)] == ([*keep[0].prefix_ids, *guard.lookalikes[0].target_ids], [1, 2, 3])
    assert build_guard(EraseInputs(secrets, (), encode=_encode), decoys=0, cross_decoys=2) == (None, 0)
    many = tuple(ProbeItem((40 + j % 50, 41), (7, 8)) for j in range(GUARD_CROSS_ITEMS + 5))
    _, n_capped = build_guard(EraseInputs(secrets, many, encode=_encode), decoys=0, cross_decoys=1)
    assert n_capped == GUARD_CROSS_ITEMS  # only the first retained items' prompts get them
    with pytest.raises(ValueError, match="≥ 0"):
        RevsConfig(cross_decoys=-1)


def test_cross_secrets_guard_each_secret_itself_after_other_peoples_prompts():
    # given two secrets and three retained items of other people
    secrets = (_secret((1, 2), (5, 6, 7)), _secret((3, 4, 9), (8, 9)))
    keep = tuple(ProbeItem((40 + j, 41 + j), (7, 8)) for j in range(3))
    # when the guard is built with the secrets themselves after those prompts (and one look-alike each)
    guard, n_decoys = build_guard(EraseInputs(secrets, keep, encode=_encode), decoys=0, cross_decoys=1,
                                  cross_secrets=True)
    # then after the look-alikes, item j's prompt is followed by secret j mod 2 itself, its value positions guarded
    assert n_decoys == 6
    exact = guard.lookalikes[3:]
    assert [(x.prefix_ids, x.target_ids) for x in exact] == [
        (keep[j].prefix_ids, secrets[j % 2].secret_ids) for j in range(3)]
    assert all(x.target_ids != s.secret_ids for x, s in zip(guard.lookalikes[:3], secrets * 2, strict=False))
    # and with more secrets than guarded prompts, the prompts are taken in turn until every secret had one
    five = tuple(_secret((1, k), (5, k)) for k in range(5))
    wide, _ = build_guard(EraseInputs(five, keep[:2], encode=_encode), decoys=0, cross_secrets=True)
    assert [(x.prefix_ids, x.target_ids) for x in wide.lookalikes] == [
        (keep[k % 2].prefix_ids, five[k].secret_ids) for k in range(5)]
    # and the setting needs a guard reader
    with pytest.raises(ValueError, match="cross_secrets only feeds the retain guard"):
        RevsConfig(cross_secrets=True)


def test_cross_secrets_never_follow_a_prompt_that_may_speak_of_an_erased_person():
    # given two secrets and three retained items, the middle one from an erased person's own document
    secrets = (_secret((1, 2), (5, 6, 7)), _secret((3, 4, 9), (8, 9)))
    keep = tuple(ProbeItem((40 + j, 41 + j), (7, 8)) for j in range(3))
    inputs = EraseInputs(secrets, keep, encode=_encode, keep_related=(False, True, False))
    # when the guard writes the secrets after retained prompts
    guard, n_decoys = build_guard(inputs, decoys=0, cross_secrets=True)
    # then only the other two prompts carry them (the related item is still guarded as itself)
    assert guard.items == keep
    assert n_decoys == 2
    assert [(x.prefix_ids, x.target_ids) for x in guard.lookalikes] == [
        (keep[0].prefix_ids, secrets[0].secret_ids), (keep[2].prefix_ids, secrets[1].secret_ids)]
    # and with every prompt related there is nowhere to write them
    assert build_guard(EraseInputs(secrets, keep, encode=_encode, keep_related=(True,) * 3), decoys=0,
                       cross_secrets=True)[1] == 0
    # and the flags must match the items
    with pytest.raises(ValueError, match="one flag per keep item"):
        EraseInputs(secrets, keep, keep_related=(True,))


# -- fallback positions ----------------------------------------------------------------------------------------
def _fake_result(target_ranks, layer=0):
    targets = [SimpleNamespace(secret_index=s, position=p, rank_final=r, rank_after=r, rank_before=0,
                               converged=r >= LOW, attempts=1) for s, p, r in target_ranks]
    backup = WeightBackup({layer: torch.tensor([layer])}, {layer: torch.zeros(1, 4)})
    return SimpleNamespace(targets=targets, edits=(), backup=backup, seconds=1.0)


@pytest.fixture
def fake_revs(monkeypatch):
    """REVS that converges only at position 2 (or where ``first`` says); records every call's positions."""
    calls = []

    def unlearn(model, arch, targets, cfg, **kw):
        calls.append([(t.secret_index, t.position) for t in targets])
        first = dict(FIRST)  # the first call of a run ends at the given ranks, later ones converge at position 2
        FIRST.clear()
        return _fake_result([(t.secret_index, t.position, first[t.secret_index] if first
                              else (2 * LOW if t.position == 2 else 3)) for t in targets], layer=len(calls))

    monkeypatch.setattr(erase_module, "unlearn", unlearn)
    return calls


FIRST = {}


def _run(fallback, first_ranks):
    FIRST.clear()
    FIRST.update(enumerate(first_ranks))
    cfg = EraseConfig(revs=RevsConfig(targets=TargetConfig(max_tokens=1, method="first", fallback=fallback)))
    secrets = tuple(_secret() for _ in first_ranks)
    return erase(None, SimpleNamespace(vocab_size=V), EraseInputs(secrets), cfg, lens=object())


def test_a_secret_left_unconverged_gets_further_positions_until_one_converges(fake_revs):
    # given secret 0 not converged and secret 1 converged; three rounds allowed
    result = _run(fallback=3, first_ranks=(5, LOW))
    # then only secret 0 gets more positions, one per round, and the rounds stop once position 2 converged
    assert fake_revs == [[(0, 0), (1, 0)], [(0, 1)], [(0, 2)]]
    assert [(t.secret_index, t.position) for t in result.targets] == [(0, 0), (1, 0), (0, 1), (0, 2)]
    assert [o.rank_final for o in result.outcomes] == [5, LOW, 3, 2 * LOW]
    assert sorted(result.backup.layers) == [1, 2, 3]  # every edit made is kept
    assert result.seconds == 3.0
    assert result.positions(2) == [[0, 1, 2], [0]]


def test_fallbacks_stop_after_the_configured_rounds_and_not_at_all_when_converged(fake_revs):
    assert [t.position for t in _run(fallback=1, first_ranks=(5,)).targets] == [0, 1]
    assert [t.position for t in _run(fallback=0, first_ranks=(5,)).targets] == [0]
    assert [t.position for t in _run(fallback=3, first_ranks=(LOW,)).targets] == [0]


def _target_result(i, secret, rank, before=0):
    from revs_engine.revs_results import TargetResult

    return TargetResult(i, secret, 0, before, rank, rank, (), (), (), rank >= LOW, 1, 1.0)


def test_settle_edits_again_the_targets_later_edits_pulled_back_until_all_hold(monkeypatch):
    # given three secrets; after the first pass secret 1 stopped short, and editing it again pulls secret 2 back
    from revs_engine.edit import NeuronEdit

    calls, finals = [], iter([[2 * LOW, 2 * LOW, LOW - 1], [2 * LOW, 2 * LOW, 2 * LOW]])

    def unlearn(model, arch, targets, cfg, **kw):
        calls.append([t.secret_index for t in targets])
        first = len(calls) == 1
        ranks = [2 * LOW, 5, 2 * LOW] if first else [2 * LOW] * len(targets)
        res = [_target_result(i, t.secret_index, r, before=7 if first else r - 1)
               for i, (t, r) in enumerate(zip(targets, ranks, strict=True))]
        edits = [NeuronEdit(len(calls), torch.tensor([0]), torch.zeros(1, 4), i) for i in range(len(targets))]
        backup = WeightBackup({len(calls): torch.tensor([0])}, {len(calls): torch.zeros(1, 4)})
        return SimpleNamespace(targets=res, edits=edits, backup=backup, seconds=1.0)

    monkeypatch.setattr(erase_module, "unlearn", unlearn)
    monkeypatch.setattr(erase_module, "final_ranks", lambda model, arch, targets: next(finals))
    cfg = EraseConfig(revs=RevsConfig(settle_rounds=3, targets=TargetConfig(max_tokens=1, method="first")))
    # when
    result = erase(None, SimpleNamespace(vocab_size=V), EraseInputs(tuple(_secret() for _ in range(3))), cfg,
                   lens=object())
    # then the lagging target is edited again, then the one it pulled back, and the rounds stop once all hold
    assert calls == [[0, 1, 2], [1], [2]]
    assert [o.rank_final for o in result.outcomes] == [2 * LOW] * 3
    assert [o.rank_before for o in result.outcomes] == [7, 7, 7]  # before the first edit
    assert all(o.converged for o in result.outcomes)
    assert [e.target_index for e in result.edits] == [0, 1, 2, 1, 2]  # the erase's target indices
    assert sorted(result.backup.layers) == [1, 2, 3]
    assert result.seconds == 3.0
    # and without settle rounds the first pass is all there is
    finals = iter([])
    calls.clear()
    one = erase(None, SimpleNamespace(vocab_size=V), EraseInputs(tuple(_secret() for _ in range(3))),
                dataclasses.replace(cfg, revs=dataclasses.replace(cfg.revs, settle_rounds=0)), lens=object())
    assert calls == [[0, 1, 2]]
    assert [o.rank_final for o in one.outcomes] == [2 * LOW, 5, 2 * LOW]
    with pytest.raises(ValueError, match="settle_rounds"):
        RevsConfig(settle_rounds=-1)


def test_fallback_edits_record_the_erases_target_index(monkeypatch):
    # given REVS that leaves secret 0 unconverged at its first position and writes one edit per target
    from revs_engine.edit import NeuronEdit

    def unlearn(model, arch, targets, cfg, **kw):
        res = _fake_result([(t.secret_index, t.position, 2 * LOW if t.position == 1 or t.secret_index else 3)
                            for t in targets])
        res.edits = [NeuronEdit(0, torch.tensor([0]), torch.zeros(1, 4), i) for i in range(len(targets))]
        return res

    monkeypatch.setattr(erase_module, "unlearn", unlearn)
    cfg = EraseConfig(revs=RevsConfig(targets=TargetConfig(max_tokens=1, method="first", fallback=2)))
    # when secret 0 gets its next position in a second call
    result = erase(None, SimpleNamespace(vocab_size=V), EraseInputs((_secret(), _secret())), cfg, lens=object())
    # then that call's edit points at the erase's third target, not at its own call's first
    assert [(t.secret_index, t.position) for t in result.targets] == [(0, 0), (1, 0), (0, 1)]
    assert [e.target_index for e in result.edits] == [0, 1, 2]


def test_cover_edits_every_other_eligible_position_to_the_shallow_window(fake_revs, monkeypatch):
    # given one secret of four eligible positions, one deep target and a cover window of ranks 4-8
    seen = []
    original = erase_module.unlearn
    monkeypatch.setattr(erase_module, "unlearn", lambda m, a, t, cfg, **kw: (seen.append(cfg), original(
        m, a, t, cfg, **kw))[1])
    FIRST.clear()
    FIRST.update({0: 2 * LOW})
    cfg = EraseConfig(revs=RevsConfig(targets=TargetConfig(max_tokens=1, method="first", cover_ranks=(4, 8))))
    # when
    result = erase(None, SimpleNamespace(vocab_size=V), EraseInputs((_secret(),)), cfg, lens=object())
    # then the three other positions are edited once more, towards final ranks 4-8 of the vocabulary
    assert fake_revs == [[(0, 0)], [(0, 1), (0, 2), (0, 3)]]
    assert [t.position for t in result.targets] == [0, 1, 2, 3]
    assert seen[0].residual_rank_window == RevsConfig().residual_rank_window
    assert seen[1].residual_rank_window == (4 / V, 8 / V)
    assert seen[1].mlp_rank_window == (4 / V, 0.9)


def test_spellings_demote_the_other_tokens_that_begin_each_targets_text_at_the_same_place(monkeypatch):
    # given an e-mail-like secret written "chen" | "42" and an encoder that also has "c", "ch" and "chen4"
    seen = []

    def unlearn(model, arch, targets, cfg, **kw):
        seen.append([(t.secret_index, t.position, t.prefix_ids, t.token_id) for t in targets])
        return _fake_result([(t.secret_index, t.position, 2 * LOW) for t in targets])

    monkeypatch.setattr(erase_module, "unlearn", unlearn)
    pieces = {"chen": 40, "42": 41, "c": 42, "ch": 43, "chen4": 44, "4": 45, "2": 46}

    def encode(text):
        return [pieces[text]] if text in pieces else [1] * (len(text) + 1)

    secret = Secret((1, 2), (40, 41), ("chen", "42"), "EMAIL_ADDRESS")
    rules = TargetConfig(max_tokens=1, method="first", spellings=True)
    # when
    result = erase(None, SimpleNamespace(vocab_size=V), EraseInputs((secret,), encode=encode),
                   EraseConfig(revs=RevsConfig(targets=rules)), lens=object())
    # then the target and each other first piece of "chen42" are demoted after the same prefix, in one pass
    assert seen == [[(0, 0, (1, 2), 40), (0, 0, (1, 2), 42), (0, 0, (1, 2), 43), (0, 0, (1, 2), 44)]]
    assert result.positions(1) == [[0]]  # one position, however many tokens were demoted there
    # and without the encoder the setting is refused with what to do
    with pytest.raises(ValueError, match="spellings needs EraseInputs.encode"):
        erase(None, SimpleNamespace(vocab_size=V), EraseInputs((secret,)), EraseConfig(revs=RevsConfig(
            targets=rules)), lens=object())


# -- end to end on tiny models ---------------------------------------------------------------------------------
def _inputs(model, n=2, keep=4):
    g = torch.Generator().manual_seed(7)
    secrets = []
    for _ in range(n):
        prompt = torch.randint(2, 64, (6,), generator=g).tolist()
        value = []
        for _ in range(3):  # what the model itself continues with: "memorized"
            value.append(int(model(torch.tensor([prompt + value])).logits[0, -1].argmax()))
        secrets.append(Secret(tuple(prompt), tuple(value), tuple(f"{v % 10}" for v in value)))
    return EraseInputs(tuple(secrets), tuple(_greedy_items(model, keep, seed=4)),
                       encode=lambda s: [2 + int(c) for c in s])


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_a_guarded_erase_edits_the_model_and_its_backup_restores_it_bit_exactly(family):
    # given a tiny model, two secrets it continues with, and retained items it reproduces
    model, arch = _model(family)
    base = weights_sha256(model)
    rules = TargetConfig(max_tokens=1, method="distinct")
    cfg = EraseConfig("test", "revs", dataclasses.replace(CFG, guard_projection=0.05, guard_spread=4, decoys=2,
                                                          targets=rules))
    # when
    result = erase(model, arch, _inputs(model), cfg)
    # then one distinct position per secret was edited, the guard held the items and the decoys
    assert [t.secret_index for t in result.targets] == [0, 1]
    assert result.guard == {"guard_items": 4, "guard_benign": 0, "guard_decoys": 4}
    assert weights_sha256(model) != base
    assert result.edits
    restore(model, arch, result.backup)
    assert weights_sha256(model) == base


def test_a_configuration_that_reads_no_guard_ignores_the_items_to_keep():
    # given the paper's rules (no guard anywhere) on two copies of the same model
    model_a, arch_a = _model("llama")
    model_b, arch_b = _model("llama")
    inputs = _inputs(model_a)
    cfg = EraseConfig("paper-like", "revs", CFG)
    # when one gets the retained items and the other none
    a = erase(model_a, arch_a, inputs, cfg)
    erase(model_b, arch_b, dataclasses.replace(inputs, keep=()), cfg)
    # then the edits are the same and no guard was built
    assert a.guard == {"guard_items": 0, "guard_benign": 0, "guard_decoys": 0}
    assert weights_sha256(model_a) == weights_sha256(model_b)


def test_ftl_runs_behind_the_same_call_on_the_same_targets():
    model, arch = _model("llama")
    base = weights_sha256(model)
    cfg = dataclasses.replace(PRESETS["ftl"], revs=RevsConfig(targets=TargetConfig(max_tokens=1, method="first")))
    result = erase(model, arch, _inputs(model, keep=0), cfg)
    assert [(t.secret_index, t.position) for t in result.targets] == [(0, 0), (1, 0)]
    assert result.edits == ()
    assert result.revs is None
    assert weights_sha256(model) != base
    restore(model, arch, result.backup)
    assert weights_sha256(model) == base


def test_nothing_to_erase_is_an_error():
    with pytest.raises(ValueError, match="nothing to erase"):
        erase(None, None, EraseInputs(()), PRESETS["paper"])
    with pytest.raises(ValueError, match="one text per value token"):
        Secret((1,), (2, 3), ("2",))


def test_copied_last_takes_the_positions_the_prompt_spells_after_the_others(fake_revs):
    # given an e-mail "smith42" whose prompt names Smith; the rule alone would take position 0 first
    FIRST.clear()
    FIRST.update({0: 2 * LOW})
    secret = Secret((1, 2), (5, 6, 7, 8), (" sm", "ith", "4", "2"), "EMAIL_ADDRESS")
    rules = TargetConfig(max_tokens=1, method="first", copied_last=True)
    inputs = EraseInputs((secret,), decode=lambda ids: "Mail from Ann Smith:")
    # when
    result = erase(None, SimpleNamespace(vocab_size=V), inputs, EraseConfig(revs=RevsConfig(targets=rules)),
                   lens=object())
    # then the first digit is the target; without decode (no prompt text) the rule is off
    assert [t.position for t in result.targets] == [2]
    FIRST.update({0: 2 * LOW})
    off = erase(None, SimpleNamespace(vocab_size=V), EraseInputs((secret,)), EraseConfig(revs=RevsConfig(
        targets=rules)), lens=object())
    assert [t.position for t in off.targets] == [0]


def test_shared_last_takes_tokens_of_guarded_values_after_the_others(fake_revs):
    # given an e-mail "mei_chen" to erase and a guarded retained address sharing its token "chen"; the rule
    # alone (highest token id first) would take "chen" (position 2) first
    secret = Secret((1, 2), (5, 6, 7), (" mei", "_", "chen"), "EMAIL_ADDRESS")
    kept = ProbeItem((3, 4), (9, 7, 11))
    rules = TargetConfig(max_tokens=1, method="rarest", shared_last=True)

    def first_target(targets, keep):
        FIRST.clear()
        res = erase(None, SimpleNamespace(vocab_size=V), EraseInputs((secret,), keep=keep),
                    EraseConfig(revs=RevsConfig(targets=targets)), lens=object())
        return [t.position for t in res.targets]

    # when the guard holds the other address, then the unshared token is taken; without it, or without the rule,
    # the rule's own first choice
    assert first_target(dataclasses.replace(rules, shared_last=False), (kept,)) == [2]
    assert first_target(rules, (kept,)) == [0]
    assert first_target(rules, ()) == [2]
    # a value whose every eligible token is shared keeps its order
    everything = ProbeItem((3,), (5, 7))
    assert first_target(rules, (everything,)) == [2]
    assert guarded_value_tokens(EraseInputs((secret,), keep=(kept, everything))) == {5, 7, 9, 11}


def test_the_digits_preset_takes_copied_positions_last():
    assert PRESETS["digits"].revs.targets.copied_last
    assert not PRESETS["paper"].revs.targets.copied_last
