"""Phone numbers of many regions in one pass over the text, with the results of Presidio's ``PhoneRecognizer``.

Offers :class:`FastPhoneRecognizer`: the numbers Presidio's ``PhoneRecognizer(supported_regions=regions)``
finds (``phonenumbers``' matcher at leniency VALID, score 0.4, the same context words), at about the cost of a
single region. Presidio runs one matcher per region, and each parses every candidate; here the text is searched
once and a candidate is parsed for a region only when its digits could be a valid number there
(:class:`RegionGate`, a few regular expressions built from ``phonenumbers``' metadata). The gate only skips
parses that cannot succeed, so the matches are the same; ``tests/pii_detect/test_phone.py`` checks it against
Presidio on generated text and on Presidio's own test cases.

It then drops numbers that are part of a longer identifier, that an identifier word introduces, or that are
written as no phone number is — decimals, dates, more than 15 digits (:mod:`pii_detect.recognizers.identifiers`);
Presidio keeps those.
"""

from __future__ import annotations

import functools
import re

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher
from phonenumbers.phonemetadata import PhoneMetadata
from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.predefined_recognizers import PhoneRecognizer

from pii_detect.recognizers.identifiers import (
    embedded_in_identifier,
    introduced_by_identifier_word,
    not_a_phone_shape,
)

#: Number types ``is_valid_number`` accepts; a valid national number matches one of their patterns.
_DESCS = ("fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "personal_number", "voip", "pager",
          "uan", "voicemail")
_START = re.compile(r"[+\uFF0B\d]")
_PLUS = "+\uFF0B"
_NON_DIGIT = re.compile(r"\D")
#: Candidates holding anything but digits, spaces and phone punctuation (extensions, vanity letters, ``#``)
#: are parsed for every region.
_PLAIN = re.compile(r"[\d\s\-./()\[\]~\u2010-\u2015\u2212\u30FC\uFF0D-\uFF0F\u00A0\u200B\u2060\u3000]*")


class RegionGate:
    """Says, from a candidate's digits alone, whether parsing it for ``region`` can give a valid number.

    Parsing a national-format candidate for a region removes, at most, the region's country code and its
    national prefix (``national_prefix_for_parsing`` and ``national_prefix_transform_rule``); a valid number's
    national part then matches a number-type pattern of one of the regions sharing the country code. The gate
    tries exactly those forms, so it never rejects a candidate the parse would accept; a candidate starting with
    the region's international dialing prefix always passes.
    """

    def __init__(self, region: str) -> None:
        meta = PhoneMetadata.metadata_for_region(region)
        self.region = region
        self.country_code = str(meta.country_code)
        self._idd = re.compile(meta.international_prefix) if meta.international_prefix else None
        self._npp = re.compile(meta.national_prefix_for_parsing) if meta.national_prefix_for_parsing else None
        self._rule = meta.national_prefix_transform_rule or None
        self._valid, shortest = _valid_national_numbers(meta.country_code)
        # a transform rule that inserts digits (not just \\1-style group references) could lengthen a number
        inserts = self._rule is not None and re.sub(r"[\\$]\d", "", self._rule) != ""
        self._min_digits = 0 if inserts else shortest

    def may_match(self, digits: str) -> bool:
        """Return False only when no parse of ``digits`` for this region can be a valid number."""
        if self._idd is not None and self._idd.match(digits):
            return True
        if len(digits) < self._min_digits:  # every form below is at most as long as ``digits``
            return False
        bases = [digits]
        if digits.startswith(self.country_code):
            bases.append(digits[len(self.country_code):])
        for base in bases:
            if self._valid.fullmatch(base):
                return True
            if self._npp is not None and (m := self._npp.match(base)):
                if self._valid.fullmatch(base[m.end():]):
                    return True
                if self._rule and self._valid.fullmatch(self._npp.sub(self._rule, base, count=1)):
                    return True
        return False


@functools.cache
def _valid_national_numbers(country_code: int) -> tuple[re.Pattern, int]:
    """Return a pattern every valid national number of ``country_code`` fully matches, and the fewest digits
    such a number has (0 when the metadata does not say)."""
    patterns, lengths = [], []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ()):
        meta = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
        for name in _DESCS:
            desc = getattr(meta, name, None) if meta is not None else None
            if desc is not None and desc.national_number_pattern:
                patterns.append(desc.national_number_pattern)
                possible = desc.possible_length or meta.general_desc.possible_length or ()
                lengths.append(min((n for n in possible if n > 0), default=0))
    pattern = re.compile("|".join(f"(?:{p})" for p in dict.fromkeys(patterns)) or "(?!)")
    return pattern, min(lengths, default=0)


class _MultiRegionMatcher(PhoneNumberMatcher):
    """``phonenumbers``' matcher whose candidates are parsed for each region its gate lets through."""

    def __init__(self, text: str, gates: tuple[RegionGate, ...]) -> None:
        super().__init__(text, gates[0].region, leniency=Leniency.VALID)
        self._gates = gates

    def _regions_for(self, candidate: str) -> list[str]:
        start = _START.search(candidate)
        if start is None:
            return []
        if candidate[start.start()] in _PLUS:
            return [self._gates[0].region]  # the number names its country: every region parses it alike
        if not _PLAIN.fullmatch(candidate):
            return [g.region for g in self._gates]
        digits = _NON_DIGIT.sub("", candidate)
        if not digits.isascii():
            digits = phonenumbers.normalize_digits_only(digits)
        return [g.region for g in self._gates if g.may_match(digits)]

    def _parse_and_verify(self, candidate, offset):  # noqa: ANN001 - phonenumbers' own signature
        for region in self._regions_for(candidate):
            self.preferred_region = region
            match = super()._parse_and_verify(candidate, offset)
            if match is not None:
                return match
        return None


class FastPhoneRecognizer(PhoneRecognizer):
    """Presidio's phone recognizer for many regions in one pass; identifiers that look like numbers dropped.

    Args:
        supported_regions: ISO 3166 codes whose national formats are recognized (numbers with ``+`` always are).
        drop_identifiers: Drop numbers inside longer identifiers (``TKT-415-555-0132``), introduced by an
            identifier word (``Invoice no. 9876543210``) or written as no phone number is (decimals, dates, over
            15 digits); False gives Presidio's matches exactly.
    """

    def __init__(self, supported_regions: tuple[str, ...] = PhoneRecognizer.DEFAULT_SUPPORTED_REGIONS,
                 drop_identifiers: bool = True) -> None:
        super().__init__(supported_regions=tuple(supported_regions), name="FastPhoneRecognizer")
        self._gates = tuple(RegionGate(r) for r in dict.fromkeys(supported_regions))
        self._drop_identifiers = drop_identifiers

    def analyze(self, text: str, entities, nlp_artifacts=None) -> list[RecognizerResult]:  # noqa: ANN001
        """Return PHONE_NUMBER results (score 0.4 before context), as Presidio's ``PhoneRecognizer`` would."""
        results = []
        for match in _MultiRegionMatcher(text, self._gates):
            if self._drop_identifiers and (embedded_in_identifier(text, match.start, match.end)
                                           or not_a_phone_shape(text, match.start, match.end)
                                           or introduced_by_identifier_word(text, match.start)):
                continue
            results.append(self._get_recognizer_result(match, text, self.supported_regions[0], nlp_artifacts))
        return EntityRecognizer.remove_duplicates(results)
