"""Perturbation rounds (revs_engine.perturb_rounds and their place in erase): targets checked after perturbed
prompts the audit does not use, and edited again after the worst one."""

from types import SimpleNamespace

import pytest
import torch

from revs_engine import erase as erase_module
from revs_engine.arch import resolve_arch
from revs_engine.attacks.logit_lens import capture_targets, stream_ranks
from revs_engine.attacks.perturb import perturb_text
from revs_engine.config import RevsConfig
from revs_engine.edit import NeuronEdit, WeightBackup
from revs_engine.erase import EraseInputs, Secret, erase
from revs_engine.lens import VocabLens
from revs_engine.perturb_rounds import (
    FIRST_SEED,
    drop_words,
    dropped_variants,
    lagging_after_perturbation,
    perturbed_variants,
    rewritten_prompts,
)
from revs_engine.presets import EraseConfig
from revs_engine.revs_results import TargetResult
from revs_engine.targets import TargetConfig, TokenTarget
from tests.revs_engine.tiny import tiny_model

V = 1000
LOW = RevsConfig().bounds(V)["residual"][0]
PROMPTS = ["the number of ann is", "bob's number reads"]


ALPHABET = " 'abcdefghijklmnopqrstuvwxyz0123456789"


def _encode(text):  # one id per character
    return [3 + ALPHABET.index(c) for c in text]


def _decode(ids):
    return "".join(ALPHABET[i - 3] for i in ids)


def _targets():
    out = []
    for s, prompt in enumerate(PROMPTS):
        p = tuple(_encode(prompt))
        out.append(TokenTarget(s, 2, p + (41, 42), 43))
    return out


def test_perturbed_variants_rebuild_each_prompt_with_seeds_the_audit_does_not_use():
    variants = perturbed_variants(_targets(), [_encode(p) for p in PROMPTS], _decode, _encode, 3)
    assert len(variants) == 3
    for v, moved in enumerate(variants):
        for t, prompt in zip(moved, PROMPTS, strict=True):
            # the perturbed prompt of seed FIRST_SEED + v, then the secret's true tokens before the target
            assert t.prefix_ids == tuple(_encode(perturb_text(prompt, seed=FIRST_SEED + v))) + (41, 42)
            assert (t.token_id, t.position) == (43, 2)
            assert t.prefix_ids[:-2] != tuple(_encode(perturb_text(prompt, seed=0)))  # not the audit's prompt
    assert variants[0][0].prefix_ids != variants[1][0].prefix_ids


def test_lagging_targets_are_those_below_the_floor_after_their_worst_perturbed_prompt():
    torch.manual_seed(0)
    model = tiny_model("llama")
    arch = resolve_arch(model)
    lens = VocabLens(model, arch)
    variants = perturbed_variants(_targets(), [_encode(p) for p in PROMPTS], _decode, _encode, 2)
    # the lowest rank over layers, per variant, measured as the Perturbation attack measures it
    lows = [stream_ranks(capture_targets(model, arch, m), lens).min(1).values.tolist() for m in variants]
    worst = [min(range(2), key=lambda v: lows[v][j]) for j in range(2)]  # noqa: B023
    everything = lagging_after_perturbation(model, arch, lens, variants, arch.vocab_size + 1)
    assert [j for j, _, _ in everything] == [0, 1]
    for j, target, rank in everything:
        assert rank == lows[worst[j]][j]
        assert target == variants[worst[j]][j]
    # a floor between the two targets' worst ranks leaves only the lower one
    a, b = (lows[worst[0]][0], lows[worst[1]][1])
    if a != b:
        lagging = lagging_after_perturbation(model, arch, lens, variants, max(a, b))
        assert [j for j, _, _ in lagging] == [0 if a < b else 1]
    assert lagging_after_perturbation(model, arch, lens, variants, 0) == []
    assert lagging_after_perturbation(model, arch, lens, [], 10) == []


def _result(i, secret, rank):
    return TargetResult(i, secret, 0, 0, rank, rank, (), (), (), rank >= LOW, 1, 1.0)


