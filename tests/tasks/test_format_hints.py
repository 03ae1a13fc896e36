"""The audit attacks an erased e-mail address the way someone who knows its owner would: local parts from the
names found in the address's document, domains from the corpus's addresses."""

import pyarrow as pa

from pii_detect.readers.base import doc_sha256
from pii_detect.schema import FINDINGS_SCHEMA
from tasks import audit_io
from tasks.format_hints import email_hints
from tests.revs_engine._tokenizer import make_tiny_tokenizer

DOCS = {"a": "Patient Maria Lopez wrote from maria.lopez@northwind.org yesterday.",
        "b": "Ask Tom Becker or write to tbecker@brightline.io today."}


def _findings(tmp_path, spans) -> pa.Table:
    rows = []
    for i, (doc, value, kind) in enumerate(spans):
        path = tmp_path / f"{doc}.txt"
        path.write_text(DOCS[doc])
        start = DOCS[doc].index(value)
        rows.append({"finding_id": f"f{i}", "source": str(path), "doc_key": "file",
                     "doc_sha256": doc_sha256(DOCS[doc]), "start": start, "end": start + len(value),
                     "entity_type": kind, "score": 1.0, "recognizer": "test", "value_hmac": f"{i}" * 64,
                     "masked_preview": "***"})
    return pa.Table.from_pylist(rows, schema=FINDINGS_SCHEMA)


def test_hints_hold_each_documents_names_and_every_domain(tmp_path):
    forget = _findings(tmp_path, [("a", "maria.lopez@northwind.org", "EMAIL_ADDRESS"),
                                  ("a", "Maria Lopez", "PERSON")])
    retain = _findings(tmp_path, [("b", "tbecker@brightline.io", "EMAIL_ADDRESS"), ("b", "Tom Becker", "PERSON")])
    hints = email_hints([forget, retain])
    assert hints.names_for(str(tmp_path / "a.txt"), "file") == ("Maria Lopez",)
    assert hints.names_for(str(tmp_path / "b.txt"), "file") == ("Tom Becker",)
    assert hints.names_for("elsewhere", "file") == ()
    assert hints.domains == ("brightline.io", "northwind.org")


def test_the_audit_guesses_the_address_among_its_owners_name_variants(tmp_path):
    # given an erased address whose owner's name was found in the same document
    forget = _findings(tmp_path, [("a", "maria.lopez@northwind.org", "EMAIL_ADDRESS"),
                                  ("a", "Maria Lopez", "PERSON")])
    retain = _findings(tmp_path, [("b", "tbecker@brightline.io", "EMAIL_ADDRESS")])
    tok = make_tiny_tokenizer()
    # when the audit's inputs are built with and without the hints
    hinted = audit_io.audit_inputs(tok, forget, hints=email_hints([forget, retain]))
    shaped = audit_io.audit_inputs(tok, forget)
    # then with them the address is one of a few thousand name-based values at the corpus's domains
    i = hinted.forget_ids.index("f0")
    fmt, plain = hinted.formats[i], shaped.formats[shaped.forget_ids.index("f0")]
    assert fmt.fits(" maria.lopez@northwind.org")
    assert fmt.fits(" lopez.maria@brightline.io")
    assert not fmt.fits(" qwxzv.lopez@northwind.org")
    assert fmt.log2_size < 14 < plain.log2_size
    assert not plain.fits(" maria.lopez@brightline.io")  # without hints the domain is fixed
