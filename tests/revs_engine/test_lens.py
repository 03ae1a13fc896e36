import pytest
import torch

from revs_engine.capture import capture_activations
from revs_engine.lens import VocabLens, rank_of


def test_rank_counts_strictly_greater_and_ties_share_rank():
    logits = torch.tensor([[3.0, 5.0, 5.0, 1.0, 5.0]])
    assert rank_of(logits, torch.tensor([1])).tolist() == [0]
    assert rank_of(logits, torch.tensor([2])).tolist() == [0]
    assert rank_of(logits, 0).tolist() == [3]
    assert rank_of(logits, 3).tolist() == [4]


def test_rank_is_batched():
    logits = torch.randn(4, 3, 50)
    ids = torch.randint(0, 50, (4, 3))
    expected = torch.tensor([[(logits[i, j] > logits[i, j, ids[i, j]]).sum() for j in range(3)] for i in range(4)])
    assert torch.equal(rank_of(logits, ids), expected)


def test_inverse_of_projection_round_trips(tiny):
    model, arch = tiny
    lens = VocabLens(model, arch)
    cap = capture_activations(model, arch, torch.randint(2, 64, (4, 6)))
    h = cap.resid_post[:, 0, 0]  # [4, d]
    torch.testing.assert_close(lens.invert(lens.project(h), reference=h), h, atol=1e-4, rtol=1e-4)


def test_pinv_apply_equals_torch_pinverse(tiny):
    model, arch = tiny
    lens = VocabLens(model, arch)
    z = torch.randn(3, arch.vocab_size)
    b = arch.unembed.bias if getattr(arch.unembed, "bias", None) is not None else 0
    expected = (z - b) @ torch.linalg.pinv(arch.unembed.weight.detach()).T
    torch.testing.assert_close(lens.pinv_apply(z), expected, atol=1e-4, rtol=1e-4)


def test_target_logit_edit_round_trip_lowers_the_target_rank(tiny):
    # the REVS building block: raise/lower one logit, map back, re-project
    model, arch = tiny
    lens = VocabLens(model, arch)
    h = torch.randn(arch.d_model)
    z = lens.project(h)
    t = int(z.argmax())
    z2 = z.clone()
    z2[t] -= 50.0
    h2 = lens.invert(z2, reference=h)
    assert lens.ranks(h2, t).item() > 0


def test_inverse_gram_is_cached_on_disk_by_sha(tiny, tmp_path):
    model, arch = tiny
    first = VocabLens(model, arch, cache_dir=tmp_path, weights_sha256="ab" * 32)
    g1 = first.inverse_gram()
    files = list(tmp_path.glob("inv_gram-*.safetensors"))
    assert len(files) == 1
    second = VocabLens(model, arch, cache_dir=tmp_path, weights_sha256="ab" * 32)
    torch.testing.assert_close(second.inverse_gram(), g1)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 5)])
def test_ranks_shape_follows_input(tiny, shape):
    model, arch = tiny
    lens = VocabLens(model, arch)
    h = torch.randn(*shape[:-1], arch.d_model) if len(shape) > 1 else torch.randn(arch.d_model)
    assert lens.ranks(h, 3).shape == h.shape[:-1]
