import pytest
import torch

from revs_engine.guard import RetainGuard
from revs_engine.positions import context_overlap, distinct_positions
from revs_engine.probes import ProbeItem
from tests.revs_engine.test_revs import _model

PROMPT, SECRET = (5, 6, 7, 8), (30, 31, 32, 33, 34, 35)


@pytest.mark.parametrize("model_type", ["llama", "gpt2", "gpt_neox"])
def test_a_position_whose_exact_context_is_guarded_overlaps_fully_and_is_never_chosen(model_type):
    # given a guard holding the same prompt and the secret's first three tokens (positions 0..2 share contexts)
    model, arch = _model(model_type)
    guard = RetainGuard.from_items([ProbeItem(PROMPT, SECRET[:3])], [(40, 41, 42, 43, 44)])
    # when
    overlap = context_overlap(model, arch, PROMPT, SECRET, list(range(6)), guard)
    chosen = distinct_positions(model, arch, PROMPT, SECRET, list(range(6)), guard, max_tokens=2)
    # then the guarded contexts overlap with cosine 1 and the choice comes from the unguarded positions
    assert torch.allclose(overlap[:3], torch.ones(3), atol=1e-5)
    assert (overlap[3:] < 1 - 1e-4).all()
    assert chosen == sorted(3 + int(i) for i in torch.argsort(overlap[3:])[:2])


def test_distinct_positions_keeps_every_position_without_a_cap_and_handles_none():
    model, arch = _model("llama")
    guard = RetainGuard.from_items([ProbeItem((9, 10), (11, 12))])
    assert distinct_positions(model, arch, PROMPT, SECRET, [4, 1, 2], guard, None) == [1, 2, 4]
    assert distinct_positions(model, arch, PROMPT, SECRET, [], guard, 2) == []
