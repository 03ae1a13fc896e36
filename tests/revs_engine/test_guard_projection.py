import dataclasses

import pytest
import torch

from revs_engine.edit import restore
from revs_engine.guard import RetainGuard
from revs_engine.guard_projection import project_edit
from revs_engine.guard_stats import guard_statistics
from revs_engine.lens import VocabLens
from revs_engine.probes import ProbeItem
from revs_engine.resume import LayerWalker
from revs_engine.revs import edit_layer, unlearn
from tests.revs_engine.guard_reference import at_risk, full_activations
from tests.revs_engine.test_guard import _greedy_items, _tokens
from tests.revs_engine.test_revs import CFG, _model


def _case(k=6, d=16, m=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(k, generator=g) + 0.5, torch.randn(k, d, generator=g), torch.rand(m, k, generator=g))


def test_the_change_at_the_secret_is_kept_and_the_guard_sees_less():
    a, delta, guard = _case()
    out = project_edit(a, delta, guard, lam=0.1)
    torch.testing.assert_close(a @ out, a @ delta, rtol=1e-5, atol=1e-5)
    assert (guard @ out).norm() < 0.9 * (guard @ delta).norm()


def test_with_more_neurons_than_guard_positions_the_guard_sees_nothing():
    a, delta, guard = _case(k=12, m=5)
    out = project_edit(a, delta, guard, lam=1e-8)
    torch.testing.assert_close(a @ out, a @ delta, rtol=1e-4, atol=1e-4)
    assert (guard @ out).norm() < 1e-3 * (guard @ delta).norm()


def test_a_large_ridge_returns_the_revs_edit_and_an_empty_guard_changes_nothing():
    a, delta, guard = _case()
    torch.testing.assert_close(project_edit(a, delta, guard, lam=1e9), delta, rtol=1e-4, atol=1e-4)
    assert project_edit(a, delta, guard[:0], lam=0.1) is delta
    assert project_edit(a, delta, torch.zeros_like(guard), lam=0.1) is delta
    with pytest.raises(ValueError, match="lam"):
        project_edit(a, delta, guard, lam=0.0)


def test_projected_layer_edit_keeps_the_ranks_revs_measured():
    # given one gated layer of a tiny model, a target, and the guard's activations there
    model, arch = _model("llama")
    target = _tokens(model, 1, seed=3)[0]
    guard_acts, next_ids = full_activations(model, arch, RetainGuard.from_items(_greedy_items(model, 6, seed=4)))
    lens = VocabLens(model, arch)
    cfg = dataclasses.replace(CFG, guard_projection=0.05)
    bounds = cfg.bounds(arch.vocab_size)
    acts = LayerWalker(model, arch, torch.tensor([target.prefix_ids])).layer(0)
    risk = at_risk(guard_acts, next_ids, 0, target.token_id)
    # when the layer's edit is computed with and without the projection
    plain = edit_layer(lens, arch, 0, acts, target.token_id, cfg, bounds, (0, 0))
    projected = edit_layer(lens, arch, 0, acts, target.token_id, cfg, bounds, (0, 0), guard_act=risk)
    assert plain is not None
    # then the same neurons move, the MLP output at the secret changes the same way, the guard's changes less
    assert torch.equal(plain[0].neurons, projected[0].neurons)
    assert plain[1] == projected[1]
    a = acts.neuron_act[plain[0].neurons]
    torch.testing.assert_close(a @ projected[0].delta, a @ plain[0].delta, rtol=1e-4, atol=1e-4)
    g = risk[:, plain[0].neurons]
    assert (g @ projected[0].delta).norm() <= (g @ plain[0].delta).norm()


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_projected_unlearn_edits_and_is_reversible(family):
    model, arch = _model(family)
    guard_items = _greedy_items(model, 8, seed=5)
    targets = _tokens(model, 2, seed=6)
    before = {n: p.clone() for n, p in model.state_dict().items()}
    cfg = dataclasses.replace(CFG, guard_projection=0.05, guard_retries=0)
    result = unlearn(model, arch, targets, cfg, guard=RetainGuard.from_items(guard_items))
    assert result.edits, "the projection must still edit"
    restore(model, arch, result.backup)
    assert all(torch.equal(before[n], p) for n, p in model.state_dict().items())


