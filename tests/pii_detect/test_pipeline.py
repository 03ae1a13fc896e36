"""Corpus scans end to end: streaming batches, multi-process equals single-process, and no raw value ever
reaches the findings file."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from pii_detect import (
    FINDINGS_SCHEMA,
    ScanConfig,
    ScanStats,
    collect_findings,
    parse_deletion_request,
    read_span,
    scan_corpus,
    scan_corpus_table,
)
from pii_detect.subjects import locate_subject

PLANTED = {
    "EMAIL_ADDRESS": "marta.quist@northwind-mail.com",
    "US_SSN": "536-22-8412",
    "PHONE_NUMBER": "(646) 555-0123",
    "CREDIT_CARD": "4539 1488 0343 6467",
    "IBAN_CODE": "DE89370400440532013000",
    "IP_ADDRESS": "172.16.254.77",
}


def make_corpus(tmp_path, n=60):
    lines = []
    for i in range(n):
        entity = list(PLANTED)[i % len(PLANTED)]
        lines.append(json.dumps({"text": f"record {i}: value {PLANTED[entity]} end"}))
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "b.txt").write_text(f"ssn {PLANTED['US_SSN']}\nmail {PLANTED['EMAIL_ADDRESS']}\n")
    return tmp_path


def test_findings_file_never_contains_raw_values(tmp_path, key):
    # given a corpus with planted values
    (tmp_path / "corpus").mkdir()
    corpus = make_corpus(tmp_path / "corpus")
    # when
    table, stats = scan_corpus_table([corpus], key)
    out = tmp_path / "findings.parquet"
    pq.write_table(table, out, compression="none")  # uncompressed, so a raw string would be visible
    # then every planted entity was found ...
    assert set(stats.findings) == set(PLANTED)
    assert table.schema.equals(FINDINGS_SCHEMA)
    # ... but neither the file bytes nor any cell holds a raw value (in any normalization)
    blob = out.read_bytes()
    assert str(corpus).encode() in blob  # sanity: the byte search does see plain strings
    values = set(PLANTED.values()) | {v.replace(" ", "").replace("-", "") for v in PLANTED.values()}
    for value in values:
        assert value.encode() not in blob
    cells = [str(c) for col in pq.read_table(out).columns for c in col.to_pylist()]
    assert not [c for c in cells for v in values if v in c]


def test_findings_reread_to_the_planted_values(tmp_path, key):
    corpus = make_corpus(tmp_path, n=12)
    table, _ = scan_corpus_table([corpus], key)
    for row in table.to_pylist():
        span = read_span(row["source"], row["doc_key"], row["start"], row["end"],
                         expected_sha256=row["doc_sha256"])
        assert span == PLANTED[row["entity_type"]]


def test_two_workers_give_the_same_findings_in_the_same_order(tmp_path, key):
    corpus = make_corpus(tmp_path, n=700)
    one, s1 = scan_corpus_table([corpus], key, workers=1)
    two, s2 = scan_corpus_table([corpus], key, workers=2)
    assert one.equals(two)
    assert (s1.documents, s1.findings) == (s2.documents, s2.findings)
    assert s1.documents == 701


def test_scan_streams_batches_and_reports_progress(tmp_path, key):
    corpus = make_corpus(tmp_path, n=600)
    stats, seen = ScanStats(), []
    batches = scan_corpus([corpus], key, ScanConfig(entities=("US_SSN",)), stats=stats,
                          progress=lambda d, b: seen.append(d))
    table = collect_findings(batches)
    assert len(seen) >= 3
    assert sum(seen) == stats.documents == 601
    assert set(table.column("entity_type").to_pylist()) == {"US_SSN"}
    assert stats.bytes > 0
    assert stats.files == 2


def test_locate_subject_finds_rows_in_corpus(tmp_path, key):
    corpus = make_corpus(tmp_path, n=12)
    req = parse_deletion_request({"subject": {"identifiers": [{"type": "ssn", "value": "536228412"},
                                                              {"type": "phone", "value": "+1 646 555 0123"}]}})
    table = collect_findings(locate_subject([corpus], req.subject, key, workers=2))
    rows = table.to_pylist()
    assert {r["entity_type"] for r in rows} == {"US_SSN", "PHONE_NUMBER"}
    assert len(rows) == 2 + 2 + 1  # 12 records: 2 SSN, 2 phone; plus the SSN line in b.txt
    assert all(r["recognizer"] == "SubjectMatcher" for r in rows)


def _raw_forms(values):
    """Each value as written, and with spaces, dashes, dots and parentheses removed."""
    out = set(values)
    for v in values:
        out.add("".join(c for c in v if c not in " -.()"))
    return out


def test_locate_findings_file_never_contains_raw_values(tmp_path, key):
    # given a deletion request naming values in other formats than the corpus has them
    (tmp_path / "corpus").mkdir()
    corpus = make_corpus(tmp_path / "corpus", n=12)
    req = parse_deletion_request({"subject": {"identifiers": [
        {"type": "ssn", "value": "536 22 8412"}, {"type": "phone", "value": "+1 646 555 0123"},
        {"type": "email", "value": PLANTED["EMAIL_ADDRESS"].upper()}]}})
    # when
    table = collect_findings(locate_subject([corpus], req.subject, key))
    out = tmp_path / "located.parquet"
    pq.write_table(table, out, compression="none")
    # then the three identifiers were located, and no form of any value is in the file
    assert {r["entity_type"] for r in table.to_pylist()} == {"US_SSN", "PHONE_NUMBER", "EMAIL_ADDRESS"}
    blob = out.read_bytes().lower()
    forms = _raw_forms([PLANTED["US_SSN"], PLANTED["PHONE_NUMBER"], PLANTED["EMAIL_ADDRESS"], "536 22 8412",
                        "+1 646 555 0123", "+16465550123"])
    assert not [f for f in forms if f.lower().encode() in blob]
