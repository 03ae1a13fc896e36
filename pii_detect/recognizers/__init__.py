"""Recognizers for the fast structured path (Presidio pattern recognizers called directly, no NLP).

Offers :data:`STRUCTURED_RECOGNIZERS` (entity -> factory), :func:`build_structured_recognizers` (the recognizer
instances a :class:`~pii_detect.config.ScanConfig` needs), :class:`OfflineEmailRecognizer`,
:func:`build_custom_recognizer` and :func:`apply_context` (Presidio-style context-word score boost without
spaCy lemmas).
"""

from __future__ import annotations

from collections.abc import Callable

from presidio_analyzer import EntityRecognizer
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    CryptoRecognizer,
    IbanRecognizer,
    IpRecognizer,
    MacAddressRecognizer,
    PhoneRecognizer,
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

#: Entity -> factory of the Presidio recognizer that finds it without NLP.
STRUCTURED_RECOGNIZERS: dict[str, Callable[[ScanConfig], EntityRecognizer]] = {
    "EMAIL_ADDRESS": lambda cfg: OfflineEmailRecognizer(),
    "US_SSN": lambda cfg: UsSsnRecognizer(),
    "PHONE_NUMBER": lambda cfg: PhoneRecognizer(supported_regions=cfg.phone_regions),
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

#: Entities whose matches always contain a digit: skip their recognizers on digit-free text.
NEEDS_DIGIT = frozenset({"US_SSN", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "US_ITIN",
                         "US_PASSPORT", "US_BANK_NUMBER", "US_DRIVER_LICENSE"})
#: Entity -> a character every match contains (a cheap prefilter).
NEEDS_CHAR = {"EMAIL_ADDRESS": "@", "URL": ".", "UUID": "-"}


def build_structured_recognizers(config: ScanConfig) -> list[tuple[str, EntityRecognizer]]:
    """Return ``(entity, recognizer)`` pairs for the config's structured and custom entities."""
    active = set(config.active_entities)
    pairs = [(ent, STRUCTURED_RECOGNIZERS[ent](config)) for ent in STRUCTURED_ENTITIES if ent in active]
    pairs += [(spec.entity, build_custom_recognizer(spec)) for spec in config.custom_recognizers
              if spec.entity in active]
    return pairs


__all__ = [
    "NEEDS_CHAR",
    "NEEDS_DIGIT",
    "STRUCTURED_RECOGNIZERS",
    "OfflineEmailRecognizer",
    "apply_context",
    "build_custom_recognizer",
    "build_structured_recognizers",
]
