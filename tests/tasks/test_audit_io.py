"""Benign text of an audit: documents without findings, the guard's held out."""

import pyarrow as pa
import pytest

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


def _corpus(root):
    root.mkdir()
    for i in range(4):
        (root / f"doc-{i}.txt").write_text(f"plain note number {i} about the weekly meeting\n")
    return pa.table({"source": [str(root / "doc-1.txt")], "doc_key": ["file"]})


def test_a_corpus_given_through_a_symlink_still_leaves_out_the_documents_with_findings(tmp_path):
    # given findings scanned from a corpus, and the same corpus reached through a symlink
    found = _corpus(tmp_path / "corpus")
    (tmp_path / "link").symlink_to(tmp_path / "corpus")
    # when its benign texts are read through the link
    texts = benign_texts([tmp_path / "link"], [found], limit=100)
    # then the document holding the finding is still not benign
    assert len(texts) == 3
    assert not any("number 1 " in t for t in texts)


def test_a_copy_of_the_corpus_elsewhere_is_refused_rather_than_read_as_benign(tmp_path):
    # given findings scanned from one corpus and a copy of it at another path (a moved workspace)
    found = _corpus(tmp_path / "corpus")
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in (tmp_path / "corpus").iterdir():
        (copy / f.name).write_text(f.read_text())
    # when its benign texts are asked of the copy, then it says which corpus the findings came from
    with pytest.raises(ValueError, match="pass the corpus the findings were scanned from"):
        benign_texts([copy], [found], limit=100)
    # and with no findings at all any corpus is benign
    assert len(benign_texts([copy], [found.slice(0, 0)], limit=100)) == 4
