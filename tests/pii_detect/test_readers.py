"""Every reader, doc_key stability, re-reading spans, and every bad-input case (skipped and counted)."""

from __future__ import annotations

import gzip
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pii_detect import (
    CorpusChangedError,
    DocumentNotFoundError,
    IssueLog,
    ReaderOptions,
    iter_corpus_files,
    iter_documents,
    read_document,
    read_documents,
    read_span,
)
from pii_detect.readers import doc_sha256, read_file

SSN = "536-22-8412"


def docs_of(paths, opts=None):
    issues = IssueLog()
    docs = list(iter_documents([str(p) for p in paths], opts or ReaderOptions(), issues))
    return docs, issues


def write(path, data: bytes, gz: bool = False):
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def parquet_bytes(table: pa.Table, tmp_path) -> bytes:
    p = tmp_path / "_tmp.parquet"
    pq.write_table(table, p, row_group_size=3)
    data = p.read_bytes()
    p.unlink()
    return data


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    ("name", "payload", "opts", "expected"),
    [
        ("a.txt", b"hello\nssn 536-22-8412\n", ReaderOptions(), [("file", "hello\nssn 536-22-8412\n")]),
        ("a.md", b"# t\r\n\r\nssn 536-22-8412\r\n", ReaderOptions(line_mode=True),
         [("line:1", "# t"), ("line:3", "ssn 536-22-8412")]),
        ("a.log", b"x\n\ny", ReaderOptions(line_mode=True), [("line:1", "x"), ("line:3", "y")]),
        ("a.jsonl", b'{"meta": {"body": "one"}}\n\n{"meta": {"body": "two"}}\n',
         ReaderOptions(jsonl_field="meta.body"),
         [("jsonl:line=1:field=meta.body", "one"), ("jsonl:line=3:field=meta.body", "two")]),
        ("a.csv", b'id,body,note\n1,"multi\nline",n1\n2,plain,n2\n', ReaderOptions(text_columns=("body", "note")),
         [("csv:row=0:col=body", "multi\nline"), ("csv:row=0:col=note", "n1"), ("csv:row=1:col=body", "plain"),
          ("csv:row=1:col=note", "n2")]),
        ("a.tsv", b"body\tid\nx y\t1\n", ReaderOptions(text_columns=("body",)), [("csv:row=0:col=body", "x y")]),
    ],
)
def test_text_readers_yield_stable_keys_and_reread(tmp_path, name, payload, opts, expected, gz):
    # given
    path = write(tmp_path / (name + (".gz" if gz else "")), payload, gz)
    # when
    docs, issues = docs_of([path], opts)
    # then
    assert [(d.doc_key, d.text) for d in docs] == expected
    assert issues.total == 0
    assert all(d.source == os.path.abspath(path) for d in docs)
    for d in docs:
        assert read_document(d.source, d.doc_key, expected_sha256=d.sha256) == d.text
    assert docs_of([path], opts)[0] == docs  # stable across reads


@pytest.mark.parametrize("gz", [False, True])
def test_parquet_reader_reads_batches_and_rereads_rows(tmp_path, gz):
    texts = [f"row {i} ssn {SSN}" if i % 3 == 0 else (None if i % 3 == 1 else f"row {i}") for i in range(10)]
    table = pa.table({"text": texts, "n": list(range(10))})
    path = write(tmp_path / ("c.parquet" + (".gz" if gz else "")), parquet_bytes(table, tmp_path), gz)
    docs, issues = docs_of([path], ReaderOptions(batch_rows=4))
    assert [d.doc_key for d in docs] == [f"parquet:row={i}:col=text" for i in range(10) if texts[i]]
    assert [d.text for d in docs] == [t for t in texts if t]
    assert issues.total == 0
    got = read_documents(docs[0].source, [d.doc_key for d in docs])
    assert got == {d.doc_key: d.text for d in docs}


def test_directory_walk_recursive_sorted_with_globs(tmp_path):
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    write(tmp_path / "b.txt", b"b")
    write(tmp_path / "a.txt", b"a")
    write(tmp_path / "sub" / "deep" / "c.jsonl", b'{"text": "c"}\n')
    write(tmp_path / "sub" / "skip.bak.txt", b"skip")
    write(tmp_path / ".git" / "HEAD.txt", b"hidden")
    write(tmp_path / "img.png", b"\x89PNG")
    docs, issues = docs_of([tmp_path], ReaderOptions(exclude=("*.bak.txt",)))
    assert [d.text for d in docs] == ["a", "b", "c"]
    assert issues.counts == {"unsupported": 1}
    only, _ = docs_of([tmp_path], ReaderOptions(include=("sub/*",), exclude=("*.bak.txt",)))
    assert [d.text for d in only] == ["c"]
    by_name, _ = docs_of([tmp_path], ReaderOptions(include=("*.jsonl",)))
    assert [d.text for d in by_name] == ["c"]


