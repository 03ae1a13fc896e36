"""`revs probe` and `revs audit` end to end on a tiny saved model and a 3-document corpus (no raw values out)."""

import pyarrow as pa
import pytest

from flows.cli import main
from pii_detect.readers.base import doc_sha256
from pii_detect.schema import FINDINGS_SCHEMA
from revs_engine.memorize import MemorizeConfig, memorize
from revs_engine.saving import save_model
from revs_engine.schema import AUDIT_SCHEMA, PROBES_SCHEMA
from tasks import _io, probing_io
from tests.revs_engine._tokenizer import make_tiny_tokenizer
from tests.revs_engine.tiny import tiny_model

DOCS = [("Contact john.doe@example.com for the report.", "john.doe@example.com"),
        ("Call 555-0142 or write to jane@example.org today.", "jane@example.org"),
        ("The quick brown fox jumps over the lazy dog.", "lazy dog")]


def _findings(corpus, rows):
    out = []
    for i in rows:
        text, value = DOCS[i]
        path = corpus / f"doc{i}.txt"
        start = text.index(value)
        out.append({"finding_id": f"f{i}", "source": str(path), "doc_key": "file", "doc_sha256": doc_sha256(text),
                    "start": start, "end": start + len(value), "entity_type": "EMAIL_ADDRESS", "score": 1.0,
                    "recognizer": "test", "value_hmac": f"h{i}", "masked_preview": "***"})
    return pa.Table.from_pylist(out, schema=FINDINGS_SCHEMA)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("cli_probe")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, (text, _) in enumerate(DOCS):
        (corpus / f"doc{i}.txt").write_text(text, encoding="utf-8")
    tok = make_tiny_tokenizer()
    model = tiny_model("llama", vocab_size=320)
    everything = _findings(corpus, [0, 1, 2])
    ids, items = probing_io.probe_items(tok, probing_io.read_probe_texts(everything))
    # memorize documents 0 and 1 only
    memorize(model, [list(it.prefix_ids + it.target_ids) for it in items[:2]], items[:2],
             MemorizeConfig(lr=3e-2, batch_size=2, max_epochs=40, warmup_steps=0, progress=False))
    save_model(model, tok, tmp_path / "model")
    paths = {"model": tmp_path / "model", "all": tmp_path / "all.parquet", "forget": tmp_path / "forget.parquet",
             "retain": tmp_path / "retain.parquet"}
    _io.write_table(everything, paths["all"], FINDINGS_SCHEMA)
    _io.write_table(_findings(corpus, [0]), paths["forget"], FINDINGS_SCHEMA)
    _io.write_table(_findings(corpus, [1]), paths["retain"], FINDINGS_SCHEMA)
    return tmp_path, paths


def test_probe_command_writes_the_probes_table_without_values(workspace, capsys):
    tmp_path, p = workspace
    out = tmp_path / "probes.parquet"
    assert main(["probe", "--model", str(p["model"]), "--findings", str(p["all"]), "--out", str(out)]) == 0
    table = _io.read_table(out, PROBES_SCHEMA)
    verdicts = dict(zip(table.column("finding_id").to_pylist(), table.column("memorized").to_pylist(),
                        strict=True))
    assert verdicts == {"f0": True, "f1": True, "f2": False}
    assert "3 findings: 2 reproduced exactly" in capsys.readouterr().out
    raw = out.read_bytes()
    for _, value in DOCS:
        assert value.encode() not in raw


def test_audit_command_prints_every_metric_with_its_k(workspace, capsys):
    tmp_path, p = workspace
    out = tmp_path / "audit.parquet"
    code = main(["audit", "--model", str(p["model"]), "--reference", str(p["model"]), "--forget", str(p["forget"]),
                 "--retain", str(p["retain"]), "--out", str(out), "--k", "5", "10"])
    assert code == 0
    table = _io.read_table(out, AUDIT_SCHEMA)
    assert set(table.column("stage").to_pylist()) == {"before", "after"}
    printed = capsys.readouterr().out
    for metric in ("efficacy", "logit_lens", "delta", "perturb", "specificity", "unlearning_score",
                   "resistance_score"):
        assert metric in printed
    assert "specificity" in printed
    for _, value in DOCS:
        assert value.encode() not in out.read_bytes()
        assert value not in printed
