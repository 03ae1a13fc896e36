"""Presidio's own recognizer test cases (strings and expected spans, copied as data) run through our fast path.

``data/presidio_recognizer_cases.json`` holds, per case, the text, the number of results Presidio's test expects,
their spans and the score range it expects of each (its ``sources`` name the files and commits). Our fast path
drops results below ``min_score`` (0.4) on purpose, so:

- every span it keeps must be one Presidio's test expects (never a misplaced or extra span), and
- every span Presidio's test expects with a score of at least 0.4 must be kept.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pii_detect import ScanConfig, Scanner

CASES = json.loads((Path(__file__).parent / "data" / "presidio_recognizer_cases.json").read_text("utf-8"))
MIN_SCORE = ScanConfig().min_score


def _scanners():
    return {e: Scanner(ScanConfig(entities=(e,)), b"k" * 32) for e in {c["entity"] for c in CASES["cases"]}}


def _check(scanners):
    """Return ``(misplaced, missed)``: kept spans Presidio does not expect, expected spans (score >= 0.4) lost."""
    misplaced, missed = [], []
    for case in CASES["cases"]:
        entity, text = case["entity"], case["text"]
        kept = [(s.start, s.end) for s in scanners[entity].find_spans(text) if s.entity_type == entity]
        expected = [tuple(span) for span in case["spans"]]
        if expected or case["count"] == 0:
            misplaced += [(entity, text, span) for span in kept if span not in expected]
        elif len(kept) > case["count"]:  # positions not given: no more results than the count
            misplaced.append((entity, text, kept))
        missed += [(entity, text, span) for span, (low, _) in zip(expected, case["scores"], strict=True)
                   if low >= MIN_SCORE and span not in kept]
    return misplaced, missed


def test_the_case_file_covers_every_structured_recognizer_we_ship():
    entities = {c["entity"] for c in CASES["cases"]}
    assert len(CASES["cases"]) == 559
    assert entities == {"EMAIL_ADDRESS", "US_SSN", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "URL",
                        "CRYPTO", "US_ITIN", "US_PASSPORT", "US_BANK_NUMBER", "US_DRIVER_LICENSE", "MAC_ADDRESS",
                        "UUID"}
    assert all(s["path"].startswith("presidio-analyzer/tests/") for s in CASES["sources"])


def test_fast_path_keeps_only_presidio_spans_and_every_confident_one():
    misplaced, missed = _check(_scanners())
    assert misplaced == []
    assert missed == []


@pytest.mark.parametrize("text", ["My Israeli number is 09-7625400", "My Japanese number is 090-1234-5678",
                                  "My CN number is 13812345678", "My UK number is 020 7946 0958"])
def test_us_only_regions_miss_the_numbers_the_default_regions_find(text):
    # the old default (US only) misses these; the default regions cover Presidio's defaults plus JP and CN
    us_only = Scanner(ScanConfig(entities=("PHONE_NUMBER",), phone_regions=("US",)), b"k")
    default = Scanner(ScanConfig(entities=("PHONE_NUMBER",)), b"k")
    assert us_only.find_spans(text) == []
    assert [text[s.start:s.end] for s in default.find_spans(text)] == [text.split(" is ")[1]]