def test_read_span_and_corpus_change_detection(tmp_path):
    path = write(tmp_path / "a.jsonl", json.dumps({"text": f"my ssn is {SSN}"}).encode() + b"\n")
    (doc,), _ = docs_of([path])
    start = doc.text.index(SSN)
    assert read_span(doc.source, doc.doc_key, start, start + 11, expected_sha256=doc.sha256) == SSN
    assert doc.sha256 == doc_sha256(f"my ssn is {SSN}")
    path.write_bytes(json.dumps({"text": "my ssn is 536-22-8413"}).encode() + b"\n")
    with pytest.raises(CorpusChangedError, match="rescan"):
        read_span(doc.source, doc.doc_key, start, start + 11, expected_sha256=doc.sha256)
    with pytest.raises(DocumentNotFoundError):
        read_document(doc.source, "jsonl:line=7:field=text")
    with pytest.raises(ValueError, match="doc_key"):
        read_document(doc.source, "bogus")


@pytest.mark.parametrize(
    ("name", "payload", "opts", "kind", "location", "n_docs"),
    [
        ("empty.txt", b"", ReaderOptions(), "empty", "", 0),
        ("empty.jsonl", b"", ReaderOptions(), "empty", "", 0),
        ("bin.txt", b"abc\x00\x01\x02", ReaderOptions(), "binary", "", 0),
        ("bad.txt", b"ok line\nbad \xff\xfe byte 536-22-8412\n", ReaderOptions(line_mode=True), "invalid_utf8",
         "line 2", 2),
        ("bad.jsonl", b'{"text": "a"}\n{"text": \n{"text": "c"}\n', ReaderOptions(), "malformed_json",
         "line 2", 2),
        ("miss.jsonl", b'{"text": "a"}\n{"body": "b"}\n', ReaderOptions(), "missing_field", "line 2", 1),
        ("num.jsonl", b'{"text": 5}\n{"text": "b"}\n', ReaderOptions(), "not_text", "line 1", 1),
        ("miss.csv", b"id,body\n1,x\n", ReaderOptions(text_columns=("text",)), "missing_column", "column text", 0),
        ("part.csv", b"id,body\n1,x\n", ReaderOptions(text_columns=("body", "text")), "missing_column",
         "column text", 1),
        ("empty.csv", b"", ReaderOptions(), "empty", "", 0),
        ("trunc.txt.gz", gzip.compress(b"line one\n" * 5000)[:-40], ReaderOptions(line_mode=True), "unreadable",
         None, None),
    ],
)
def test_bad_input_is_skipped_counted_and_located(tmp_path, name, payload, opts, kind, location, n_docs):
    # given a bad file next to a good one
    bad = write(tmp_path / name, payload)
    good = write(tmp_path / "zz_good.txt", b"still scanned")
    # when
    docs, issues = docs_of([bad, good], opts)
    # then the good file is still read and the issue names file and line
    assert docs[-1].text == "still scanned"
    assert issues.counts[kind] == 1
    issue = next(i for i in issues.examples if i.kind == kind)
    assert issue.source == os.path.abspath(bad)
    if location is not None:
        assert issue.location == location
    if n_docs is not None:
        assert len(docs) - 1 == n_docs


def test_invalid_utf8_is_replaced_consistently_on_reread(tmp_path):
    path = write(tmp_path / "bad.txt", b"caf\xe9 ssn 536-22-8412")
    (doc,), issues = docs_of([path])
    assert "\ufffd" in doc.text
    assert issues.counts["invalid_utf8"] == 1
    assert read_document(doc.source, doc.doc_key, expected_sha256=doc.sha256) == doc.text


def test_parquet_missing_and_non_text_columns(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"n": [1, 2], "body": ["x", "y"]}), path)
    docs, issues = docs_of([path], ReaderOptions(text_columns=("text", "n", "body")))
    assert [d.text for d in docs] == ["x", "y"]
    assert issues.counts == {"missing_column": 1, "not_text": 1}


