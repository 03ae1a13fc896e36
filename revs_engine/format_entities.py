"""Secret formats per entity type (Presidio's names), built from the secret's own value.

Offers :func:`shape_format` (digits → any digit, letters → letters of the same case, everything else fixed),
:func:`ssn_format`, :func:`phone_format`, :func:`card_format`, :func:`iban_format`, :func:`email_format`,
:func:`local_part_candidates` (e-mail local parts from a person's names) and :func:`format_for` (by entity type).

Every constructor keeps the value's own layout — its leading space, separators and length — because that is what
the attacker sees in the corpus's other values and what the tokenizer splits: the format says which characters an
attacker must guess, and how many values there are to guess among. A value that breaks its entity's rule (an SSN
with area 000, a card number that fails Luhn) makes the constructor raise :class:`ValueError`; :func:`format_for`
then falls back to :func:`shape_format`, so the secret is always one of its format's values.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence

from revs_engine.format_checks import iban_valid, luhn_valid, ssn_valid
from revs_engine.formats import DIGIT, LOWER, UPPER, SecretFormat, Segment, chars, choice, fixed

logger = logging.getLogger(__name__)

#: E-mail local-part patterns over a name: {f} first name, {l} last name, {m} middle name, {fi}/{li}/{mi} initials.
LOCAL_PATTERNS = ("{f}.{l}", "{f}{l}", "{f}_{l}", "{f}-{l}", "{fi}{l}", "{fi}.{l}", "{f}{li}", "{f}.{li}",
                  "{l}.{f}", "{l}{f}", "{l}_{f}", "{l}{fi}", "{l}.{fi}", "{f}", "{l}", "{fi}{mi}{l}",
                  "{f}.{m}.{l}", "{f}.{mi}.{l}")
#: Patterns that also get every two-digit suffix 00–99 ("first.last42").
SUFFIXED_PATTERNS = ("{f}.{l}", "{f}{l}", "{fi}{l}", "{f}_{l}")


def _class_of(c: str) -> str | None:
    if c.isascii() and c.isdigit():
        return DIGIT
    if c.isascii() and c.islower():
        return LOWER
    if c.isascii() and c.isupper():
        return UPPER
    return None


def shape_segments(text: str) -> list[Segment]:
    """Segments of ``text``'s shape: ASCII digits and letters become classes, every other character is fixed."""
    out: list[Segment] = []
    for variable, run in _runs(text):
        out.append(chars("".join(_class_of(c) for c in run)) if variable else fixed(run))
    return out


def _runs(text: str) -> list[tuple[bool, str]]:
    runs: list[tuple[bool, str]] = []
    for c in text:
        variable = _class_of(c) is not None
        if runs and runs[-1][0] == variable:
            runs[-1] = (variable, runs[-1][1] + c)
        else:
            runs.append((variable, c))
    return runs


#: The name of :func:`shape_format`'s formats (no type rule: the weakest attacker).
SHAPE = "shape"
#: The name of an e-mail format whose local part is only its shape (no name of the subject was known).
EMAIL_SHAPE = "EMAIL_ADDRESS (local part by shape)"
#: Format names whose attacker guesses among strings of the value's shape rather than values of its type.
SHAPE_NAMES = frozenset({SHAPE, EMAIL_SHAPE})


def shape_format(value: str, name: str = SHAPE) -> SecretFormat:
    """Return the format of values shaped like ``value`` (no rule)."""
    if not any(_class_of(c) for c in value):
        raise ValueError("the value has no ASCII digit or letter: there is nothing to guess")
    return SecretFormat(name, tuple(shape_segments(value)))


def _digits_only(value: str, what: str, lengths: range) -> None:
    n = sum(c.isdigit() for c in value)
    if any(c.isalpha() for c in value) or n not in lengths:
        raise ValueError(f"{what} needs {lengths.start}–{lengths.stop - 1} digits and no letter; got {n} digits")


def ssn_format(value: str) -> SecretFormat:
    """US SSN in ``value``'s layout (``AAA-GG-SSSS`` or without dashes), issue rules of :func:`ssn_valid`."""
    _digits_only(value, "a US SSN", range(9, 10))
    if not ssn_valid(value):
        raise ValueError("the value is not an issuable SSN (area 000/666/9xx, group 00 or serial 0000)")
    return SecretFormat("US_SSN", tuple(shape_segments(value)), "ssn")


