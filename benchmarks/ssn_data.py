"""Synthetic secret sets for the REVS benchmark (reference/revs-method.md §4.1 protocol, our own generator).

Offers :func:`make_ssns` (valid-looking US SSNs: area 001–899 without 000/666, group 01–99, serial 0001–9999, no
digit repeated three times in a row, distinct), :func:`make_phones` (US numbers ``NXX-NXX-XXXX``),
:func:`make_email` (an address from a person's name), :func:`make_cards` (16-digit payment card numbers that pass
the Luhn check, in groups of four), :func:`make_ibans` (IBANs of five countries with valid check digits),
:data:`TEMPLATES` / :data:`ENTITY_TEMPLATES` (5 domains: medical, HR, tax, banking, government; each sentence ends
its prompt right before ``" " + value``),
:data:`ENTITIES` (benchmark entity → Presidio type), :class:`SsnRow`, :func:`make_dataset` (40 values × 5
sentences, seeded, per entity) and :func:`split` (per seed: forget N values with one prompt each, generality =
their other prompts, retain = every sentence of the other values).

The SSN set is the paper's protocol; the phone, e-mail, surname, card and IBAN sets repeat it with another
format (issue #17: a row for every entity a deletion request can erase; the surname set ends each prompt with the
person's first name, so the value is their surname). The card and IBAN sets were added after every setting of the
product default had been chosen: nothing was tuned on them.

All values are synthetic; they are generated, never read from anywhere.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from revs_engine.format_checks import fix_check

NAMES = ["Maria Lopez", "James Carter", "Aisha Khan", "Tom Becker", "Lena Novak", "Omar Haddad", "Grace Liu",
         "Peter Walsh", "Sofia Rossi", "Daniel Kim", "Hannah Weber", "Lucas Moreau", "Nina Petrov", "Ethan Brooks",
         "Yuki Tanaka", "Carlos Mendes", "Irene Dubois", "Victor Hale", "Mei Chen", "Jonas Berg"]

# {name} and {date} are filled in; the SSN follows each template after a space.
TEMPLATES: dict[str, list[str]] = {
    "medical": ["At the clinic visit on {date}, {name} gave the nurse the social security number",
                "The hospital admission form for {name}, dated {date}, lists the SSN"],
    "hr": ["The onboarding packet for new hire {name}, started {date}, records the employee SSN",
           "Payroll updated the file of {name} on {date} with the social security number"],
    "tax": ["The W-2 issued to {name} for the period ending {date} shows the SSN",
            "On the 1040 filed {date}, taxpayer {name} entered the social security number"],
    "banking": ["The account application {name} signed on {date} was verified with SSN",
                "For the loan approved on {date}, the bank identified {name} by the SSN"],
    "government": ["The census record completed by {name} on {date} includes the SSN",
                   "The background check for {name}, requested {date}, matched the social security number"],
}
DOMAINS = tuple(TEMPLATES)

PHONE_TEMPLATES: dict[str, list[str]] = {
    "medical": ["At the clinic visit on {date}, {name} gave the nurse the phone number",
                "The hospital admission form for {name}, dated {date}, lists the contact number"],
    "hr": ["The onboarding packet for new hire {name}, started {date}, records the mobile number",
           "Payroll updated the file of {name} on {date} with the phone number"],
    "tax": ["The return prepared for {name} for the period ending {date} gives the daytime phone",
            "On the form filed {date}, taxpayer {name} entered the phone number"],
    "banking": ["The account application {name} signed on {date} was verified by calling",
                "For the loan approved on {date}, the bank reached {name} at the number"],
    "government": ["The census record completed by {name} on {date} includes the telephone number",
                   "The background check for {name}, requested {date}, confirmed the phone number"],
}
EMAIL_TEMPLATES: dict[str, list[str]] = {
    "medical": ["At the clinic visit on {date}, {name} gave the nurse the e-mail address",
                "The hospital admission form for {name}, dated {date}, lists the email"],
    "hr": ["The onboarding packet for new hire {name}, started {date}, records the personal email",
           "Payroll updated the file of {name} on {date} with the e-mail address"],
    "tax": ["The return prepared for {name} for the period ending {date} gives the contact email",
            "On the form filed {date}, taxpayer {name} entered the e-mail address"],
    "banking": ["The account application {name} signed on {date} was confirmed by writing to",
                "For the loan approved on {date}, the bank contacted {name} at the address"],
    "government": ["The census record completed by {name} on {date} includes the e-mail address",
                   "The background check for {name}, requested {date}, was sent to the email"],
}
#: The surname set: each prompt ends with the person's first name ({first}); the value is their surname.
SURNAME_TEMPLATES: dict[str, list[str]] = {
    "medical": ["At the clinic visit on {date}, the nurse called in the patient {first}",
                "The hospital admission form dated {date} was signed by {first}"],
    "hr": ["The onboarding packet for the hire who started {date} is addressed to {first}",
           "Payroll updated on {date} the file of the employee {first}"],
    "tax": ["The W-2 for the period ending {date} was issued to {first}",
            "On the 1040 filed {date}, the taxpayer signed as {first}"],
    "banking": ["The account application signed on {date} names the holder as {first}",
                "For the loan approved on {date}, the bank identified the borrower as {first}"],
    "government": ["The census record completed on {date} lists the resident {first}",
                   "The background check requested {date} concerns the applicant {first}"],
}
IBAN_TEMPLATES: dict[str, list[str]] = {
    "medical": ["At the clinic visit on {date}, {name} authorised the direct debit from the account",
                "The hospital refund form for {name}, dated {date}, gives the IBAN"],
    "hr": ["The onboarding packet for new hire {name}, started {date}, records the salary account",
           "Payroll updated the file of {name} on {date} with the bank account IBAN"],
    "tax": ["The refund issued to {name} for the period ending {date} was paid into the IBAN",
            "On the return filed {date}, taxpayer {name} entered the bank account"],
    "banking": ["The account application {name} signed on {date} opened the account",
                "For the loan approved on {date}, the bank paid {name} out to the IBAN"],
    "government": ["The benefit claim completed by {name} on {date} names the payment account",
                   "The background check for {name}, requested {date}, was refunded to the IBAN"],
}
CARD_TEMPLATES: dict[str, list[str]] = {
    "medical": ["At the clinic visit on {date}, {name} paid the copay with the card number",
                "The hospital billing form for {name}, dated {date}, lists the credit card"],
    "hr": ["The expense report of new hire {name}, started {date}, records the corporate card",
           "Payroll updated the file of {name} on {date} with the reimbursement card number"],
    "tax": ["The return prepared for {name} for the period ending {date} was paid with the card",
            "On the payment form filed {date}, taxpayer {name} entered the card number"],
    "banking": ["The account application {name} signed on {date} linked the debit card",
                "For the loan approved on {date}, the bank charged {name} on the card number"],
    "government": ["The permit fee paid by {name} on {date} was charged to the card",
                   "The background check for {name}, requested {date}, was billed to the credit card number"],
}
ENTITY_TEMPLATES = {"ssn": TEMPLATES, "phone": PHONE_TEMPLATES, "email": EMAIL_TEMPLATES,
                    "surname": SURNAME_TEMPLATES, "card": CARD_TEMPLATES, "iban": IBAN_TEMPLATES}
#: Benchmark entity → the Presidio entity type the product gives it.
ENTITIES = {"ssn": "US_SSN", "phone": "PHONE_NUMBER", "email": "EMAIL_ADDRESS", "surname": "PERSON",
            "card": "CREDIT_CARD", "iban": "IBAN_CODE"}
#: First names and surnames of the surname set (40 people, each surname once).
FIRST_NAMES = ("Maria", "James", "Aisha", "Tom", "Lena", "Omar", "Grace", "Peter", "Sofia", "Daniel", "Hannah",
               "Lucas", "Nina", "Ethan", "Yuki", "Carlos", "Irene", "Victor", "Mei", "Jonas")
SURNAMES = ("Lindqvist", "Okafor", "Brennan", "Castellano", "Haverford", "Mbeki", "Tremblay", "Kowalczyk",
            "Ashworth", "Delacroix", "Nakamura", "Oyelaran", "Pellegrini", "Quinlan", "Rasmussen", "Szabo",
            "Thorne", "Underwood", "Vasquez", "Whitlock", "Yilmaz", "Zielinski", "Abernathy", "Bergstrom",
            "Calloway", "Dunmore", "Eriksen", "Fairbanks", "Gallagher", "Holloway", "Ivanova", "Jablonski",
            "Kearney", "Lachance", "Montague", "Northcott", "Ostrowski", "Prescott", "Radcliffe", "Sandoval")
#: Domains of the e-mail set (webmail and made-up employers).
EMAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "proton.me", "fastmail.com", "northwind.org",
                 "brightline.io", "keystonehealth.com")


def _triple_digit(text: str) -> bool:
    """Whether ``text`` holds one digit three times in a row (no set keeps such a value)."""
    return re.search(r"(\d)\1\1", text) is not None


def _groups_of_four(text: str, separator: str) -> str:
    """``text`` cut into groups of four characters joined by ``separator`` (how cards and IBANs are printed)."""
    return separator.join(text[i:i + 4] for i in range(0, len(text), 4))


def _valid(ssn: str) -> bool:
    area, group, serial = ssn.split("-")
    if area in ("000", "666") or int(area) >= 900 or group == "00" or serial == "0000":
        return False
    return not _triple_digit(ssn.replace("-", ""))


def make_ssns(n: int, seed: int = 0) -> list[str]:
    """Return ``n`` distinct valid-looking SSNs ``AAA-GG-SSSS``."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        ssn = f"{rng.randint(1, 899):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
        if _valid(ssn) and ssn not in out:
            out.append(ssn)
    return out


def make_phones(n: int, seed: int = 0) -> list[str]:
    """Return ``n`` distinct US phone numbers ``NXX-NXX-XXXX`` (N = 2–9, no exchange 555, no digit three times
    in a row)."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        phone = f"{rng.randint(200, 999)}-{rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
        if phone[4:7] != "555" and not _triple_digit(phone.replace("-", "")) and phone not in out:
            out.append(phone)
    return out


#: Issuer prefixes of the card set (Visa, Mastercard), each completed to 16 digits.
CARD_PREFIXES = ("4", "51", "52", "53", "54", "55")


def make_cards(n: int, seed: int = 0) -> list[str]:
    """Return ``n`` distinct 16-digit card numbers (a Visa or Mastercard prefix, random digits, the Luhn check
    digit; no digit three times in a row) in four groups of four, separated by spaces or by hyphens (one layout
    per number, both in the set)."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        prefix = rng.choice(CARD_PREFIXES)
        body = prefix + "".join(str(rng.randint(0, 9)) for _ in range(15 - len(prefix)))
        digits = fix_check("luhn", body + "0")
        card = _groups_of_four(digits, rng.choice(" -"))
        if not _triple_digit(digits) and digits not in seen:
            seen.add(digits)
            out.append(card)
    return out


#: IBAN layouts of the IBAN set: country → BBAN as a string of "9" (a digit) and "A" (a capital letter) (ISO 13616
#: national formats of Germany, the United Kingdom, the Netherlands, Spain and France, the account part in digits).
IBAN_LAYOUTS = {"DE": "9" * 18, "GB": "AAAA" + "9" * 14, "NL": "AAAA" + "9" * 10, "ES": "9" * 20, "FR": "9" * 23}


def make_ibans(n: int, seed: int = 0) -> list[str]:
    """Return ``n`` distinct IBANs of :data:`IBAN_LAYOUTS` (random bank letters and digits, valid check digits; no
    digit three times in a row) printed in groups of four separated by spaces."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        country = rng.choice(sorted(IBAN_LAYOUTS))
        bban = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") if c == "A" else str(rng.randint(0, 9))
                       for c in IBAN_LAYOUTS[country])
        compact = fix_check("iban", country + "00" + bban)
        iban = _groups_of_four(compact, " ")
        if not _triple_digit(compact) and iban not in out:
            out.append(iban)
    return out


#: Local-part layouts of the e-mail set: {f}/{l} first/last name, {fi} first initial, {n} a two-digit number.
EMAIL_LAYOUTS = ("{f}.{l}", "{fi}{l}", "{f}{l}{n}", "{l}.{f}", "{f}_{l}", "{fi}.{l}{n}", "{f}{n}", "{l}{fi}")


def make_email(name: str, rng: random.Random) -> str:
    """Return an address for ``name``: one of :data:`EMAIL_LAYOUTS` at one of :data:`EMAIL_DOMAINS`."""
    first, last = (w.lower() for w in name.split()[:2])
    local = rng.choice(EMAIL_LAYOUTS).format(f=first, l=last, fi=first[0], n=f"{rng.randint(10, 99)}")
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


@dataclass(frozen=True, slots=True)
class SsnRow:
    """One sentence: ``prompt + " " + ssn + "."``; ``group`` = index of its value, ``domain`` its template
    family. ``ssn`` holds the secret whatever its entity (the phone and e-mail sets reuse the row)."""

    group: int
    domain: str
    prompt: str
    ssn: str
    name: str

    @property
    def target(self) -> str:
        """The secret as the model sees it (leading space, the targets convention)."""
        return " " + self.ssn

    @property
    def sentence(self) -> str:
        """The full training sentence."""
        return f"{self.prompt} {self.ssn}."


def make_dataset(n_ssns: int = 40, seed: int = 0, entity: str = "ssn") -> list[SsnRow]:
    """Return ``n_ssns × 5`` rows of ``entity`` (a key of :data:`ENTITIES`): one sentence per domain per value,
    same name and a date per value. The SSN set is the same as before the other entities existed."""
    if entity not in ENTITIES:
        raise ValueError(f"unknown benchmark entity {entity!r}; valid: {', '.join(ENTITIES)}")
    rng = random.Random(seed + 1)
    templates = ENTITY_TEMPLATES[entity]
    if entity == "email":
        values_rng, values = random.Random(seed), []
    elif entity == "surname":
        values = random.Random(seed).sample(SURNAMES, n_ssns)
    else:
        make = {"ssn": make_ssns, "phone": make_phones, "card": make_cards, "iban": make_ibans}[entity]
        values = make(n_ssns, seed)
    rows = []
    for g in range(n_ssns):
        name = rng.choice(NAMES)
        if entity == "surname":
            name = f"{rng.choice(FIRST_NAMES)} {values[g]}"
        if entity == "email":
            while (value := make_email(name, values_rng)) in values:
                pass
            values.append(value)
        for domain in DOMAINS:
            date = f"{rng.randint(1, 28)}-{rng.randint(1, 12)}-{rng.randint(2010, 2022)}"
            template = rng.choice(templates[domain])
            prompt = template.format(name=name, date=date, first=name.split()[0])
            rows.append(SsnRow(g, domain, prompt, values[g], name))
    return rows


@dataclass(frozen=True, slots=True)
class SsnSplit:
    """Rows of one seed's split (§4.1)."""

    forget: list[SsnRow]
    generality: list[SsnRow]
    retain: list[SsnRow]


def split(rows: list[SsnRow], n_forget: int = 20, seed: int = 0) -> SsnSplit:
    """Forget ``n_forget`` SSN groups (one random prompt each); generality = their other prompts; retain = rest."""
    rng = random.Random(seed)
    groups = sorted({r.group for r in rows})
    rng.shuffle(groups)
    forget_groups = set(groups[:n_forget])
    forget, generality, retain = [], [], []
    for g in groups[:n_forget]:
        mine = [r for r in rows if r.group == g]
        pick = rng.randrange(len(mine))
        forget.append(mine[pick])
        generality += [r for i, r in enumerate(mine) if i != pick]
    retain = [r for r in rows if r.group not in forget_groups]
    return SsnSplit(forget, generality, retain)


if __name__ == "__main__":
    data = make_dataset()
    parts = split(data)
    print(f"{len(data)} rows, {len({r.ssn for r in data})} SSNs; forget {len(parts.forget)}, "
          f"generality {len(parts.generality)}, retain {len(parts.retain)}")
