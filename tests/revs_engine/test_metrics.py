"""Metrics: Efficacy, Generality, Specificity, perplexity, Unlearning and Resistance Scores."""

import math

import pytest
import torch
import torch.nn.functional as F

from revs_engine.arch import resolve_arch
from revs_engine.metrics import (
    efficacy,
    generality,
    harmonic_mean,
    perplexity,
    resistance_score,
    specificity,
    unlearning_score,
)
from revs_engine.probes import ProbeItem
from tests.revs_engine.conftest import FAMILIES
from tests.revs_engine.test_attacks import MEMORIZED, forget_targets, lens_model
from tests.revs_engine.tiny import tiny_model


def test_efficacy_is_zero_on_a_model_that_produces_its_targets():
    model, arch = lens_model("memorized")
    res = efficacy(model, arch, forget_targets(secrets=MEMORIZED), k=10)
    assert res.score == 0.0
    assert res.per_secret == (0.0, 0.0)


def test_efficacy_and_generality_are_100_when_targets_are_beyond_rank_k_at_every_layer():
    model, arch = lens_model("pushed")
    assert efficacy(model, arch, forget_targets(), k=10).score == 100.0
    gen = generality(model, arch, forget_targets(positions=(1,)), k=10)
    assert gen.score == 100.0
    assert gen.variants["min_over_layers"] == 100.0


def test_a_target_tied_at_the_top_has_rank_zero_so_it_counts_as_not_forgotten():
    # given a model whose logits are all equal (final norm zeroed): every token ties with the argmax
    model = tiny_model("llama")
    with torch.no_grad():
        model.model.norm.weight.zero_()
    arch = resolve_arch(model)
    targets = forget_targets(secrets=[(40, 41, 42), (50, 51, 52)])
    targets = [t.__class__(t.secret_index, t.position, tuple(i % 64 for i in t.prefix_ids), t.token_id)
               for t in targets]
    # then: strictly-greater ranks are 0, so Efficacy@1 is 0 (a >= convention would give 100)
    assert efficacy(model, arch, targets, k=1).score == 0.0


def test_efficacy_takes_the_best_token_of_a_secret():
    # one evaluated token beyond k is enough for the secret to count as forgotten (max over tokens)
    model, arch = lens_model("pushed")
    with torch.no_grad():
        model.lm_head.bias[400] = 1e4  # token 400 (position 0 of secret 0) is top-1 again
    res = efficacy(model, arch, forget_targets(), k=10)
    assert res.per_secret == (100.0, 100.0)
    only_first = efficacy(model, arch, forget_targets(positions=(0,)), k=10)
    assert only_first.per_secret == (0.0, 100.0)


def _own(model, n=4, new=5):
    items = []
    for i in range(n):
        prefix = (3 + i, 9, 4 + 2 * i)
        ids = torch.tensor([list(prefix)])
        cont = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, do_sample=False,
                              pad_token_id=0)[0, 3:].tolist()
        items.append(ProbeItem(prefix, tuple(cont[2:5])))  # the target appears inside the continuation
    return items


def test_specificity_counts_retained_targets_still_generated():
    model = tiny_model("qwen2")
    model.generation_config.eos_token_id = None
    items = _own(model)
    assert specificity(model, items, max_new_tokens=8).score == 100.0
    broken = items[:2] + [ProbeItem(it.prefix_ids, (63, 62, 61)) for it in items[2:]]
    res = specificity(model, broken, max_new_tokens=8)
    assert res.per_secret[:2] == (100.0, 100.0)
    assert res.score <= 75.0


