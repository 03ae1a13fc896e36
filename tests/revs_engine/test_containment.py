"""When a continuation's "contains the target" verdict is settled, and generation attacks that stop rows there."""

import itertools
import random

import pytest

from revs_engine.attacks import generation, resumed_greedy, resumed_sampling
from revs_engine.attacks.containment import Containment, digits_per_token
from revs_engine.probes import ProbeItem
from tests.revs_engine.conftest import FAMILIES
from tests.revs_engine.tiny import tiny_model

# a toy vocabulary: ten digits, separators, a word, and one token that spells two digits
PIECES = [*"0123456789", "-", " ", "ab", "12", "x9"]


def toy_decode(ids):
    return "".join(PIECES[i] for i in ids)


def _completable(settle: Containment, item: int, tokens, remaining: int) -> bool:
    """Brute force: does some continuation of at most ``remaining`` more tokens contain the target?"""
    needle = settle.needles[item] if settle.decode else None
    for n in range(remaining + 1):
        for future in itertools.product(range(len(PIECES)), repeat=n):
            seq = [*tokens, *future]
            if (needle in toy_decode(seq)) if needle else generation.contains(seq, settle.targets[item]):
                return True
    return False


def test_digits_per_token_is_the_most_ascii_digits_one_token_spells():
    assert digits_per_token(toy_decode, len(PIECES)) == 2
    assert digits_per_token(toy_decode, len(PIECES) + 3) == 2  # ids the decoder rejects count as none
    assert digits_per_token(lambda ids: "٣" * len(ids), 4) == 0  # other scripts' digits are not ASCII digits


def test_ids_check_settles_on_containment_or_when_too_few_tokens_remain():
    settle = Containment([(3, 4, 5)])
    assert settle.settled(0, (9, 3, 4, 5), 4)  # holds it
    assert not settle.settled(0, (9, 3, 4), 1)  # the last token may still come
    assert settle.settled(0, (9, 3, 4), 0)
    assert settle.settled(0, (9, 9), 2)  # a fresh start needs three
    assert not settle.settled(0, (9, 9), 3)


@pytest.mark.parametrize("needle", [(1, 2, 10, 3, 4), (5, 5, 10, 12), (12, 1, 2)])
def test_a_settled_miss_is_never_completed_by_any_continuation(needle):
    # given targets with digits (one spelled by a two-digit token too) and random continuations so far
    rng = random.Random(0)
    settle = Containment([needle], toy_decode, digits_per_token(toy_decode, len(PIECES)))
    settled_misses = 0
    for _ in range(150):
        tokens = [rng.randrange(len(PIECES)) for _ in range(rng.randrange(0, 5))]
        remaining = rng.randrange(0, 3)
        # when the bound calls the verdict settled
        if settle.settled(0, tokens, remaining):
            held = settle.needles[0] in toy_decode(tokens)
            # then either the target is already there, or no continuation of the allowed length spells it
            assert held or not _completable(settle, 0, tokens, remaining)
            settled_misses += not held
    assert settled_misses > 10  # the bound does prune


def test_text_without_digits_is_settled_only_once_contained():
    settle = Containment([(12, 12)], toy_decode, 2)
    assert not settle.settled(0, (0,), 0)
    assert settle.settled(0, (11, 12, 12), 5)


def test_the_substring_check_needs_the_digit_bound():
    with pytest.raises(ValueError, match="digits_per_token"):
        Containment([(1,)], toy_decode)


