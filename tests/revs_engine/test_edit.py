import pytest
import torch

from revs_engine.arch import neuron_vectors
from revs_engine.edit import NeuronEdit, apply_edits, restore


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _edits(arch, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        NeuronEdit(0, torch.tensor([3, 7, 11]), torch.randn(3, arch.d_model, generator=g) * 1e-3),
        NeuronEdit(arch.n_layers - 1, torch.tensor([7, 2]), torch.randn(2, arch.d_model, generator=g)),
        NeuronEdit(0, torch.tensor([7]), torch.randn(1, arch.d_model, generator=g) * 1e3),  # same neuron again
    ]


def test_apply_then_restore_is_bit_exact(tiny):
    model, arch = tiny
    before = _state(model)
    backup = apply_edits(model, arch, _edits(arch))
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    restore(model, arch, backup)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_deltas_accumulate_on_shared_neurons(tiny):
    model, arch = tiny
    vec = neuron_vectors(arch.mlp_out[0], arch.spec.transposed)
    original = vec[7].clone()
    edits = _edits(arch)
    apply_edits(model, arch, edits)
    expected = original + edits[0].delta[1] + edits[2].delta[0]
    torch.testing.assert_close(vec[7], expected)


def test_backup_holds_unique_sorted_neurons_per_layer(tiny):
    model, arch = tiny
    backup = apply_edits(model, arch, _edits(arch))
    assert backup.neurons[0].tolist() == [3, 7, 11]
    assert backup.original[0].shape == (3, arch.d_model)


def test_neuron_edit_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="NeuronEdit"):
        NeuronEdit(0, torch.tensor([1, 2]), torch.zeros(3, 4))


def test_merged_backup_keeps_the_earliest_original(tiny):
    model, arch = tiny
    before = _state(model)
    first = apply_edits(model, arch, _edits(arch, 0))
    second = apply_edits(model, arch, _edits(arch, 1))
    restore(model, arch, first.merged(second))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
