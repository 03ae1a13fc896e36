"""Tell a number that is personal data from the same digits inside an order, ticket or part identifier.

Offers :func:`embedded_in_identifier` (the match is glued to more letters or digits: ``TKT-415-555-0132``,
``PN-4412-5567-A``, ``ISBN 978-38-2581-175-4``, ``1463 4852 2398 1128 2717 73``),
:func:`introduced_by_identifier_word` (an identifier noun such as *invoice*, *order* or *ISBN* comes just before
the number, with no phone word between: ``Invoice no. 7887791378``) and :func:`not_a_phone_shape` (decimals,
dates, more digits than E.164 allows).

Presidio's pattern recognizers only ask for a word boundary, and ``phonenumbers`` only refuses a match touching a
Latin letter, so both report digit runs of longer identifiers; those were most of the false phone numbers (and
some SSNs and card numbers) on the benchmark's decoys (``benchmarks/_decoys.py``).
"""

from __future__ import annotations

import re

#: Characters that join the parts of one identifier (``ORD-123``, ``WB/2024``, ``SR#12``, ``v1.2``).
JOINERS = frozenset("-_/.#")
#: Letters glued to a number by a joiner that still introduce a phone number (``Tel.415.555.0132``).
PHONE_PREFIXES = frozenset({"tel", "ph", "phone", "mob", "mobile", "cell", "fax", "call", "tlf", "telefon"})
#: Nouns that introduce an identifier, not a phone number (chosen on the benchmark's tuning decoys and the kinds
#: of identifier the issue names; other words are not guessed).
IDENTIFIER_WORDS = frozenset({"order", "orders", "po", "invoice", "invoices", "ticket", "tickets", "issue",
                              "tracking", "isbn", "version", "build", "firmware", "part", "model", "ref",
                              "reference"})
#: Words that introduce a phone number; one of them after the identifier noun keeps the number.
PHONE_WORDS = frozenset({"phone", "telephone", "tel", "cell", "cellphone", "mobile", "call", "fax", "text",
                         "whatsapp", "dial", "reach", "contact", "ph", "mob", "sms"})
_WORD = re.compile(r"[^\W_]+")
#: A sentence ends at ! ? ; or a newline, or at a period followed by a capital ("no. 123" does not end one).
_SENTENCE_END = re.compile(r"[!?;]\s|\.\s+(?=[A-Z])|\n")
_WINDOW = 3  # words looked at before the number


def _alnum(ch: str) -> bool:
    return ch.isalnum()


def _left_run(text: str, end: int) -> str:
    """The letters/digits run ending at ``end``."""
    i = end
    while i > 0 and _alnum(text[i - 1]):
        i -= 1
    return text[i:end]


def _token_before(text: str, start: int) -> str:
    """The whitespace-delimited token that ends one space before ``start`` ("" when there is none)."""
    if start < 2 or text[start - 1] != " ":
        return ""
    i = start - 1
    while i > 0 and not text[i - 1].isspace():
        i -= 1
    return text[i:start - 1]


def _token_after(text: str, end: int) -> str:
    """The whitespace-delimited token that starts one space after ``end``, trailing punctuation removed."""
    if end + 1 >= len(text) or text[end] != " ":
        return ""
    j = end + 1
    while j < len(text) and not text[j].isspace():
        j += 1
    return text[end + 1:j].rstrip(".,;:!?)")


def _continues_digit_groups(text: str, start: int, end: int) -> bool:
    """True when the match is one part of a longer space-separated number: it has spaces itself and a bare group
    of digits sits one space before or after it (``1463 4852 2398 1128 2717 73``), or it is a bare group of
    digits next to another group of as many digits (``5352 9867 1272 1647``)."""
    match = text[start:end]
    neighbours = [t for t in (_token_before(text, start), _token_after(text, end)) if t.isdigit()]
    if " " in match:
        return bool(neighbours)
    return match.isdigit() and any(len(t) == len(match) for t in neighbours)


def embedded_in_identifier(text: str, start: int, end: int) -> bool:
    """Return True when ``text[start:end]`` is only part of a longer identifier.

    That is: letters, digits or a ``+`` touch it; or a joiner (``- _ / . #``) links it to more letters or digits
    (except a phone abbreviation before it: ``Tel.``, ``ph-``); or another bare group of digits continues it
    across one space (a 22-digit tracking number read as a card number; a 4-digit group of it read as a phone
    number).
    """
    if start > 0:
        before = text[start - 1]
        if _alnum(before) or before == "+":  # "+5511961547743" is a phone number, not the card 5511961547743
            return True
        if before in JOINERS and start > 1 and _alnum(text[start - 2]):
            run = _left_run(text, start - 1)
            if run.lower() not in PHONE_PREFIXES:
                return True
    if end < len(text):
        after = text[end]
        if _alnum(after):
            return True
        if after in JOINERS and end + 1 < len(text) and _alnum(text[end + 1]):
            return True
    return _continues_digit_groups(text, start, end)


_DECIMAL = re.compile(r"-?(?:0|[1-9]\d{0,2})\.\d+")
_DATE = re.compile(r"(\d{1,2})([./-])(\d{1,2})\2(?:\d{2}|\d{4})")
_OPENING = "([{"
_EXTENSION = re.compile(r"[^\d\s\-./()\[\]+]")
#: E.164: a phone number has at most 15 digits, country code included.
MAX_PHONE_DIGITS = 15


def _core(text: str, start: int, end: int) -> str:
    """The match without an opening bracket ``phonenumbers`` may include."""
    return text[start + 1:end] if text[start] in _OPENING and ")" not in text[start:end] else text[start:end]


def not_a_phone_shape(text: str, start: int, end: int) -> bool:
    """Return True when ``text[start:end]`` is written in a way no phone number is.

    A decimal number (``169.3425``, ``(39.4054``: a coordinate or an amount), a day-month-year date
    (``08.11.2004``, ``16-04-2022``), or more than :data:`MAX_PHONE_DIGITS` digits before any extension
    (``4964-3337-8430-5326`` is a card number that ``phonenumbers`` reads as German, country code 49 without a
    plus).
    """
    core = _core(text, start, end)
    if _DECIMAL.fullmatch(core):
        return True
    date = _DATE.fullmatch(core)
    if date:
        low, high = sorted((int(date[1]), int(date[3])))
        if 1 <= low <= 12 and high <= 31:
            return True
    ext = _EXTENSION.search(core)
    digits = sum(ch.isdigit() for ch in (core[:ext.start()] if ext else core))
    return digits > MAX_PHONE_DIGITS


def introduced_by_identifier_word(text: str, start: int) -> bool:
    """Return True when an identifier noun is among the few words before ``start`` (same sentence) and no phone
    word comes after it (``Invoice no. 7887791378``, ``Cite ISBN-10 4-412-62585-0``)."""
    before = text[max(0, start - 80):start]
    ends = [m.end() for m in _SENTENCE_END.finditer(before)]
    if ends:
        before = before[ends[-1]:]
    words = [w.lower() for w in _WORD.findall(before)][-_WINDOW:]
    for word in reversed(words):
        if word in PHONE_WORDS:
            return False
        if word in IDENTIFIER_WORDS:
            return True
    return False