@pytest.mark.parametrize("family", FAMILIES)
def test_perplexity_is_the_token_weighted_mean_nll_and_batching_does_not_change_it(family):
    # every family: the planned path unembeds only the real positions (base model + unembedding, or the fallback)
    model = tiny_model(family)
    texts = [[5, 6, 7, 8, 9], [10, 11, 12], [3, 4, 5, 6, 7, 8, 9, 10]]
    total, n = 0.0, 0
    for t in texts:
        ids = torch.tensor([t])
        with torch.no_grad():
            logits = model(ids).logits[0, :-1]
        total += float(F.cross_entropy(logits, ids[0, 1:], reduction="sum"))
        n += len(t) - 1
    batched = perplexity(model, texts, batch_size=3)
    assert batched.n_tokens == n
    assert batched.mean_nll == pytest.approx(total / n, rel=1e-5)
    assert batched.perplexity == pytest.approx(math.exp(total / n), rel=1e-5)
    assert perplexity(model, texts, batch_size=1).mean_nll == pytest.approx(batched.mean_nll, rel=1e-5)
    for size in (2, 3):  # batches planned by length or taken in input order: the same value
        in_order = perplexity(model, texts, batch_size=size, planned=False)
        assert in_order.mean_nll == pytest.approx(perplexity(model, texts, batch_size=size).mean_nll, rel=1e-5)
        assert in_order.n_tokens == n


def test_harmonic_scores_match_the_published_means():
    assert unlearning_score(98.88, 89.67, 82.17) == pytest.approx(89.7, abs=0.05)
    assert unlearning_score(59.65, 65.70) == pytest.approx(62.5, abs=0.05)
    assert resistance_score(98.88, 98.92, 100.0) == pytest.approx(99.27, abs=0.02)
    assert harmonic_mean([0.0, 100.0]) == 0.0
    with pytest.raises(ValueError, match="non-negative"):
        harmonic_mean([-1.0, 2.0])


def test_efficacy_and_logit_lens_are_zero_on_a_model_trained_to_memorize_its_targets():
    # given a tiny model fine-tuned by memorize until greedy decoding reproduces every target
    from revs_engine.attacks import logit_lens
    from revs_engine.memorize import MemorizeConfig, memorize
    from revs_engine.probes import probe
    from revs_engine.targets import TokenTarget

    model = tiny_model("llama")
    items = [ProbeItem((5 + i, 9 + i, 13 + i, 17 + i), (40 + 3 * i, 41 + 3 * i, 42 + 3 * i)) for i in range(4)]
    cfg = MemorizeConfig(lr=3e-2, batch_size=2, max_epochs=60, warmup_steps=0, progress=False)
    assert memorize(model, [list(it.prefix_ids + it.target_ids) for it in items], items, cfg).converged
    assert all(r.exact_match for r in probe(model, items))
    targets = [TokenTarget(s, p, it.prefix_ids + it.target_ids[:p], it.target_ids[p])
               for s, it in enumerate(items) for p in range(len(it.target_ids))]
    arch = resolve_arch(model)
    # when / then: every target token is the argmax at the final layer, so nothing counts as forgotten
    assert efficacy(model, arch, targets, k=5).score == 0.0
    assert logit_lens.run(model, arch, targets, k=5).score == 0.0  # min over layers includes the final one


def test_generality_scores_each_other_prompt_apart_and_a_secret_takes_its_worst():
    from revs_engine.metrics import efficacy_from_ranks, generality_from_ranks
    from revs_engine.targets import TokenTarget

    # given secret 0 after two other prompts — its digit demoted after the first (rank 500), reproduced after the
    # second (rank 0) — and secret 1 after one prompt, demoted; two tokens of one prompt for secret 1
    v = 1000
    targets = [TokenTarget(0, 1, (7, 8, 9, 30), 31), TokenTarget(0, 1, (5, 6, 30), 31),
               TokenTarget(1, 0, (4, 4), 40), TokenTarget(1, 1, (4, 4, 40), 41)]
    ranks = torch.tensor([[900, 500], [900, 0], [900, 700], [3, 2]])  # [n_tok, L]: the last column is final
    gen = generality_from_ranks(ranks, targets, v, k=10)
    # then secret 0 is not forgotten (its second prompt brings it back), secret 1 is (one demoted token of its
    # prompt stops exact reproduction)
    assert gen.per_secret == (0.0, 100.0)
    assert gen.score == 50.0
    assert gen.variants["min_over_layers"] == 50.0
    # pooling the secret's tokens across its prompts (Efficacy's rule) would have called it forgotten
    assert efficacy_from_ranks(ranks, [t.secret_index for t in targets], v, k=10).per_secret == (100.0, 100.0)
    with pytest.raises(ValueError, match="targets for"):
        generality_from_ranks(ranks[:3], targets, v, k=10)
