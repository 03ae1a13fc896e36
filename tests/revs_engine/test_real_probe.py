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
    # given 32 items: the model's own 4-token continuations (16) and the same with the 3rd token changed (16)
    model, tok = smol.model, smol.tokenizer
    items = []
    for prompt in PROMPTS:
        prefix = tuple(tok(prompt, add_special_tokens=False)["input_ids"])
        cont = _greedy(model, prefix, 4)
        items.append(ProbeItem(prefix, cont))
        items.append(ProbeItem(prefix, cont[:2] + ((cont[2] + 1) % 49152,) + cont[3:]))
    # when
    results = probe(model, items, config=ProbeConfig(batch_size=8))
    # then
    for item, res in zip(items, results, strict=True):
        assert res.exact_match == (_greedy(model, item.prefix_ids, len(item.target_ids)) == item.target_ids)
    assert [r.exact_match for r in results] == [True, False] * len(PROMPTS)
    assert all(r.first_mismatch == 2 for r in results[1::2])


def test_memorize_reproduces_a_handful_of_sentences_on_smollm2():
    lm = _load()
    items = items_from_texts(lm.tokenizer, SENTENCES)
    before = sum(r.exact_match for r in probe(lm.model, items))
    res = memorize(lm.model, [list(it.prefix_ids + it.target_ids) for it in items], items,
                   MemorizeConfig(lr=3e-4, batch_size=6, max_epochs=10, warmup_steps=2, target_fraction=1.0))
    assert before < len(items)
    assert res.fraction_memorized >= 0.95
    assert res.converged