def test_missing_path_unreadable_and_broken_symlink(tmp_path):
    (tmp_path / "d").mkdir()
    os.symlink(tmp_path / "d" / "nowhere.txt", tmp_path / "d" / "broken.txt")
    write(tmp_path / "d" / "ok.txt", b"fine")
    docs, issues = docs_of([tmp_path / "missing.txt", tmp_path / "d"])
    assert [d.text for d in docs] == ["fine"]
    assert issues.counts == {"not_found": 1, "unreadable": 1}


def test_long_line_is_reported_and_kept_whole(tmp_path):
    line = ("word " * 220_000) + SSN
    path = write(tmp_path / "long.txt", (line + "\nshort\n").encode())
    docs, issues = docs_of([path], ReaderOptions(line_mode=True))
    assert [len(d.text) for d in docs] == [len(line), 5]
    assert issues.counts == {"long_document": 1}
    assert issues.examples[0].location == "line 1"


# --- discovery: one rule for every entry point ------------------------------------------------------------------


@pytest.fixture
def no_hang():
    """Fail (instead of hanging the suite) when a read blocks, e.g. on a FIFO."""
    import signal

    class ReaderBlockedError(Exception):  # not an OSError: the readers must not swallow it
        pass

    def boom(*_):
        raise ReaderBlockedError("the reader blocked")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_fifo_named_txt_is_skipped_with_an_issue_not_opened(tmp_path, no_hang):
    # given a FIFO named like a text file, in a corpus directory and named explicitly
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    os.mkfifo(corpus / "pipe.txt")
    write(corpus / "ok.txt", f"ssn {SSN}".encode())
    # when
    docs, issues = docs_of([corpus, corpus / "pipe.txt"])
    # then: the regular file is read, the FIFO never opened (no writer: opening it would block forever)
    assert [d.text for d in docs] == [f"ssn {SSN}"]
    assert issues.counts == {"not_regular": 2}
    assert all("FIFO" in i.detail and i.source.endswith("pipe.txt") for i in issues.examples)
    assert list(read_file(corpus / "pipe.txt", ReaderOptions())) == []  # the re-read path is guarded too


def _linked_corpus(tmp_path):
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    write(outside / "secret.txt", b"outside file")
    write(outside / "sub" / "deep.txt", b"outside dir")
    corpus = tmp_path / "corpus"
    (corpus / "inner").mkdir(parents=True)
    write(corpus / "inner" / "a.txt", b"inside")
    os.symlink(outside / "secret.txt", corpus / "to_secret.txt")
    os.symlink(outside / "sub", corpus / "to_sub")
    os.symlink(corpus / "inner" / "a.txt", corpus / "alias.txt")  # inside the root: read
    os.symlink(corpus, corpus / "inner" / "loop")  # a cycle, only walked with follow_symlinks
    return corpus


def test_symlinks_out_of_the_corpus_are_refused_with_an_issue(tmp_path):
    corpus = _linked_corpus(tmp_path)
    docs, issues = docs_of([corpus])
    assert sorted(d.text for d in docs) == ["inside", "inside"]  # inner/a.txt and alias.txt
    assert issues.counts == {"symlink_outside": 2}
    assert {os.path.basename(i.source) for i in issues.examples} == {"to_secret.txt", "to_sub"}
    assert all("--follow-symlinks" in i.detail for i in issues.examples)


def test_follow_symlinks_reads_them_and_walks_each_directory_once(tmp_path, no_hang):
    corpus = _linked_corpus(tmp_path)
    docs, issues = docs_of([corpus], ReaderOptions(follow_symlinks=True))
    assert sorted(d.text for d in docs) == ["inside", "inside", "outside dir", "outside file"]
    assert issues.total == 0


def test_hidden_entries_and_unknown_suffixes_in_directories_but_not_named_files(tmp_path):
    corpus = tmp_path / "c"
    (corpus / ".git").mkdir(parents=True)
    write(corpus / ".git" / "HEAD.txt", b"hidden dir")
    write(corpus / ".notes.txt", b"hidden file")
    write(corpus / "data.bin", b"unknown suffix")
    write(corpus / "a.txt", b"kept")
    docs, issues = docs_of([corpus])
    assert [d.text for d in docs] == ["kept"]
    assert issues.counts == {"unsupported": 1}
    named, named_issues = docs_of([corpus / "data.bin", corpus / ".notes.txt"])  # named: read as plain text
    assert [d.text for d in named] == ["unknown suffix", "hidden file"]
    assert named_issues.total == 0
    assert list(iter_corpus_files([corpus])) == [corpus / "a.txt"]
