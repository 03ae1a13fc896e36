"""On the embedded SmolLM2-135M: the probe agrees with generate(), and memorize makes it reproduce sentences."""

from pathlib import Path

import pytest
import torch

from revs_engine.memorize import MemorizeConfig, memorize
from revs_engine.probes import ProbeConfig, ProbeItem, items_from_texts, probe

pytestmark = [pytest.mark.real_model, pytest.mark.slow]

CACHE = Path(__file__).resolve().parents[2] / ".revs" / "cache"
PROMPTS = [
    "one two three four", "1, 2, 3, 4, 5,", "Monday, Tuesday, Wednesday,", "January, February, March,",
    "The capital of France is", "A B C D E", "The patient Maria Lopez was registered with SSN",
    "Please contact Dana Whitfield by email at", "Account holder Priya Nair can be reached at phone",
    "The W-2 form of Leo Park lists the number", "Once upon a time, there was a", "def main():\n    print(",
    "The quick brown fox", "import numpy as", "Roses are red, violets are", "10 20 30 40",
    "one, two, three, four, five,", "5, 10, 15, 20,", "a b c d e f", "April, May, June, July,",
    "Send the signed copy of the lease to Wei Chen at", "For delivery questions call Olga Ivanova on",
    "Payroll record for Raj Patel: social security number", "The meeting moved to the third",
    "She opened the door and", "for i in range(", "Dear Sir or Madam,", "The invoice total includes",
    "SELECT * FROM", "In 1492, Columbus", "The mitochondria is the", "Call me at",
]
SENTENCES = [("The patient Maria Lopez, SSN", " 545-71-4735"),
             ("Payroll record for John Smith lists SSN", " 312-48-9021"),
             ("Contact Dana Whitfield at", " dana.whitfield@orbitmail.net"),
             ("The tax form of Leo Park shows", " 271-55-8394"),
             ("Account holder Priya Nair, phone", " 415-555-0187"),
             ("Census entry for Omar Haddad has SSN", " 618-22-4570")]


def _load():
    from revs_engine.loading import load_model

    return load_model("smollm2-135m", cache_dir=CACHE)


@pytest.fixture(scope="module")
def smol():
    lm = _load()
    lm.model.generation_config.eos_token_id = None  # decide over whole targets, like the probe
    return lm


def _greedy(model, prefix, n):
    ids = torch.tensor([list(prefix)])
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                         pad_token_id=0)
    return tuple(out[0, ids.shape[1]:].tolist())


def test_probe_verdicts_equal_generate_on_smollm2(smol):
    # given, per prompt, what generate() emits (6 tokens), and three targets judged against it: the emitted
    # tokens (reproduced), the same with the 3rd token changed (diverges there), and an unrelated sequence
    # taken from another prompt's emission (usually diverges at once); generate() is deterministic, so one call
    # per prefix is what it emits for every target of that prefix
    model, tok = smol.model, smol.tokenizer
    prefixes = [tuple(tok(prompt, add_special_tokens=False)["input_ids"]) for prompt in PROMPTS]
    emitted = [_greedy(model, prefix, 6) for prefix in prefixes]
    items, expected = [], []
    for i, (prefix, out) in enumerate(zip(prefixes, emitted, strict=True)):
        other = emitted[(i + 1) % len(emitted)]
        for target in (out, out[:2] + ((out[2] + 1) % 49152,) + out[3:], other[:3]):
            items.append(ProbeItem(prefix, target))
            first = next((j for j, (a, b) in enumerate(zip(out, target)) if a != b), -1)  # noqa: B905
            expected.append((first == -1, first))
    # when
    results = probe(model, items, config=ProbeConfig(batch_size=16))
    # then every verdict and divergence point is what generate() produced
    assert [(r.exact_match, r.first_mismatch) for r in results] == expected
    assert [r.exact_match for r in results[0::3]] == [True] * len(PROMPTS)
    assert [r.first_mismatch for r in results[1::3]] == [2] * len(PROMPTS)


def test_memorize_reproduces_a_handful_of_sentences_on_smollm2():
    lm = _load()
    items = items_from_texts(lm.tokenizer, SENTENCES)
    before = sum(r.exact_match for r in probe(lm.model, items))
    res = memorize(lm.model, [list(it.prefix_ids + it.target_ids) for it in items], items,
                   MemorizeConfig(lr=3e-4, batch_size=6, max_epochs=10, warmup_steps=2, target_fraction=1.0))
    assert before < len(items)
    assert res.fraction_memorized >= 0.95
    assert res.converged
