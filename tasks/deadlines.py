"""Statutory answer deadlines of erasure requests, and how urgent each one is.

Offers :func:`deadline_for` (the due date of a request, with its legal source and any extension),
:func:`urgency` (``answered`` / ``overdue`` / ``due-soon`` / ``open``), :func:`legal_basis_label`
(``gdpr-17-1-b`` → ``GDPR Art. 17(1)(b)``), :data:`RULES` and :data:`DUE_SOON_DAYS`.

Rules (one per regime, chosen by the legal basis's prefix):

- **GDPR Art. 12(3)**: answer "without undue delay and in any event within one month of receipt"; the period
  "may be extended by two further months where necessary, taking into account the complexity and number of the
  requests". One month is counted as a calendar month (Regulation 1182/71 Art. 3(2)(c)): received on 31 January,
  due on the last day of February.
- **CCPA §1798.130(a)(2)**: respond within 45 calendar days of receipt, extendable once by another 45 days when
  reasonably necessary.

An extension is recorded on the request (``{"months" | "days": n, "reason": code, "recorded_at": iso}``); its
reason is a code from :data:`EXTENSION_REASONS`, never free text (free text could carry personal data).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

#: Days before the due date from which an open request counts as ``due-soon``.
DUE_SOON_DAYS = 7
#: Reasons a deadline may be extended (GDPR Art. 12(3): complexity and number of requests).
EXTENSION_REASONS = ("complexity", "number-of-requests")


@dataclass(frozen=True, slots=True)
class DeadlineRule:
    """How long a regime allows: ``months`` or ``days`` from receipt, and the most an extension may add."""

    source: str
    months: int = 0
    days: int = 0
    max_extension_months: int = 0
    max_extension_days: int = 0


RULES: dict[str, DeadlineRule] = {
    "gdpr": DeadlineRule("GDPR Art. 12(3)", months=1, max_extension_months=2),
    "ccpa": DeadlineRule("CCPA §1798.130(a)(2)", days=45, max_extension_days=45),
}


def _rule(legal_basis: str) -> DeadlineRule:
    regime = str(legal_basis).split("-", 1)[0].lower()
    if regime not in RULES:
        raise ValueError(f"legal basis {legal_basis!r}: no statutory deadline known for {regime!r}; "
                         f"known regimes: {', '.join(RULES)}")
    return RULES[regime]


def legal_basis_label(legal_basis: str) -> str:
    """Return the legal basis as a citation: ``gdpr-17-1-b`` → ``GDPR Art. 17(1)(b)``; unknown codes as given."""
    m = re.fullmatch(r"gdpr-(\d+)-(\d+)-([a-z])", str(legal_basis))
    if m:
        return f"GDPR Art. {m[1]}({m[2]})({m[3]})"
    m = re.fullmatch(r"ccpa-([\d.]+)", str(legal_basis))
    return f"CCPA §{m[1]}" if m else str(legal_basis)


def add_months(day: date, months: int) -> date:
    """Return the same day ``months`` later, or the last day of that month when it is shorter."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _as_datetime(value: str | datetime) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        raise ValueError(f"{value!r}: a timezone is required")
    return moment


def check_extension(legal_basis: str, extension: Mapping[str, Any]) -> dict[str, Any]:
    """Validate an extension against the regime's maximum; return it as stored (``months``/``days``, reason).

    Raises:
        ValueError: Unknown reason, a non-positive length, or longer than the regime allows.
    """
    rule = _rule(legal_basis)
    reason = extension.get("reason")
    if reason not in EXTENSION_REASONS:
        raise ValueError(f"extension reason {reason!r}: use one of {', '.join(EXTENSION_REASONS)}")
    months, days = int(extension.get("months") or 0), int(extension.get("days") or 0)
    if (months <= 0) == (days <= 0) or months < 0 or days < 0:
        raise ValueError("an extension is a positive number of months or of days (not both)")
    if rule.max_extension_months and (days or months > rule.max_extension_months):
        raise ValueError(f"{rule.source} allows an extension of at most {rule.max_extension_months} months")
    if rule.max_extension_days and (months or days > rule.max_extension_days):
        raise ValueError(f"{rule.source} allows an extension of at most {rule.max_extension_days} days")
    return {k: v for k, v in (("months", months), ("days", days)) if v} | {"reason": reason}


def deadline_for(legal_basis: str, received_at: str | datetime,
                 extension: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the request's deadline: ``{"due", "statutory_due", "source", "extension"}`` (dates as ISO).

    ``due`` is the last day (in the timezone of ``received_at``) on which the answer is on time.
    """
    rule = _rule(legal_basis)
    received = _as_datetime(received_at).date()
    statutory = add_months(received, rule.months) + timedelta(days=rule.days)
    due = statutory
    if extension:
        ext = check_extension(legal_basis, extension)
        due = add_months(statutory, ext.get("months", 0)) + timedelta(days=ext.get("days", 0))
    return {"due": due.isoformat(), "statutory_due": statutory.isoformat(), "source": rule.source,
            "extension": dict(extension) if extension else None}


def urgency(deadline: Mapping[str, Any], now: datetime,
            answered_at: str | datetime | None = None) -> dict[str, Any]:
    """Say how a request stands against its deadline.

    Returns:
        ``{"state", "days_left"}``: ``answered`` (with ``days_left`` at answer time; negative = answered late),
        ``overdue`` (``days_left`` < 0), ``due-soon`` (0 to :data:`DUE_SOON_DAYS` days left) or ``open``.
    """
    due = date.fromisoformat(str(deadline["due"]))
    if answered_at is not None:
        return {"state": "answered", "days_left": (due - _as_datetime(answered_at).date()).days}
    left = (due - now.date()).days
    state = "overdue" if left < 0 else "due-soon" if left <= DUE_SOON_DAYS else "open"
    return {"state": state, "days_left": left}


def describe(deadline: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    """Return the deadline in words: ``due 2026-04-01 (in 5 days)``, ``OVERDUE by 3 days (due ...)``..."""
    days = int(status["days_left"])
    plural = lambda n: f"{n} day" + ("" if n == 1 else "s")  # noqa: E731
    extended = " (extended)" if deadline.get("extension") else ""
    if status["state"] == "answered":
        timing = f"{plural(days)} before the deadline" if days >= 0 else f"LATE by {plural(-days)}"
        return f"due {deadline['due']}{extended}; answered {timing}"
    if status["state"] == "overdue":
        return f"OVERDUE by {plural(-days)} (due {deadline['due']}{extended})"
    when = "today" if days == 0 else f"in {plural(days)}"
    return f"due {deadline['due']}{extended} ({when})"
