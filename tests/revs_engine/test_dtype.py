"""Half precision: weights stay bf16/fp16, REVS computes in float32, edits and patches are bit-exact in the model's
dtype, a saved version keeps its dtype; device and dtype names are checked."""

import dataclasses

import pytest
import torch

from revs_engine.arch import add_to_neurons, neuron_vectors, resolve_arch
from revs_engine.devices import dtype_name, parse_device, parse_dtype
from revs_engine.edit import restore
from revs_engine.erase import EraseInputs, Secret, erase
from revs_engine.errors import ModelLoadError
from revs_engine.hashing import weights_sha256
from revs_engine.lens import VocabLens
from revs_engine.loading import load_model, save_model
from revs_engine.patch import PatchManifest, apply_patch, load_patch, make_patch, revert_patch, save_patch
from revs_engine.presets import EraseConfig
from revs_engine.revs import unlearn
from revs_engine.targets import TargetConfig
from tests.revs_engine._tokenizer import make_tiny_tokenizer
from tests.revs_engine.test_revs import CFG, _model, _targets
from tests.revs_engine.tiny import tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: thread hand-offs cost more than they save

HALF = [torch.bfloat16, torch.float16]


def _half(family, dtype):
    model, _ = _model(family)
    model = model.to(dtype)
    return model, resolve_arch(model)


def _state(model):
    return {name: p.detach().clone() for name, p in model.state_dict().items()}


@pytest.mark.parametrize("dtype", HALF, ids=dtype_name)
@pytest.mark.parametrize("family", ["gpt2", "gpt_neox", "gptj", "llama", "mistral", "qwen2"])
def test_half_precision_edit_stays_in_dtype_and_restores_and_patches_bit_exactly(family, dtype, tmp_path):
    # given a tiny model in bf16/fp16 and targets it predicts
    model, arch = _half(family, dtype)
    targets = _targets(model)
    base, base_sha = _state(model), weights_sha256(model)
    # when REVS edits it
    result = unlearn(model, arch, targets, CFG)
    edited_sha = weights_sha256(model)
    # then the weights changed, in their own dtype, and the edits were computed in float32
    assert result.edits
    assert edited_sha != base_sha
    assert all(p.dtype == dtype for p in model.parameters())
    assert all(e.delta.dtype == torch.float32 for e in result.edits)
    # and a saved patch reproduces the edited model and removes itself bit for bit
    patch = make_patch(arch, result.backup)
    assert {v.dtype for v in patch.edited.values()} == {dtype}
    manifest = PatchManifest("tiny", base_sha, edited_sha)
    loaded, _ = load_patch(save_patch(patch, manifest, tmp_path / "patch"))
    revert_patch(model, arch, loaded, expect_edited=edited_sha, expect_base=base_sha)
    assert all(torch.equal(base[n], p) for n, p in model.state_dict().items())
    apply_patch(model, arch, loaded, expect_base=base_sha, expect_edited=edited_sha)
    # and the backup restores the base bit for bit too
    restore(model, arch, result.backup)
    assert weights_sha256(model) == base_sha


#: A guarded erase on tiny models: guard projection, decoys, one target per secret at its most distinct position.
GUARDED = EraseConfig("t", "revs", dataclasses.replace(CFG, guard_projection=0.05, guard_spread=4, decoys=2,
                                                       targets=TargetConfig(max_tokens=1, method="distinct")))


def guarded_erase_inputs(model):
    """Two secrets ``model`` continues greedily after its prompt (computed on its device), a benign text and an
    encoder: inputs for :data:`GUARDED`."""
    device = next(model.parameters()).device
    secrets, prompt = [], [5, 9, 12]
    for i in range(2):
        value = []
        for _ in range(4):
            value.append(int(model(torch.tensor([prompt + [i] + value], device=device)).logits[0, -1].argmax()))
        secrets.append(Secret((*prompt, i), tuple(value), tuple(str(v % 10) for v in value)))
    return EraseInputs(tuple(secrets), benign=((3, 4, 5, 6, 7, 8),), encode=lambda s: [2 + int(c) for c in s])


@pytest.mark.parametrize("dtype", HALF, ids=dtype_name)
def test_a_guarded_half_precision_erase_restores_bit_exactly(dtype):
    model, arch = _half("llama", dtype)
    base = weights_sha256(model)
    result = erase(model, arch, guarded_erase_inputs(model), GUARDED)
    assert result.edits
    assert weights_sha256(model) != base
    restore(model, arch, result.backup)
    assert weights_sha256(model) == base


