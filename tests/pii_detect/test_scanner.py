"""Fast structured path (no spaCy): recognizer tables with negatives, thresholds, context, custom recognizers,
chunking and de-duplication."""

from __future__ import annotations

import json

import pytest

from pii_detect import ConfigError, ScanConfig, Scanner, load_config
from pii_detect.findings import Span
from pii_detect.spans import chunk_bounds, resolve_spans


@pytest.fixture(scope="module")
def scanner():
    return Scanner(ScanConfig(), b"k" * 32)


def found(scanner, text):
    return [(s.entity_type, text[s.start : s.end]) for s in scanner.find_spans(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.roe@example.org today", [("EMAIL_ADDRESS", "jane.roe@example.org")]),
        ("no tld jane@localhost here", []),
        ("ssn 536-22-8412.", [("US_SSN", "536-22-8412")]),
        ("ssn 123-45-6789", []),  # Presidio's SSN recognizer rejects this well-known fake
        ("ssn 000-12-3456 and 666-12-3456", []),
        ("my SSN: 536228412", [("US_SSN", "536228412")]),  # weak pattern passes only with a context word
        ("order 536228412 shipped", []),
        ("card 4111 1111 1111 1111 ok", [("CREDIT_CARD", "4111 1111 1111 1111")]),
        ("card 4111 1111 1111 1112 bad luhn", []),
        ("iban GB82 WEST 1234 5698 7654 32 ok", [("IBAN_CODE", "GB82 WEST 1234 5698 7654 32")]),
        ("iban GB83WEST12345698765432 bad checksum", []),
        ("from 192.168.10.4 ok", [("IP_ADDRESS", "192.168.10.4")]),
        ("version 999.300.1.1 is not an ip", []),
        ("call (212) 555-0187 now", [("PHONE_NUMBER", "(212) 555-0187")]),
        ("see https://example.com/a?b=1 now", [("URL", "https://example.com/a?b=1")]),
        ("plain words only, nothing to see.", []),
    ],
)
def test_structured_recognizers(scanner, text, expected):
    assert found(scanner, text) == expected


def test_url_inside_email_is_not_reported(scanner):
    assert found(scanner, "mail john.smith@example.com") == [("EMAIL_ADDRESS", "john.smith@example.com")]


def test_entities_and_thresholds_filter():
    text = "call 212-555-0187 or mail a@example.com"
    only_email = Scanner(ScanConfig(entities=("EMAIL_ADDRESS",)), b"k")
    assert [s.entity_type for s in only_email.find_spans(text)] == ["EMAIL_ADDRESS"]
    strict = Scanner(ScanConfig(thresholds={"PHONE_NUMBER": 0.9}), b"k")
    assert [s.entity_type for s in strict.find_spans(text)] == ["EMAIL_ADDRESS"]
    boosted = strict.find_spans("phone 212-555-0187")  # context word lifts 0.4 -> 0.75, still < 0.9
    assert boosted == []


@pytest.mark.parametrize("fmt", ["json", "yaml", "toml"])
def test_custom_recognizer_from_config_file(tmp_path, fmt):
    spec = {"entities": ["EMPLOYEE_ID", "EMAIL_ADDRESS"], "thresholds": {"EMPLOYEE_ID": 0.5},
            "recognizers": [{"name": "EmployeeId", "entity": "EMPLOYEE_ID",
                             "patterns": [{"name": "emp", "regex": r"\bEMP-\d{6}\b", "score": 0.3}],
                             "context": ["employee", "staff"]}],
            "reader": {"jsonl_field": "body", "line_mode": True}}
    path = tmp_path / f"cfg.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(spec))
    elif fmt == "yaml":
        import yaml

        path.write_text(yaml.safe_dump(spec))
    else:
        path.write_text('entities = ["EMPLOYEE_ID", "EMAIL_ADDRESS"]\n[thresholds]\nEMPLOYEE_ID = 0.5\n'
                        '[[recognizers]]\nname = "EmployeeId"\nentity = "EMPLOYEE_ID"\ncontext = ["employee", '
                        '"staff"]\n[[recognizers.patterns]]\nname = "emp"\n'
                        'regex = \'\\bEMP-\\d{6}\\b\'\nscore = 0.3\n'
                        '[reader]\njsonl_field = "body"\nline_mode = true\n')
    config, reader = load_config(path)
    assert reader.jsonl_field == "body"
    assert reader.line_mode
    scanner = Scanner(config, b"k")
    text = "employee EMP-123456 and then some more words: stray EMP-654321"
    assert [(s.entity_type, text[s.start:s.end], s.recognizer) for s in scanner.find_spans(text)] == [
        ("EMPLOYEE_ID", "EMP-123456", "EmployeeId")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"entities": ["NOPE"]}, "unknown entities"),
        ({"thresholds": {"US_SSN": 2}}, "thresholds.US_SSN"),
        ({"recognizers": [{"entity": "X_ID", "patterns": [{"regex": "(unclosed"}]}]}, "recognizers\\[0\\]"),
        ({"bogus": 1}, "unknown settings"),
        ({"reader": {"jsonl_field": ""}}, "jsonl_field"),
    ],
)
def test_bad_config_names_the_field(tmp_path, content, message):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_chunk_bounds_cover_text_and_never_split_tokens():
    text = " ".join(f"w{i}" for i in range(5000))
    bounds = chunk_bounds(text, size=1000, overlap=100)
    assert bounds[0][0] == 0
    assert bounds[-1][1] == len(text)
    assert bounds[-1][2] == len(text)
    for (s, e, owned), (ns, _, _) in zip(bounds, bounds[1:], strict=False):
        assert owned == ns
        assert s < ns <= e - 100
        assert text[ns - 1] == " "


