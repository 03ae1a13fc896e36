"""Findings schema, ids, HMAC/normalization, masks and library purity."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

import pii_detect
from pii_detect.findings import PiiFinding, Span, findings_to_table, make_finding, make_finding_id
from pii_detect.mask import mask_value
from pii_detect.normalize import normalize_value, value_hmac
from pii_detect.schema import FINDINGS_SCHEMA


def test_dataclass_fields_equal_schema_names():
    assert [f.name for f in dataclasses.fields(PiiFinding)] == FINDINGS_SCHEMA.names
    assert FINDINGS_SCHEMA.metadata == {b"name": b"findings", b"version": b"1"}


def test_findings_table_has_declared_schema(key):
    text = "mail john.doe@example.com now"
    f = make_finding(Span(5, 25, "EMAIL_ADDRESS", 1.0, "r"), text=text, source="/c/a.txt", doc_key="file",
                     doc_sha256="0" * 64, key=key)
    table = findings_to_table([f, f])
    assert table.schema.equals(FINDINGS_SCHEMA, check_metadata=True)
    assert table.num_rows == 2
    assert table.column("masked_preview").to_pylist() == ["j***@e***.com"] * 2


def test_finding_id_is_deterministic_and_location_sensitive():
    a = make_finding_id("/c/a.txt", "line:3", 1, 5, "US_SSN")
    assert a == make_finding_id("/c/a.txt", "line:3", 1, 5, "US_SSN")
    assert re.fullmatch(r"[0-9a-f]{32}", a)
    others = {make_finding_id("/c/b.txt", "line:3", 1, 5, "US_SSN"), make_finding_id("/c/a.txt", "line:4", 1, 5,
              "US_SSN"), make_finding_id("/c/a.txt", "line:3", 1, 6, "US_SSN"),
              make_finding_id("/c/a.txt", "line:3", 1, 5, "PHONE_NUMBER")}
    assert a not in others
    assert len(others) == 4


@pytest.mark.parametrize(
    ("entity", "variants", "canonical"),
    [
        ("EMAIL_ADDRESS", [" John.Doe@Example.COM ", "john.doe@example.com"], "john.doe@example.com"),
        ("US_SSN", ["536-22-8412", "536 22 8412", "536228412", "536.22.8412"], "536228412"),
        ("PHONE_NUMBER", ["(212) 555-0187", "212-555-0187", "+1 212 555 0187", "212.555.0187", "2125550187",
                          "+1-212-555-0187"], "+12125550187"),
        ("PHONE_NUMBER", ["+44 20 7946 0958", "+442079460958"], "+442079460958"),
        ("PERSON", ["John  Doe", "JOHN DOE", " john\tdoe "], "john doe"),
        ("CREDIT_CARD", ["4111 1111 1111 1111", "4111-1111-1111-1111"], "4111111111111111"),
        ("IBAN_CODE", ["de89 3704 0044 0532 0130 00", "DE89370400440532013000"], "DE89370400440532013000"),
    ],
)
def test_normalization_makes_variants_share_one_hmac(entity, variants, canonical, key):
    assert {normalize_value(entity, v) for v in variants} == {canonical}
    assert len({value_hmac(key, entity, v) for v in variants}) == 1


def test_hmac_depends_on_key_and_rejects_empty_key():
    assert value_hmac(b"a" * 32, "US_SSN", "536-22-8412") != value_hmac(b"b" * 32, "US_SSN", "536-22-8412")
    with pytest.raises(ValueError, match="key"):
        value_hmac(b"", "US_SSN", "536-22-8412")


@pytest.mark.parametrize(
    ("entity", "value", "masked"),
    [
        ("EMAIL_ADDRESS", "john.doe@example.com", "j***@e***.com"),
        ("US_SSN", "536-22-8412", "***-**-8412"),
        ("PHONE_NUMBER", "(212) 555-4567", "***-***-4567"),
        ("PERSON", "John Doe", "J*** D***"),
        ("CREDIT_CARD", "4111 1111 1111 1234", "****-****-****-1234"),
        ("URL", "http://example.com", "h***"),
        ("IP_ADDRESS", "10.1.2.3", "10.***"),
    ],
)
def test_masks(entity, value, masked):
    assert mask_value(entity, value) == masked
    assert value not in mask_value(entity, value)


def test_raw_value_fields_are_hidden_from_repr(key):
    doc = pii_detect.Document("/c/a.txt", "file", "secret 536-22-8412")
    assert "536-22-8412" not in repr(doc)
    subj = pii_detect.Subject(name="John Doe", identifiers=(pii_detect.Identifier("ssn", "536-22-8412"),))
    assert "536" not in repr(subj)
    assert "John" not in repr(subj)


def test_library_never_imports_orchestration_or_engine():
    root = Path(pii_detect.__file__).parent
    pattern = re.compile(r"^\s*(from|import)\s+(prefect|mlflow|revs_engine|tasks|flows)\b", re.M)
    offenders = [str(p) for p in root.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
    assert not [p for p in root.rglob("*.py") if re.search(r"^\s*print\(", p.read_text(), re.M)]
