import pytest
import torch

from revs_engine.arch import resolve_arch
from revs_engine.demote import demote_neurons, faithful_rms_inverse, invert_logits
from revs_engine.lens import VocabLens
from tests.revs_engine.tiny import tiny_model

WINDOW = (32, 44)  # 0.5–0.7 of the tiny vocabulary of 64


def _lens(model_type="llama"):
    model = tiny_model(model_type)
    return VocabLens(model, resolve_arch(model))


def _promoting_vectors(lens, token, m=6, seed=0):
    # vectors whose projection ranks `token` first: push along the token's unembedding row
    g = torch.Generator().manual_seed(seed)
    row = lens.W[token].detach()
    return 0.3 * torch.randn(m, row.numel(), generator=g) + row / row.norm() * row.numel() ** 0.5


def test_every_neuron_lands_in_the_window(tiny):
    model, arch = tiny
    lens = VocabLens(model, arch)
    vecs = _promoting_vectors(lens, 5)
    out = demote_neurons(lens, vecs, 5, WINDOW)
    assert (out.ranks_before < WINDOW[0]).all()
    assert out.delta.shape == vecs.shape
    assert out.converged.all()
    after = lens.ranks(vecs + out.delta, 5)
    assert ((after >= WINDOW[0]) & (after <= WINDOW[1])).all()
    assert torch.equal(after, out.ranks_after)


def test_batched_demotion_equals_one_neuron_at_a_time():
    lens = _lens()
    vecs = _promoting_vectors(lens, 9, m=5)
    batched = demote_neurons(lens, vecs, 9, WINDOW)
    for i in range(5):
        single = demote_neurons(lens, vecs[i:i + 1], 9, WINDOW)
        torch.testing.assert_close(single.delta[0], batched.delta[i], atol=1e-5, rtol=1e-5)


def test_neuron_above_the_window_is_reported_unconverged_and_stops_early():
    lens = _lens()
    vecs = _promoting_vectors(lens, 9, m=3)
    vecs[1] = -vecs[1]  # target near the bottom: rank above the window, δ stays 0 (§1.5 quirk)
    out = demote_neurons(lens, vecs, 9, WINDOW, max_iter=100)
    assert out.ranks_before[1] > WINDOW[1]
    assert out.converged.tolist() == [True, False, True]
    assert out.iterations < 100


def test_iteration_cap_reports_non_convergence():
    lens = _lens()
    out = demote_neurons(lens, _promoting_vectors(lens, 9, m=3), 9, WINDOW, max_iter=1, initial_offset=-1e-6)
    assert not out.converged.any()
    assert out.iterations == 1


def test_faithful_rms_inverse_is_the_authors_formula():
    n_hat, ref = torch.randn(4, 16), torch.randn(4, 16)
    gamma = torch.rand(16) + 0.5
    expected = n_hat * torch.sqrt(ref.var(-1, keepdim=True) + 1e-5) / gamma + ref.mean(-1, keepdim=True)
    torch.testing.assert_close(faithful_rms_inverse(n_hat, ref, gamma, 1e-5), expected)


def test_exact_inverse_is_the_lens_inverse_and_faithful_differs_on_rms():
    lens = _lens("llama")
    h = torch.randn(3, lens.W.shape[1])
    z = lens.project(h)
    torch.testing.assert_close(invert_logits(lens, z, h), lens.invert(z, h))
    assert not torch.allclose(invert_logits(lens, z, h, faithful_rmsnorm_inverse=True), h, atol=1e-3)


@pytest.mark.parametrize("faithful", [False, True])
def test_demotion_works_with_either_rms_inverse(faithful):
    lens = _lens("qwen2")
    out = demote_neurons(lens, _promoting_vectors(lens, 7), 7, WINDOW, faithful_rmsnorm_inverse=faithful)
    assert (out.ranks_after >= WINDOW[0]).all()


@pytest.mark.parametrize("model_type", ["llama", "qwen2"])
def test_fast_rank_path_equals_projecting_the_round_tripped_vectors(model_type):
    from revs_engine.demote import _denormalize, _rank_function
    from revs_engine.lens import rank_of

    model = tiny_model(model_type, vocab_size=300)
    lens = VocabLens(model, resolve_arch(model))
    vectors = torch.randn(12, 16) * 3
    base_hat = lens.normalize(vectors)
    # the shortcut demote_neurons takes: the pseudo-inverse round trip of the unchanged logits is n̂ itself
    assert torch.allclose(lens.pinv_apply(lens.project(vectors)), base_hat, atol=1e-4)
    u_t = (lens.W.detach()[7].double() @ lens.inverse_gram()).float()
    fast = _rank_function(lens, vectors, base_hat, base_hat @ lens.W.detach().T, u_t, 7, False)
    idx = torch.arange(12)
    for delta in (0.0, -3.0, -10.0, -42.5, 8.0):
        d = torch.full((12,), delta)
        real = rank_of(lens.project(_denormalize(lens, base_hat + d[:, None] * u_t, vectors, False)), 7)
        assert fast(idx, d).tolist() == real.tolist()
