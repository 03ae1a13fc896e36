"""Secret formats: check rules, shapes, entity formats, seeded sampling, neighbourhoods, matching states."""

import math

import pytest

from revs_engine.audit_formats import typed
from revs_engine.format_checks import fix_check, iban_valid, luhn_valid, ssn_valid
from revs_engine.format_entities import (
    EMAIL_SHAPE,
    card_format,
    email_format,
    format_for,
    iban_format,
    local_part_candidates,
    phone_format,
    shape_format,
    ssn_format,
)
from revs_engine.formats import SecretFormat, Segment, chars, choice, fixed

SSN = " 545-71-4735"
EMAIL = " maria.quintero@example.com"


@pytest.mark.parametrize(("value", "ok"), [
    ("545-71-4735", True), ("001-01-0001", True), ("899-99-9999", True), ("665-12-3456", True),
    ("000-71-4735", False), ("666-71-4735", False), ("900-71-4735", False), ("999-71-4735", False),
    ("545-00-4735", False), ("545-71-0000", False), ("545-71-473", False), ("545714735", True),
])
def test_ssn_issue_rules(value, ok):
    assert ssn_valid(value) is ok


@pytest.mark.parametrize("number", ["4111 1111 1111 1111", "5500005555555559", "378282246310005",
                                    "6011-1111-1111-1117"])
def test_luhn_accepts_known_card_numbers_and_rejects_any_single_digit_change(number):
    assert luhn_valid(number)
    digits = [i for i, c in enumerate(number) if c.isdigit()]
    for i in digits:
        for d in "0123456789":
            if d != number[i]:
                assert not luhn_valid(number[:i] + d + number[i + 1:])


@pytest.mark.parametrize("iban", ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000",
                                  "FR14 2004 1010 0505 0001 3M02 606"])
def test_iban_mod97_accepts_known_ibans_and_rejects_changed_ones(iban):
    assert iban_valid(iban)
    assert iban_valid(" " + iban)  # spaces, the leading one included, are ignored
    i = next(i for i, c in enumerate(iban) if c.isdigit() and i > 4)
    assert not iban_valid(iban[:i] + str((int(iban[i]) + 1) % 10) + iban[i + 1:])
    assert not iban_valid(iban.lower())


def test_fix_check_makes_any_digits_valid():
    assert luhn_valid(fix_check("luhn", "4111 1111 1111 1112"))
    assert iban_valid(fix_check("iban", "DE00370400440532013000"))
    assert fix_check("iban", "DE00370400440532013000") == "DE89370400440532013000"


def test_shape_format_keeps_separators_and_the_leading_space():
    fmt = shape_format(" Ab-12.x")
    assert fmt.layout() == " Aa-99.a"
    assert fmt.fits(" Zz-00.q")
    assert not fmt.fits(" zz-00.q")
    assert not fmt.fits("Zz-00.q")
    assert not fmt.fits(" Zz_00.q")
    assert fmt.size == 26**3 * 100
    assert fmt.variable_mask(" Ab-12.x") == (False, True, True, False, True, True, False, True)
    with pytest.raises(ValueError, match="nothing to guess"):
        shape_format(" -.-")


def test_entity_formats_and_their_sizes():
    ssn = ssn_format(SSN)
    assert ssn.layout() == " 999-99-9999"
    assert ssn.rule == "ssn"
    assert ssn.size == 898 * 99 * 9999
    assert math.isclose(ssn.log2_size, 29.727, abs_tol=1e-3)
    card = card_format(" 4111 1111 1111 1111")
    assert card.size == 10**15
    assert iban_format(" DE89 3704 0044 0532 0130 00").layout() == " DE99 9999 9999 9999 9999 99"
    assert iban_format(" DE89 3704 0044 0532 0130 00").size == 10**18
    assert phone_format(" (555) 014-2345").layout() == " (999) 999-9999"
    with pytest.raises(ValueError, match="Luhn"):
        card_format(" 4111 1111 1111 1112")
    with pytest.raises(ValueError, match="issuable"):
        ssn_format(" 000-12-3456")
    with pytest.raises(ValueError, match="9–9 digits"):
        ssn_format(" 545-71-473")


def test_format_for_falls_back_to_the_shape_when_a_value_breaks_its_rule():
    assert format_for("US_SSN", SSN).name == "US_SSN"
    fallback = format_for("US_SSN", " 000-12-3456")
    assert fallback.name == "shape"
    assert fallback.is_valid(" 000-12-3456")
    assert format_for("PERSON", " Maria").layout() == " Aaaaa"


def test_local_parts_from_names():
    parts = local_part_candidates(["María J. Quintero", "Mary Quintero"])
    for expected in ["maria.quintero", "mquintero", "mariaquintero", "maria_quintero", "maria.quintero07",
                     "quintero.maria", "maria.j.quintero", "mjquintero", "mary.quintero", "maria"]:
        assert expected in parts
    assert parts == sorted(set(parts))
    assert not any("{" in p for p in parts)


