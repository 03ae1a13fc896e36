"""Synthetic labeled corpus for the scan benchmark: realistic-looking PII plus PII-like decoys.

Offers :func:`generate` -> ``(texts, gold)`` where ``gold`` is a list of ``(doc_index, start, end, entity)``, and
:func:`write_jsonl`. Values are valid-looking (SSN rules Presidio applies, Luhn-valid cards, IBANs with correct
check digits, phone numbers ``phonenumbers`` accepts — US numbers and numbers of the other default phone regions,
international and national formats); decoys (:mod:`benchmarks._decoys`) are identifiers that look like PII and
are not, plus near misses (Luhn-invalid cards, IBANs with bad check digits, out-of-range IPs). Three families of
layouts: ``tune`` (fixes are chosen on it), ``heldout`` and ``fresh`` (other templates, phone formats and decoy
layouts, used only to check that fixes carry over; see :mod:`benchmarks._decoys`). Deterministic for a given seed
and family.
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import phonenumbers

from benchmarks._decoys import decoy

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


#: Regions of the non-US numbers (the scanner's default phone regions).
WORLD_REGIONS = ("GB", "DE", "FR", "IL", "IN", "CA", "BR", "JP", "CN")
_TYPES = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE)


def _world_number(rng: random.Random) -> phonenumbers.PhoneNumber:
    """A valid mobile or fixed-line number of one of :data:`WORLD_REGIONS` (the example number, re-drawn)."""
    region = rng.choice(WORLD_REGIONS)
    example = phonenumbers.example_number_for_type(region, rng.choice(_TYPES))
    nsn = phonenumbers.national_significant_number(example)
    keep = max(2, len(nsn) - 6)
    for _ in range(100):
        candidate = nsn[:keep] + "".join(rng.choice(string.digits) for _ in range(len(nsn) - keep))
        number = phonenumbers.parse("+" + str(example.country_code) + candidate)
        if phonenumbers.is_valid_number(number):
            return number
    return example


def _phone_intl(rng: random.Random) -> str:
    """A non-US number in international format (``+44 20 7946 0958``)."""
    return phonenumbers.format_number(_world_number(rng), phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _phone_heldout(rng: random.Random) -> str:
    """Layouts not in the tuning family: national formats of other regions, other US spellings."""
    if rng.random() < 0.5:
        return phonenumbers.format_number(_world_number(rng), phonenumbers.PhoneNumberFormat.NATIONAL)
    area, exch, line = rng.choice(AREA_CODES), rng.randint(201, 989), rng.randint(0, 9999)
    return rng.choice([f"1-{area}-{exch}-{line:04d}", f"{area} {exch} {line:04d}",
                       f"+1 ({area}) {exch}-{line:04d}", f"+1{area}{exch}{line:04d}"])


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
HELDOUT_TEMPLATES = {
    "US_SSN": ["Her social security no. is {v}, please keep it safe.", "SSN#: {v}", "({v}) is his SSN."],
    "CREDIT_CARD": ["Visa ending {v} was charged twice.", "Pay with {v}, exp 09/27.", "CC: {v}."],
    "IBAN_CODE": ["IBAN: {v}.", "Please transfer the deposit to {v} by Monday.", "(IBAN {v})"],
    "PHONE_NUMBER": ["Mobile: {v}.", "You can text {v} any time.", "Fax ({v}) is broken.", "Tel. {v}"],
    "IP_ADDRESS": ["Blocked {v} at the firewall.", "ip={v}", "The VPN assigned {v} to her laptop."],
    "EMAIL_ADDRESS": ["Mail {v}.", "Her address <{v}> bounced.", "cc: {v}"],
    "PERSON": ["Dear {v},", "The contract is with {v}.", "Approved by {v} on Monday."],
}
FRESH_TEMPLATES = {
    "US_SSN": ["The applicant's SSN is {v}.", "ssn={v}", "Tax ID (SSN) {v} confirmed."],
    "CREDIT_CARD": ["Card on file: {v}.", "Refunded to {v} today.", "cc={v}"],
    "IBAN_CODE": ["Beneficiary IBAN {v}", "Kontonummer (IBAN): {v}.", "Send it to {v}, reference rent."],
    "PHONE_NUMBER": ["Call back on {v}.", "Emergency contact: {v}", "phone={v}", "Ring {v} if late."],
    "IP_ADDRESS": ["Request from {v} denied.", "host {v} is down", "GeoIP for {v} failed."],
    "EMAIL_ADDRESS": ["Reply-To: {v}", "Invite {v} to the call.", "user={v}"],
    "PERSON": ["Best regards, {v}", "{v} joined the team.", "Owner: {v}"],
}
GENERATORS = {"US_SSN": _ssn, "CREDIT_CARD": _card, "IBAN_CODE": _iban, "PHONE_NUMBER": _phone, "IP_ADDRESS": _ip,
              "EMAIL_ADDRESS": _email, "PERSON": _name}


def _phone_fresh(rng: random.Random) -> str:
    """Layouts of neither other family: RFC 3966 and E.164, dotted French numbers, US without spaces."""
    number = _world_number(rng)
    kind = rng.randrange(4)
    if kind == 0:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.RFC3966)
    if kind == 1:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if kind == 2:
        while True:
            fr = phonenumbers.parse("+33" + rng.choice("1234567") + "".join(rng.choices(string.digits, k=8)))
            if phonenumbers.is_valid_number(fr):
                return phonenumbers.format_number(fr, phonenumbers.PhoneNumberFormat.NATIONAL).replace(" ", ".")
    area, exch, line = rng.choice(AREA_CODES), rng.randint(201, 989), rng.randint(0, 9999)
    return f"({area}){exch}-{line:04d}"


def _value(rng: random.Random, entity: str, family: str) -> str:
    if entity == "PHONE_NUMBER":
        if family == "fresh":
            return _phone_fresh(rng)
        if family == "heldout":
            return _phone_heldout(rng)
        return _phone_intl(rng) if rng.random() < 0.3 else _phone(rng)
    return GENERATORS[entity](rng)


def _near_miss(rng: random.Random, family: str) -> str:
    """A near miss of a validated entity (the checksum or range is wrong)."""
    kind = rng.randrange(3)
    if kind == 0:
        card = _card(rng, valid=False)
        return {"tune": f"Reference {card} does not match.", "heldout": f"Voucher code {card}."}.get(
            family, f"Gift card {card} was declined.")
    if kind == 1:
        iban = _iban(rng, valid=False).replace(" ", "")
        return {"tune": f"Account ref {iban} is invalid.", "heldout": f"Old account {iban} was closed."}.get(
            family, f"Typo in {iban} fixed.")
    octets = ".".join(map(str, (rng.randint(300, 999), rng.randint(1, 99), rng.randint(256, 999),
                                rng.randint(1, 9))))
    return {"tune": f"Build {octets} passed.", "heldout": f"Asset {octets}."}.get(family, f"Node {octets} up.")


def generate(n_docs: int, seed: int = 0, entities: tuple[str, ...] = tuple(GENERATORS), family: str = "tune"):
    """Return ``(texts, gold)``: ``n_docs`` documents, each with 0-2 PII values and usually 1-2 decoys.

    Args:
        n_docs: Documents to generate.
        seed: Random seed (the corpus is a pure function of seed and family).
        entities: Entity types to plant.
        family: ``tune``, ``heldout`` or ``fresh`` layouts (templates, phone formats, decoys).
    """
    rng = random.Random(seed if family == "tune" else f"{family}:{seed}")
    templates = {"tune": TEMPLATES, "heldout": HELDOUT_TEMPLATES, "fresh": FRESH_TEMPLATES}[family]
    texts: list[str] = []
    gold: list[tuple[int, int, int, str]] = []
    for i in range(n_docs):
        parts: list[str] = [rng.choice(FILLER)]
        spans = []
        for _ in range(rng.choice([0, 1, 1, 2])):
            entity = rng.choice(entities)
            value = _value(rng, entity, family)
            template = rng.choice(templates[entity])
            offset = sum(len(p) + 1 for p in parts) + template.index("{v}")
            parts.append(template.format(v=value))
            spans.append((i, offset, offset + len(value), entity))
        for _ in range(rng.choice([0, 1, 1, 2])):
            parts.append(_near_miss(rng, family) if rng.random() < 0.2 else decoy(rng, family)[1])
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
