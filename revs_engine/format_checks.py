"""Check rules of secret formats: US SSN issue rules, the Luhn check digit, IBAN mod-97 check digits.

Offers :data:`RULES`, :func:`ssn_valid`, :func:`luhn_sum`, :func:`luhn_valid`, :func:`iban_valid`, :func:`rule_ok`
(a rule by name) and :func:`fix_check` (overwrite a value's check digits so it passes its rule: how the sampler
draws uniformly among valid card numbers and IBANs).
"""

from __future__ import annotations

RULES = ("none", "ssn", "luhn", "iban")


def ssn_valid(text: str) -> bool:
    """Return whether the 9 digits of ``text`` are an issuable US SSN (area ∉ {000, 666, 900–999}, group ≠ 00,
    serial ≠ 0000)."""
    d = "".join(c for c in text if c.isdigit())
    return len(d) == 9 and d[:3] not in ("000", "666") and d[0] != "9" and d[3:5] != "00" and d[5:] != "0000"


def luhn_sum(digits: str) -> int:
    """Luhn sum of ``digits`` (every second digit from the right doubled, 9 subtracted above 9)."""
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total


def luhn_valid(text: str) -> bool:
    """Return whether the digits of ``text`` pass the Luhn check (payment card numbers)."""
    d = "".join(c for c in text if c.isdigit())
    return len(d) > 1 and luhn_sum(d) % 10 == 0


def _iban_numeric(compact: str) -> int:
    return int("".join(str(int(c, 36)) for c in compact))


def iban_valid(text: str) -> bool:
    """Return whether ``text`` (spaces ignored) is an IBAN with valid check digits (ISO 13616: mod 97 = 1)."""
    c = "".join(text.split())
    ok = len(c) > 4 and c[:2].isalpha() and c[:2].isupper() and c[2:4].isdigit() and c.isalnum() and c.isascii()
    return ok and _iban_numeric(c[4:] + c[:4]) % 97 == 1


def rule_ok(rule: str, text: str) -> bool:
    """Return whether ``text`` passes ``rule`` (:data:`RULES`)."""
    return {"none": lambda t: True, "ssn": ssn_valid, "luhn": luhn_valid, "iban": iban_valid}[rule](text)


def _replace_digits(text: str, where: list[int], digits: str) -> str:
    out = list(text)
    for i, d in zip(where, digits, strict=True):
        out[i] = d
    return "".join(out)


def fix_check(rule: str, text: str) -> str:
    """Overwrite the check digit(s) of ``text`` so it passes a Luhn or IBAN rule (other rules: unchanged)."""
    if rule == "luhn":
        last = max(i for i, c in enumerate(text) if c.isdigit())
        payload = "".join(c for c in text[:last] if c.isdigit())
        return _replace_digits(text, [last], str((10 - luhn_sum(payload + "0") % 10) % 10))
    if rule == "iban":
        idx = [i for i, c in enumerate(text) if not c.isspace()]
        c = "".join(text[i] for i in idx)
        check = 98 - _iban_numeric(c[4:] + c[:2] + "00") % 97
        return _replace_digits(text, idx[2:4], f"{check:02d}")
    return text
