"""One tokenisation of a finding for every stage: the audit scores the very tokens the edit targeted.

Regression: probes and the audit used to split ``"SSN 219-09-9999"`` as ``"SSN "`` + ``"219-09-9999"`` while the
edit used ``"SSN"`` + ``" 219-09-9999"``; the edit's token positions then pointed one token further in the
audit (SmolLM2: ``" "`` is a token of its own), and e-mails were probed on a token sequence the document never has.
"""

import pyarrow as pa
import pyarrow.parquet as pq

from pii_detect.readers.base import doc_sha256
from pii_detect.schema import FINDINGS_SCHEMA
from revs_engine.schema import PROBES_SCHEMA
from tasks import audit_io, probing_io
from tasks.probing_io import split_finding
from tasks.unlearning_io import read_items
from tests.revs_engine._tokenizer import make_tiny_tokenizer

DOC = "Her social security number is 219-09-9999 and mail john.doe@example.com today."


def test_a_space_before_the_value_belongs_to_the_target():
    start = DOC.index("219")
    assert split_finding(DOC, start, start + 11) == (DOC[:start - 1], " 219-09-9999")
    # no space before it, or a value that already starts with one: unchanged
    assert split_finding("SSN:219", 4, 7) == ("SSN:", "219")
    assert split_finding("a  b", 2, 4) == ("a ", " b")


def _findings(path) -> pa.Table:
    rows = []
    for i, (value, kind) in enumerate((("219-09-9999", "US_SSN"), ("john.doe@example.com", "EMAIL_ADDRESS"))):
        start = DOC.index(value)
        rows.append({"finding_id": f"f{i}", "source": str(path), "doc_key": "file", "doc_sha256": doc_sha256(DOC),
                     "start": start, "end": start + len(value), "entity_type": kind, "score": 1.0,
                     "recognizer": "test", "value_hmac": f"{i}" * 64, "masked_preview": "***"})
    return pa.Table.from_pylist(rows, schema=FINDINGS_SCHEMA)


def test_probe_audit_and_edit_tokenise_a_finding_alike(tmp_path):
    # given a document with two findings and the probes of both
    doc = tmp_path / "doc.txt"
    doc.write_text(DOC)
    findings = _findings(doc)
    tok = make_tiny_tokenizer()
    probes_path = tmp_path / "probes.parquet"
    probe_rows = [{name: None for name in PROBES_SCHEMA.names} | {"finding_id": f, "memorized": True}
                  for f in ("f0", "f1")]
    pq.write_table(pa.Table.from_pylist(probe_rows, schema=PROBES_SCHEMA), probes_path)
    findings_path = tmp_path / "findings.parquet"
    pq.write_table(findings, findings_path)
    # when the edit, the probe and the audit tokenise them
    edit = {it.finding_id: (it.secret.prompt_ids, it.secret.secret_ids)
            for it in read_items(probes_path, findings_path, tok, only_memorized=False)}
    ids, items = probing_io.probe_items(tok, probing_io.read_probe_texts(findings))
    positions = {f: [len(edit[f][1]) - 1] for f in edit}  # the edit targeted each value's last token
    audit = audit_io.audit_inputs(tok, findings, positions=positions)
    # then all three see the same token sequences, and the audit scores the token the edit targeted
    for fid, item in zip(ids, items, strict=True):
        assert (item.prefix_ids, item.target_ids) == edit[fid]
    for target, fid in zip(audit.forget, audit.forget_ids, strict=True):
        prompt_ids, secret_ids = edit[fid]
        assert target.token_id == secret_ids[-1]
        assert target.prefix_ids == prompt_ids + secret_ids[:-1]
    assert sorted(audit.forget_ids) == ["f0", "f1"]
