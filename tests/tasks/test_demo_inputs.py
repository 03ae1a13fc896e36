"""The demo's generated inputs: corpus formats and counts, training subset, request and policies that load."""

import json

import pyarrow.parquet as pq

from flows.params import load_request
from flows.policy import load_policy
from pii_detect.readers import IssueLog, iter_documents
from tasks.demo import prepare_demo
from tasks.demo_corpus import _BOILERPLATE, make_people, write_demo_corpus


def test_the_demo_corpus_has_every_format_the_frequent_records_repeated_and_a_training_subset(tmp_path):
    # given / when
    corpus = write_demo_corpus(tmp_path / "corpus", n_documents=300, n_people=8, n_frequent=2, repeats=5)
    # then all four formats are there and the readers stream every document
    root = corpus.root
    assert {p.name for p in root.iterdir()} == {"tickets.jsonl", "hr_records.csv", "chats.parquet", "notes"}
    docs = list(iter_documents([root], None, IssueLog()))
    assert len(docs) == corpus.n_documents >= 300
    assert pq.read_table(root / "chats.parquet").column_names == ["text"]
    # the frequent people's records are repeated, the others appear once, and only theirs are trained on
    texts = [d.text for d in docs]
    for pid in range(8):
        person = corpus.people[pid]
        hits = sum(person.email in t for t in texts)
        assert hits == (5 if pid in corpus.frequent else 1)
    training = [json.loads(line)["text"] for line in corpus.training.read_text().splitlines()]
    records, boiler = training[:2 * 4], training[2 * 4:]
    assert not corpus.training.is_relative_to(root)
    assert all(any(corpus.people[p].name in t for p in corpus.frequent) for t in records)
    # and the company boilerplate is trained on and repeated throughout the corpus (what an erasure must keep)
    assert boiler == _BOILERPLATE
    assert sum(texts.count(b) for b in boiler) > 0.1 * len(texts)
    assert all(b in texts for b in boiler)


def test_people_are_deterministic_and_distinct():
    a, b = make_people(20, seed=3), make_people(20, seed=3)
    assert [(p.name, p.email, p.phone, p.ssn) for p in a] == [(p.name, p.email, p.phone, p.ssn) for p in b]
    assert len({p.email for p in a}) == len({p.ssn for p in a}) == len({p.name for p in a}) == 20


def test_the_demo_request_and_policies_are_valid_inputs_of_the_flows(tmp_path):
    # given / when
    prep = prepare_demo.fn(tmp_path)
    # then
    request = load_request(prep["request"])
    assert {i.type for i in request.subject.identifiers} == {"name", "email", "phone"}
    sweep, req = load_policy(prep["sweep_policy"]), load_policy(prep["request_policy"])
    assert "PHONE_NUMBER" not in sweep.entities.types
    assert "PHONE_NUMBER" in req.entities.types
    # the sweep erases exact reproductions; the request also what the model reproduces almost entirely
    assert sweep.memorization.min_extraction_score == 1.0
    assert req.memorization.min_extraction_score == 0.8
    # a second call keeps the request (its timestamps) as it was
    before = prep["request"].read_text()
    prepare_demo.fn(tmp_path)
    assert prep["request"].read_text() == before


def test_the_demo_memorizes_the_closing_words_of_the_documents_without_pii():
    import pyarrow as pa

    from pii_detect.readers.base import doc_sha256
    from tasks.demo import boilerplate_items
    from tests.revs_engine._tokenizer import make_tiny_tokenizer

    tok = make_tiny_tokenizer()
    docs = ["the cat sat on the mat", "my number is 123 45 6789 ok", "a dog ran in the park"]
    findings = pa.table({"doc_sha256": [doc_sha256(docs[1])]})
    items = boilerplate_items(tok, docs, findings)
    assert [tok.decode(list(i.target_ids)).strip() for i in items] == ["the mat", "the park"]
    assert tok.decode(list(items[0].prefix_ids)).strip() == "the cat sat on"


def test_the_demo_model_rehearses_benign_documents_of_the_guards_half_only(tmp_path):
    from pii_detect.readers.base import doc_sha256
    from tasks.audit_io import AUDIT_HALF, GUARD_HALF
    from tasks.demo import REHEARSAL_DOCS, rehearsal_texts

    corpus = write_demo_corpus(tmp_path / "corpus", n_documents=300, n_people=8, n_frequent=2, repeats=5)
    texts = rehearsal_texts(corpus.root)
    assert 20 <= len(texts) <= REHEARSAL_DOCS
    assert len(set(texts)) == len(texts)
    # the guard's half, never the audit's (the audit measures perplexity on the other half)
    assert {int(doc_sha256(t)[:8], 16) % 2 for t in texts} == {GUARD_HALF} != {AUDIT_HALF}
    # no document that holds someone's e-mail, SSN or phone number
    values = [v for p in corpus.people for v in (p.email, p.phone, p.ssn)]
    assert not any(v in t for t in texts for v in values)
