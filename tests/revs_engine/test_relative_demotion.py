"""Format-relative demotion (RevsConfig.relative_demotion): a digit's logit falls, the other digits' stay."""

import dataclasses

import pytest
import torch

from revs_engine.config import RevsConfig
from revs_engine.edit import restore
from revs_engine.erase import EraseInputs, Secret, erase, format_alternatives
from revs_engine.hashing import weights_sha256
from revs_engine.lens import VocabLens
from revs_engine.presets import PRESETS, EraseConfig
from revs_engine.targets import TargetConfig
from tests.revs_engine.test_revs import CFG, _model

DIGIT0 = 40  # token 40 + d is the digit d in these tests


def _encode(text):
    return [DIGIT0 + int(c) if c.isdigit() else 3 for c in text]


def test_alternatives_are_the_other_single_token_digit_strings_of_the_same_shape():
    vocab = {str(d): 100 + d for d in range(10)} | {f" {d}": 200 + d for d in range(10)}
    vocab |= {f"{n:02d}": 300 + n for n in range(0, 100, 7)}  # only some two-digit strings are single tokens
    vocab |= {"-": 5, "ab": 6, "123": 7}

    def encode(text):
        return [vocab[text]] if text in vocab else [9, 9]

    secret = Secret((1,), (104, 5, 203, 314, 7, 6), ("4", "-", " 3", "14", "123", "ab"))
    alts = format_alternatives([secret], encode)
    assert alts[104] == tuple(100 + d for d in range(10) if d != 4)
    assert alts[203] == tuple(200 + d for d in range(10) if d != 3)  # the leading space is kept
    assert alts[314] == tuple(300 + n for n in range(0, 100, 7) if n != 14)
    assert set(alts) == {104, 203, 314}  # no alternatives for punctuation, letters, or three-digit runs


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_the_relative_direction_lowers_the_token_and_leaves_its_alternatives_logits_alone(family):
    model, arch = _model(family)
    lens = VocabLens(model, arch)
    token, alts = DIGIT0 + 4, tuple(DIGIT0 + d for d in range(10) if d != 4)
    paper = lens.unit_direction(token).double()
    lens.alternatives = {token: alts}
    relative = lens.unit_direction(token).double()
    w = lens.W.detach().double()
    # the paper's direction moves the other digits too; the relative one does not (to float32 precision)
    assert (w[list(alts)] @ paper).abs().max() > 1e-3
    assert (w[list(alts)] @ relative).abs().max() < 1e-4 * float(w[token] @ relative)
    assert float(w[token] @ relative) > 0  # a step along it raises the token's logit, so −δ lowers it
    lens.alternatives = {}
    assert torch.equal(lens.unit_direction(token).double(), paper)  # cached apart, per alternative set


def _digit_secrets(model, n=3):
    g = torch.Generator().manual_seed(7)
    secrets = []
    for _ in range(n):
        prompt, value = torch.randint(2, DIGIT0, (6,), generator=g).tolist(), []
        for _ in range(3):  # the likeliest digit at each step: what the model "remembers"
            logits = model(torch.tensor([prompt + value])).logits[0, -1]
            value.append(DIGIT0 + int(logits[DIGIT0:DIGIT0 + 10].argmax()))
        secrets.append(Secret(tuple(prompt), tuple(value), tuple(str(v - DIGIT0) for v in value)))
    return EraseInputs(tuple(secrets), encode=_encode)


def test_an_erase_with_relative_demotion_edits_differently_and_leaves_the_lens_as_it_was():
    model, arch = _model("llama")
    base = weights_sha256(model)
    inputs, lens = _digit_secrets(model), VocabLens(model, arch)
    rules = TargetConfig(max_tokens=1, method="first")
    paper_cfg = EraseConfig("p", "revs", dataclasses.replace(CFG, targets=rules))
    paper = erase(model, arch, inputs, paper_cfg, lens=lens)
    paper_sha = weights_sha256(model)
    restore(model, arch, paper.backup)
    cfg = EraseConfig("r", "revs", dataclasses.replace(CFG, targets=rules, relative_demotion=True))
    relative = erase(model, arch, inputs, cfg, lens=lens)
    assert lens.alternatives == {}
    assert relative.outcomes
    assert weights_sha256(model) not in (base, paper_sha)
    restore(model, arch, relative.backup)
    assert weights_sha256(model) == base
    with pytest.raises(ValueError, match="encode"):
        erase(model, arch, dataclasses.replace(inputs, encode=None), cfg)


def test_relative_demotion_is_a_flag_and_ftl_refuses_it():
    with pytest.raises(ValueError, match="relative_demotion must be true or false"):
        RevsConfig(relative_demotion=1)
    from revs_engine.presets import resolve_config
    with pytest.raises(ValueError, match="relative_demotion"):
        resolve_config({"preset": "ftl", "relative_demotion": True}, "paper")
    assert PRESETS["paper"].revs.relative_demotion is False
