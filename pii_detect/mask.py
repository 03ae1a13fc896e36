"""Masked previews of personal values: enough to eyeball a finding, never enough to recover the value.

Offers :func:`mask_value`: ``j***@e***.com`` for emails, ``***-**-1234`` for SSNs, ``***-***-4567`` for phone
numbers, ``****-****-****-1111`` for cards, ``J*** D***`` for names, and a first-character mask otherwise.
"""

from __future__ import annotations

import re

_NON_DIGIT = re.compile(r"\D")


def _initial(token: str) -> str:
    return (token[:1] + "***") if token else "***"


def _last4(value: str) -> str:
    return _NON_DIGIT.sub("", value)[-4:]


def mask_value(entity_type: str, value: str) -> str:
    """Return a masked preview of ``value`` for ``entity_type`` (never the value itself)."""
    value = value.strip()
    if entity_type == "EMAIL_ADDRESS" and "@" in value:
        local, _, domain = value.rpartition("@")
        host, dot, tld = domain.rpartition(".")
        return f"{_initial(local)}@{_initial(host or tld)}{dot}{tld if host else ''}"
    if entity_type in {"US_SSN", "US_ITIN"}:
        return f"***-**-{_last4(value)}"
    if entity_type == "PHONE_NUMBER":
        return f"***-***-{_last4(value)}"
    if entity_type == "CREDIT_CARD":
        return f"****-****-****-{_last4(value)}"
    if entity_type == "IBAN_CODE":
        compact = re.sub(r"[\s-]", "", value)
        return f"{compact[:2]}**{'*' * max(len(compact) - 8, 0)}{compact[-4:]}" if len(compact) > 8 else "****"
    if entity_type == "IP_ADDRESS":
        sep = ":" if ":" in value else "."
        return f"{value.split(sep)[0]}{sep}***"
    if entity_type in {"PERSON", "NAME"}:
        return " ".join(_initial(tok) for tok in value.split()) or "***"
    return _initial(value)
