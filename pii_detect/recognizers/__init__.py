"""Recognizers for the fast structured path (Presidio pattern recognizers called directly, no NLP).

Offers :data:`STRUCTURED_RECOGNIZERS` (entity -> factory), :func:`build_structured_recognizers` (the recognizer
instances a :class:`~pii_detect.config.ScanConfig` needs), :data:`PREFILTERS` (a cheap test each entity's matches
need), :data:`DIGIT_ENTITIES` (numbers dropped when they are part of a longer identifier),
:class:`OfflineEmailRecognizer`, :class:`FastPhoneRecognizer`, :func:`build_custom_recognizer` and
:func:`apply_context` (Presidio-style context-word score boost without spaCy lemmas).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from presidio_analyzer import EntityRecognizer
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    CryptoRecognizer,
    IbanRecognizer,
    IpRecognizer,
    MacAddressRecognizer,
    UrlRecognizer,
    UsBankRecognizer,
    UsItinRecognizer,
    UsLicenseRecognizer,
    UsPassportRecognizer,
    UsSsnRecognizer,
    UuidRecognizer,
)

from pii_detect.config import STRUCTURED_ENTITIES, ScanConfig
from pii_detect.recognizers.context import apply_context
from pii_detect.recognizers.custom import build_custom_recognizer
from pii_detect.recognizers.email import OfflineEmailRecognizer
from pii_detect.recognizers.identifiers import embedded_in_identifier
from pii_detect.recognizers.phone import FastPhoneRecognizer

#: Entity -> factory of the Presidio recognizer that finds it without NLP.
STRUCTURED_RECOGNIZERS: dict[str, Callable[[ScanConfig], EntityRecognizer]] = {
    "EMAIL_ADDRESS": lambda cfg: OfflineEmailRecognizer(),
    "US_SSN": lambda cfg: UsSsnRecognizer(),
    "PHONE_NUMBER": lambda cfg: FastPhoneRecognizer(supported_regions=cfg.phone_regions),
    "CREDIT_CARD": lambda cfg: CreditCardRecognizer(),
    "IBAN_CODE": lambda cfg: IbanRecognizer(),
    "IP_ADDRESS": lambda cfg: IpRecognizer(),
    "URL": lambda cfg: UrlRecognizer(),
    "CRYPTO": lambda cfg: CryptoRecognizer(),
    "US_ITIN": lambda cfg: UsItinRecognizer(),
    "US_PASSPORT": lambda cfg: UsPassportRecognizer(),
    "US_BANK_NUMBER": lambda cfg: UsBankRecognizer(),
    "US_DRIVER_LICENSE": lambda cfg: UsLicenseRecognizer(),
    "MAC_ADDRESS": lambda cfg: MacAddressRecognizer(),
    "UUID": lambda cfg: UuidRecognizer(),
}
assert set(STRUCTURED_RECOGNIZERS) == set(STRUCTURED_ENTITIES), "keep config.STRUCTURED_ENTITIES in sync"

_DIGIT = re.compile(r"\d")
#: Entity -> a pattern every match contains: the recognizer is skipped on text without it (a cheap prefilter).
#: IP addresses need a digit or a colon (``dead:beef::cafe`` has no digit).
PREFILTERS: dict[str, re.Pattern] = {
    **{ent: _DIGIT for ent in ("US_SSN", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_ITIN", "US_PASSPORT",
                               "US_BANK_NUMBER", "US_DRIVER_LICENSE")},
    "IP_ADDRESS": re.compile(r"[\d:]"), "EMAIL_ADDRESS": re.compile("@"), "URL": re.compile(r"\."),
    "UUID": re.compile("-"), "MAC_ADDRESS": re.compile(r"[:.\-]"),
}
#: Number entities whose matches are dropped when they are only part of a longer identifier
#: (:func:`~pii_detect.recognizers.identifiers.embedded_in_identifier`); the phone recognizer does it itself.
DIGIT_ENTITIES = frozenset({"US_SSN", "CREDIT_CARD", "US_ITIN", "US_PASSPORT", "US_BANK_NUMBER",
                            "US_DRIVER_LICENSE"})


def build_structured_recognizers(config: ScanConfig) -> list[tuple[str, EntityRecognizer]]:
    """Return ``(entity, recognizer)`` pairs for the config's structured and custom entities."""
    active = set(config.active_entities)
    pairs = [(ent, STRUCTURED_RECOGNIZERS[ent](config)) for ent in STRUCTURED_ENTITIES if ent in active]
    pairs += [(spec.entity, build_custom_recognizer(spec)) for spec in config.custom_recognizers
              if spec.entity in active]
    return pairs


__all__ = [
    "DIGIT_ENTITIES",
    "PREFILTERS",
    "STRUCTURED_RECOGNIZERS",
    "FastPhoneRecognizer",
    "OfflineEmailRecognizer",
    "apply_context",
    "build_custom_recognizer",
    "build_structured_recognizers",
    "embedded_in_identifier",
]
