import pytest
import torch
from transformers import BloomConfig, BloomForCausalLM

from revs_engine.arch import ARCH_SPECS, ArchSpec, add_to_neurons, neuron_vectors, resolve_arch
from revs_engine.errors import UnsupportedArchitectureError
from tests.revs_engine.tiny import tiny_model


def test_every_family_resolves_with_its_sizes(tiny):
    model, arch = tiny
    assert arch.n_layers == 2
    assert (arch.d_model, arch.d_ff) == (16, 48)
    assert arch.vocab_size == 64
    assert neuron_vectors(arch.mlp_out[1], arch.spec.transposed).shape == (48, 16)


def test_only_gpt2_is_transposed():
    assert [t for t, s in ARCH_SPECS.items() if s.transposed] == ["gpt2"]


def test_unknown_model_type_raises_and_lists_supported():
    model = BloomForCausalLM(BloomConfig(hidden_size=16, n_layer=1, n_head=4, vocab_size=64))
    with pytest.raises(UnsupportedArchitectureError) as err:
        resolve_arch(model)
    assert "bloom" in str(err.value)
    assert "llama" in str(err.value)
    assert "gpt_neox" in str(err.value)
    assert "ArchSpec" in str(err.value)


def test_wrong_transposed_flag_fails_early():
    model = tiny_model("gpt2")
    bad = ArchSpec(**{**{f: getattr(ARCH_SPECS["gpt2"], f) for f in ArchSpec.__slots__}, "transposed": False})
    with pytest.raises(UnsupportedArchitectureError, match="Conv1D"):
        resolve_arch(model, bad)


def test_spec_with_missing_module_fails_with_its_name():
    model = tiny_model("llama")
    bad = ArchSpec("model.layers", "self_attn", "mlp", "mlp.fc_out", "model.norm", "rms")
    with pytest.raises(UnsupportedArchitectureError, match="fc_out"):
        resolve_arch(model, bad)


def test_add_to_neurons_changes_only_chosen_neurons(tiny):
    # given
    model, arch = tiny
    module = arch.mlp_out[0]
    before = neuron_vectors(module, arch.spec.transposed).clone()
    idx = torch.tensor([3, 7])
    delta = torch.randn(2, arch.d_model)
    # when
    add_to_neurons(module, arch.spec.transposed, idx, delta)
    # then
    after = neuron_vectors(module, arch.spec.transposed)
    torch.testing.assert_close(after[idx], before[idx] + delta)
    untouched = torch.ones(arch.d_ff, dtype=torch.bool)
    untouched[idx] = False
    assert torch.equal(after[untouched], before[untouched])


def test_add_to_neurons_rejects_wrong_shape(tiny):
    _, arch = tiny
    with pytest.raises(ValueError, match="expected"):
        add_to_neurons(arch.mlp_out[0], arch.spec.transposed, torch.tensor([1]), torch.zeros(2, arch.d_model))


def test_tied_detection():
    assert resolve_arch(tiny_model("gpt2")).tied
    assert not resolve_arch(tiny_model("llama")).tied
