import pytest

from revs_engine.targets import (
    TargetConfig,
    TokenTarget,
    eligible_positions,
    encoder,
    other_spellings,
    select_targets,
    spelling_targets,
)

SSN_TEXTS = [" ", "5", "4", "5", "-", "7", "1", "-", "4", "7", "3", "5"]
SSN_IDS = [216, 37, 36, 37, 29, 39, 33, 29, 36, 39, 35, 37]


def test_whitespace_and_punctuation_are_never_targets_by_default():
    assert eligible_positions(SSN_TEXTS, TargetConfig()) == [1, 2, 3, 5, 6, 8, 9, 10, 11]


def test_paper_rule_keeps_the_space_when_asked():
    assert 0 in eligible_positions(SSN_TEXTS, TargetConfig(skip_whitespace_only=False))


def test_rarest_picks_highest_ids_and_returns_secret_order():
    targets = select_targets([100, 101], SSN_IDS, SSN_TEXTS, TargetConfig(max_tokens=2))
    assert [t.position for t in targets] == [5, 9]  # the two '7' (id 39), in text order
    assert targets[0].prefix_ids == (100, 101, *SSN_IDS[:5])
    assert targets[0].token_id == 39


def test_email_stop_and_skip_rules():
    texts = [" mar", "isol", ".", "qu", "@", "gmail", ".", "com"]
    ids = [10, 20, 30, 40, 50, 60, 70, 80]
    cfg = TargetConfig(max_tokens=None, stop_substrings=("@",), skip_substrings=(".",))
    assert eligible_positions(texts, cfg) == [0, 1, 3]
    assert [t.position for t in select_targets([], ids, texts, cfg)] == [0, 1, 3]


def test_random_is_seeded():
    a = select_targets([], SSN_IDS, SSN_TEXTS, TargetConfig(method="random", seed=3))
    b = select_targets([], SSN_IDS, SSN_TEXTS, TargetConfig(method="random", seed=3))
    assert a == b


def test_explicit_positions_override_the_rule():
    chosen = select_targets([], SSN_IDS, SSN_TEXTS, TargetConfig(), positions=[11, 1])
    assert [t.position for t in chosen] == [1, 11]


@pytest.mark.parametrize(("kwargs", "msg"), [({"max_tokens": 0}, "max_tokens"), ({"method": "oldest"}, "method")])
def test_invalid_config_raises(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        TargetConfig(**kwargs)


def test_email_targets_stop_at_the_at_sign_and_other_types_keep_the_config():
    # given an e-mail split into sub-words whose rarest token is in the domain
    from revs_engine.targets import config_for_entity

    texts = [" n", "eriksen", "47", "@", "zzexample", ".", "org"]
    ids = [10, 500, 300, 5, 900, 6, 800]
    base = TargetConfig(max_tokens=2)
    # when
    email = select_targets([1, 2], ids, texts, config_for_entity(base, "EMAIL_ADDRESS"))
    other = select_targets([1, 2], ids, texts, config_for_entity(base, "PERSON"))
    # then the e-mail's targets are all before '@'; without the rule the domain's rare tokens win
    assert [t.position for t in email] == [1, 2]
    assert [t.position for t in other] == [4, 6]
    assert config_for_entity(base, "US_SSN") is base
    assert config_for_entity(TargetConfig(stop_substrings=("@",)), "EMAIL_ADDRESS").stop_substrings == ("@",)


# -- copied positions (an e-mail's letters spelled by its context) -----------------------------------------------
def test_letters_the_prompt_spells_are_copied_and_digits_never_are():
    from revs_engine.targets import copied_positions

    # given an e-mail local part made of an initial, the surname split in two tokens, and two digits
    tokens = [" m", "ars", "den", "7", "1"]
    # then the initial (a word of the prompt starts with it) and the surname's tokens count; the digits do not,
    # even though the prompt's date holds them
    assert copied_positions(tokens, "Ticket from Mary Marsden on 2024-07-17: reply to") == {0, 1, 2}
    # a context that never names the person copies nothing (the initial has no word to come from)
    assert copied_positions(tokens, "Ticket 2024-07-17: reply to") == set()


def test_letters_count_inside_a_spelled_stretch_of_three_or_more_and_case_is_ignored():
    from revs_engine.targets import copied_positions

    # " ds": the initial of Dmitri and the first letter of Szabo; "z" alone is spelled only inside "szabo"
    tokens = [" ds", "z", "abo", "6", "0"]
    assert copied_positions(tokens, "Refund approved for Dmitri Szabo. Sent to") == {0, 1, 2}
    assert copied_positions(["x", "q", "z"], "The QZ account") == set()  # two letters are too few to be a copy
    assert copied_positions(["jo", "hn"], "JOHN wrote") == {0, 1}


def test_copied_last_moves_them_to_the_end_and_keeps_both_orders():
    from revs_engine.targets import copied_last

    assert copied_last([4, 1, 3, 0, 2], {1, 0}) == [4, 3, 2, 1, 0]
    assert copied_last([2, 1], set()) == [2, 1]


def test_shared_positions_are_those_whose_token_another_value_holds():
    from revs_engine.targets import shared_positions

    assert shared_positions([5, 6, 7, 5], {5, 9}) == {0, 3}
    assert shared_positions([5, 6], set()) == set()


_PIECES = {"c": 1, "ch": 2, "che": 3, "chen": 4, "chen4": 5, "4": 6, "2": 7, " c": 8, ".": 9, "@": 10, "h": 11}


def _piece_encode(text):
    """One id for a known piece, else one id per character (never a single token for an unknown piece)."""
    return [_PIECES[text]] if text in _PIECES else [100 + ord(c) for c in text] * 2


def test_other_spellings_are_every_single_token_that_begins_the_rest_of_the_secret():
    # given a secret written "chen" | "42" | "@" and its target "chen"
    texts = ["chen", "42", "@"]
    # when
    alts = other_spellings(texts, 0, _PIECES["chen"], _piece_encode)
    # then the shorter pieces and the one running into the next token, never the target itself, shortest first
    assert alts == [1, 2, 3, 5]
    # a piece of whitespace or punctuation only is never one ("@" alone), and a later position has its own rest
    assert other_spellings(["@", "42"], 0, 9, _piece_encode) == []
    assert other_spellings(texts, 1, 6, _piece_encode) == []
    assert other_spellings(["h", "42"], 0, 99, _piece_encode) == [11]


def test_spelling_targets_keep_the_targets_prefix_and_position():
    t = TokenTarget(3, 0, (7, 8), _PIECES["chen"])
    out = spelling_targets([t], {3: ["chen", "42"]}, _piece_encode)
    assert [(o.secret_index, o.position, o.prefix_ids) for o in out] == [(3, 0, (7, 8))] * 4
    assert [o.token_id for o in out] == [1, 2, 3, 5]


def test_other_spellings_on_a_real_tokenizer_decode_to_the_start_of_the_rest():
    from tests.revs_engine._tokenizer import make_tiny_tokenizer

    tok = make_tiny_tokenizer()
    ids = tok(" john.doe@example.com", add_special_tokens=False)["input_ids"]
    texts = [tok.decode([i]) for i in ids]
    encode = encoder(tok)
    found = 0
    for p, own in enumerate(ids):
        rest = "".join(texts[p:])
        for alt in other_spellings(texts, p, own, encode):
            piece = tok.decode([alt])
            assert alt != own
            assert rest.startswith(piece)
            assert piece.strip()
            found += 1
    assert found  # a byte-level BPE always has the single letters
