import pytest
import torch

from revs_engine.arch import resolve_arch
from revs_engine.capture import capture_activations
from revs_engine.edit import NeuronEdit, apply_edits
from revs_engine.lens import VocabLens
from revs_engine.resume import LayerWalker, record_block_inputs, run_blocks
from tests.revs_engine.tiny import tiny_model

STREAMS = ("resid_pre", "resid_post", "attn_out", "mlp_out", "neuron_act")


def _ids(seed=0, n=7):
    return torch.randint(2, 64, (1, n), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("start", [0, 1])
def test_resuming_from_any_layer_reproduces_the_full_forward(tiny, start):
    model, arch = tiny
    ids = _ids()
    cap = capture_activations(model, arch, ids, positions=torch.arange(ids.shape[1])[None])
    inputs = record_block_inputs(model, arch, ids)
    out = run_blocks(arch, inputs, start, inputs.hidden[start])
    assert torch.equal(out[0], cap.resid_post[0, :, -1])
    logits = model(ids).logits
    torch.testing.assert_close(VocabLens(model, arch).project(out), logits, atol=1e-5, rtol=1e-5)


def test_walker_matches_capture_at_every_layer_with_and_without_resume(tiny):
    model, arch = tiny
    ids = _ids(1)
    cap = capture_activations(model, arch, ids)
    for resume in (True, False):
        walker = LayerWalker(model, arch, ids, resume=resume)
        for layer in range(arch.n_layers):
            acts = walker.layer(layer)
            for s in STREAMS:
                assert torch.equal(getattr(acts, s), getattr(cap, s)[0, 0, layer]), (resume, layer, s)
            walker.commit(layer, edited=False)


def test_walker_sees_edits_of_earlier_layers_identically_in_both_modes(tiny):
    # given a walker that edits layer 0 after visiting it
    model, arch = tiny
    ids = _ids(2)
    seen = {}
    for resume in (True, False):
        m = tiny_model(arch.model_type)
        a = resolve_arch(m)
        walker = LayerWalker(m, a, ids, resume=resume)
        walker.layer(0)
        apply_edits(m, a, [NeuronEdit(0, torch.tensor([0, 1, 2]), torch.ones(3, a.d_model))])
        walker.commit(0, edited=True)
        seen[resume] = walker.layer(1)
        # then layer 1 reflects the edit, exactly as a fresh full forward on the edited model
        fresh = capture_activations(m, a, ids)
        assert torch.equal(seen[resume].resid_pre, fresh.resid_pre[0, 0, 1])
    for s in STREAMS:
        assert torch.equal(getattr(seen[True], s), getattr(seen[False], s))


def test_walker_requires_layers_in_order(tiny):
    model, arch = tiny
    walker = LayerWalker(model, arch, _ids())
    with pytest.raises(ValueError, match="in order"):
        walker.layer(1)


def test_resume_makes_fewer_block_calls_than_naive():
    model = tiny_model("llama", layers=6)
    arch = resolve_arch(model)
    counts = {}
    for resume in (True, False):
        walker = LayerWalker(model, arch, _ids(), resume=resume)
        for layer in range(arch.n_layers):
            walker.layer(layer)
            walker.commit(layer, edited=layer % 2 == 0)
        counts[resume] = walker.forward_blocks
    assert counts == {True: 6 + 6 + 3, False: 36}


def test_walker_streams_before_and_after_edits_equal_fresh_forwards(tiny):
    # given a walk that edits layer 0 of a copy of the tiny model
    _, arch0 = tiny
    model = tiny_model(arch0.model_type)
    arch = resolve_arch(model)
    ids = _ids(4)
    before = capture_activations(model, arch, ids)
    walker = LayerWalker(model, arch, ids)
    logits, resid = walker.initial_streams()
    # then the recording forward already holds the unedited model's logits (unembedded for the last position
    # alone, so equal up to rounding) and residuals
    torch.testing.assert_close(logits, before.logits[0, 0])
    assert torch.equal(resid, before.resid_post[0, 0])
    with pytest.raises(ValueError, match="committed"):
        walker.final_residuals()
    for layer in range(arch.n_layers):
        walker.layer(layer)
        if layer == 0:
            apply_edits(model, arch, [NeuronEdit(0, torch.tensor([0, 3]), torch.ones(2, arch.d_model))])
        walker.commit(layer, edited=layer == 0)
    # and after the walk its committed outputs are the edited model's residuals, bit for bit
    after = capture_activations(model, arch, ids)
    assert torch.equal(walker.final_residuals(), after.resid_post[0, 0])
    assert not torch.equal(after.resid_post[0, 0], before.resid_post[0, 0])


def test_walker_streams_need_a_resuming_walker(tiny):
    model, arch = tiny
    walker = LayerWalker(model, arch, _ids(), resume=False)
    with pytest.raises(ValueError, match="resuming walker"):
        walker.initial_streams()
    with pytest.raises(ValueError, match="resuming walker"):
        walker.final_residuals()
