"""The §1.7 outer loop: the one-table choice equals the pseudocode's re-demote-per-k choice."""

import dataclasses

import pytest
import torch

from revs_engine.arch import neuron_vectors, resolve_arch
from revs_engine.config import RevsConfig
from revs_engine.lens import VocabLens, rank_of
from revs_engine.outer import choose_k, choose_k_naive
from revs_engine.resume import LayerWalker
from revs_engine.select import gate_layer, select_neurons
from tests.revs_engine.tiny import tiny_model

CFG = RevsConfig(n_neurons=10, act_top_k=20, neuron_rank_window=(0.5, 0.7), mlp_rank_window=(0.1, 0.9),
                 residual_rank_window=(0.3, 0.6))


def _layer_case(model_type, layer=1):
    model = tiny_model(model_type)
    arch = resolve_arch(model)
    with torch.no_grad():
        for module in arch.mlp_out:
            module.weight.mul_(30.0)
    lens = VocabLens(model, arch)
    ids = torch.randint(2, 64, (7,), generator=torch.Generator().manual_seed(3))
    token = int(model(ids[None]).logits[0, -1].argmax())
    walker = LayerWalker(model, arch, ids)
    for i in range(layer):
        walker.layer(i)
        walker.commit(i, edited=False)
    acts = walker.layer(layer)
    vectors = neuron_vectors(arch.mlp_out[layer], arch.spec.transposed).detach()
    return lens, arch, acts, vectors, token


@pytest.mark.parametrize("model_type", ["llama", "gpt2", "gpt_neox"])
@pytest.mark.parametrize("max_iter_mlp", [1, 2, 100])
def test_one_table_choice_equals_the_pseudocode(model_type, max_iter_mlp):
    lens, arch, acts, vectors, token = _layer_case(model_type)
    cfg = dataclasses.replace(CFG, max_iter_mlp=max_iter_mlp)
    bounds = cfg.bounds(arch.vocab_size)
    order, _, logits = select_neurons(lens, vectors, acts.neuron_act, token, cfg, with_logits=True)
    gate = gate_layer(lens, acts.mlp_out, acts.resid_post, token, bounds["residual"][0], bounds["mlp"][1])
    args = (lens, vectors[order], acts.neuron_act[order], acts.mlp_out, acts.resid_post, token, cfg, bounds)
    fast = choose_k(*args, base_logits=logits, gate_logits=gate.logits)
    naive = choose_k_naive(*args)
    assert (fast.k, fast.rank_mlp, fast.rank_residual, fast.accepted, fast.iterations) == \
        (naive.k, naive.rank_mlp, naive.rank_residual, naive.accepted, naive.iterations)
    assert torch.equal(fast.delta, naive.delta)
    assert fast.iterations <= max_iter_mlp
    # the reported ranks are those of the stored edit (the last evaluated k), also when the cap ends the loop
    change = (acts.neuron_act[order[:fast.k], None] * fast.delta).sum(0)
    ranks = lens.ranks(torch.stack([acts.mlp_out + change, acts.resid_post + change]), token).tolist()
    assert ranks == [fast.rank_mlp, fast.rank_residual]


def test_the_cap_keeps_the_evaluated_k():
    lens, arch, acts, vectors, token = _layer_case("llama")
    # an MLP window nothing reaches: k would grow on every iteration
    cfg = dataclasses.replace(CFG, max_iter_mlp=1, mlp_rank_window=(0.95, 0.99), start_k=3)
    bounds = cfg.bounds(arch.vocab_size)
    order, _ = select_neurons(lens, vectors, acts.neuron_act, token, cfg)
    choice = choose_k(lens, vectors[order], acts.neuron_act[order], acts.mlp_out, acts.resid_post, token, cfg,
                      bounds)
    assert choice.k == 3
    assert not choice.accepted
    assert choice.delta.shape[0] == 3


@pytest.mark.parametrize("model_type", ["llama", "gpt2"])
def test_rank_logits_rank_like_the_lens(model_type):
    model = tiny_model(model_type)
    lens = VocabLens(model, resolve_arch(model))
    h = 3 * torch.randn(9, lens.W.shape[1], generator=torch.Generator().manual_seed(1))
    tokens = torch.arange(9)
    assert torch.equal(rank_of(lens.rank_logits(h), tokens), lens.ranks(h, tokens))
    assert lens.linear == (model_type == "llama")
    if lens.linear:  # linear in h: the logits of h + c·u are the logits of h plus c times those of u
        u = torch.randn(lens.W.shape[1])
        torch.testing.assert_close(lens.rank_logits(h + 2.5 * u), lens.rank_logits(h) + 2.5 * lens.rank_logits(u),
                                   atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("rows", [1, 2, 5, 8, 9, 20])
def test_unembedding_takes_either_product_with_the_same_values(rows):
    model = tiny_model("llama")
    lens = VocabLens(model, resolve_arch(model))
    x = torch.randn(rows, lens.W.shape[1])
    out = lens.unembed(x)
    assert out.shape == (rows, lens.W.shape[0])
    torch.testing.assert_close(out, x @ lens.W.T)
    torch.testing.assert_close(lens.unembed(x[0]), x[0] @ lens.W.T)
    assert lens.unembed_cached(x[0], ("k",)) is lens.unembed_cached(-x[0], ("k",))  # keyed, computed once


def test_demotion_direction_reproduces_every_delta():
    lens, arch, acts, vectors, token = _layer_case("llama")
    from revs_engine.demote import demote_neurons

    dem = demote_neurons(lens, vectors[:6] * 5, token, CFG.bounds(arch.vocab_size)["neuron"])
    assert dem.coef is not None
    torch.testing.assert_close(dem.coef[:, None] * dem.direction, dem.delta, atol=1e-5, rtol=1e-4)
    assert torch.equal(lens.ranks(vectors[:6] * 5 + dem.delta, token), dem.ranks_after)
