"""Benign text of an audit: documents without findings, the guard's held out."""

import pyarrow as pa

from tasks.audit_io import benign_texts


def test_the_audit_measures_benign_text_the_guard_never_saw(tmp_path):
    # given eight documents, one of which holds a finding
    for i in range(8):
        (tmp_path / f"doc-{i}.txt").write_text(f"plain note number {i} about the weekly meeting\n")
    found = pa.table({"source": [str(tmp_path / "doc-1.txt")], "doc_key": ["file"]})
    everything = benign_texts([tmp_path], [found], limit=100)
    # when the guard takes the first two and the audit skips them
    guard = benign_texts([tmp_path], [found], limit=2)
    audit = benign_texts([tmp_path], [found], limit=3, skip=2)
    # then the document with a finding is in neither, and the two never overlap
    assert len(everything) == 7 and not any("number 1 " in t for t in everything)
    assert guard == everything[:2]
    assert audit == everything[2:5]
    assert not set(guard) & set(audit)
