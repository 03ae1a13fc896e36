import torch

from revs_engine.arch import neuron_vectors
from revs_engine.config import RevsConfig
from revs_engine.lens import VocabLens
from revs_engine.select import candidate_neurons, gate_layer, neuron_ranks, select_neurons


def test_activation_filters():
    act = torch.tensor([0.5, -2.0, 3.0, 0.0, 1.0, -0.1])
    assert candidate_neurons(act, "top_k", 3).tolist() == [0, 2, 4]
    assert candidate_neurons(act, "positive", 3).tolist() == [0, 2, 4]
    assert candidate_neurons(act, "none", 3).tolist() == [0, 1, 2, 3, 4, 5]
    assert candidate_neurons(act, "top_k", 100).numel() == 6


def test_batched_neuron_ranks_equal_one_by_one_and_ignore_chunking(tiny):
    model, arch = tiny
    lens = VocabLens(model, arch)
    vecs = neuron_vectors(arch.mlp_out[0], arch.spec.transposed).detach()
    one_by_one = torch.stack([lens.ranks(v, 7) for v in vecs])
    assert torch.equal(neuron_ranks(lens, vecs, 7), one_by_one)
    assert torch.equal(neuron_ranks(lens, vecs, 7, chunk=5), one_by_one)


def test_select_keeps_the_best_ranked_filtered_neurons_best_first(tiny):
    model, arch = tiny
    lens = VocabLens(model, arch)
    vecs = neuron_vectors(arch.mlp_out[1], arch.spec.transposed).detach()
    act = torch.randn(arch.d_ff, generator=torch.Generator().manual_seed(0))
    cfg = RevsConfig(n_neurons=5, act_top_k=12)
    neurons, ranks = select_neurons(lens, vecs, act, 7, cfg)
    allowed = set(candidate_neurons(act, "top_k", 12).tolist())
    assert len(neurons) == 5
    assert set(neurons.tolist()) <= allowed
    assert ranks.tolist() == sorted(ranks.tolist())
    others = [j for j in allowed if j not in neurons.tolist()]
    assert min(neuron_ranks(lens, vecs[others], 7).tolist()) >= int(ranks.max())


def test_gate_skips_demoted_residual_and_non_promoting_mlp(tiny):
    model, arch = tiny
    lens = VocabLens(model, arch)
    row = lens.W[3].detach()
    promote = row / row.norm() * row.numel() ** 0.5
    demote = -promote
    assert gate_layer(lens, promote, promote, 3, residual_bottom=10, mlp_top=50).reason == "edit"
    assert gate_layer(lens, promote, demote, 3, residual_bottom=10, mlp_top=50).reason == "residual_demoted"
    decision = gate_layer(lens, demote, promote, 3, residual_bottom=10, mlp_top=50)
    assert (decision.edit, decision.reason) == (False, "mlp_not_promoting")
    assert decision.rank_mlp >= 50
