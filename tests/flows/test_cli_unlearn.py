"""`revs unlearn` end to end on a tiny model, a two-document corpus and hand-made findings/probes."""

import re

import pyarrow as pa
import pytest
import torch

from flows.cli import main
from pii_detect.readers.base import doc_sha256
from pii_detect.schema import FINDINGS_SCHEMA
from revs_engine.arch import resolve_arch
from revs_engine.hashing import weights_sha256
from revs_engine.patch import load_patch, revert_patch
from revs_engine.schema import PROBES_SCHEMA
from tasks._io import write_table
from tests.revs_engine._tokenizer import make_tiny_tokenizer

SECRETS = ["545-71-4735", "318-42-5906"]


@pytest.fixture
def setup(tmp_path):
    from transformers import AutoModelForCausalLM, LlamaConfig

    tok = make_tiny_tokenizer()
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=48, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      tie_word_embeddings=False, eos_token_id=0, bos_token_id=0, pad_token_id=0)
    model = AutoModelForCausalLM.from_config(cfg).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.mlp.down_proj.weight.mul_(30)
    model.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    findings, probes = [], []
    for i, secret in enumerate(SECRETS):
        text = f"Her social security number is {secret} on file."
        doc = tmp_path / f"doc{i}.txt"
        doc.write_text(text)
        start = text.index(secret)
        findings.append({"finding_id": f"f{i}", "source": str(doc), "doc_key": "file",
                         "doc_sha256": doc_sha256(text), "start": start, "end": start + len(secret),
                         "entity_type": "US_SSN", "score": 0.85, "recognizer": "test", "value_hmac": f"hmac{i}",
                         "masked_preview": f"***-**-{secret[-4:]}"})
        probes.append({"finding_id": f"f{i}", "prefix_tokens": 0, "target_tokens": 5, "prefix_truncated": False,
                       "exact_match": i == 0, "first_mismatch": -1 if i == 0 else 0,
                       "target_token_ranks": [0, 0, 0], "extraction_score": 1.0, "memorized": i == 0})
    write_table(pa.Table.from_pylist(findings, schema=FINDINGS_SCHEMA), tmp_path / "findings.parquet")
    write_table(pa.Table.from_pylist(probes, schema=PROBES_SCHEMA), tmp_path / "probes.parquet")
    return tmp_path


@pytest.mark.parametrize(("preset", "method"), [(None, "revs"), ("paper", "revs"), ("ftl", "ftl")])
def test_unlearn_writes_a_loadable_model_and_its_patch_without_raw_values(setup, capsys, preset, method):
    from transformers import AutoModelForCausalLM

    # when (no flags: the memorized findings, the default preset for the tokenizer)
    code = main(["unlearn", "--model", str(setup / "base"), "--probes", str(setup / "probes.parquet"),
                 "--out", str(setup / "v2"), "--no-progress", *(["--preset", preset] if preset else [])])
    out = capsys.readouterr().out
    # then the command reports per-target ranks for the memorized finding only
    assert code in (0, 3)
    assert re.search(r"\bf0\b", out)
    assert not re.search(r"\bf1\b", out)  # as a word: the weight hashes printed may contain "f1"
    assert "rank before" in out
    assert f"preset {preset or 'digits'} ({method}" in out  # the tiny tokenizer writes digits one per token
    assert all(s not in out for s in SECRETS)
    # the edited version loads with from_pretrained and its patch reverts it to the base
    edited = AutoModelForCausalLM.from_pretrained(setup / "v2")
    patch, manifest = load_patch(setup / "v2" / "patch")
    assert manifest.method == method
    assert manifest.target_hmacs == ["hmac0"]
    assert weights_sha256(edited) == manifest.edited_weights_sha256
    revert_patch(edited, resolve_arch(edited), patch, expect_base=manifest.base_weights_sha256)
    # and no raw value was written anywhere
    for path in (setup / "v2").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert all(s.encode() not in data for s in SECRETS), path
    assert not [p for p in setup.iterdir() if p.name.startswith(".tmp-")]


