"""Incremental scans: only documents whose text the index does not hold are analysed, and the findings equal a
full scan's — after documents are added, changed, moved, and when the configuration or key changes."""

from __future__ import annotations

import json

import pyarrow as pa

from pii_detect import ScanConfig, scan_corpus_table
from pii_detect.incremental import (
    IncrementalStats,
    ScanIndex,
    build_index,
    scan_corpus_incremental,
    scan_fingerprint,
)
from pii_detect.pipeline import collect_findings

CONFIG = ScanConfig(entities=("US_SSN", "EMAIL_ADDRESS"))


def _write(corpus, lines, extra=""):
    (corpus / "a.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in lines), encoding="utf-8")
    (corpus / "b.txt").write_text(f"ssn 536-22-8412 is on file\n{extra}", encoding="utf-8")


def _lines(n):
    return [f"record {i}: mail user{i}@northwind-mail.com or ssn 536-22-{8000 + i}" if i % 3 else f"note {i}"
            for i in range(n)]


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([("source", "ascending"), ("doc_key", "ascending"), ("start", "ascending"),
                          ("entity_type", "ascending")])


def _incremental(corpus, key, index):
    stats = IncrementalStats()
    table = collect_findings(scan_corpus_incremental([corpus], key, index, CONFIG, stats=stats))
    return table, stats


def test_unchanged_corpus_is_not_analysed_and_gives_the_same_findings(tmp_path, key):
    # given a corpus scanned once, with its index
    _write(tmp_path, _lines(30))
    first, stats = _incremental(tmp_path, key, ScanIndex())
    assert stats.analysed == stats.documents == 31
    assert stats.carried == 0
    index = ScanIndex(build_index(first, stats.shas))
    # when it is scanned again
    again, stats = _incremental(tmp_path, key, index)
    # then nothing was analysed and the findings are the full scan's, row for row
    assert stats.analysed == 0
    assert stats.carried == 31
    full, _ = scan_corpus_table([tmp_path], key, CONFIG)
    assert first.num_rows == 41  # 20 records x (mail + SSN) + b.txt
    assert _sorted(again).equals(_sorted(full))


def test_grown_changed_and_moved_documents(tmp_path, key):
    # given an indexed corpus
    _write(tmp_path, _lines(30))
    first, stats = _incremental(tmp_path, key, ScanIndex())
    index = ScanIndex(build_index(first, stats.shas))
    # when a line is inserted at the top (every other line moves), one line changes and one is appended, and the
    # text file gains a line (a changed document)
    lines = _lines(31)
    lines[5] = "record 5: mail changed5@northwind-mail.com"
    _write(tmp_path, ["ssn 536-22-7777 new first line", *lines], extra="mail extra@northwind-mail.com\n")
    again, stats = _incremental(tmp_path, key, index)
    # then only the new/changed documents were analysed ...
    assert stats.analysed == 4  # the new first line, line 5, the appended line 30, b.txt
    assert stats.carried == 29
    # ... and the moved documents' findings are re-located exactly as a full scan locates them
    full, _ = scan_corpus_table([tmp_path], key, CONFIG)
    assert _sorted(again).equals(_sorted(full))


def test_an_index_holds_texts_without_findings_and_no_value(tmp_path, key):
    _write(tmp_path, _lines(6))
    table, stats = _incremental(tmp_path, key, ScanIndex())
    index = build_index(table, stats.shas)
    assert index.num_rows == 7  # every distinct text, "note 0" and "note 3" included
    assert sum(len(s) for s in index.column("spans").to_pylist()) == table.num_rows
    dump = str(index.to_pylist())
    assert "northwind-mail.com" not in dump
    assert "536-22-8412" not in dump


def test_the_fingerprint_changes_with_what_findings_depend_on(key):
    base = scan_fingerprint(CONFIG, key)
    assert scan_fingerprint(ScanConfig(entities=("US_SSN", "EMAIL_ADDRESS")), key) == base
    assert scan_fingerprint(ScanConfig(entities=("US_SSN",)), key) != base
    assert scan_fingerprint(ScanConfig(entities=("US_SSN", "EMAIL_ADDRESS"), min_score=0.6), key) != base
    assert scan_fingerprint(CONFIG, b"another key" * 3) != base
    assert key.hex() not in base
