import json

import pytest

from revs_engine.config import RevsConfig, rank_bounds
from revs_engine.targets import TargetConfig


def test_defaults_are_the_gptj_demo_config_as_fractions():
    cfg = RevsConfig()
    bounds = cfg.bounds(50400)
    assert bounds["neuron"] == (30000, 45000)
    assert bounds["mlp"] == (1000, 45000)
    assert bounds["residual"] == (1000, 10000)


def test_fraction_windows_scale_with_vocabulary():
    cfg = RevsConfig()
    small, large = cfg.bounds(49152)["neuron"], cfg.bounds(128256)["neuron"]
    assert small[0] < large[0]
    assert abs(small[0] / 49152 - large[0] / 128256) < 1e-4


def test_top_bound_is_capped_at_last_rank():
    assert rank_bounds((0.5, 1.0), 64) == (32, 63)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_neurons": 10, "act_top_k": 5}, "act_top_k"),
        ({"neuron_rank_window": (0.8, 0.6)}, "bottom margin"),
        ({"mlp_rank_window": (0.0, 0.5)}, r"\(0, 1\]"),
        ({"residual_rank_window": (0.1, 1.5)}, r"\(0, 1\]"),
        ({"act_filter": "bottom"}, "act_filter"),
        ({"n_neurons": 0}, "n_neurons"),
        ({"max_iter_neuron": 0}, "max_iter_neuron"),
        ({"initial_offset": 1.0}, "negative"),
        ({"push": 0.9}, "push"),
        ({"growth": 1.0}, "growth"),
    ],
)
def test_impossible_combinations_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RevsConfig(**kwargs)


def test_positive_filter_does_not_need_top_k():
    assert RevsConfig(n_neurons=200, act_filter="positive").n_neurons == 200
    with pytest.raises(ValueError, match="only sizes the top_k filter"):
        RevsConfig(n_neurons=200, act_filter="positive", act_top_k=1)


def test_to_dict_round_trips_through_json():
    cfg = RevsConfig(n_neurons=7, targets=TargetConfig(max_tokens=3, stop_substrings=("@",)))
    again = RevsConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        RevsConfig().n_neurons = 3  # type: ignore[misc]