def test_erase_edits_lagging_targets_again_after_their_perturbed_prompt_until_none_lags(monkeypatch):
    # given two secrets; after the pass, secret 1's target lags after a perturbed prompt, then none does
    calls = []
    moved = TokenTarget(1, 0, (9, 9, 9), 43)
    rounds = iter([[(1, moved, 5)], []])

    def unlearn(model, arch, targets, cfg, **kw):
        calls.append([t.prefix_ids for t in targets])
        res = [_result(i, t.secret_index, 2 * LOW) for i, t in enumerate(targets)]
        edits = [NeuronEdit(len(calls), torch.tensor([0]), torch.zeros(1, 4), i) for i in range(len(targets))]
        backup = WeightBackup({len(calls): torch.tensor([0])}, {len(calls): torch.zeros(1, 4)})
        return SimpleNamespace(targets=res, edits=edits, backup=backup, seconds=1.0)

    seen = {}

    def variants(targets, prompt_ids, decode, encode, n):
        seen["n"] = n
        return [["variant"]] * n

    monkeypatch.setattr(erase_module, "unlearn", unlearn)
    monkeypatch.setattr(erase_module, "final_ranks", lambda model, arch, targets: [2 * LOW] * len(targets))
    monkeypatch.setattr(erase_module, "perturbed_variants", variants)
    monkeypatch.setattr(erase_module, "lagging_after_perturbation",
                        lambda model, arch, lens, v, floor: next(rounds))
    cfg = EraseConfig(revs=RevsConfig(perturb_rounds=3, perturb_prompts=2,
                                      targets=TargetConfig(max_tokens=1, method="first")))
    secrets = (Secret((1, 2), (5, 6), ("5", "6")), Secret((3, 4), (7, 8), ("7", "8")))
    # when
    result = erase(None, SimpleNamespace(vocab_size=V), EraseInputs(secrets, encode=_encode, decode=_decode), cfg,
                   lens=object())
    # then the lagging target is edited once more, after its perturbed prompt, and the rounds stop
    assert calls == [[(1, 2), (3, 4)], [(9, 9, 9)]]
    assert seen["n"] == 2
    assert [e.target_index for e in result.edits] == [0, 1, 1]  # the perturbed edit is target 1's
    assert [(t.secret_index, t.prefix_ids) for t in result.targets] == [(0, (1, 2)), (1, (3, 4))]
    assert result.seconds == 2.0
    # and the rounds need the tokenizer both ways, which is checked before anything is edited
    calls.clear()
    with pytest.raises(ValueError, match="perturb_rounds needs"):
        erase(None, SimpleNamespace(vocab_size=V), EraseInputs(secrets, encode=_encode), cfg, lens=object())
    assert calls == []


def test_perturbation_settings_are_checked():
    with pytest.raises(ValueError, match="perturb_rounds"):
        RevsConfig(perturb_rounds=-1)
    with pytest.raises(ValueError, match="perturb_prompts"):
        RevsConfig(perturb_prompts=0)


def _scripted_rounds(monkeypatch, seen):
    """Script REVS so its pass leaves every target in the window; return the list that collects ``seen(variants)``
    for every perturbation round's measurement (which then finds nothing lagging)."""
    measured = []

    def unlearn(model, arch, targets, cfg, **kw):
        res = [_result(i, t.secret_index, 2 * LOW) for i, t in enumerate(targets)]
        return SimpleNamespace(targets=res, edits=[], backup=WeightBackup({}, {}), seconds=1.0)

    def lagging(model, arch, lens, variants, floor):
        measured.append(seen(variants))
        return []

    monkeypatch.setattr(erase_module, "unlearn", unlearn)
    monkeypatch.setattr(erase_module, "final_ranks", lambda model, arch, targets: [2 * LOW] * len(targets))
    monkeypatch.setattr(erase_module, "lagging_after_perturbation", lagging)
    return measured


