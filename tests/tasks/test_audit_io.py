"""Benign text of an audit: documents without findings, the guard's held out."""

import pyarrow as pa

from tasks.audit_io import benign_texts


def test_the_audit_measures_benign_text_the_guard_never_saw(tmp_path):
    # given eight documents, one of which holds a finding
    for i in range(8):
        (tmp_path / f"doc-{i}.txt").write_text(f"plain note number {i} about the weekly meeting\n")
    found = pa.table({"source": [str(tmp_path / "doc-1.txt")], "doc_key": ["file"]})
    everything = benign_texts([tmp_path], [found], limit=100)
    # when the guard and the audit read their halves
    guard = benign_texts([tmp_path], [found], limit=2, half=0)
    audit = benign_texts([tmp_path], [found], limit=100, half=1)
    # then the document with a finding is in neither, and the two never overlap
    assert len(everything) == 7
    assert not any("number 1 " in t for t in everything)
    assert guard == everything[0:4:2]
    assert audit == everything[1::2]
    assert not set(guard) & set(audit)