def _sampled_targets(model, n=6, seed=3):
    """Items whose targets are the continuations one seeded sampling run draws (so some samples hit them)."""
    prefixes = [tuple(range(2 + i, 7 + i)) for i in range(n)]
    conts = generation.generate_continuations(model, prefixes, max_new_tokens=4, n_samples=1, do_sample=True,
                                              temperature=1.0, top_k=3, seed=seed)
    return [ProbeItem(p, c[0][:2]) for p, c in zip(prefixes, conts, strict=True)]


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_sampled_rows_stopped_once_settled_keep_the_verdicts_and_the_draws(family):
    # given items some samples reproduce, judged on ids and on decoded text with digits
    model = tiny_model(family)
    model.generation_config.eos_token_id = None
    items = _sampled_targets(model)
    kw = dict(n_samples=6, temperature=1.0, top_k=3, seed=3, max_new_tokens=6, batch_size=4)
    for decode in (None, lambda ids: "-".join(map(str, ids))):
        # when samples stop once their verdict is settled, or run to the end
        cut = generation.sampled_extraction(model, items, decode=decode, **kw)
        full = generation.sampled_extraction(model, items, decode=decode, stop_settled=False, **kw)
        # then every verdict is the same
        assert cut == full
    assert 0 < full.sample_rate < 100
    settle = generation.containment(model, items, None)
    prefixes = [it.prefix_ids for it in items]
    gen = dict(max_new_tokens=6, n_samples=6, do_sample=True, temperature=1.0, top_k=3, seed=3, batch_size=4)
    stopped = generation.generate_continuations(model, prefixes, settled=settle.settled, **gen)
    whole = generation.generate_continuations(model, prefixes, **gen)
    # and each stopped sample is the start of the one drawn without stopping (the same random draws)
    pairs = [(a, b) for sa, sb in zip(stopped, whole, strict=True) for a, b in zip(sa, sb, strict=True)]
    assert all(b[:len(a)] == a for a, b in pairs)
    assert any(len(a) < len(b) for a, b in pairs)


def test_greedy_rows_stop_once_settled_and_keep_their_verdicts():
    # given items greedy reproduces and items it cannot (their first target token never comes)
    model = tiny_model("llama")
    model.generation_config.eos_token_id = None
    own = []
    for i in range(4):
        prefix = tuple(range(2 + i, 7 + i))
        whole = generation.generate_continuations(model, [prefix], max_new_tokens=8)[0][0]
        own.append(ProbeItem(prefix, whole[2:5]))
    missed = [ProbeItem(it.prefix_ids, (60, 61, 62, 63, 60, 61)) for it in own]
    items = own + missed
    fast = generation.greedy_extraction(model, items, max_new_tokens=8)
    slow = generation.greedy_extraction(model, items, max_new_tokens=8, probe_first=False)
    assert fast == slow
    assert fast.extracted == (True,) * 4 + (False,) * 4
    # and rows stopped once they held their target, or could no longer hold it (short of the window)
    conts = resumed_greedy.greedy_continuations(model, items, 8, eos_ids=(),
                                                settled=generation.containment(model, items, None).settled)
    assert all(c[-3:] == it.target_ids and len(c) == 5 for c, it in zip(conts[:4], own, strict=True))
    assert all(len(c) < 8 for c in conts[4:])


def _drawn_items(model, seed=5):
    """Items of different prefix lengths whose targets are what one sampling run drew (samples follow them for a
    while, then leave), plus one the model never writes."""
    prefixes = [tuple(range(2 + i, 5 + 2 * i)) for i in range(5)]
    conts = generation.generate_continuations(model, prefixes, max_new_tokens=5, do_sample=True, temperature=1.0,
                                              top_k=3, seed=seed)
    return [ProbeItem(p, c[0]) for p, c in zip(prefixes, conts, strict=True)] + [ProbeItem((7, 8), (60, 61))]


