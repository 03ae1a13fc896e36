"""The policy's ``[entities] phone_regions``: documented default (the scanner's), checked at load."""

import pytest

from flows.params import ParamsError
from flows.policy import Policy, load_policy


def test_default_phone_regions_are_the_scanners():
    from pii_detect import DEFAULT_PHONE_REGIONS

    assert Policy().entities.phone_regions == list(DEFAULT_PHONE_REGIONS)


def test_policy_phone_regions_load_and_reject_unknown_codes(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[entities]\ntypes = ["PHONE_NUMBER"]\nphone_regions = ["US", "IN"]\n')
    assert load_policy(good).entities.phone_regions == ["US", "IN"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[entities]\nphone_regions = ["US", "UK"]\n')
    with pytest.raises(ParamsError, match=r"entities\.phone_regions: .*'UK'.*'GB'"):
        load_policy(bad)


def test_the_example_policy_documents_phone_regions():
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.toml"
    assert "phone_regions" in example.read_text(encoding="utf-8")
    assert load_policy(example).entities.phone_regions