def phone_format(value: str) -> SecretFormat:
    """Phone number in ``value``'s own layout of digits and separators (country code included)."""
    _digits_only(value, "a phone number", range(7, 16))
    return SecretFormat("PHONE_NUMBER", tuple(shape_segments(value)))


def card_format(value: str) -> SecretFormat:
    """Payment card number of ``value``'s length and layout whose last digit is the Luhn check digit."""
    _digits_only(value, "a card number", range(12, 20))
    if not luhn_valid(value):
        raise ValueError("the value fails the Luhn check")
    return SecretFormat("CREDIT_CARD", tuple(shape_segments(value)), "luhn")


def iban_format(value: str) -> SecretFormat:
    """IBAN in ``value``'s layout: its country code kept, the BBAN by shape, the check digits by mod 97."""
    if not iban_valid(value):
        raise ValueError("the value is not an IBAN with valid check digits")
    lead = value[:len(value) - len(value.lstrip())]
    body = value[len(lead):]
    segments = ([fixed(lead)] if lead else []) + [fixed(body[:2])] + shape_segments(body[2:])
    return SecretFormat("IBAN_CODE", tuple(segments), "iban")


def _ascii_letters(text: str) -> str:
    return re.sub(r"[^a-z]", "", unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower())


def local_part_candidates(names: Iterable[str]) -> list[str]:
    """Return e-mail local parts a person with these names could have (sorted, distinct, lowercase).

    Each name (``"Maria J. Quintero"``) gives first, last and middle name(s); :data:`LOCAL_PATTERNS` are filled
    with them, and :data:`SUFFIXED_PATTERNS` also with every two-digit suffix. Patterns needing a middle name are
    skipped for names without one.
    """
    out: set[str] = set()
    for name in names:
        parts = [p for p in (_ascii_letters(w) for w in name.split()) if p]
        if not parts:
            continue
        f, last = parts[0], parts[-1]
        m = parts[1] if len(parts) > 2 else ""
        fields = {"f": f, "l": last, "m": m, "fi": f[0], "li": last[0], "mi": m[:1]}
        for pattern in LOCAL_PATTERNS:
            if ("{m" in pattern and not m) or (len(parts) == 1 and "{l" in pattern):
                continue
            local = pattern.format(**fields)
            out.add(local)
            if pattern in SUFFIXED_PATTERNS:
                out.update(f"{local}{i:02d}" for i in range(100))
    return sorted(out)


def email_format(value: str, *, names: Sequence[str] | None = None,
                 domains: Sequence[str] | None = None) -> SecretFormat:
    """E-mail address: local part × ``@`` × domain.

    Args:
        value: the secret as written after its prompt (leading space included).
        names: the subject's name variants; when given, the local part is a choice among
            :func:`local_part_candidates` (plus the value's own local part, so the secret is always a candidate);
            otherwise it is the local part's shape (and the format is named :data:`EMAIL_SHAPE`).
        domains: candidate domains (e.g. the corpus's); the value's own domain is added. Without them the domain
            is fixed (the attacker is assumed to know it).
    """
    lead = value[:len(value) - len(value.lstrip())]
    body = value[len(lead):]
    local, at, domain = body.rpartition("@")
    if not at or not local or not domain:
        raise ValueError("an e-mail address needs a non-empty local part and domain around '@'")
    segments = [fixed(lead)] if lead else []
    if names:
        segments.append(choice([*local_part_candidates(names), local]))
    else:
        segments += shape_segments(local)
    segments.append(fixed("@"))
    segments.append(choice([*(d.lower() for d in domains), domain]) if domains else fixed(domain))
    return SecretFormat("EMAIL_ADDRESS" if names else EMAIL_SHAPE, tuple(segments))


def format_for(entity_type: str, value: str, *, names: Sequence[str] | None = None,
               domains: Sequence[str] | None = None) -> SecretFormat:
    """Return the format of ``value`` for a Presidio entity type; :func:`shape_format` for other types, or when
    the value breaks its type's rule (logged, without the value)."""
    builders = {"US_SSN": ssn_format, "PHONE_NUMBER": phone_format, "CREDIT_CARD": card_format,
                "IBAN_CODE": iban_format}
    try:
        if entity_type == "EMAIL_ADDRESS":
            return email_format(value, names=names, domains=domains)
        if entity_type in builders:
            return builders[entity_type](value)
    except ValueError as err:
        logger.warning("%s value does not fit its entity format (%s); using its shape", entity_type, err)
    return shape_format(value)
