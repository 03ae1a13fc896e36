import pytest

from revs_engine.decoys import decoy_sequences, decoy_values


def test_decoys_keep_the_shape_and_never_equal_the_secret():
    value = " 545-71-4735"
    decoys = decoy_values(value, 50, seed=1)
    assert len(decoys) == 50
    assert value not in decoys
    for d in decoys:
        assert len(d) == len(value)
        assert all((c.isdigit() and v.isdigit()) or c == v for c, v in zip(d, value, strict=True))
    assert len(set(decoys)) > 40  # random, not one value repeated


def test_letters_keep_their_case_and_symbols_stay():
    decoys = decoy_values(" Jane.Roe@example.org", 20, seed=0)
    for d in decoys:
        assert d[0] == " "
        assert d.count("@") == 1
        assert d.index("@") == 9
        assert d[5] == "."
        assert d[1].isupper()
        assert d[2:5].islower()
        assert d[6].isupper()


def test_decoys_are_deterministic_per_seed_and_differ_between_secrets():
    assert decoy_values("123-45-6789", 5, seed=3) == decoy_values("123-45-6789", 5, seed=3)
    assert decoy_values("123-45-6789", 5, seed=3) != decoy_values("123-45-6789", 5, seed=4)
    assert decoy_values("123-45-6789", 5, seed=3) != decoy_values("987-65-4321", 5, seed=3)


def test_nothing_to_randomize_gives_no_decoy_and_bad_n_is_refused():
    assert decoy_values(" --- ", 5) == []
    assert decoy_values("12", 0) == []
    with pytest.raises(ValueError, match="n must be"):
        decoy_values("12", -1)


def test_sequences_are_the_prompt_then_the_encoded_decoy():
    encode = lambda s: [ord(c) for c in s]  # noqa: E731
    seqs = decoy_sequences([1, 2, 3], " 42", encode, 3, seed=0)
    assert len(seqs) == 3
    for s, d in zip(seqs, decoy_values(" 42", 3, seed=0), strict=True):
        assert s[:3] == [1, 2, 3]
        assert s[3:] == encode(d)