def test_email_format_choices_always_contain_the_secret():
    fmt = email_format(EMAIL, names=["Maria Quintero"], domains=["Mail.com", "example.org"])
    assert fmt.is_valid(EMAIL)
    assert fmt.is_valid(" mquintero@mail.com")
    assert not fmt.is_valid(" mquintero@gmail.com")
    assert fmt.distance(EMAIL, " maria.quintero@mail.com") == 1  # a whole domain is one unit
    assert fmt.distance(EMAIL, " mquintero@mail.com") == 2
    own = email_format(" zz9@example.com", names=["Maria Quintero"])
    assert own.is_valid(" zz9@example.com")
    assert not own.is_valid(" zz9@mail.com")
    shaped = email_format(" jdoe42@x.com")
    assert shaped.layout() == " aaaa99@x.com"
    assert (fmt.name, shaped.name) == ("EMAIL_ADDRESS", EMAIL_SHAPE)  # the report tells the two attackers apart
    assert "maria" not in repr(fmt)
    assert "example" not in repr(fmt)


@pytest.mark.parametrize("fmt", [ssn_format(SSN), card_format(" 4111 1111 1111 1111"), phone_format(" 555-0142"),
                                 iban_format(" GB82 WEST 1234 5698 7654 32"),
                                 email_format(EMAIL, names=["Maria Quintero"], domains=["mail.com", "x.org"])],
                         ids=lambda f: f.name)
def test_sampler_is_seeded_valid_distinct_and_never_the_secret(fmt):
    secret = {"US_SSN": SSN, "CREDIT_CARD": " 4111 1111 1111 1111", "PHONE_NUMBER": " 555-0142",
              "IBAN_CODE": " GB82 WEST 1234 5698 7654 32", "EMAIL_ADDRESS": EMAIL}[fmt.name]
    a = fmt.sample(300, seed=3, exclude=[secret])
    assert a == fmt.sample(300, seed=3, exclude=[secret])
    assert a != fmt.sample(300, seed=4, exclude=[secret])
    assert len(a) == len(set(a)) == 300
    assert secret not in a
    assert all(fmt.is_valid(v) for v in a)


def test_sampler_enumerates_small_formats_and_never_returns_the_secret():
    fmt = SecretFormat("two digits", (fixed(" "), chars("99")))
    values = fmt.sample(500, seed=0, exclude=[" 42"])
    assert sorted(values) == sorted(f" {i:02d}" for i in range(100) if i != 42)
    assert len(fmt.sample(30, seed=0, exclude=[" 42"])) == 30


def test_sampled_ssns_follow_the_issue_rules():
    values = ssn_format(SSN).sample(3000, seed=0)
    assert all(ssn_valid(v) for v in values)
    assert {v[1] for v in values} == set("012345678")  # every allowed first digit occurs, never 9


def test_hamming_neighbours_are_valid_and_at_the_right_distance():
    fmt = ssn_format(SSN)
    one = list(fmt.neighbours(SSN, 1))
    assert len(one) == 8 + 9 + 9 + 2 * 9 + 4 * 9  # the area's first digit may not become 9
    assert all(fmt.distance(SSN, v) == 1 and fmt.is_valid(v) for v in one)
    two = list(fmt.neighbours(SSN, 2))
    assert len(two) == len(set(two))
    assert all(fmt.distance(SSN, v) == 2 for v in two)
    card = card_format(" 4111 1111 1111 1111")
    assert list(card.neighbours(" 4111 1111 1111 1111", 1)) == []  # Luhn catches every single-digit change
    assert len(list(card.neighbours(" 4111 1111 1111 1111", 2))) > 0


def test_matching_states_follow_the_format_character_by_character():
    fmt = ssn_format(SSN)
    s = fmt.advance(fmt.start(), " 54")
    assert fmt.next_chars(s) == frozenset("0123456789")
    s = fmt.advance(s, "5")
    assert fmt.next_chars(s) == frozenset("-")
    assert not fmt.advance(s, "7")  # the separator is fixed
    assert any(fmt.is_end(x) for x in fmt.advance(s, "-71-4735"))
    assert not fmt.advance(fmt.start(), " 545-71-47355")


def test_matching_states_handle_choices_that_prefix_each_other():
    fmt = SecretFormat("mail", (fixed(" "), choice(["ab", "abc"]), fixed("@"), choice(["x.co", "x.com"])))
    s = fmt.advance(fmt.start(), " ab")
    assert fmt.next_chars(s) == frozenset("c@")
    s = fmt.advance(s, "@x.co")
    assert any(fmt.is_end(x) for x in s)
    assert fmt.next_chars(s) == frozenset("m")
    assert fmt.units(" abc@x.com") == ("abc", "x.com")
    assert fmt.max_length == len(" abc@x.com")


def test_segments_and_formats_validate():
    with pytest.raises(ValueError, match="class codes"):
        chars("9x")
    with pytest.raises(ValueError, match="no empty option"):
        choice(["a", ""])
    with pytest.raises(ValueError, match="no variable segment"):
        SecretFormat("f", (fixed("-"),))
    with pytest.raises(ValueError, match="unknown rule"):
        SecretFormat("f", (chars("9"),), "crc")
    assert Segment("choice", options=("b", "a", "b")).options == ("a", "b")


def test_typed_tells_a_types_rule_from_a_bare_shape():
    # given formats of each kind
    ruled = [ssn_format(SSN), phone_format(" 555-0142"), email_format(EMAIL, names=["Maria Quintero"])]
    shaped = [email_format(EMAIL), format_for("US_SSN", " 12-34"), shape_format("ab12")]
    # then the audit's format_typed row is 100 for a rule and 0 for a shape
    assert [typed(f) for f in ruled] == [100.0] * 3
    assert [typed(f) for f in shaped] == [0.0] * 3
