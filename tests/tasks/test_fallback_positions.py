"""``targets.fallback``: a secret none of whose targets converged gets one more position per round until one
converges, at most ``fallback`` rounds (tasks.unlearning_io._with_fallbacks); every edit made is kept."""

from types import SimpleNamespace

import pytest
import torch

from revs_engine.config import RevsConfig
from revs_engine.edit import WeightBackup
from revs_engine.targets import TargetConfig, targets_at
from tasks import unlearning_io
from tasks.unlearning_io import UnlearnItem, _with_fallbacks

V = 1000
LOW = RevsConfig().bounds(V)["residual"][0]


def _item(name: str) -> UnlearnItem:
    return UnlearnItem(name, "***", name * 64, "US_SSN", (1, 2), (5, 6, 7, 8), ("5", "6", "7", "8"))


def _result(target_ranks: list[tuple[int, int]], layer: int = 0):
    """A REVS result whose targets end at the given (secret, final rank); its backup names one neuron."""
    targets = [SimpleNamespace(secret_index=s, rank_final=r, rank_after=r, rank_before=0, converged=r >= LOW)
               for s, r in target_ranks]
    backup = WeightBackup({layer: torch.tensor([layer])}, {layer: torch.zeros(1, 4)})
    return SimpleNamespace(targets=targets, backup=backup, seconds=1.0)


@pytest.fixture
def fake_revs(monkeypatch):
    """REVS that converges only at position 2; records the positions of every call."""
    calls = []

    def unlearn(model, arch, targets, cfg, **kw):
        calls.append([(t.secret_index, t.position) for t in targets])
        return _result([(t.secret_index, 2 * LOW if t.position == 2 else 3) for t in targets],
                       layer=10 + targets[0].position)

    monkeypatch.setattr(unlearning_io, "unlearn", unlearn)
    return calls


def _run(fallback: int, first_ranks: tuple[int, ...]):
    items = [_item(name) for name in "ab"[: len(first_ranks)]]
    targets = [t for s in range(len(items)) for t in targets_at((1, 2), (5, 6, 7, 8), [0], secret_index=s)]
    cfg = RevsConfig(targets=TargetConfig(fallback=fallback))
    return _with_fallbacks(None, SimpleNamespace(vocab_size=V), items, [[0, 1, 2, 3]] * len(items), targets,
                           _result(list(enumerate(first_ranks))), cfg)


def test_a_secret_left_unconverged_gets_further_positions_until_one_converges(fake_revs):
    # given secret 0 not converged and secret 1 converged; three rounds allowed
    targets, results, backup, seconds = _run(fallback=3, first_ranks=(5, LOW))
    # then only secret 0 gets more positions, one per round, and the rounds stop once position 2 converged
    assert fake_revs == [[(0, 1)], [(0, 2)]]
    assert [(t.secret_index, t.position) for t in targets] == [(0, 0), (1, 0), (0, 1), (0, 2)]
    assert [r.rank_final for r in results] == [5, LOW, 3, 2 * LOW]
    assert sorted(backup.layers) == [0, 11, 12]
    assert seconds == 3.0


def test_fallbacks_stop_after_the_configured_rounds(fake_revs):
    targets, _, _, _ = _run(fallback=1, first_ranks=(5,))
    assert fake_revs == [[(0, 1)]]
    assert [t.position for t in targets] == [0, 1]


def test_without_fallback_or_when_converged_nothing_more_is_edited(fake_revs):
    assert [t.position for t in _run(fallback=0, first_ranks=(5,))[0]] == [0]
    assert [t.position for t in _run(fallback=3, first_ranks=(LOW,))[0]] == [0]
    assert fake_revs == []


def test_fallback_must_not_be_negative():
    with pytest.raises(ValueError, match="fallback"):
        TargetConfig(fallback=-1)
