import pytest
import torch

from revs_engine.arch import neuron_bias, neuron_vectors
from revs_engine.capture import capture_activations, hooks
from revs_engine.errors import ShapeError
from revs_engine.lens import VocabLens


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, 64, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    return ids, mask


def test_lens_of_last_block_equals_model_logits(tiny):
    model, arch = tiny
    ids, mask = _batch()
    cap = capture_activations(model, arch, ids, mask)
    torch.testing.assert_close(VocabLens(model, arch).project(cap.resid_post[:, :, -1]), cap.logits,
                               atol=1e-5, rtol=1e-5)


def test_residual_identity_per_layer(tiny):
    model, arch = tiny
    cap = capture_activations(model, arch, *_batch())
    torch.testing.assert_close(cap.resid_pre + cap.attn_out + cap.mlp_out, cap.resid_post, atol=1e-5, rtol=1e-5)


def test_resid_pre_of_next_layer_is_resid_post_of_previous(tiny):
    model, arch = tiny
    cap = capture_activations(model, arch, *_batch())
    torch.testing.assert_close(cap.resid_pre[:, :, 1], cap.resid_post[:, :, 0])


def test_neuron_activations_times_neuron_vectors_is_mlp_out(tiny):
    model, arch = tiny
    cap = capture_activations(model, arch, *_batch())
    for layer in range(arch.n_layers):
        module = arch.mlp_out[layer]
        out = cap.neuron_act[:, :, layer] @ neuron_vectors(module, arch.spec.transposed)
        if neuron_bias(module) is not None:
            out = out + neuron_bias(module)
        torch.testing.assert_close(out, cap.mlp_out[:, :, layer], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("side", ["left", "right"])
def test_padding_gives_the_same_activations_as_no_padding(tiny, side):
    # given a short row padded to the length of a longer one
    model, arch = tiny
    long_row = torch.arange(2, 12)
    short = torch.tensor([5, 9, 13, 17])
    pad = torch.full((6,), 1)
    padded = torch.cat([pad, short]) if side == "left" else torch.cat([short, pad])
    mask = (torch.arange(10) >= 6) if side == "left" else (torch.arange(10) < 4)
    ids = torch.stack([long_row, padded])
    attn = torch.stack([torch.ones(10, dtype=torch.long), mask.long()])
    # when
    both = capture_activations(model, arch, ids, attn)
    alone = capture_activations(model, arch, short.unsqueeze(0))
    # then
    torch.testing.assert_close(both.resid_post[1], alone.resid_post[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(both.logits[1], alone.logits[0], atol=1e-5, rtol=1e-5)


def test_several_positions_in_one_pass(tiny):
    model, arch = tiny
    ids, mask = _batch()
    positions = torch.tensor([[2, 5], [3, 8], [0, 1]])
    cap = capture_activations(model, arch, ids, mask, positions=positions)
    assert cap.resid_post.shape == (3, 2, arch.n_layers, arch.d_model)
    assert cap.neuron_act.shape == (3, 2, arch.n_layers, arch.d_ff)
    full = model(ids).logits
    torch.testing.assert_close(cap.logits[1, 1], full[1, 8], atol=1e-5, rtol=1e-5)


def test_hooks_are_removed_even_when_forward_raises(tiny):
    model, arch = tiny

    def boom(module, args, kwargs):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"), hooks([(arch.mlp_out[0], "pre", boom)]):
        model(torch.tensor([[2, 3]]))
    model(torch.tensor([[2, 3]]))  # would raise if the hook were still there
    assert not arch.mlp_out[0]._forward_pre_hooks


def test_empty_input_is_rejected(tiny):
    model, arch = tiny
    with pytest.raises(ShapeError, match="seq"):
        capture_activations(model, arch, torch.zeros((1, 0), dtype=torch.long))
