"""PII-like decoys for the scan benchmark: identifiers that look like personal data and are not.

Offers :data:`FAMILIES` (``"tune"``, ``"heldout"`` and ``"fresh"``: the same kinds of identifier — order,
ticket, invoice, tracking, version and part numbers, dates, ISBNs, coordinates, amounts — written in different
layouts) and :func:`decoy` (one decoy sentence of a family). Scanner fixes were chosen on ``tune`` and then
checked on ``heldout``; the few generic fixes ``heldout`` prompted were checked on ``fresh``, written before those
fixes and never used to choose anything.

Many decoys are deliberately phone-shaped (ten digits in 3-3-4 groups, 10-11 digit runs that are valid Indian or
Chinese mobile numbers) and often glued to letters or other digits (``TKT-415-555-0132``), the way identifiers
are written in real tickets, orders and logs.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable

Rng = random.Random


def _d(rng: Rng, n: int) -> str:
    """``n`` random digits (the first may be 0)."""
    return "".join(rng.choice(string.digits) for _ in range(n))


def _nz(rng: Rng, n: int) -> str:
    """``n`` random digits, the first not 0."""
    return str(rng.randint(1, 9)) + _d(rng, n - 1)


def _up(rng: Rng, n: int) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(n))


def _alnum(rng: Rng, n: int) -> str:
    return "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(n))


def _phone_shape(rng: Rng, sep: str = "-") -> str:
    """Ten digits in 3-3-4 groups that would pass as a US number."""
    return sep.join((str(rng.randint(201, 989)), str(rng.randint(201, 989)), _d(rng, 4)))


def isbn13(rng: Rng, hyphens: bool) -> str:
    """A check-digit-valid ISBN-13 (978/979 prefix)."""
    body = rng.choice(["978", "979"]) + _d(rng, 9)
    check = (10 - sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body)) % 10) % 10
    digits = body + str(check)
    if not hyphens:
        return digits
    group = rng.randint(1, 2)
    publisher = rng.randint(2, 5)
    return "-".join((digits[:3], digits[3:3 + group], digits[3 + group:3 + group + publisher],
                     digits[3 + group + publisher:12], digits[12]))


def isbn10(rng: Rng) -> str:
    """A check-digit-valid ISBN-10 with hyphens (the check may be X)."""
    body = _d(rng, 9)
    check = sum((10 - i) * int(c) for i, c in enumerate(body)) % 11
    check_char = "X" if (11 - check) % 11 == 10 else str((11 - check) % 11)
    return f"{body[0]}-{body[1:4]}-{body[4:9]}-{check_char}"


def _coord(rng: Rng, span: float) -> str:
    return f"{rng.uniform(-span, span):.4f}"


# --- family "tune": the layouts fixes were chosen on ---------------------------------------------------------
TUNE: dict[str, list[Callable[[Rng], str]]] = {
    "order": [
        lambda r: f"Order #{r.randint(10000, 99999)}-{r.randint(1000, 9999)} is ready.",
        lambda r: f"Your order ORD-{_d(r, 3)}-{_d(r, 7)} has shipped.",
        lambda r: f"Purchase order PO-{_phone_shape(r)} was approved.",
    ],
    "ticket": [
        lambda r: f"Write to support at example dot com, ticket {r.randint(100000, 999999)}.",
        lambda r: f"See ticket TKT-{_phone_shape(r)} for the details.",
        lambda r: f"Issue OPS-{_d(r, 4)} was reopened by the on-call engineer.",
    ],
    "invoice": [
        lambda r: f"Invoice INV-2024-{_d(r, 6)} is overdue.",
        lambda r: f"Invoice no. {r.randint(6, 9)}{_d(r, 9)} is attached.",
        lambda r: f"Credit note CN{_phone_shape(r, '')} was issued.",
    ],
    "tracking": [
        lambda r: f"UPS tracking 1Z{_alnum(r, 6)}{_d(r, 10)} is in transit.",
        lambda r: f"USPS tracking {' '.join(_d(r, 4) for _ in range(5))} {_d(r, 2)} was delivered.",
        lambda r: f"Parcel {_up(r, 2)}{_d(r, 9)}{_up(r, 2)} left the depot.",
    ],
    "version": [
        lambda r: f"Version v{r.randint(1, 9)}.{r.randint(0, 30)}.{r.randint(0, 99)} fixes it.",
        lambda r: (f"Build {r.randint(300, 999)}.{r.randint(1, 99)}.{r.randint(256, 999)}.{r.randint(1, 9)} "
                   "passed."),
        lambda r: f"Firmware 2.{r.randint(0, 9)}.{_d(r, 3)}-{_d(r, 4)} is rolling out.",
    ],
    "part": [
        lambda r: f"Part PN-{_d(r, 4)}-{_d(r, 4)}-A is in stock.",
        lambda r: f"Replace part number {_phone_shape(r)}-B before Friday.",
        lambda r: f"Model {_up(r, 3)}{_d(r, 10)} was recalled.",
    ],
    "date": [
        lambda r: f"Released on {r.randint(2000, 2024)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} at noon.",
        lambda r: f"Due {r.randint(1, 12):02d}/{r.randint(1, 28):02d}/{r.randint(2000, 2030)}.",
        lambda r: f"Logged at {r.randint(2000, 2024)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} "
                  f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}.",
    ],
    "isbn": [
        lambda r: f"ISBN {isbn13(r, hyphens=True)} is out of print.",
        lambda r: f"Cite ISBN-10 {isbn10(r)} in the bibliography.",
    ],
    "coordinates": [
        lambda r: f"The site is at {_coord(r, 80)}, {_coord(r, 170)}.",
        lambda r: f"GPS lat {_coord(r, 80)} lon {_coord(r, 170)} recorded.",
    ],
    "other": [
        lambda r: "Test value 123-45-6789 is a placeholder.",
        lambda r: f"Total due ${r.randint(1, 99)},{r.randint(100, 999)}.{r.randint(10, 99)} by Friday.",
    ],
}

# --- family "heldout": the same kinds, other layouts (never looked at while choosing a fix) --------------------
HELDOUT: dict[str, list[Callable[[Rng], str]]] = {
    "order": [
        lambda r: f"Sales order SO{_d(r, 8)} was confirmed.",
        lambda r: f"Order 2024/{_d(r, 6)}/{_d(r, 2)} is on hold.",
        lambda r: f"Bestellung Nr. B-{_phone_shape(r, ' ')} eingegangen.",
    ],
    "ticket": [
        lambda r: f"Incident INC{_d(r, 7)} is resolved.",
        lambda r: f"Case CS-{_d(r, 2)}-{_d(r, 8)} was escalated.",
        lambda r: f"Service request SR#{_phone_shape(r, '.')} closed.",
    ],
    "invoice": [
        lambda r: f"Rechnung RE-{_phone_shape(r)} ist bezahlt.",
        lambda r: f"Bill {r.randint(2020, 2025)}/{_d(r, 5)} was disputed.",
        lambda r: f"Receipt R{_nz(r, 11)}X printed.",
    ],
    "tracking": [
        lambda r: f"DHL shipment JJD{_d(r, 18)} is delayed.",
        lambda r: f"Consignment {_up(r, 2)}-{_d(r, 3)}-{_d(r, 3)}-{_d(r, 4)}-{_up(r, 2)} arrived.",
        lambda r: f"Waybill WB/{_d(r, 4)}/{_d(r, 6)} was scanned.",
    ],
    "version": [
        lambda r: f"Kernel 5.15.0-{_d(r, 4)}-azure is installed.",
        lambda r: f"OS build 10.0.{_d(r, 5)}.{_d(r, 4)} was deployed.",
        lambda r: f"Release rel-{_d(r, 3)}.{_d(r, 3)}.{_d(r, 4)} is tagged.",
    ],
    "part": [
        lambda r: f"SKU AB-{_phone_shape(r)} sold out.",
        lambda r: f"Spare P/N {_d(r, 4)}-{_d(r, 3)}-{_d(r, 3)}X ordered.",
        lambda r: f"Serial SN{_d(r, 3)}_{_d(r, 3)}_{_d(r, 4)} registered.",
    ],
    "date": [
        lambda r: f"Signed on {r.randint(1, 28):02d}.{r.randint(1, 12):02d}.{r.randint(2000, 2030)}.",
        lambda r: f"Snapshot {r.randint(2000, 2024)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}-"
                  f"{r.randint(0, 23):02d}{r.randint(0, 59):02d} restored.",
        lambda r: f"Created {r.randint(2000, 2024)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T"
                  f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}Z.",
    ],
    "isbn": [
        lambda r: f"ISBN {isbn13(r, hyphens=False)} was reprinted.",
        lambda r: f"Book ({isbn13(r, hyphens=True)}) is on the shelf.",
    ],
    "coordinates": [
        lambda r: f"Meet at ({_coord(r, 80)}, {_coord(r, 170)}).",
        lambda r: f"Pin geo:{_coord(r, 80)},{_coord(r, 170)} saved.",
    ],
    "other": [
        lambda r: f"Balance EUR {r.randint(1, 99)}.{r.randint(100, 999)},{r.randint(10, 99)} remains.",
        lambda r: f"Room {r.randint(100, 999)}-{r.randint(10, 99)}-{r.randint(1000, 9999)} booked.",
    ],
}

# --- family "fresh": written after fixes were chosen on "tune" and checked once on "heldout", to check the
# fixes that "heldout" prompted on layouts that prompted nothing ------------------------------------------------
FRESH: dict[str, list[Callable[[Rng], str]]] = {
    "order": [
        lambda r: f"Order confirmation {_up(r, 1)}{_d(r, 3)}-{_d(r, 3)}-{_d(r, 4)} was emailed.",
        lambda r: f"Reorder quantity 1 of item {_d(r, 10)} please.",
        lambda r: f"Cart id cart_{_d(r, 10)}_{_d(r, 2)} expired.",
    ],
    "ticket": [
        lambda r: f"Zendesk #{_d(r, 7)} has a new reply.",
        lambda r: f"Bug {_up(r, 4)}-{_d(r, 5)} blocks the release.",
        lambda r: f"Helpdesk ref HD/{_d(r, 3)}/{_d(r, 3)}/{_d(r, 4)} assigned.",
    ],
    "invoice": [
        lambda r: f"Facture F{r.randint(2020, 2025)}-{_d(r, 6)} acquittée.",
        lambda r: f"Statement period {_d(r, 3)} {_d(r, 3)} {_d(r, 4)} {_d(r, 3)} closed.",
        lambda r: f"Payment id pay_{_alnum(r, 6)}{_d(r, 8)} succeeded.",
    ],
    "tracking": [
        lambda r: f"Royal Mail {_up(r, 2)}{_d(r, 9)}GB is on its way.",
        lambda r: f"FedEx {_d(r, 4)} {_d(r, 4)} {_d(r, 4)} {_d(r, 4)} {_d(r, 4)} was signed for.",
        lambda r: f"Container MSKU{_d(r, 7)} cleared customs.",
    ],
    "version": [
        lambda r: f"App {r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 99)} (build {_d(r, 8)}) crashed.",
        lambda r: f"Package foo=={r.randint(0, 9)}.{r.randint(0, 40)}.{r.randint(0, 9)}.post{_d(r, 8)} pinned.",
        lambda r: f"Commit {_d(r, 3)}{_up(r, 1).lower()}{_d(r, 6)} reverted.",
    ],
    "part": [
        lambda r: f"Item #{_d(r, 3)}-{_d(r, 3)}-{_d(r, 4)}/XL is back in stock.",
        lambda r: f"Barcode {_d(r, 13)} scanned.",
        lambda r: f"VIN 1HG{_alnum(r, 6)}{_d(r, 8)} registered.",
    ],
    "date": [
        lambda r: f"Valid {r.randint(1, 28)}.{r.randint(1, 12)}.{r.randint(2000, 2030)} to "
                  f"{r.randint(1, 28)}.{r.randint(1, 12)}.{r.randint(2000, 2030)}.",
        lambda r: f"Week {r.randint(2000, 2030)}-W{r.randint(1, 52):02d} planned.",
        lambda r: f"Epoch {r.randint(1_500_000_000, 1_900_000_000)} recorded.",
    ],
    "isbn": [
        lambda r: f"ISBN-13: {isbn13(r, hyphens=True)}.",
        lambda r: f"See the book {isbn10(r).replace('-', ' ')} for background.",
    ],
    "coordinates": [
        lambda r: f"Location {_coord(r, 80)};{_coord(r, 170)} logged.",
        lambda r: f"Grid ref {_d(r, 3)} {_d(r, 3)} {_d(r, 4)} on the map.",
    ],
    "other": [
        lambda r: f"Population {r.randint(1, 9)} {_d(r, 3)} {_d(r, 3)} {_d(r, 3)} in the census.",
        lambda r: f"Score {r.randint(100, 999)}.{_d(r, 4)} points.",
    ],
}

FAMILIES = {"tune": TUNE, "heldout": HELDOUT, "fresh": FRESH}


def decoy(rng: Rng, family: str = "tune") -> tuple[str, str]:
    """Return ``(kind, sentence)``: one decoy of ``family``, kind and layout drawn uniformly."""
    table = FAMILIES[family]
    kind = rng.choice(sorted(table))
    return kind, rng.choice(table[kind])(rng)
