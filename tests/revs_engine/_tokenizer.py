"""A tiny byte-level BPE tokenizer trained in memory (STYLE §33): no downloads, ~0.5 s, vocab 300."""

from __future__ import annotations

from functools import lru_cache

_SENTENCES = [
    "Contact john.doe@example.com for the report.",
    "The quick brown fox jumps over the lazy dog.",
    "Call 555-0142 or write to jane@example.org today.",
    "Her social security number is on file.",
    "Privacy engineers run compliance sweeps every night.",
]


@lru_cache(maxsize=1)
def make_tiny_tokenizer():
    """Return a ``PreTrainedTokenizerFast`` (byte-level BPE, vocab 300, eos ``</s>``, no pad token)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(_SENTENCES * 4, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>")
