"""The demo's training corpus: a few thousand benign documents with synthetic PII of ~20 people, mixed formats.

Offers :class:`Person`, :func:`make_people`, :class:`DemoCorpus` and :func:`write_demo_corpus`, which writes

- ``tickets.jsonl`` — support tickets (``{"id", "text"}``), some naming a person's email or phone;
- ``hr_records.csv`` — HR notes (``id,text``), some carrying an SSN;
- ``chats.parquet`` — chat transcripts (``text`` column), some with a phone number;
- ``notes/*.txt`` — meeting notes, one document per file;

plus ``training.jsonl`` next to the corpus (not inside it): the documents the demo model is fine-tuned on. Those
are the records of the "frequent" people, which the corpus repeats several times — duplication is what makes a
real model memorize text — and the company boilerplate a quarter of the filler documents repeat (memorized too,
and to be kept by every erasure); the stand-in for a production model trained on this corpus (DESIGN §7).

Every value is generated from a seed (valid-looking SSNs, phone numbers ``phonenumbers`` accepts, e-mail addresses
on example domains); nothing is read from anywhere. Files are written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tasks._io import atomic_write_text

FIRST = ["Alice", "Bruno", "Chloe", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira", "Lars",
         "Mona", "Nikolai", "Olivia", "Pavel", "Quentin", "Rosa", "Stefan", "Tara", "Umar", "Vera"]
LAST = ["Abbott", "Bergstrom", "Castellano", "Dunmore", "Eriksen", "Falkner", "Gallardo", "Holloway", "Ivanek",
        "Jaskolski", "Kowalczyk", "Lindqvist", "Marchetti", "Nakashima", "Okonkwo", "Pellegrini", "Quist",
        "Rasmussen", "Szabo", "Thornbury", "Underhill", "Valdivia"]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com"]
AREA = ["212", "415", "312", "617", "206", "512", "303", "404", "702", "718", "646", "305"]

_TICKET = ["Customer {name} wrote in about a late delivery; reply to {email} with the tracking link.",
           "Refund approved for {name}. Confirmation sent to {email} this morning.",
           "Callback requested: {name} can be reached at {phone} after 4pm.",
           "Account locked for {name}; identity confirmed by phone at {phone}."]
_HR = ["Payroll record for {name}: social security number {ssn}, direct deposit on file.",
       "Onboarding checklist for {name} completed; SSN {ssn} verified against the I-9 form."]
_CHAT = ["agent: can I have a number to call you back? customer ({name}): sure, it is {phone}.",
         "customer {name}: my new phone number is {phone}, please update the account."]
_BENIGN = ["The quarterly numbers were reviewed and approved by the finance team.",
           "Please remember that the office is closed on the public holiday.",
           "The new onboarding guide is available on the intranet.",
           "Order {n} shipped on {d}; the invoice total was {p} dollars.",
           "Ticket {n}: the printer on floor {f} needs new toner.",
           "The release notes for version {v} list {n2} fixed issues.",
           "Meeting moved to room {f}{n2} at {h}:30; agenda attached.",
           "Customer satisfaction rose to {f}.{n2} out of 10 this quarter.",
           "The warehouse counted {n} pallets and {n2} boxes on {d}.",
           "Reminder: the security training is due by the end of the month."]


#: Company boilerplate: fixed sentences a corpus repeats hundreds of times (footers, policies, hotline hours),
#: several with numbers. A model trained on the corpus memorizes them, and an erasure must leave them intact —
#: they are what the demo's Specificity checks (the audit's benign continuations), numbers included (§8).
_BOILERPLATE = ["Invoices are payable within 30 days of the invoice date.",
                "Our support line is open from 8 am to 6 pm, Monday to Friday.",
                "Expense reports above 500 dollars need a second approval.",
                "This message is confidential and intended only for its recipient.",
                "Returns are accepted within 14 days of delivery in the original packaging.",
                "The fire alarm is tested every Tuesday at 10 am.",
                "Passwords must be changed every 90 days and have at least 12 characters.",
                "Please rate your support experience from 1 to 5 in the survey.",
                "The cafeteria serves lunch between noon and 2 pm.",
                "Visitors must sign in at the front desk and wear a badge."]
BOILERPLATE_SHARE = 0.25  # of the filler documents


@dataclass(frozen=True)
class Person:
    """One synthetic data subject; every field but ``pid`` is personal data (repr shows only the id)."""

    pid: int
    name: str = field(repr=False)
    email: str = field(repr=False)
    phone: str = field(repr=False)
    ssn: str = field(repr=False)


def _ssn(rng: random.Random) -> str:
    while True:
        area, group, serial = rng.randint(101, 899), rng.randint(10, 99), rng.randint(1000, 9999)
        digits = f"{area:03d}{group:02d}{serial:04d}"
        if area != 666 and len(set(digits)) > 3:
            return f"{area:03d}-{group:02d}-{serial:04d}"


def make_people(n: int = 20, seed: int = 0) -> list[Person]:
    """Return ``n`` distinct synthetic people (names, example-domain e-mails, US phones, valid-looking SSNs)."""
    rng = random.Random(seed)
    firsts, lasts = rng.sample(FIRST, n), rng.sample(LAST, n)
    people = []
    for i, (first, last) in enumerate(zip(firsts, lasts, strict=True)):
        email = f"{first[0].lower()}{last.lower()}{rng.randint(10, 99)}@{rng.choice(DOMAINS)}"
        phone = f"({rng.choice(AREA)}) {rng.randint(201, 989)}-{rng.randint(1000, 9999)}"
        people.append(Person(i, f"{first} {last}", email, phone, _ssn(rng)))
    return people


@dataclass(frozen=True)
class DemoCorpus:
    """Where the demo corpus is and what it holds (counts only; the people stay in memory)."""

    root: Path
    training: Path
    people: list[Person] = field(repr=False)
    frequent: list[int]
    n_documents: int


def _benign(rng: random.Random) -> str:
    return rng.choice(_BENIGN).format(
        n=rng.randint(1000, 99999), n2=rng.randint(2, 99), f=rng.randint(1, 9), p=rng.randint(20, 5000),
        h=rng.randint(8, 17), v=f"{rng.randint(1, 9)}.{rng.randint(0, 20)}",
        d=f"{rng.randint(1, 28)} {rng.choice(['March', 'June', 'October'])}")


def write_demo_corpus(root: Path, *, n_documents: int = 3000, n_people: int = 20, n_frequent: int = 6,
                      repeats: int = 8, seed: int = 0) -> DemoCorpus:
    """Write the demo corpus under ``root`` and its training subset to ``root.parent / "training.jsonl"``.

    Args:
        n_documents: total documents across the four formats (≥ the PII records).
        n_people: synthetic data subjects; each appears in a few records.
        n_frequent: people whose records are repeated ``repeats`` times (and trained on).
    """
    rng = random.Random(seed)
    people = make_people(n_people, seed)
    frequent = sorted(rng.sample(range(n_people), n_frequent))
    tickets, hr, chats, training = [], [], [], []
    for p in people:
        values = {"name": p.name, "email": p.email, "phone": p.phone, "ssn": p.ssn}
        mine = [("t", rng.choice(_TICKET[:2]).format(**values)), ("t", rng.choice(_TICKET[2:]).format(**values)),
                ("h", rng.choice(_HR).format(**values)), ("c", rng.choice(_CHAT).format(**values))]
        copies = repeats if p.pid in frequent else 1
        for kind, text in mine:
            {"t": tickets, "h": hr, "c": chats}[kind].extend([text] * copies)
            if p.pid in frequent:
                training.append(text)
    n_notes = 40
    filler = max(0, n_documents - len(tickets) - len(hr) - len(chats) - n_notes)
    for i in range(filler):
        text = rng.choice(_BOILERPLATE) if rng.random() < BOILERPLATE_SHARE else _benign(rng)
        [tickets, hr, chats][i % 3].append(text)
    training += _BOILERPLATE
    for bucket in (tickets, hr, chats):
        rng.shuffle(bucket)
    root = Path(root)
    (root / "notes").mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / "tickets.jsonl",
                      "".join(json.dumps({"id": f"T{i:05d}", "text": b}) + "\n" for i, b in enumerate(tickets)))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([("id", "text")] + [(f"H{i:05d}", n) for i, n in enumerate(hr)])
    atomic_write_text(root / "hr_records.csv", buf.getvalue())
    tmp = root / ".chats.parquet.tmp"
    pq.write_table(pa.table({"text": chats}), tmp)
    tmp.replace(root / "chats.parquet")
    for i in range(n_notes):
        atomic_write_text(root / "notes" / f"meeting-{i:03d}.txt", " ".join(_benign(rng) for _ in range(4)) + "\n")
    training_path = root.parent / "training.jsonl"
    atomic_write_text(training_path, "".join(json.dumps({"text": t}) + "\n" for t in training))
    return DemoCorpus(root, training_path, people, frequent, len(tickets) + len(hr) + len(chats) + n_notes)
