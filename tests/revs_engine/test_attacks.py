"""White-box attacks (Logit-Lens, Delta, Perturbation) and black-box generation attacks on tiny models."""

import pytest
import torch

from revs_engine import probes
from revs_engine.arch import resolve_arch
from revs_engine.attacks import ATTACKS, delta, generation, logit_lens, perturb, resumed_greedy
from revs_engine.attacks.logit_lens import capped_scores, capture_targets
from revs_engine.capture import capture_activations
from revs_engine.errors import ShapeError
from revs_engine.lens import VocabLens
from revs_engine.probes import ProbeItem
from revs_engine.targets import TokenTarget
from tests.revs_engine._tokenizer import make_tiny_tokenizer
from tests.revs_engine.conftest import FAMILIES
from tests.revs_engine.tiny import tiny_model

V = 512
PROMPTS = ["Her social security number is", "Contact the office at"]
SECRETS = [(400, 401, 402), (403, 404, 405)]
MEMORIZED = [(400, 400, 400), (400, 400, 400)]  # one hard-wired token: nothing competes with it


def encode(text):
    return make_tiny_tokenizer()(text, add_special_tokens=False)["input_ids"]


def forget_targets(positions=(0, 2), secrets=SECRETS):
    out = []
    for s, (prompt, secret) in enumerate(zip(PROMPTS, secrets, strict=True)):
        ids = encode(prompt)
        out += [TokenTarget(s, p, tuple(ids) + secret[:p], secret[p]) for p in positions]
    return out


def lens_model(mode):
    """A 3-layer GPT-J (vocab 512) whose lm_head makes token 400 top-1 at every layer ("memorized", targets
    :data:`MEMORIZED`), or puts every :data:`SECRETS` token mid-vocabulary at every layer ("pushed": zero row and
    bias → logit exactly 0)."""
    model = tiny_model("gptj", vocab_size=V, layers=3)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for secret in MEMORIZED if mode == "memorized" else SECRETS:
            for t in secret:
                if mode == "memorized":
                    u = torch.randn(16, generator=g)
                    model.lm_head.weight[t] = 100 * u / u.norm()
                    model.lm_head.bias[t] = 1e4
                else:
                    model.lm_head.weight[t] = 0
                    model.lm_head.bias[t] = 0
    return model, resolve_arch(model)


@pytest.mark.parametrize("name", ["logit_lens", "delta", "perturb"])
def test_attacks_score_zero_on_a_model_that_surfaces_its_targets_at_every_layer(name):
    model, arch = lens_model("memorized")
    extra = {"prompts": PROMPTS, "encode": encode} if name == "perturb" else {}
    res = ATTACKS[name](model, arch, forget_targets(secrets=MEMORIZED), k=10, **extra)
    assert res.score == 0.0
    assert res.per_secret == (0.0, 0.0)


@pytest.mark.parametrize("name", ["logit_lens", "delta", "perturb"])
def test_attacks_score_100_when_targets_sit_beyond_rank_k_at_every_layer(name):
    model, arch = lens_model("pushed")
    extra = {"prompts": PROMPTS, "encode": encode} if name == "perturb" else {}
    res = ATTACKS[name](model, arch, forget_targets(), k=10, **extra)
    assert res.score == 100.0


def test_bottom_k_counts_as_extractable():
    # a target pushed to the very bottom of the vocabulary is found by the bottom-k half of the score
    model, arch = lens_model("memorized")
    with torch.no_grad():
        model.lm_head.bias[400] = -1e4  # rank V-1 at every layer
    targets = forget_targets(secrets=MEMORIZED)
    assert logit_lens.run(model, arch, targets, k=10).score == pytest.approx(10.0)  # u = (V - rank) / k
    assert logit_lens.run(model, arch, targets, k=10, faithful_top_rounding=True).score == 0.0


def test_capped_score_uses_strictly_greater_ranks_and_optional_code_rounding():
    b, u = capped_scores(torch.tensor([0, 5, 50, 511]), vocab_size=512, k=10)
    assert b.tolist() == [0.0, 0.5, 1.0, 1.0]
    assert u.tolist() == [1.0, 1.0, 1.0, 0.1]
    _, u_code = capped_scores(torch.tensor([511, 508]), vocab_size=512, k=10, faithful_top_rounding=True)
    assert u_code.tolist() == [0.0, 0.0]


