"""memorize: fine-tunes until greedy decoding reproduces the targets; seeded; honest about non-convergence."""

import pytest
import torch

from revs_engine.memorize import MemorizeConfig, memorize
from revs_engine.probes import ProbeItem, probe
from tests.revs_engine.tiny import tiny_model

SENTENCES = [((5, 9, 13, 17), (40, 41, 42)), ((6, 10, 14, 18), (43, 44, 45)), ((7, 11, 15, 19), (46, 47, 48)),
             ((8, 12, 16, 20), (49, 50, 51))]
ITEMS = [ProbeItem(p, t) for p, t in SENTENCES]
TEXTS = [list(p + t) for p, t in SENTENCES]
FAST = MemorizeConfig(lr=3e-2, batch_size=2, max_epochs=40, warmup_steps=0, progress=False)


def test_memorize_reaches_the_target_fraction_and_stops_early():
    model = tiny_model("llama")
    assert not any(r.exact_match for r in probe(model, ITEMS))
    res = memorize(model, TEXTS, ITEMS, FAST)
    assert res.converged
    assert res.fraction_memorized == 1.0
    assert res.epochs < FAST.max_epochs
    assert len(res.history) == res.epochs
    assert all(r.exact_match for r in probe(model, ITEMS))
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())


def test_memorize_is_deterministic_for_a_seed():
    a, b = tiny_model("gpt2"), tiny_model("gpt2")
    cfg = MemorizeConfig(lr=1e-2, batch_size=2, max_epochs=1, progress=False)
    ra, rb = memorize(a, TEXTS, ITEMS, cfg), memorize(b, TEXTS, ITEMS, cfg)
    assert [h[1] for h in ra.history] == [h[1] for h in rb.history]
    for pa_, pb_ in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa_, pb_)


def test_memorize_reports_non_convergence_within_its_budget():
    model = tiny_model("gpt_neox")
    res = memorize(model, TEXTS, ITEMS, MemorizeConfig(lr=1e-6, max_epochs=2, progress=False))
    assert res.epochs == 2
    assert not res.converged
    assert res.fraction_memorized < 1.0


def test_loss_on_target_trains_only_the_targets():
    model = tiny_model("qwen2")
    cfg = MemorizeConfig(lr=3e-2, batch_size=2, max_epochs=40, warmup_steps=0, loss_on="target", progress=False)
    assert memorize(model, [], ITEMS, cfg).converged


def test_memorize_config_validates():
    with pytest.raises(ValueError, match="target_fraction"):
        MemorizeConfig(target_fraction=0.0)
    with pytest.raises(ValueError, match="loss_on"):
        MemorizeConfig(loss_on="prefix")


def test_rate_warms_up_then_decays_linearly_to_zero_when_asked():
    from revs_engine.memorize import _rate

    flat = MemorizeConfig(lr=1.0, warmup_steps=3, max_epochs=2)
    decay = MemorizeConfig(lr=1.0, warmup_steps=3, max_epochs=2, lr_decay=True)
    assert [_rate(flat, s, 100) for s in (0, 3, 50, 99)] == [0.25, 1.0, 1.0, 1.0]
    assert _rate(decay, 0, 100) == 0.25
    assert _rate(decay, 50, 100) == 0.5
    assert _rate(decay, 99, 100) == pytest.approx(0.01)


GENERAL = [[21 + (i * 7 + j * 3) % 18 for j in range(12)] for i in range(8)]  # ids the items never hold


def _general_nll(model) -> float:
    from revs_engine.metrics import perplexity

    return perplexity(model, GENERAL).mean_nll


def test_rehearsal_keeps_the_general_text_and_still_memorizes():
    cfg = MemorizeConfig(lr=3e-2, batch_size=2, max_epochs=40, warmup_steps=0, loss_on="target",
                         rehearsal_batch=4, progress=False)
    plain, rehearsed = tiny_model("llama"), tiny_model("llama")
    res_plain = memorize(plain, [], ITEMS, cfg)
    res_rehearsed = memorize(rehearsed, [], ITEMS, cfg, rehearsal=GENERAL)
    assert res_plain.converged
    assert res_rehearsed.converged
    assert all(r.exact_match for r in probe(rehearsed, ITEMS))
    # trained on alongside the items: the general text is far more likely than after the items alone
    assert _general_nll(rehearsed) < 0.5 * _general_nll(plain)
    assert not any(p.requires_grad for p in rehearsed.parameters())


def test_rehearsal_is_deterministic_and_weight_zero_is_no_rehearsal():
    cfg = MemorizeConfig(lr=1e-2, batch_size=2, max_epochs=2, rehearsal_batch=3, progress=False)
    a, b = tiny_model("gpt2"), tiny_model("gpt2")
    memorize(a, TEXTS, ITEMS, cfg, rehearsal=GENERAL)
    memorize(b, TEXTS, ITEMS, cfg, rehearsal=GENERAL)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    zero, none = tiny_model("gpt2"), tiny_model("gpt2")
    import dataclasses

    memorize(zero, TEXTS, ITEMS, dataclasses.replace(cfg, rehearsal_weight=0.0), rehearsal=GENERAL)
    memorize(none, TEXTS, ITEMS, cfg)
    assert all(torch.equal(x, y) for x, y in zip(zero.parameters(), none.parameters(), strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), none.parameters(), strict=True))


def test_rehearsal_input_is_checked():
    with pytest.raises(ValueError, match="rehearsal"):
        memorize(tiny_model("llama"), TEXTS, ITEMS, FAST, rehearsal=[[5], [6]])
    with pytest.raises(ValueError, match="rehearsal"):
        MemorizeConfig(rehearsal_batch=0)
    with pytest.raises(ValueError, match="rehearsal"):
        MemorizeConfig(rehearsal_weight=-1.0)


def test_rehearsal_against_a_reference_holds_the_model_to_its_old_predictions():
    import copy

    cfg = MemorizeConfig(lr=3e-2, batch_size=2, max_epochs=40, warmup_steps=0, loss_on="target",
                         rehearsal_batch=4, progress=False)
    start = tiny_model("llama")
    before = _general_nll(start)
    plain, kept, frozen = copy.deepcopy(start), copy.deepcopy(start), copy.deepcopy(start)
    memorize(plain, [], ITEMS, cfg)
    res = memorize(kept, [], ITEMS, cfg, rehearsal=GENERAL, reference=start)
    assert res.converged
    assert all(r.exact_match for r in probe(kept, ITEMS))
    # the texts' own tokens are not learned (the reference's predictions are the target) and the items alone
    # move the general text's likelihood far more than the kept model does
    assert abs(_general_nll(kept) - before) < 0.25 * abs(_general_nll(plain) - before)
    assert all(torch.equal(x, y) for x, y in zip(start.parameters(), frozen.parameters(), strict=True))