def test_span_on_every_chunk_boundary_is_found_exactly_once():
    # given SSNs planted at every offset class around the chunk boundaries
    cfg = ScanConfig(chunk_size=600, chunk_overlap=100, entities=("US_SSN", "EMAIL_ADDRESS"))
    scanner = Scanner(cfg, b"k")
    filler = "lorem ipsum dolor sit amet "
    parts, expected = [], []
    pos = 0
    for i in range(120):
        chunk = filler * (1 + i % 3) + ("x" * (i % 7)) + " "
        parts.append(chunk)
        pos += len(chunk)
        value = f"ssn 536-22-{8000 + i:04d} " if i % 2 else f"mail user{i}@example.com "
        parts.append(value)
        token = value.split()[-1]
        expected.append((pos + value.index(token), pos + value.index(token) + len(token)))
        pos += len(value)
    text = "".join(parts)
    # when
    spans = scanner.find_spans(text)
    # then
    assert [(s.start, s.end) for s in spans] == expected


def test_resolve_spans_dedupes_and_drops_contained():
    spans = [Span(0, 20, "EMAIL_ADDRESS", 1.0, "e"), Span(9, 20, "URL", 0.5, "u"), Span(0, 20, "EMAIL_ADDRESS",
             0.5, "e"), Span(30, 40, "PHONE_NUMBER", 0.4, "p"), Span(32, 40, "PHONE_NUMBER", 0.4, "p"),
             Span(50, 60, "PERSON", 0.85, "s")]
    assert resolve_spans(spans) == [Span(0, 20, "EMAIL_ADDRESS", 1.0, "e"), Span(30, 40, "PHONE_NUMBER", 0.4, "p"),
                                    Span(50, 60, "PERSON", 0.85, "s")]


def test_validated_entity_beats_lenient_phone_match_over_the_same_characters():
    # phonenumbers accepts the dotted quad as a phone number, boosted by "Phone" earlier in the sentence
    spans = [Span(27, 40, "PHONE_NUMBER", 0.75, "p"), Span(27, 40, "IP_ADDRESS", 0.6, "i"),
             Span(50, 62, "PHONE_NUMBER", 0.75, "p"), Span(52, 60, "IP_ADDRESS", 0.6, "i")]
    assert resolve_spans(spans) == [Span(27, 40, "IP_ADDRESS", 0.6, "i"), Span(50, 62, "PHONE_NUMBER", 0.75, "p")]
    text = "Phone: 617.410.6058 Server 214.97.98.242 responded slowly."
    scanner = Scanner(ScanConfig(entities=("IP_ADDRESS", "PHONE_NUMBER")), b"k")
    assert [(s.entity_type, text[s.start:s.end]) for s in scanner.find_spans(text)] == [
        ("PHONE_NUMBER", "617.410.6058"), ("IP_ADDRESS", "214.97.98.242")]


def test_context_does_not_cross_sentences():
    scanner = Scanner(ScanConfig(entities=("US_SSN",)), b"k")
    text = "Employee SSN: 801-51-7284. Order #15851-1655 is ready."
    assert [text[s.start:s.end] for s in scanner.find_spans(text)] == ["801-51-7284"]