@pytest.mark.parametrize("family", FAMILIES)
def test_resumed_sampling_draws_what_generate_draws(family):
    # given samples that follow their targets for some tokens and leave them at different steps
    model = tiny_model(family)
    model.generation_config.eos_token_id = None
    items = _drawn_items(model)
    seeds = [generation._batch_seed(9, s) for s in range(0, len(items), 2)]
    kw = dict(temperature=1.3, top_k=3, seeds=seeds, batch_size=2, eos_ids=())
    gen = dict(max_new_tokens=6, n_samples=5, do_sample=True, temperature=1.3, top_k=3, seed=9, batch_size=2)
    prefixes = [it.prefix_ids for it in items]
    settle = generation.containment(model, items, None).settled
    # when samples read the teacher-forced pass and resume from its cache (with rows stopped once settled, or not)
    for settled in (None, settle):
        resumed = resumed_sampling.sampled_continuations(model, items, 5, 6, settled=settled, **kw)
        if family == "mistral":  # sliding-window cache layers: not covered, the caller samples with generate
            assert resumed is None
            return
        # then every row is the one generate() draws from the prefix
        assert resumed == generation.generate_continuations(model, prefixes, settled=settled, **gen)
    # and some rows followed their target for a while (read from the teacher-forced pass), others did not
    followed = [c[:2] == it.target_ids[:2] for conts, it in zip(resumed, items, strict=True) for c in conts]
    assert 0 < sum(followed) < len(followed)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_samples_resumed_from_the_greedy_pass_draw_what_generate_draws(family):
    # given the greedy pass over other items and the sampled items, in one length plan (batches mix them), keeping
    # the sampled items' teacher-forced results
    model = tiny_model(family)
    model.generation_config.eos_token_id = None
    items = _drawn_items(model)
    others = [ProbeItem(tuple(range(9, 12 + i)), (20 + i, 21)) for i in range(4)]
    kept = resumed_greedy.Kept(frozenset(range(2, 2 + len(items))))
    resumed_greedy.greedy_continuations(model, others[:2] + items + others[2:], 6, eos_ids=(), batch_size=3,
                                        keep=kept)
    found = {i - 2: v for i, v in kept.found.items()}
    assert len({id(cache) for _, cache, _, _ in found.values()}) > 1  # the items sit in several batches
    # when sampling reads those results instead of a pass of its own
    seeds = [generation._batch_seed(9, s) for s in range(0, len(items), 2)]
    resumed = resumed_sampling.sampled_continuations(model, items, 5, 6, temperature=1.3, top_k=3, seeds=seeds,
                                                     batch_size=2, eos_ids=(), teacher_forced=found)
    # then every row is the one generate() draws from the prefix, and the one its own pass gives
    assert resumed == generation.generate_continuations(model, [it.prefix_ids for it in items], max_new_tokens=6,
                                                        n_samples=5, do_sample=True, temperature=1.3, top_k=3,
                                                        seed=9, batch_size=2)
    assert resumed == resumed_sampling.sampled_continuations(model, items, 5, 6, temperature=1.3, top_k=3,
                                                             seeds=seeds, batch_size=2, eos_ids=())
    followed = [c[:2] == it.target_ids[:2] for conts, it in zip(resumed, items, strict=True) for c in conts]
    assert 0 < sum(followed) < len(followed)


def test_resumed_sampling_cuts_before_eos_as_generate_does():
    model = tiny_model("llama")
    model.generation_config.eos_token_id = None
    items = _drawn_items(model)
    eos = {items[0].target_ids[2], items[1].target_ids[0]}
    model.generation_config.eos_token_id = sorted(eos)
    seeds = [generation._batch_seed(4, s) for s in range(0, len(items), 3)]
    resumed = resumed_sampling.sampled_continuations(model, items, 4, 6, temperature=1.0, top_k=3, seeds=seeds,
                                                     batch_size=3, eos_ids=eos)
    assert resumed == generation.generate_continuations(model, [it.prefix_ids for it in items], max_new_tokens=6,
                                                        n_samples=4, do_sample=True, top_k=3, seed=4, batch_size=3)
    assert not any(t in eos for conts in resumed for c in conts for t in c)


def test_models_with_their_own_logits_processors_sample_with_generate():
    model = tiny_model("llama")
    assert resumed_sampling.plain_sampling(model)
    model.generation_config.repetition_penalty = 1.2
    assert not resumed_sampling.plain_sampling(model)