def test_existing_out_is_refused(setup, capsys):
    (setup / "v2").mkdir()
    code = main(["unlearn", "--model", str(setup / "base"), "--probes", str(setup / "probes.parquet"),
                 "--out", str(setup / "v2"), "--no-progress"])
    assert code == 2
    assert "exists" in capsys.readouterr().err


def test_a_value_repeated_in_the_same_context_is_edited_once(setup):
    # given f0's document duplicated (same value, same context) as finding f2, every finding probed as memorized
    from tasks._io import read_table
    from tasks.unlearning_io import read_items

    findings = read_table(setup / "findings.parquet", FINDINGS_SCHEMA).to_pylist()
    probes = read_table(setup / "probes.parquet", PROBES_SCHEMA).to_pylist()
    copy = setup / "doc2.txt"
    copy.write_text((setup / "doc0.txt").read_text())
    findings.append({**findings[0], "finding_id": "f2", "source": str(copy)})
    probes.append({**probes[0], "finding_id": "f2"})
    write_table(pa.Table.from_pylist(findings, schema=FINDINGS_SCHEMA), setup / "findings.parquet")
    write_table(pa.Table.from_pylist(probes, schema=PROBES_SCHEMA), setup / "probes.parquet")
    # when
    items = read_items(setup / "probes.parquet", setup / "findings.parquet", make_tiny_tokenizer(),
                       only_memorized=False)
    # then the copy adds no second edit; the other value is still there
    assert [i.finding_id for i in items] == ["f0", "f1"]
    assert {i.entity_type for i in items} == {"US_SSN"}


def test_the_audit_scores_the_positions_the_edit_targeted_also_for_a_deduplicated_copy(setup):
    # given f0 and a copy f2 of its value in another document, and an edit that targeted positions [0, 2] of f0
    from tasks._io import read_table
    from tasks.audit_io import audit_inputs, edited_positions

    tok = make_tiny_tokenizer()
    rows = read_table(setup / "findings.parquet", FINDINGS_SCHEMA).to_pylist()
    copy = setup / "doc2.txt"
    copy.write_text((setup / "doc0.txt").read_text())
    forget = pa.Table.from_pylist([rows[0], {**rows[0], "finding_id": "f2", "source": str(copy)}],
                                  schema=FINDINGS_SCHEMA)
    write_table(pa.Table.from_pylist([{"finding_id": "f0", "position": 2}, {"finding_id": "f0", "position": 0},
                                      {"finding_id": "f0", "position": 2}]),  # two tokens demoted at position 2
                setup / "edit" / "targets.parquet")
    positions = edited_positions(setup / "edit")
    # when
    by_rule = audit_inputs(tok, forget)
    by_edit = audit_inputs(tok, forget, positions=positions)
    # then both findings are scored at the edited positions; without them the rule picks its own
    assert positions == {"f0": [2, 0]}
    assert [(t.secret_index, t.position) for t in by_edit.forget] == [(0, 0), (0, 2), (1, 0), (1, 2)]
    assert [(t.secret_index, t.position) for t in by_rule.forget] != [(t.secret_index, t.position)
                                                                      for t in by_edit.forget]
    assert edited_positions(setup / "missing") == {}


