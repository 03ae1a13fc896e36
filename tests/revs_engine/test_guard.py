import dataclasses

import pytest
import torch

from revs_engine.config import RevsConfig
from revs_engine.edit import apply_edits, restore
from revs_engine.guard import RetainGuard, guarded_rows, intact
from revs_engine.guard_stats import guard_statistics
from revs_engine.hashing import weights_sha256
from revs_engine.lens import VocabLens
from revs_engine.probes import ProbeItem, probe
from revs_engine.revs import unlearn
from revs_engine.select import select_neurons
from revs_engine.targets import TokenTarget
from tests.revs_engine.guard_reference import full_activations
from tests.revs_engine.test_revs import CFG, _model


def _greedy_items(model, n, seed, length=4):
    """Items whose target is what the model itself predicts greedily (so they start out intact)."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        ids = torch.randint(2, 64, (5,), generator=g).tolist()
        out = []
        for _ in range(length):
            out.append(int(model(torch.tensor([ids + out])).logits[0, -1].argmax()))
        items.append(ProbeItem(tuple(ids), tuple(out)))
    return items


def test_guarded_rows_cover_every_target_position_and_benign_token():
    items = [ProbeItem((5, 6, 7), (8, 9)), ProbeItem((10, 11), (12, 13, 14))]
    rows = guarded_rows(RetainGuard.from_items(items, [(20, 21, 22, 23)]))
    assert [[ids[p + 1] for p in pos] for ids, pos in rows] == [[8, 9], [12, 13, 14], [21, 22, 23]]


def test_collateral_counts_only_positions_that_need_the_token():
    model, arch = _model("llama")
    guard = RetainGuard.from_items([ProbeItem((5, 6), (8, 9, 8)), ProbeItem((3, 4), (2,))], [(20, 8, 21)])
    acts, nxt = full_activations(model, arch, guard)
    stats = guard_statistics(model, arch, guard, covariance=False, tokens=[8, 33], batch_size=2)
    close = lambda a, b: torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)  # noqa: E731 - batched vs one
    for layer in range(arch.n_layers):
        close(stats.collateral(layer, 8), acts[layer][nxt == 8].abs().amax(0))
        close(stats.collateral(layer, 33), acts[layer].abs().amax(0))  # no position needs 33
        close(stats.collateral(layer), acts[layer].abs().amax(0))
    with pytest.raises(ValueError, match="not tracked"):
        stats.collateral(0, 9)


def test_intact_is_the_probe_exact_match():
    model, _ = _model("qwen2")
    items = _greedy_items(model, 3, seed=1) + [ProbeItem((5, 6, 7), (60, 61))]
    expected = [r.exact_match for r in probe(model, items)]
    assert intact(model, items).tolist() == expected
    assert expected[:3] == [True, True, True]


def test_contrast_selection_avoids_neurons_the_guard_needs():
    model, arch = _model("llama")
    lens = VocabLens(model, arch)
    vectors = torch.randn(arch.d_ff, 16)
    act = torch.linspace(1.0, 2.0, arch.d_ff)  # every neuron active, the last ones most
    collateral = torch.zeros(arch.d_ff)
    collateral[-10:] = 5.0  # ... but the guard needs the most active ten
    cfg = RevsConfig(n_neurons=5, act_top_k=20, neuron_score="contrast", contrast_weight=1.0)
    chosen, _ = select_neurons(lens, vectors, act, 7, cfg, collateral)
    assert len(chosen) == 5
    assert not set(chosen.tolist()) & set(range(arch.d_ff - 10, arch.d_ff))
    plain, _ = select_neurons(lens, vectors, act, 7, dataclasses.replace(cfg, neuron_score="rank"), collateral)
    assert set(plain.tolist()) & set(range(arch.d_ff - 20, arch.d_ff))  # the paper's filter takes them


def test_contrast_selection_returns_nothing_when_every_neuron_is_needed():
    model, arch = _model("llama")
    lens = VocabLens(model, arch)
    cfg = RevsConfig(n_neurons=5, act_top_k=20, neuron_score="contrast")
    chosen, ranks = select_neurons(lens, torch.randn(arch.d_ff, 16), torch.ones(arch.d_ff), 7, cfg,
                                   torch.full((arch.d_ff,), 3.0))
    assert chosen.numel() == 0
    assert ranks.numel() == 0


def _tokens(model, n, seed):
    g = torch.Generator().manual_seed(seed)
    targets = []
    for i in range(n):
        ids = torch.randint(2, 64, (6,), generator=g)
        targets.append(TokenTarget(i, 0, tuple(ids.tolist()), int(model(ids[None]).logits[0, -1].argmax())))
    return targets


@pytest.mark.parametrize("family", ["llama", "gpt2", "gpt_neox"])
def test_guarded_unlearn_counts_each_break_once_and_its_edits_are_the_model(family):
    # given a model, targets, and retained items it reproduces
    model, arch = _model(family)
    base = weights_sha256(model)
    guard_items = _greedy_items(model, 6, seed=4)
    cfg = dataclasses.replace(CFG, neuron_score="contrast", guard_check=True, guard_retries=2)
    # when REVS runs with the guard
    result = unlearn(model, arch, _tokens(model, 3, seed=3), cfg, guard=RetainGuard.from_items(guard_items))
    edited = weights_sha256(model)
    # then every item broken at the end was reported broken by the secret that broke it
    assert all(1 <= t.attempts <= 3 for t in result.targets)
    assert int((~intact(model, guard_items)).sum()) <= sum(t.guard_broken for t in result.targets)
    # and the recorded edits are exactly the weight change, whatever attempts were discarded
    restore(model, arch, result.backup)
    assert weights_sha256(model) == base
    apply_edits(model, arch, result.edits)
    assert weights_sha256(model) == edited


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_retries_never_keep_an_edit_that_breaks_more_than_the_first_attempt(family):
    broken = {}
    for retries in (0, 3):
        model, arch = _model(family)
        guard_items = _greedy_items(model, 8, seed=5)
        cfg = dataclasses.replace(CFG, guard_check=True, guard_retries=retries)
        result = unlearn(model, arch, _tokens(model, 1, seed=6), cfg, guard=RetainGuard.from_items(guard_items))
        broken[retries] = int((~intact(model, guard_items)).sum())
        assert result.targets[0].guard_broken == broken[retries]
    assert broken[3] <= broken[0]


def test_precomputed_guard_statistics_give_the_same_edits():
    # given the guard's statistics computed once by the caller (as `erase` does for distinct positions)
    model, arch = _model("llama")
    guard = RetainGuard.from_items(_greedy_items(model, 4, seed=7))
    cfg = dataclasses.replace(CFG, neuron_score="contrast")
    targets = _tokens(model, 2, seed=8)
    # when REVS runs with and without them
    stats = guard_statistics(model, arch, guard, tokens={t.token_id for t in targets})
    given = unlearn(model, arch, targets, cfg, guard=guard, guard_stats=stats)
    restore(model, arch, given.backup)
    computed = unlearn(model, arch, targets, cfg, guard=guard)
    # then the edits are identical
    assert len(given.edits) == len(computed.edits)
    for a, b in zip(given.edits, computed.edits, strict=True):
        assert a.layer == b.layer
        assert torch.equal(a.neurons, b.neurons)
        assert torch.equal(a.delta, b.delta)


def test_statistics_missing_what_the_edit_reads_are_refused():
    model, arch = _model("llama")
    guard = RetainGuard.from_items(_greedy_items(model, 2, seed=7))
    targets = _tokens(model, 1, seed=8)
    cfg = dataclasses.replace(CFG, neuron_score="contrast")
    no_collateral = guard_statistics(model, arch, guard, collateral=False)
    with pytest.raises(ValueError, match="lack collateral"):
        unlearn(model, arch, targets, cfg, guard=guard, guard_stats=no_collateral)
    other_tokens = guard_statistics(model, arch, guard, tokens={targets[0].token_id + 1})
    with pytest.raises(ValueError, match="collateral of 1 target token"):
        unlearn(model, arch, targets, cfg, guard=guard, guard_stats=other_tokens)
