"""`revs scan` and `revs locate` end to end through the CLI entry point."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from flows.cli import main
from pii_detect import FINDINGS_SCHEMA

SSN = "536-22-8412"
EMAIL = "marta.quist@northwind-mail.com"


@pytest.fixture
def corpus(tmp_path):
    d = tmp_path / "corpus"
    d.mkdir()
    (d / "a.jsonl").write_text(json.dumps({"text": f"ssn {SSN}"}) + "\nnot json\n")
    (d / "b.txt").write_text(f"mail {EMAIL}\n")
    (d / "c.txt").write_bytes(b"\x00\x01")
    return d


def test_scan_writes_findings_and_summary(corpus, tmp_path, capsys):
    out = tmp_path / "f.parquet"
    code = main(["scan", str(corpus), "--out", str(out), "--no-progress"])
    printed = capsys.readouterr()
    assert code == 0
    table = pq.read_table(out)
    assert table.schema.equals(FINDINGS_SCHEMA, check_metadata=False)
    assert sorted(table.column("entity_type").to_pylist()) == ["EMAIL_ADDRESS", "US_SSN"]
    assert "| US_SSN" in printed.out
    assert "malformed_json" in printed.out
    assert "binary" in printed.out
    assert "a.jsonl:line 2" in printed.out
    assert SSN not in printed.out + printed.err
    assert EMAIL not in printed.out + printed.err
    assert SSN.encode() not in out.read_bytes()


def test_scan_entities_and_workers(corpus, tmp_path):
    out = tmp_path / "f.parquet"
    assert main(["scan", str(corpus), "--out", str(out), "--entities", "us_ssn", "--workers", "2",
                 "--no-progress"]) == 0
    assert pq.read_table(out).column("entity_type").to_pylist() == ["US_SSN"]


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--entities", "NOPE"], 2, "unknown entities"),
        (["--workers", "0"], 2, "--workers"),
    ],
)
def test_scan_bad_arguments(corpus, tmp_path, capsys, argv, code, message):
    assert main(["scan", str(corpus), "--out", str(tmp_path / "f.parquet"), "--no-progress", *argv]) == code
    assert message in capsys.readouterr().err


def test_scan_nothing_readable_exits_1(tmp_path, capsys):
    (tmp_path / "bin.txt").write_bytes(b"\x00\x00")
    out = tmp_path / "f.parquet"
    assert main(["scan", str(tmp_path / "bin.txt"), "--out", str(out)]) == 1
    err = capsys.readouterr()
    assert "no document could be read" in err.err
    assert "binary" in err.out
    assert not out.exists()


def test_scan_with_a_missing_corpus_path_is_a_user_error_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("ssn 536-22-8412\n")
    out = tmp_path / "f.parquet"
    assert main(["scan", str(tmp_path / "a.txt"), str(tmp_path / "missing"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"CORPUS {tmp_path / 'missing'}: no such file or directory" in err
    assert not out.exists()


def test_locate_writes_same_schema(corpus, tmp_path, capsys):
    request = tmp_path / "req.json"
    request.write_text(json.dumps({"request_id": "r-1", "subject": {"name": "Marta Quist", "identifiers": [
        {"type": "ssn", "value": "536 22 8412"}, {"type": "email", "value": EMAIL.upper()}]}}))
    out = tmp_path / "loc.parquet"
    assert main(["locate", "--request", str(request), str(corpus), "--out", str(out), "--no-progress"]) == 0
    table = pq.read_table(out)
    assert table.schema.equals(FINDINGS_SCHEMA, check_metadata=False)
    assert sorted(table.column("entity_type").to_pylist()) == ["EMAIL_ADDRESS", "US_SSN"]
    assert "r-1" in capsys.readouterr().out


def test_locate_bad_request_names_field(corpus, tmp_path, capsys):
    request = tmp_path / "req.json"
    request.write_text(json.dumps({"subject": {"identifiers": [{"type": "fax", "value": "1"}]}}))
    assert main(["locate", "--request", str(request), str(corpus), "--out", str(tmp_path / "o.parquet")]) == 2
    assert "subject.identifiers[0].type" in capsys.readouterr().err
    request.write_text("{not json")
    assert main(["locate", "--request", str(request), str(corpus), "--out", str(tmp_path / "o.parquet")]) == 2