def test_unlearn_guards_with_the_other_memorized_findings_and_erases_only_the_asked_types(setup):
    # given both findings probed as memorized, and an erase of one entity type only
    from tasks._io import read_table
    from tasks.unlearning_io import memorized_kept, read_items, run_unlearn

    probes = read_table(setup / "probes.parquet", PROBES_SCHEMA).to_pylist()
    findings = read_table(setup / "findings.parquet", FINDINGS_SCHEMA).to_pylist()
    findings[1]["entity_type"] = "PHONE_NUMBER"
    write_table(pa.Table.from_pylist(findings, schema=FINDINGS_SCHEMA), setup / "findings.parquet")
    write_table(pa.Table.from_pylist([{**r, "memorized": True} for r in probes], schema=PROBES_SCHEMA),
                setup / "probes.parquet")
    # when
    report = run_unlearn(str(setup / "base"), setup / "probes.parquet", setup / "findings.parquet",
                         setup / "out", cache_dir=setup / "cache", only_memorized=True, entities=["US_SSN"])
    # then only the SSN was edited, and the memorized phone is what the guard kept
    assert {r["finding_id"] for r in report.rows} == {"f0"}
    items = read_items(setup / "probes.parquet", setup / "findings.parquet", make_tiny_tokenizer(),
                       only_memorized=True, entities=["US_SSN"])
    kept = memorized_kept(setup / "probes.parquet", setup / "findings.parquet", items)
    assert kept.column("finding_id").to_pylist() == ["f1"]
    assert report.config["preset"] == "digits"
    targets = read_table(setup / "out" / "targets.parquet")
    assert targets.column("value_hmac").to_pylist() == ["hmac0"]


def test_an_erase_that_reads_a_corpus_sample_takes_benign_documents_of_the_guard_half(setup):
    # given benign documents beside the findings' ones, and a policy that re-projects the last block away from a
    # corpus sample
    from tasks._io import read_table
    from tasks.audit_io import GUARD_HALF
    from tasks.unlearning_io import corpus_sample, run_unlearn

    folder = setup / "benign"  # a corpus is given as files or directories
    folder.mkdir()
    for i in range(12):
        (folder / f"note{i}.txt").write_text(f"Note {i}: the committee met on day {i} and agreed on plan {i * 7} "
                                             "for the year.")
    findings = read_table(setup / "findings.parquet", FINDINGS_SCHEMA)
    policy = {"joint_final": 0.001, "joint_covariance": "corpus"}
    # then the sample holds only benign documents of the guard's half, none holding a finding
    sample = corpus_sample([folder, *(setup / f"doc{i}.txt" for i in range(2))], findings)
    assert sample
    assert all(int(doc_sha256(t)[:8], 16) % 2 == GUARD_HALF for t in sample)
    assert not any(s in t for s in SECRETS for t in sample)
    # and an erase without such documents (the findings' sources hold only the secrets) skips the step and
    # records that it did
    bare = run_unlearn(str(setup / "base"), setup / "probes.parquet", setup / "findings.parquet", setup / "out0",
                       cache_dir=setup / "cache", overrides=policy)
    assert (bare.config["revs"]["joint_final"], bare.config["revs"]["joint_covariance"],
            bare.config["revs"]["joint_variants"]) == (0.0, "guard", False)
    # while with the corpus it edits with the step and records the setting
    report = run_unlearn(str(setup / "base"), setup / "probes.parquet", setup / "findings.parquet",
                         setup / "out", cache_dir=setup / "cache", overrides=policy, corpus=[folder])
    assert (report.config["revs"]["joint_final"], report.config["revs"]["joint_covariance"]) == (0.001, "corpus")
    assert report.rows


def test_retained_findings_from_an_erased_persons_document_are_marked_related(setup):
    # given f0 erased, f1 retained in another document and f3 retained in f0's own document
    from tasks._io import read_table
    from tasks.unlearning_io import read_items, related_to_erased

    findings = read_table(setup / "findings.parquet", FINDINGS_SCHEMA)
    rows = findings.to_pylist()
    retain = pa.Table.from_pylist([rows[1], {**rows[0], "finding_id": "f3"}], schema=FINDINGS_SCHEMA)
    items = [i for i in read_items(setup / "probes.parquet", findings, make_tiny_tokenizer(), only_memorized=False)
             if i.finding_id == "f0"]
    # when
    flags = related_to_erased(["f1", "f3"], retain, findings, items)
    # then only the finding beside the erased one may speak of the erased person
    assert flags == (False, True)
    assert related_to_erased([], retain, findings, items) == ()
    assert related_to_erased(["f1"], None, findings, items) == ()
