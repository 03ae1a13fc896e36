"""tasks.pii through ``.fn()``: the flows find corpus files by the library's one discovery rule."""

import logging
import os

import pytest

from tasks import pii


def _corpus(tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / ".cache").mkdir(parents=True)
    (corpus / "a.txt").write_text("one")
    (corpus / "b.jsonl").write_text('{"text": "two"}\n')
    (corpus / ".cache" / "c.txt").write_text("hidden")
    (corpus / "model.bin").write_bytes(b"\x00\x01")
    os.mkfifo(corpus / "pipe.txt")
    outside = tmp_path / "outside.txt"
    outside.write_text("outside")
    os.symlink(outside, corpus / "link.txt")
    return corpus


def test_partition_corpus_uses_the_scan_discovery_rule(tmp_path, caplog):
    # given a corpus with a hidden file, an unknown suffix, a FIFO and a link out of it
    corpus = _corpus(tmp_path)
    # when
    with caplog.at_level(logging.WARNING):
        parts = pii.partition_corpus.fn([corpus], 4)
    # then only the two corpus files are scanned, and each skipped entry is logged by kind and path
    assert sorted(p.name for part in parts for p in part) == ["a.txt", "b.jsonl"]
    for expected in ("not_regular=1", "symlink_outside=1", "unsupported=1", "pipe.txt", "link.txt"):
        assert expected in caplog.text


def test_partition_corpus_follows_symlinks_on_request(tmp_path):
    parts = pii.partition_corpus.fn([_corpus(tmp_path)], 1, follow_symlinks=True)
    assert [p.name for p in parts[0]] == ["a.txt", "b.jsonl", "link.txt"]


def test_partition_corpus_without_any_file_says_what_was_skipped(tmp_path):
    (tmp_path / "c").mkdir()
    os.mkfifo(tmp_path / "c" / "only.txt")
    with pytest.raises(FileNotFoundError, match=r"not_regular=1.*supported file types"):
        pii.partition_corpus.fn([tmp_path / "c"], 2)


def test_scan_task_uses_the_policys_phone_regions(tmp_path):
    import pyarrow.parquet as pq

    corpus = tmp_path / "c.txt"
    corpus.write_text("My Israeli number is 09-7625400 and my US one is (415) 555-0132.\n")
    us_only = pii.scan_corpus.fn([corpus], tmp_path / "us.parquet", ["PHONE_NUMBER"], 0.4, ["US"])
    default = pii.scan_corpus.fn([corpus], tmp_path / "all.parquet", ["PHONE_NUMBER"], 0.4)
    assert pq.read_table(us_only).num_rows == 1
    assert pq.read_table(default).num_rows == 2
