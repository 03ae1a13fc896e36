"""Tiny random models of every supported family, built from configs (no downloads)."""

from __future__ import annotations

import torch
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    GPTJConfig,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    Qwen2Config,
)

VOCAB = 64
_SPECIAL = {"bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1}


def tiny_config(model_type: str, vocab_size: int = VOCAB, layers: int = 2):
    """Return a config with hidden 16, d_ff 48, ``layers`` layers, 4 heads."""
    common = dict(vocab_size=vocab_size, **_SPECIAL)
    if model_type in ("llama", "mistral", "qwen2"):
        cls = {"llama": LlamaConfig, "mistral": MistralConfig, "qwen2": Qwen2Config}[model_type]
        return cls(hidden_size=16, intermediate_size=48, num_hidden_layers=layers, num_attention_heads=4,
                   num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=False, **common)
    if model_type == "gpt2":
        return GPT2Config(n_embd=16, n_inner=48, n_layer=layers, n_head=4, n_positions=256, **common)
    if model_type == "gptj":
        return GPTJConfig(n_embd=16, n_inner=48, n_layer=layers, n_head=4, n_positions=256, rotary_dim=4, **common)
    if model_type == "gpt_neox":
        return GPTNeoXConfig(hidden_size=16, intermediate_size=48, num_hidden_layers=layers, num_attention_heads=4,
                             max_position_embeddings=256, **common)
    raise KeyError(model_type)


def tiny_model(model_type: str, seed: int = 0, **kw):
    """Build a tiny random model of ``model_type`` in eval mode (fp32)."""
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(tiny_config(model_type, **kw)).eval()