@pytest.mark.parametrize("dtype", HALF, ids=dtype_name)
def test_a_half_precision_edit_is_rounded_once(dtype):
    # given half-precision write vectors and a float32 delta on a neuron listed twice
    model, arch = _half("llama", dtype)
    vectors = neuron_vectors(arch.mlp_out[0], arch.spec.transposed)
    before = vectors.detach().clone()
    idx = torch.tensor([3, 7, 3])
    delta = torch.randn(3, arch.d_model, generator=torch.Generator().manual_seed(0)) * 1e-2
    # when it is added
    add_to_neurons(arch.mlp_out[0], arch.spec.transposed, idx, delta)
    # then each row is the float32 sum rounded to the dtype once, others untouched
    want3 = (before[3].float() + delta[0] + delta[2]).to(dtype)
    assert torch.equal(vectors[3], want3)
    assert torch.equal(vectors[7], (before[7].float() + delta[1]).to(dtype))
    untouched = torch.ones(arch.d_ff, dtype=torch.bool)
    untouched[[3, 7]] = False
    assert torch.equal(vectors[untouched], before[untouched])


def test_the_lens_of_a_bf16_model_computes_in_float32():
    # given the same model in fp32 and bf16
    model32, arch32 = _model("llama")
    model16, arch16 = _half("llama", torch.bfloat16)
    lens32, lens16 = VocabLens(model32, arch32), VocabLens(model16, arch16)
    h = torch.randn(3, arch32.d_model, generator=torch.Generator().manual_seed(1))
    # then the bf16 model's lens is float32 and equals the fp32 lens of its own (rounded) weights
    out = lens16.project(h.bfloat16())
    assert lens16.W.dtype == torch.float32
    assert out.dtype == torch.float32
    assert arch16.unembed.weight.dtype == torch.bfloat16  # the model keeps its weights
    rounded = VocabLens(model16.float(), resolve_arch(model16))
    torch.testing.assert_close(out, rounded.project(h.bfloat16().float()), rtol=0, atol=0)
    assert lens32.W is arch32.unembed.weight  # an fp32 model's lens reads the live weight: no copy


@pytest.mark.parametrize("dtype", HALF, ids=dtype_name)
def test_a_saved_version_keeps_its_dtype_and_auto_loads_it(dtype, tmp_path):
    # given a half-precision checkpoint
    model = tiny_model("llama", vocab_size=300).to(dtype)
    save_model(model, make_tiny_tokenizer(), tmp_path / "base")
    # when it is loaded with dtype auto, edited and saved
    lm = load_model(tmp_path / "base", cache_dir=tmp_path / "cache", dtype="auto", device="cpu")
    assert lm.dtype == dtype
    assert lm.device == torch.device("cpu")
    arch = resolve_arch(lm.model)
    add_to_neurons(arch.mlp_out[0], arch.spec.transposed, torch.tensor([1]), torch.ones(1, arch.d_model))
    save_model(lm.model, lm.tokenizer, tmp_path / "edited")
    # then the saved version loads in the same dtype, bit for bit, and an explicit dtype still converts
    again = load_model(tmp_path / "edited", cache_dir=tmp_path / "cache")
    assert again.dtype == dtype
    assert again.weights_sha256 == weights_sha256(lm.model)
    assert load_model(tmp_path / "edited", cache_dir=tmp_path / "cache", dtype="fp32").dtype == torch.float32


def test_device_and_dtype_names_are_checked_with_advice():
    assert parse_dtype("auto") is None
    assert parse_dtype("bf16") is torch.bfloat16
    assert parse_dtype("float16") is torch.float16
    assert parse_device("cpu") == torch.device("cpu")
    assert parse_device("auto") == torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="use auto .* fp32, bf16 or fp16"):
        parse_dtype("int8")
    with pytest.raises(ValueError, match="use auto, cpu, cuda or cuda:N"):
        parse_device("tpu")
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ValueError, match="CUDA device"):
        parse_device(f"cuda:{n}")
    with pytest.raises(ModelLoadError, match="unknown dtype"):
        load_model("smollm2-135m", cache_dir="/nonexistent", dtype="fp8")
