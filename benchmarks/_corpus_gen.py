"""Synthetic labeled corpus for the scan benchmark: realistic-looking PII plus PII-like decoys.

Offers :func:`generate` -> ``(texts, gold)`` where ``gold`` is a list of ``(doc_index, start, end, entity)``, and
:func:`write_jsonl`. Values are valid-looking (SSN rules Presidio applies, Luhn-valid cards, IBANs with correct
check digits, phone numbers ``phonenumbers`` accepts); decoys are near misses (fake SSN 123-45-6789, Luhn-invalid
card numbers, IBANs with bad check digits, out-of-range IPs, order numbers, dates, versions, prices).
Deterministic for a given seed.
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
         "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Maria",
         "Wei", "Aisha", "Olga", "Hiroshi", "Fatima", "Pierre", "Ingrid", "Raj", "Sofia", "Ahmed"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Hernandez", "Lopez", "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee",
        "Chen", "Khan", "Ivanova", "Tanaka", "Haddad", "Dubois", "Larsen", "Patel", "Rossi", "Nasser"]
DOMAINS = ["example.com", "mailbox.org", "northwind.net", "contoso.io", "acme-corp.com", "univ.edu", "gmail.com"]
AREA_CODES = ["212", "415", "312", "646", "617", "305", "206", "512", "303", "404", "702", "718"]
FILLER = ["The quarterly report was filed on time.", "Please review the attached notes before Monday.",
          "Our team shipped the new release last week.", "The meeting moved to the third floor.",
          "Thanks again for the quick turnaround.", "The shipment left the warehouse this morning.",
          "Let me know if anything else is needed.", "The invoice total includes shipping and tax."]


def _ssn(rng: random.Random) -> str:
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            break
    digits = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
    if len(set(digits)) == 1 or digits in {"123456789", "078051120", "219099999"}:
        return _ssn(rng)
    sep = rng.choice(["-", "-", "-", " "])
    return f"{digits[:3]}{sep}{digits[3:5]}{sep}{digits[5:]}"


def _luhn_digit(payload: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return str((10 - total % 10) % 10)


def _card(rng: random.Random, valid: bool = True) -> str:
    prefix = rng.choice(["4", "51", "52", "53", "54", "55"])
    body = prefix + "".join(rng.choice(string.digits) for _ in range(15 - len(prefix)))
    check = _luhn_digit(body)
    if not valid:
        check = str((int(check) + rng.randint(1, 9)) % 10)
    number = body + check
    sep = rng.choice([" ", "-", ""])
    return sep.join(number[i : i + 4] for i in range(0, 16, 4))


def _iban(rng: random.Random, valid: bool = True) -> str:
    country, length = rng.choice([("DE", 18), ("GB", None), ("FR", 23), ("NL", None)])
    if country == "GB":
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + "".join(
            rng.choice(string.digits) for _ in range(14))
    elif country == "NL":
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + "".join(
            rng.choice(string.digits) for _ in range(10))
    else:
        bban = "".join(rng.choice(string.digits) for _ in range(length))
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(numeric) % 97
    if not valid:
        check = (check + rng.randint(1, 50)) % 97 + 2
    iban = f"{country}{check:02d}{bban}"
    if rng.random() < 0.4:
        iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban


def _phone(rng: random.Random) -> str:
    area, exch, line = rng.choice(AREA_CODES), rng.randint(201, 989), rng.randint(0, 9999)
    return rng.choice([f"({area}) {exch}-{line:04d}", f"{area}-{exch}-{line:04d}", f"+1 {area} {exch} {line:04d}",
                       f"{area}.{exch}.{line:04d}"])


def _ip(rng: random.Random) -> str:
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _email(rng: random.Random) -> str:
    first, last = rng.choice(FIRST).lower(), rng.choice(LAST).lower()
    local = rng.choice([f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}{rng.randint(1, 99)}"])
    return f"{local}@{rng.choice(DOMAINS)}"


TEMPLATES = {
    "US_SSN": ["Employee SSN: {v}.", "Social security number {v} on file.", "SSN {v} was verified."],
    "CREDIT_CARD": ["Charged card {v} for the order.", "Card number: {v}", "Payment via {v} declined."],
    "IBAN_CODE": ["Wire to IBAN {v} today.", "Bank account {v} updated.", "Refund sent to {v}."],
    "PHONE_NUMBER": ["Call me at {v} tomorrow.", "Phone: {v}", "Reach the desk on {v} after 5pm."],
    "IP_ADDRESS": ["Login from {v} was blocked.", "Server {v} responded slowly.", "Client IP {v} logged."],
    "EMAIL_ADDRESS": ["Write to {v} for access.", "Contact: {v}", "Sent a copy to {v} yesterday."],
    "PERSON": ["{v} approved the request.", "Meeting with {v} was rescheduled.", "Signed, {v}"],
}
GENERATORS = {"US_SSN": _ssn, "CREDIT_CARD": _card, "IBAN_CODE": _iban, "PHONE_NUMBER": _phone, "IP_ADDRESS": _ip,
              "EMAIL_ADDRESS": _email, "PERSON": _name}


def _decoy(rng: random.Random) -> str:
    kind = rng.randrange(9)
    if kind == 0:
        return "Test value 123-45-6789 is a placeholder."
    if kind == 1:
        return f"Order #{rng.randint(10000, 99999)}-{rng.randint(1000, 9999)} is ready."
    if kind == 2:
        return f"Reference {_card(rng, valid=False)} does not match."
    if kind == 3:
        return f"Account ref {_iban(rng, valid=False).replace(' ', '')} is invalid."
    if kind == 4:
        octets = (rng.randint(300, 999), rng.randint(1, 99), rng.randint(256, 999), rng.randint(1, 9))
        return f"Build {'.'.join(map(str, octets))} passed."
    if kind == 5:
        return f"Released on {rng.randint(2000, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} at noon."
    if kind == 6:
        return f"Total due ${rng.randint(1, 99)},{rng.randint(100, 999)}.{rng.randint(10, 99)} by Friday."
    if kind == 7:
        return f"Write to support at example dot com, ticket {rng.randint(100000, 999999)}."
    return f"Version v{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 99)} fixes it."


def generate(n_docs: int, seed: int = 0, entities: tuple[str, ...] = tuple(GENERATORS)):
    """Return ``(texts, gold)``: ``n_docs`` documents, each with 0-2 PII values and often a decoy."""
    rng = random.Random(seed)
    texts: list[str] = []
    gold: list[tuple[int, int, int, str]] = []
    for i in range(n_docs):
        parts: list[str] = [rng.choice(FILLER)]
        spans = []
        for _ in range(rng.choice([0, 1, 1, 2])):
            entity = rng.choice(entities)
            value = GENERATORS[entity](rng)
            template = rng.choice(TEMPLATES[entity])
            offset = sum(len(p) + 1 for p in parts) + template.index("{v}")
            parts.append(template.format(v=value))
            spans.append((i, offset, offset + len(value), entity))
        if rng.random() < 0.5:
            parts.append(_decoy(rng))
        if rng.random() < 0.5:
            parts.append(rng.choice(FILLER))
        texts.append(" ".join(parts))
        gold += spans
    return texts, gold


def write_jsonl(texts: list[str], path: Path) -> Path:
    """Write texts as ``{"text": ...}`` JSONL."""
    with open(path, "w", encoding="utf-8") as fh:
        for t in texts:
            fh.write(json.dumps({"text": t}) + "\n")
    return path
