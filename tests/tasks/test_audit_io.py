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
    guard = benign_texts([tmp_path], [found], limit=100, half=0)
    audit = benign_texts([tmp_path], [found], limit=100, half=1)
    # then the document with a finding is in neither, the two never overlap and together they are everything
    assert len(everything) == 7
    assert not any("number 1 " in t for t in everything)
    assert guard
    assert audit
    assert not set(guard) & set(audit)
    assert sorted(guard + audit) == sorted(everything)
    assert benign_texts([tmp_path], [found], limit=1, half=0) == guard[:1]


def test_the_halves_stay_apart_when_the_guard_and_the_audit_leave_out_different_findings(tmp_path):
    # given forty documents; the edit's guard leaves out the ones with the request's findings (documents 0-9),
    # the audit only those with the findings it audits (documents 0-4): a deletion request's two sides
    for i in range(40):
        (tmp_path / f"doc-{i:02d}.txt").write_text(f"plain note number {i} about the weekly meeting\n")

    def findings(n):
        return pa.table({"source": [str(tmp_path / f"doc-{i:02d}.txt") for i in range(n)],
                         "doc_key": ["file"] * n})
    # when each reads its half (counting the documents each side had left made the halves overlap)
    guard = benign_texts([tmp_path], [findings(10)], limit=100, half=0)
    audit = benign_texts([tmp_path], [findings(5)], limit=100, half=1)
    # then the audit never measures a text the guard held, even reading only some of the files
    assert guard
    assert audit
    assert not set(guard) & set(audit)
    files = [tmp_path / f"doc-{i:02d}.txt" for i in range(20, 40, 3)]
    some = benign_texts(files, [findings(5)], limit=100, half=1)
    assert some
    assert not set(guard) & set(some)


def test_a_text_the_corpus_repeats_is_counted_once(tmp_path):
    # given a short note stored thirty times and three other documents
    for i in range(30):
        (tmp_path / f"copy-{i:02d}.txt").write_text("call the office about the weekly meeting\n")
    for i in range(3):
        (tmp_path / f"doc-{i}.txt").write_text(f"plain note number {i} about the weekly meeting\n")
    none = pa.table({"source": pa.array([], pa.string()), "doc_key": pa.array([], pa.string())})
    # when the benign texts are read
    texts = benign_texts([tmp_path], [none], limit=100)
    # then the note is there once, next to the others
    assert len(texts) == 4
    assert texts.count("call the office about the weekly meeting\n") == 1


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


def test_the_audit_sample_stops_at_its_word_budget(tmp_path):
    # given twenty documents of eight words each
    for i in range(20):
        (tmp_path / f"doc-{i:02d}.txt").write_text(f"plain note number {i} about the weekly meeting\n")
    none = pa.table({"source": pa.array([], pa.string()), "doc_key": pa.array([], pa.string())})
    # when the texts are read with a budget of 20 words
    texts = benign_texts([tmp_path], [none], limit=100, max_words=20)
    # then reading stops at the first text that reaches it (three texts: 24 words)
    assert len(texts) == 3
    assert texts == benign_texts([tmp_path], [none], limit=100)[:3]