def test_spread_keeps_the_change_at_the_secret_and_lets_the_guard_see_less():
    # given one gated layer of a tiny model, a target and the guard's activations there
    model, arch = _model("llama")
    target = _tokens(model, 1, seed=3)[0]
    guard = full_activations(model, arch, RetainGuard.from_items(_greedy_items(model, 6, seed=4)))[0][0]
    lens = VocabLens(model, arch)
    cfg = dataclasses.replace(CFG, guard_projection=0.05)
    bounds = cfg.bounds(arch.vocab_size)
    acts = LayerWalker(model, arch, torch.tensor([target.prefix_ids])).layer(0)
    # when the projection may also use 16 more neurons
    narrow = edit_layer(lens, arch, 0, acts, target.token_id, cfg, bounds, (0, 0), guard_act=guard)
    wide = edit_layer(lens, arch, 0, acts, target.token_id, dataclasses.replace(cfg, guard_spread=16), bounds,
                      (0, 0), guard_act=guard)
    # then the chosen neurons come first, 16 distinct others follow: the most active at the secret relative to
    # their activity on the guard
    k = narrow[0].neurons.numel()
    assert torch.equal(wide[0].neurons[:k], narrow[0].neurons)
    extra = wide[0].neurons[k:]
    assert extra.numel() == 16
    assert len(set(wide[0].neurons.tolist())) == k + 16
    rest = torch.ones(acts.neuron_act.numel(), dtype=torch.bool)
    rest[wide[0].neurons] = False
    sigma = guard.double().pow(2).mean(0).sqrt()
    spec = acts.neuron_act.abs().double() / (sigma + 1e-3 * sigma.mean() + 1e-12)
    assert spec[extra].min() >= spec[rest].max() - 1e-4
    # and the MLP output at the secret changes exactly as before while the guard's positions see less of it
    a_n, a_w = acts.neuron_act[narrow[0].neurons], acts.neuron_act[wide[0].neurons]
    torch.testing.assert_close(a_w @ wide[0].delta, a_n @ narrow[0].delta, rtol=1e-4, atol=1e-4)
    seen_wide = (guard[:, wide[0].neurons] @ wide[0].delta).norm()
    assert seen_wide < (guard[:, narrow[0].neurons] @ narrow[0].delta).norm()
    assert wide[1] == narrow[1]  # the ranks REVS measured are the same


def test_final_spread_widens_the_last_block_only():
    # given a tiny model's first and last blocks, a target and the guard's activations at each
    model, arch = _model("llama")
    target = _tokens(model, 1, seed=3)[0]
    guard = full_activations(model, arch, RetainGuard.from_items(_greedy_items(model, 6, seed=4)))[0]
    lens = VocabLens(model, arch)
    cfg = dataclasses.replace(CFG, guard_projection=0.05)
    bounds = cfg.bounds(arch.vocab_size)
    walker = LayerWalker(model, arch, torch.tensor([target.prefix_ids]))
    acts = {}
    for layer in range(arch.n_layers):
        acts[layer] = walker.layer(layer)
        walker.commit(layer, edited=False)
    last = arch.n_layers - 1

    def edit(layer, config):
        return edit_layer(lens, arch, layer, acts[layer], target.token_id, config, bounds, (0, 0),
                          guard_act=guard[layer])

    # when the last block may spread over 16 more neurons and the others over none
    wide = dataclasses.replace(cfg, final_spread=16)
    # then the last block's edit carries 16 more neurons with the same change at the secret, the first's is as
    # without the setting
    for layer, extra in ((0, 0), (last, 16)):
        narrow, spread = edit(layer, cfg), edit(layer, wide)
        assert narrow is not None
        k = narrow[0].neurons.numel()
        assert spread[0].neurons.numel() == k + extra
        assert torch.equal(spread[0].neurons[:k], narrow[0].neurons)
        a_n, a_w = acts[layer].neuron_act[narrow[0].neurons], acts[layer].neuron_act[spread[0].neurons]
        torch.testing.assert_close(a_w @ spread[0].delta, a_n @ narrow[0].delta, rtol=1e-4, atol=1e-4)
    # and guard_spread elsewhere is replaced, not added to, at the last block
    both = dataclasses.replace(cfg, guard_spread=4, final_spread=16)
    assert edit(0, both)[0].neurons.numel() == edit(0, cfg)[0].neurons.numel() + 4
    assert edit(last, both)[0].neurons.numel() == edit(last, cfg)[0].neurons.numel() + 16


def test_spread_without_the_projection_is_refused():
    # a spread only acts through the projection: a configuration asking for it alone would silently do nothing
    with pytest.raises(ValueError, match="guard_spread = 16 only acts through the guard projection"):
        dataclasses.replace(CFG, guard_spread=16)
    with pytest.raises(ValueError, match="guard_spread"):
        dataclasses.replace(CFG, guard_spread=-1)
    with pytest.raises(ValueError, match="final_spread = 16 only acts through the guard projection"):
        dataclasses.replace(CFG, final_spread=16)
    with pytest.raises(ValueError, match="final_spread"):
        dataclasses.replace(CFG, guard_projection=0.02, final_spread=-1)


