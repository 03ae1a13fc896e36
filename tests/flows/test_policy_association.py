"""A policy's [revs.association] table reaches the erase configuration, and a typo in it is named at load."""

import pytest

from flows.params import ParamsError
from flows.policy import load_policy


def test_a_policy_file_turns_the_stage_on_and_a_typo_in_it_is_named(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text("[revs.association]\nsteps = 30\ncovariance_weight = 3.0\n")
    assert load_policy(good).revs == {"association": {"steps": 30, "covariance_weight": 3.0}}
    bad = tmp_path / "bad.toml"
    bad.write_text("[revs.association]\nstep = 30\n")
    with pytest.raises(ParamsError, match="association.step"):
        load_policy(bad)