@pytest.mark.parametrize("plain", [False, True])
def test_perturb_plain_measures_the_targets_after_their_own_prompts_too(monkeypatch, plain):
    # given a scripted REVS whose pass leaves every target in the window, and the variants the rounds measure
    measured = _scripted_rounds(monkeypatch, lambda variants: [
        [t.prefix_ids if isinstance(t, TokenTarget) else t for t in v] for v in variants])
    monkeypatch.setattr(erase_module, "perturbed_variants",
                        lambda targets, prompt_ids, decode, encode, n: [["moved"] * len(targets)] * n)
    cfg = EraseConfig(revs=RevsConfig(perturb_rounds=1, perturb_prompts=2, perturb_plain=plain,
                                      targets=TargetConfig(max_tokens=1, method="first")))
    secrets = (Secret((1, 2), (5, 6), ("5", "6")), Secret((3, 4), (7, 8), ("7", "8")))
    # when
    erase(None, SimpleNamespace(vocab_size=V), EraseInputs(secrets, encode=_encode, decode=_decode), cfg,
          lens=object())
    # then the perturbed variants are measured, and with perturb_plain the targets as they are, first
    plain_variant = [[(1, 2), (3, 4)]] if plain else []
    assert measured == [plain_variant + [["moved", "moved"]] * 2]
    with pytest.raises(ValueError, match="perturb_plain"):
        RevsConfig(perturb_plain=1)


def test_drop_words_leaves_out_seeded_words_and_keeps_the_closing_ones():
    text = " the hospital admission form for ann dated today lists the ssn"
    out = drop_words(text, seed=3)
    words, kept = text.split(), out.split()
    # some words are gone, the rest keep their order, the last two always stay, and so does the leading space
    assert 0 < len(kept) < len(words)
    it = iter(words)
    assert all(w in it for w in kept)
    assert kept[-2:] == ["the", "ssn"]
    assert out.startswith(" ")
    # seeded: the same seed drops the same words, another seed (here) others
    assert drop_words(text, seed=3) == out
    assert drop_words(text, seed=4) != out
    # a prompt of no more than the kept words is left as it is
    assert drop_words("the ssn", seed=1) == "the ssn"


def test_dropped_variants_rebuild_each_targets_prefix_on_its_shortened_prompt():
    targets = _targets()
    ids = [_encode(p) for p in PROMPTS]
    variants = dropped_variants(targets, ids, _decode, _encode, 2)
    assert len(variants) == 2
    for v, moved in enumerate(variants):
        for t, m in zip(targets, moved, strict=True):
            prompt = drop_words(PROMPTS[t.secret_index], seed=FIRST_SEED + v)
            assert m.prefix_ids == tuple(_encode(prompt)) + t.prefix_ids[len(ids[t.secret_index]):]
            assert (m.secret_index, m.position, m.token_id) == (t.secret_index, t.position, t.token_id)
            assert len(m.prefix_ids) < len(t.prefix_ids)


@pytest.mark.parametrize("drops", [0, 2])
def test_perturb_drops_adds_word_dropped_variants_to_the_rounds(monkeypatch, drops):
    # given a scripted REVS whose pass leaves every target in the window
    measured = _scripted_rounds(monkeypatch, len)
    cfg = EraseConfig(revs=RevsConfig(perturb_rounds=1, perturb_prompts=1, perturb_drops=drops,
                                      targets=TargetConfig(max_tokens=1, method="first")))
    secrets = (Secret(tuple(_encode(PROMPTS[0])), (5, 6), ("5", "6")),
               Secret(tuple(_encode(PROMPTS[1])), (7, 8), ("7", "8")))
    # when
    erase(None, SimpleNamespace(vocab_size=V), EraseInputs(secrets, encode=_encode, decode=_decode), cfg,
          lens=object())
    # then the rounds measure the perturbed prompt and the word-dropped ones
    assert measured == [1 + drops]
    with pytest.raises(ValueError, match="perturb_drops"):
        RevsConfig(perturb_drops=-1)


def test_rewritten_prompts_are_the_rounds_prompts_per_secret():
    targets = _targets()
    ids = [_encode(p) for p in PROMPTS]
    rewrites = rewritten_prompts(ids, _decode, _encode, 2, 1)
    spaced = perturbed_variants(targets, ids, _decode, _encode, 2)
    dropped = dropped_variants(targets, ids, _decode, _encode, 1)
    assert len(rewrites) == len(PROMPTS)
    for i in range(len(targets)):  # the same prompts the rounds measure, spaced ones first, in seed order
        assert rewrites[i] == [v[i].prefix_ids[:-2] for v in (*spaced, *dropped)]
    assert rewritten_prompts(ids, _decode, _encode, 0, 0) == [[], []]