def test_the_cached_covariance_gives_the_projection_of_the_activations():
    a, delta, guard = _case()
    cov = guard.double().T @ guard.double() / guard.shape[0]
    torch.testing.assert_close(project_edit(a, delta, None, 0.1, cov=cov), project_edit(a, delta, guard, 0.1))
    # and the guard's streamed layer covariance is A^T A / m of its activations, whatever the batch size
    model, arch = _model("llama")
    guard = RetainGuard.from_items(_greedy_items(model, 4, seed=4), [tuple(range(2, 40))])
    acts = full_activations(model, arch, guard)[0]
    for batch_size in (1, 2, 16):
        stats = guard_statistics(model, arch, guard, collateral=False, batch_size=batch_size)
        assert stats.n_positions == acts.shape[1]
        for layer in range(arch.n_layers):
            m = acts[layer].double()
            torch.testing.assert_close(stats.covariance(layer).double(), m.T @ m / m.shape[0], rtol=1e-5,
                                       atol=1e-6)


def test_value_weight_adds_the_value_positions_own_covariance():
    # given a guard of retained items, one look-alike and a long benign text (most of its positions)
    model, arch = _model("llama")
    items = _greedy_items(model, 3, seed=7)
    look = [ProbeItem(items[0].prefix_ids, (9, 8, 9))]
    guard = RetainGuard.from_items(items, [tuple(range(2, 60))], look)
    acts = full_activations(model, arch, guard)[0]  # [L, m, d_ff]: items, look-alike, then benign positions
    m_v = sum(len(it.target_ids) for it in (*items, *look))
    assert m_v < acts.shape[1] / 4
    for batch_size in (1, 16):
        # when the covariance weighs the value positions by 10
        stats = guard_statistics(model, arch, guard, collateral=False, batch_size=batch_size, value_weight=10.0)
        # then it is the plain average plus 10 times the value positions' own average
        assert stats.value_weight == 10.0
        for layer in range(arch.n_layers):
            a = acts[layer].double()
            v = a[:m_v]
            want = a.T @ a / a.shape[0] + 10.0 * v.T @ v / m_v
            torch.testing.assert_close(stats.covariance(layer).double(), want, rtol=1e-5, atol=1e-6)
            # and the ridge's unit stays the plain average's diagonal
            torch.testing.assert_close(stats.plain_variance(layer).double(), (a * a).mean(0), rtol=1e-5, atol=1e-6)
    # and statistics built with another weight are refused by an erase that wants this one
    with pytest.raises(ValueError, match="value weight 10"):
        guard_statistics(model, arch, guard, collateral=False).check(covariance=True, value_weight=10.0)
    with pytest.raises(ValueError, match="value_weight"):
        guard_statistics(model, arch, guard, value_weight=-1.0)
    with pytest.raises(ValueError, match="guard_value_weight = 5.0 only acts through the guard projection"):
        dataclasses.replace(CFG, guard_value_weight=5.0)


def test_spread_unlearn_with_decoys_edits_and_is_reversible():
    # given a tiny model, two targets and a guard of retained items plus decoys of the first target's value
    from revs_engine.decoys import decoy_sequences

    model, arch = _model("llama")
    targets = _tokens(model, 2, seed=6)
    value = "".join(chr(48 + t % 10) for t in targets[0].prefix_ids[-3:])  # a digit string of the model's ids
    decoys = decoy_sequences(targets[0].prefix_ids, value, lambda s: [int(c) + 3 for c in s], 4)
    guard = RetainGuard.from_items(_greedy_items(model, 6, seed=5), decoys)
    before = {n: p.clone() for n, p in model.state_dict().items()}
    cfg = dataclasses.replace(CFG, guard_projection=0.02, guard_spread=8, guard_check=False, guard_retries=0)
    # when
    result = unlearn(model, arch, targets, cfg, guard=guard)
    # then every edit moves the chosen neurons plus 8 spread ones, and restoring gives the weights back bit-exactly
    assert result.edits
    layers = [r for t in result.targets for r in t.layer_results]  # in application order, like the edits
    assert [e.layer for e in result.edits] == [r.layer for r in layers]
    assert [e.neurons.numel() for e in result.edits] == [r.n_neurons + 8 for r in layers]
    restore(model, arch, result.backup)
    assert all(torch.equal(before[n], p) for n, p in model.state_dict().items())
