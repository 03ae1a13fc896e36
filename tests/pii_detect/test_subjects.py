"""Deletion-request validation (errors name the field path, never the value) and normalized subject matching."""

from __future__ import annotations

import pytest

from pii_detect import RequestError, Subject, SubjectMatcher, parse_deletion_request
from pii_detect.normalize import value_hmac
from pii_detect.readers import Document

REQUEST = {
    "request_id": "req-1", "received_at": "2025-01-01T00:00:00Z", "verified_at": "2025-01-02T00:00:00Z",
    "legal_basis": "GDPR Art. 17", "requester_ref": "ticket-9",
    "subject": {"name": "John Smith", "identifiers": [
        {"type": "email", "value": "John.Smith@Example.com"}, {"type": "ssn", "value": "536-22-8412"},
        {"type": "phone", "value": "(212) 555-0187"}, {"type": "other", "value": "Blue Falcon 7"}]},
}


def test_parse_valid_request():
    req = parse_deletion_request(REQUEST)
    assert req.request_id == "req-1"
    assert req.subject.name == "John Smith"
    assert [i.type for i in req.subject.identifiers] == ["email", "ssn", "phone", "other"]


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda r: r.pop("subject"), "subject"),
        (lambda r: r["subject"].update(identifiers="x"), "subject.identifiers"),
        (lambda r: r["subject"]["identifiers"].append({"type": "fax", "value": "1"}),
         r"subject.identifiers\[4\].type"),
        (lambda r: r["subject"]["identifiers"][1].update(value="536-22-841"), r"subject.identifiers\[1\].value"),
        (lambda r: r["subject"]["identifiers"][0].update(value="john.smith"), r"subject.identifiers\[0\].value"),
        (lambda r: r["subject"]["identifiers"][2].update(value=""), r"subject.identifiers\[2\].value"),
        (lambda r: r["subject"].update(name=5), "subject.name"),
        (lambda r: r.update(request_id=3), "request_id"),
        (lambda r: r.update(subject={"name": " ", "identifiers": []}), "subject"),
    ],
)
def test_invalid_request_names_field_path_without_value(mutate, path):
    import copy

    req = copy.deepcopy(REQUEST)
    mutate(req)
    with pytest.raises(RequestError, match=path) as info:
        parse_deletion_request(req)
    assert "536" not in str(info.value)
    assert "john.smith" not in str(info.value).lower()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("JOHN   SMITH wrote", [("PERSON", "JOHN   SMITH")]),
        ("Smith, John signed", [("PERSON", "Smith, John")]),
        ("Johnny Smithers is someone else", []),
        ("mail john.smith@EXAMPLE.com.", [("EMAIL_ADDRESS", "john.smith@EXAMPLE.com")]),
        ("mail xjohn.smith@example.com", []),
        ("ssn 536 22 8412", [("US_SSN", "536 22 8412")]),
        ("ssn 536228412", [("US_SSN", "536228412")]),
        ("ssn 536-22-8412 and 536-22-8413", [("US_SSN", "536-22-8412")]),
        ("id 15362284120", []),
        ("call +1 212 555 0187", [("PHONE_NUMBER", "+1 212 555 0187")]),
        ("call 212.555.0187", [("PHONE_NUMBER", "212.555.0187")]),
        ("call 212-555-0188", []),
        ("code blue   falcon 7!", [("OTHER", "blue   falcon 7")]),
    ],
)
def test_subject_matching_normalizes(text, expected):
    matcher = SubjectMatcher(parse_deletion_request(REQUEST).subject, b"k" * 32)
    assert [(s.entity_type, text[s.start : s.end]) for s, _ in matcher.find(text)] == expected


def test_all_variants_share_the_identifier_hmac(key):
    subject = parse_deletion_request(REQUEST).subject
    docs = [Document("/c", "line:1", "Smith, John and JOHN SMITH; ssn 536228412 or 536-22-8412")]
    findings = SubjectMatcher(subject, key).scan_documents(docs)
    by_type = {}
    for f in findings:
        by_type.setdefault(f.entity_type, set()).add(f.value_hmac)
    assert by_type == {"PERSON": {value_hmac(key, "PERSON", "John Smith")},
                       "US_SSN": {value_hmac(key, "US_SSN", "536-22-8412")}}
    assert {f.masked_preview for f in findings} == {"S*** J***", "J*** S***", "***-**-8412"}


def test_subject_with_name_only():
    matcher = SubjectMatcher(Subject(name="Ada Lovelace"), b"k")
    assert len(matcher.find("ada lovelace and Lovelace, Ada")) == 2
