"""Engine tests: the only ones that load the spaCy model (session-scoped)."""

from __future__ import annotations

import pytest

from pii_detect import ScanConfig, Scanner
from pii_detect.engine import build_analyzer, load_ner_pipeline


@pytest.fixture(scope="session")
def nlp():
    return load_ner_pipeline()


def test_ner_pipeline_is_explicit_and_ner_only(nlp):
    assert nlp.pipe_names == ["ner"]
    assert nlp.max_length == 1_000_000


def test_ner_entities_only_when_asked(nlp):
    text = "Yesterday Angela Merkel met Barack Obama in Berlin; mail a@example.com"
    structured = Scanner(ScanConfig(), b"k", nlp=nlp)
    assert {s.entity_type for s in structured.find_spans(text)} == {"EMAIL_ADDRESS"}
    both = Scanner(ScanConfig(entities=("PERSON", "LOCATION", "EMAIL_ADDRESS")), b"k", nlp=nlp)
    got = {(s.entity_type, text[s.start:s.end]) for s in both.find_spans(text)}
    assert {("PERSON", "Angela Merkel"), ("PERSON", "Barack Obama"), ("LOCATION", "Berlin"),
            ("EMAIL_ADDRESS", "a@example.com")} <= got


def test_ner_chunks_long_text_without_cutting_or_duplicating_names(nlp):
    cfg = ScanConfig(entities=("PERSON",), chunk_size=2_000, chunk_overlap=200)
    sentence = "The weather is calm today and Barack Obama spoke. "
    text = sentence * 200
    spans = Scanner(cfg, b"k", nlp=nlp).find_spans(text)
    starts = [s.start for s in spans]
    assert starts == sorted(set(starts))
    assert all(text[s.start:s.end] == "Barack Obama" for s in spans)
    assert len(spans) >= 190  # the small model misses a few; a cut or duplicated name would fail above


@pytest.mark.slow
def test_ner_on_text_over_spacy_limit_is_chunked(nlp, monkeypatch):
    # spaCy's limit lowered to 120,000 characters: the same refusal (E088) as at its real 1,000,000, on a text a
    # tenth as long (the real size took 35 s of NER)
    monkeypatch.setattr(nlp, "max_length", 120_000)
    cfg = ScanConfig(entities=("PERSON",), chunk_size=50_000, chunk_overlap=500)
    text = ("The weather is calm today. " * 5_000) + "Then Barack Obama spoke."
    assert len(text) > nlp.max_length
    with pytest.raises(ValueError, match="E088"):
        nlp(text)  # what an unchunked call does
    spans = Scanner(cfg, b"k", nlp=nlp).find_spans(text)
    assert [(s.entity_type, text[s.start:s.end]) for s in spans] == [("PERSON", "Barack Obama")]


@pytest.mark.slow
def test_build_analyzer_runs_offline():
    analyzer = build_analyzer()
    results = analyzer.analyze("mail john@example.com, ssn 536-22-8412", language="en",
                               entities=["EMAIL_ADDRESS", "US_SSN"])
    assert {r.entity_type for r in results} == {"EMAIL_ADDRESS", "US_SSN"}


def test_structured_span_beats_overlapping_ner_span(nlp):
    scanner = Scanner(ScanConfig(entities=("PERSON", "IP_ADDRESS", "EMAIL_ADDRESS")), b"k", nlp=nlp)
    text = "Login from 10.23.4.5 was blocked. Contact: olga.ivanova@example.com"
    got = [(s.entity_type, text[s.start:s.end]) for s in scanner.find_spans(text)]
    assert ("IP_ADDRESS", "10.23.4.5") in got
    assert ("EMAIL_ADDRESS", "olga.ivanova@example.com") in got
    assert all(e != "PERSON" or "@" not in v and "10.23" not in v for e, v in got)


def test_ner_findings_carry_no_raw_names(nlp, tmp_path):
    # given documents naming people (NER entities) and an e-mail address
    import pyarrow.parquet as pq

    from pii_detect import Document, findings_to_table

    names = ["Angela Merkel", "Barack Obama"]
    docs = [Document("/c/a.txt", f"line:{i}", f"Yesterday {n} met the press in Berlin.")
            for i, n in enumerate(names, 1)]
    scanner = Scanner(ScanConfig(entities=("PERSON", "LOCATION")), b"k" * 32, nlp=nlp)
    # when
    findings = scanner.scan_documents(docs)
    out = tmp_path / "f.parquet"
    pq.write_table(findings_to_table(findings), out, compression="none")
    # then names were found, previews are masked, and neither names nor their parts reach the file
    assert {f.masked_preview for f in findings if f.entity_type == "PERSON"} == {"A*** M***", "B*** O***"}
    blob = out.read_bytes()
    for part in [*names, "Merkel", "Obama", "Angela", "Barack", "Berlin"]:
        assert part.encode() not in blob
    assert not [f for f in findings for n in names if n in repr(f)]
