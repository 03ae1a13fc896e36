"""Benign text of an audit: documents without findings, the guard's held out."""

import pyarrow as pa

from pii_detect.readers.base import doc_sha256
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
    text = (root / "doc-1.txt").read_text()
    return pa.table({"source": [str(root / "doc-1.txt")], "doc_key": ["file"], "doc_sha256": [doc_sha256(text)]})


def test_a_corpus_given_through_a_symlink_still_leaves_out_the_documents_with_findings(tmp_path):
    # given findings scanned from a corpus, and the same corpus reached through a symlink
    found = _corpus(tmp_path / "corpus").drop_columns(["doc_sha256"])
    (tmp_path / "link").symlink_to(tmp_path / "corpus")
    # when its benign texts are read through the link (matching by location alone)
    texts = benign_texts([tmp_path / "link"], [found], limit=100)
    # then the document holding the finding is still not benign
    assert len(texts) == 3
    assert not any("number 1 " in t for t in texts)


def test_a_copy_of_the_corpus_elsewhere_still_leaves_out_the_documents_with_findings(tmp_path):
    # given findings scanned from one corpus and a copy of it at another path (a moved workspace)
    found = _corpus(tmp_path / "corpus")
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in (tmp_path / "corpus").iterdir():
        (copy / f.name).write_text(f.read_text())
    # when its benign texts are read from the copy
    texts = benign_texts([copy], [found], limit=100)
    # then the copy of the document holding the finding is not benign either (it has the finding's content)
    assert len(texts) == 3
    assert not any("number 1 " in t for t in texts)