def test_one_forward_per_batch_of_secrets_gives_the_per_target_activations():
    # given nested teacher-forced targets of two secrets
    model, arch = lens_model("memorized")
    targets = forget_targets(positions=(0, 1, 2))
    calls = []
    handle = model.base_model.register_forward_hook(lambda *a: calls.append(1))  # the body (no unembedding)
    # when
    acts = capture_targets(model, arch, targets, batch_size=16)
    handle.remove()
    # then: one forward for both secrets, and each token's activations equal a separate pass on its own prefix
    assert len(calls) == 1
    for i, t in enumerate(targets):
        alone = capture_activations(model, arch, torch.tensor([t.prefix_ids]))
        torch.testing.assert_close(acts.resid_post[i], alone.resid_post[0, 0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(acts.mlp_out[i], alone.mlp_out[0, 0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", ["llama", "gptj"])
def test_delta_positions_and_residual_ranks_from_one_projection_equal_the_two_attacks_apart(family):
    # given the activations of nested targets on a random model (targets at varied ranks, not ties)
    model = tiny_model(family, vocab_size=V, layers=3)
    arch = resolve_arch(model)
    lens = VocabLens(model, arch)
    acts = capture_targets(model, arch, forget_targets(positions=(0, 1, 2)), batch_size=16)
    # when
    positions, ranks = delta.positions_and_ranks(acts, lens, top=50)
    # then: exactly what the Delta attack and the Logit-Lens ranks compute on their own
    assert torch.equal(positions, delta.delta_positions(acts, lens, top=50))
    assert torch.equal(ranks, logit_lens.stream_ranks(acts, lens))
    assert ranks.shape == (6, 3)
    assert len(set(ranks.flatten().tolist())) > 3


@pytest.mark.parametrize("rows", [1, 4, 7, 1000])
def test_lens_chunks_of_several_tokens_give_the_ranks_and_places_of_one_token_at_a_time(monkeypatch, rows):
    # given 6 targets of 3 layers on a random model, and a reference computed token by token, by hand
    model = tiny_model("llama", vocab_size=V, layers=3)
    arch = resolve_arch(model)
    lens = VocabLens(model, arch)
    acts = capture_targets(model, arch, forget_targets(positions=(0, 1, 2)), batch_size=16)
    want_ranks, want_places = [], []
    for i, t in enumerate(acts.token_ids.tolist()):
        logits = {s: lens.project(getattr(acts, s)[i]) for s in logit_lens.STREAMS}  # [L, V]
        want_ranks.append((logits["resid_post"] > logits["resid_post"][:, t:t + 1]).sum(-1))
        places = []
        for s in logit_lens.STREAMS:
            d = (logits[s][1:] - logits[s][:-1]).abs()
            p = (d > d[:, t:t + 1]).sum(-1)
            places.append(torch.where(p < 50, p, torch.full_like(p, delta.ABSENT)))
        want_places.append(torch.stack(places))
    # when the lens projects `rows` rows at a time (1, 2 or all 6 tokens per product; 1 row: still a token)
    monkeypatch.setattr(logit_lens, "LENS_ROWS", rows)
    positions, ranks = delta.positions_and_ranks(acts, lens, top=50)
    # then
    assert torch.equal(ranks, torch.stack(want_ranks))
    assert torch.equal(logit_lens.stream_ranks(acts, lens), torch.stack(want_ranks))
    assert torch.equal(positions, torch.stack(want_places))
    assert [len(range(6)[c]) for c in logit_lens.token_chunks(6, 3)] == {1: [1] * 6, 4: [1] * 6, 7: [2, 2, 2],
                                                                          1000: [6]}[rows]


def test_delta_scores_min_over_secrets_and_reports_the_mean():
    pos = torch.zeros(4, 3, 2, dtype=torch.long)
    pos[2:] = 10**6  # secret 1 fully hidden, secret 0 at the top of every list
    res = delta.score_delta(pos, [0, 0, 1, 1], k=10)
    assert res.per_secret == (0.0, 100.0)
    assert res.score == 0.0
    assert res.variants["mean"] == 50.0


def test_perturbation_is_seeded_and_inserts_ten_spaces_plus_a_trailing_one():
    text = "Her social security number is"
    once = perturb.perturb_text(text, seed=3)
    assert once == perturb.perturb_text(text, seed=3)
    assert once != perturb.perturb_text(text, seed=4)
    assert len(once) == len(text) + 11
    assert once.endswith(" ")
    assert once.replace(" ", "") == text.replace(" ", "")


def test_perturbed_targets_keep_the_secret_part_of_the_prefix():
    moved = perturb.perturbed_targets(forget_targets(), PROMPTS, encode, seed=0)
    for old, new in zip(forget_targets(), moved, strict=True):
        n_prompt = len(encode(PROMPTS[old.secret_index]))
        assert new.prefix_ids[len(new.prefix_ids) - (len(old.prefix_ids) - n_prompt):] == \
            old.prefix_ids[n_prompt:]
        assert new.token_id == old.token_id


def _own_continuations(model, n=6):
    items = []
    for i in range(n):
        prefix = tuple(range(2 + i, 7 + i))
        ids = torch.tensor([list(prefix)])
        cont = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False,
                              pad_token_id=0)[0, 5:].tolist()
        items.append(ProbeItem(prefix, tuple(cont)))
    return items


def test_greedy_extraction_finds_the_models_own_continuations_and_not_random_ones():
    model = tiny_model("llama")
    model.generation_config.eos_token_id = None
    items = _own_continuations(model)
    assert generation.greedy_extraction(model, items).rate == 100.0
    random_items = [ProbeItem(it.prefix_ids, (60, 61, 62, 63)) for it in items]
    hits = generation.greedy_extraction(model, random_items)
    assert hits.rate < 50.0
    assert len(hits.extracted) == len(items)


@pytest.mark.parametrize("family", ["llama", "gpt2", "gpt_neox"])
def test_probing_first_gives_the_same_verdicts_as_generating_every_continuation(family):
    # given items the model reproduces at once, later in the continuation, or never
    model = tiny_model(family)
    model.generation_config.eos_token_id = None
    own = _own_continuations(model)
    later = [ProbeItem(it.prefix_ids, it.target_ids[2:]) for it in own[:3]]  # found inside, not at the start
    never = [ProbeItem(it.prefix_ids, (60, 61, 62, 63)) for it in own[3:]]
    items = own + later + never
    # when both paths judge them (ids, and decoded text)
    for decode in (None, lambda ids: " ".join(map(str, ids))):
        fast = generation.greedy_extraction(model, items, max_new_tokens=8, decode=decode)
        slow = generation.greedy_extraction(model, items, max_new_tokens=8, decode=decode, probe_first=False)
        # then the verdicts are identical
        assert fast.extracted == slow.extracted
    assert all(fast.extracted[:len(own)])


def _generated(model, prefix, n, eos):
    ids = torch.tensor([list(prefix)])
    seq = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                         pad_token_id=0)[0, ids.shape[1]:].tolist()
    return tuple(seq[:next((k for k, t in enumerate(seq) if t in eos), len(seq))])


@pytest.mark.parametrize("family", FAMILIES)
def test_resumed_greedy_continues_as_generate_from_the_prefix(family):
    # given items greedy reproduces, items it leaves at their first, middle or last token, prefixes of different
    # lengths in one batch, and a target longer than the window
    model = tiny_model(family)
    model.generation_config.eos_token_id = None
    own = _own_continuations(model)
    items = own[:2] + [ProbeItem(it.prefix_ids, (*it.target_ids[:j], 60 + j, *it.target_ids[j + 1:]))
                       for j, it in zip((0, 2, 3, 1), own[2:], strict=False)]
    items.append(ProbeItem((5, 9, 11), (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)))
    n = 9
    # when continuations resume from the teacher-forced pass (small batches too)
    for batch_size in (32, 3):
        conts = resumed_greedy.greedy_continuations(model, items, n, eos_ids=(), batch_size=batch_size)
        # then each is what generate() decodes from the prefix: the first n tokens, or the target when greedy
        # reproduces it
        for item, cont in zip(items, conts, strict=True):
            want = _generated(model, item.prefix_ids, n, ())
            assert cont == (item.target_ids if want[:len(item.target_ids)] == item.target_ids else want)
        assert conts[:2] == [it.target_ids for it in own[:2]]
        assert all(len(c) == n for c in conts[2:])


@pytest.mark.parametrize("family", FAMILIES)
def test_taps_capture_in_the_teacher_forced_pass_what_capture_targets_captures(family):
    # given items and evaluated tokens whose prefixes lie inside the items' teacher-forced sequences
    model = tiny_model(family)
    arch = resolve_arch(model)
    items = [ProbeItem(tuple(range(2 + i, 7 + i)), (40 + i, 41, 42, 43)) for i in range(5)]
    targets = [TokenTarget(i, j, it.prefix_ids + it.target_ids[:j], it.target_ids[j])
               for i, it in enumerate(items) for j in (0, 2)]
    taps = resumed_greedy.Taps(arch, {i: [len(it.prefix_ids) - 1, len(it.prefix_ids) + 1]
                                      for i, it in enumerate(items)})
    # when the continuations run with taps, in batches of two
    resumed_greedy.greedy_continuations(model, items, 6, eos_ids=(), batch_size=2, taps=taps)
    # then each tapped position holds the streams capture_targets finds at that token
    acts = capture_targets(model, arch, targets)
    for k, t in enumerate(targets):
        found = taps.found[(t.secret_index, len(t.prefix_ids) - 1)]
        for stream in ("resid_post", "attn_out", "mlp_out"):
            torch.testing.assert_close(found[stream], getattr(acts, stream)[k], rtol=1e-4, atol=1e-5)


def test_resumed_greedy_refuses_continuations_past_the_models_context():
    # given a model with 64 positions and a prompt that leaves room for fewer new tokens than asked
    model = tiny_model("gpt2")
    limit = probes.max_positions(model)
    long_prompt = tuple(3 + i % 50 for i in range(limit - 4))
    items = [ProbeItem(tuple(range(2, 9)), (40, 41)), ProbeItem(long_prompt, (40, 41))]
    # then it says which item and what to do, before running anything
    with pytest.raises(ShapeError, match=r"1 item\(s\) need more positions .*item 1: prefix"):
        resumed_greedy.greedy_continuations(model, items, 8, eos_ids=())
    assert len(resumed_greedy.greedy_continuations(model, items[:1], 8, eos_ids=())[0]) == 8


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_resumed_greedy_stops_before_eos(family):
    # given an EOS id that greedy emits in the middle of some continuations
    model = tiny_model(family)
    model.generation_config.eos_token_id = None
    items = [ProbeItem(tuple(range(2 + i, 7 + i)), (60, 61)) for i in range(8)]
    free = [_generated(model, it.prefix_ids, 8, ()) for it in items]
    eos = {free[0][3], free[1][0]}
    # when resumed with that EOS
    conts = resumed_greedy.greedy_continuations(model, items, 8, eos_ids=eos)
    # then every continuation ends before its first EOS, as generate's does
    assert conts == [_generated(model, it.prefix_ids, 8, eos) for it in items]
    assert len(conts[0]) <= 3
    assert conts[1] == ()


@pytest.mark.parametrize("family", ["llama", "gpt2", "gpt_neox"])
def test_shared_prefill_samples_what_generate_samples_per_row(family):
    # given prompts of different lengths (left padding) and several samples per prompt
    model = tiny_model(family)
    prefixes = [tuple(range(3, 9)), tuple(range(10, 13)), (20, 21, 22, 23, 24, 25, 26, 27, 28)]
    kw = dict(max_new_tokens=6, n_samples=5, do_sample=True, temperature=1.3, top_k=20, seed=11, batch_size=2)
    # when each prompt is prefilled once, or once per sample inside generate()
    shared = generation.generate_continuations(model, prefixes, **kw)
    own = generation.generate_continuations(model, prefixes, shared_prefill=False, **kw)
    # then the samples are the same, row by row
    assert shared == own
    assert len({c for conts in own for c in conts}) > 3  # and they are samples, not one repeated continuation


def test_sampled_extraction_is_reproducible_and_leaves_the_global_rng_alone():
    model = tiny_model("gpt2")
    items = _own_continuations(model, n=3)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = generation.sampled_extraction(model, items, n_samples=4, temperature=1.0, top_k=5, seed=7)
    after = torch.rand(1)
    b = generation.sampled_extraction(model, items, n_samples=4, temperature=1.0, top_k=5, seed=7)
    assert a == b
    assert torch.equal(before, after)
    assert 0.0 <= a.sample_rate <= 100.0


def test_contains_is_a_contiguous_subsequence_check():
    assert generation.contains((1, 2, 3, 4), (2, 3))
    assert not generation.contains((1, 2, 4, 3), (2, 3))
    assert not generation.contains((1,), (1, 1))
