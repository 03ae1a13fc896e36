"""Canonical forms of personal values, and their keyed HMAC.

Offers :func:`normalize_value` (per entity type: emails lower-cased and trimmed, SSNs digits only, phone numbers
E.164, names case-folded with whitespace collapsed, anything else whitespace-collapsed and case-folded),
:func:`normalize_phone`, :func:`value_hmac` (hex HMAC-SHA256 of the normalized value) and :data:`ENTITY_FOR_TYPE`
mapping deletion-request identifier types to entity types.

The HMAC key is always passed in by the caller; this module never reads env vars or the workspace.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

import phonenumbers

_WS = re.compile(r"\s+")
_NON_DIGIT = re.compile(r"\D")
DEFAULT_REGION = "US"

#: Deletion-request identifier type -> entity type used in findings.
ENTITY_FOR_TYPE = {
    "email": "EMAIL_ADDRESS",
    "ssn": "US_SSN",
    "phone": "PHONE_NUMBER",
    "name": "PERSON",
    "other": "OTHER",
}

_DIGIT_ENTITIES = {"US_SSN", "CREDIT_CARD", "US_ITIN", "US_BANK_NUMBER"}
_NAME_ENTITIES = {"PERSON", "NAME"}


def collapse(text: str) -> str:
    """Return ``text`` NFKC-normalized, case-folded, with runs of whitespace collapsed to one space and trimmed."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def normalize_phone(value: str, region: str = DEFAULT_REGION) -> str:
    """Return a phone number in E.164 (``+12125550187``); fall back to ``+``/digits when it cannot be parsed."""
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and parsed.national_number:
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    digits = _NON_DIGIT.sub("", value)
    return ("+" + digits) if value.strip().startswith("+") else digits


def normalize_value(entity_type: str, value: str) -> str:
    """Return the canonical form of ``value`` for ``entity_type`` (the input of :func:`value_hmac`).

    Args:
        entity_type: A findings entity type (``EMAIL_ADDRESS``, ``US_SSN``, ``PHONE_NUMBER``, ``PERSON``, ...).
        value: The raw value as it appears in the text.
    """
    if entity_type == "EMAIL_ADDRESS":
        return value.strip().lower()
    if entity_type in _DIGIT_ENTITIES:
        return _NON_DIGIT.sub("", value)
    if entity_type == "PHONE_NUMBER":
        return normalize_phone(value)
    if entity_type == "IBAN_CODE":
        return re.sub(r"[\s-]", "", value).upper()
    if entity_type == "IP_ADDRESS":
        return value.strip().lower()
    return collapse(value)


def value_hmac(key: bytes, entity_type: str, value: str) -> str:
    """Return the hex HMAC-SHA256 under ``key`` of ``value`` normalized for ``entity_type``."""
    if not key:
        raise ValueError("HMAC key is empty: pass the workspace key bytes (tasks._workspace.hmac_key()).")
    return hmac.new(key, normalize_value(entity_type, value).encode("utf-8"), hashlib.sha256).hexdigest()
