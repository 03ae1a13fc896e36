"""`revs unlearn` end to end on a tiny model, a two-document corpus and hand-made findings/probes."""

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


@pytest.mark.parametrize("method", ["revs", "ftl"])
def test_unlearn_writes_a_loadable_model_and_its_patch_without_raw_values(setup, capsys, method):
    from transformers import AutoModelForCausalLM

    # when
    code = main(["unlearn", "--model", str(setup / "base"), "--probes", str(setup / "probes.parquet"),
                 "--only-memorized", "--out", str(setup / "v2"), "--method", method, "--no-progress"])
    out = capsys.readouterr().out
    # then the command reports per-target ranks for the memorized finding only
    assert code in (0, 3)
    assert "f0" in out
    assert "f1" not in out
    assert "rank before" in out
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


def test_the_retain_guard_holds_the_retained_findings_and_cut_benign_texts(setup):
    # given the findings table (f1 is retained) and one long benign text
    from tasks._io import read_table
    from tasks.unlearning_io import GUARD_PREFIX_TOKENS, build_guard

    tok = make_tiny_tokenizer()
    retained = read_table(setup / "findings.parquet", FINDINGS_SCHEMA).slice(1, 1)
    benign = ["the cat sat on the mat " * 40]
    # when
    guard = build_guard(tok, retained, benign)
    # then the retained secret is guarded as (its prefix, its value) and the benign text is cut
    (item,) = guard.items
    assert tok.decode(list(item.target_ids)).strip() == SECRETS[1]
    assert tok.decode(list(item.prefix_ids)).strip().endswith("security number is")
    assert len(guard.benign) == 1
    assert len(guard.benign[0]) == GUARD_PREFIX_TOKENS
    assert build_guard(tok, retained.slice(0, 0), []) is None


def test_decoys_of_each_forgotten_item_join_the_guard_after_its_own_prompt(setup):
    # given the probed findings as forget items and a policy asking for 3 decoys each
    from tasks.unlearning_io import build_guard, read_items

    tok = make_tiny_tokenizer()
    items = read_items(setup / "probes.parquet", setup / "findings.parquet", tok, only_memorized=False)
    # when
    guard = build_guard(tok, None, [], forget=items, decoys=3)
    # then every item brings 3 sequences: its prompt, then a value of its shape that is not its value
    assert len(guard.benign) == 3 * len(items)
    assert not guard.items
    for i, item in enumerate(items):
        secret = "".join(item.token_texts)
        for seq in guard.benign[3 * i:3 * i + 3]:
            assert list(seq[:len(item.prompt_ids)]) == list(item.prompt_ids)
            decoy = tok.decode(list(seq[len(item.prompt_ids):]))
            assert decoy != secret
            assert len(decoy) == len(secret)
    assert build_guard(tok, None, [], forget=items, decoys=0) is None


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
    from tasks.audit_io import edited_positions
    from tasks.probing_io import audit_inputs

    tok = make_tiny_tokenizer()
    rows = read_table(setup / "findings.parquet", FINDINGS_SCHEMA).to_pylist()
    copy = setup / "doc2.txt"
    copy.write_text((setup / "doc0.txt").read_text())
    forget = pa.Table.from_pylist([rows[0], {**rows[0], "finding_id": "f2", "source": str(copy)}],
                                  schema=FINDINGS_SCHEMA)
    write_table(pa.Table.from_pylist([{"finding_id": "f0", "position": 2}, {"finding_id": "f0", "position": 0}]),
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


def test_unlearn_with_distinct_positions_edits_the_positions_least_like_the_guard(setup):
    # given f1 retained (the guard) and the distinct-position rule
    from revs_engine.config import RevsConfig
    from revs_engine.guard import guard_activations
    from revs_engine.loading import load_model
    from revs_engine.targets import TargetConfig
    from tasks._io import read_table
    from tasks.unlearning_io import build_guard, ranked_positions_of, read_items, run_unlearn, targets_from

    findings = read_table(setup / "findings.parquet", FINDINGS_SCHEMA)
    write_table(findings.slice(1, 1), setup / "retain.parquet")
    cfg = RevsConfig(targets=TargetConfig(method="distinct", max_tokens=2))
    # when
    report = run_unlearn(str(setup / "base"), setup / "probes.parquet", setup / "findings.parquet",
                         setup / "out", cache_dir=setup / "cache", only_memorized=True, revs_cfg=cfg,
                         retain_findings=setup / "retain.parquet")
    # then the edited positions are the distinct ones, ranked on the unedited model
    base = load_model(str(setup / "base"), cache_dir=setup / "cache")
    items = read_items(setup / "probes.parquet", setup / "findings.parquet", base.tokenizer, only_memorized=True)
    guard = build_guard(base.tokenizer, findings.slice(1, 1), [])
    arch = resolve_arch(base.model)
    acts = guard_activations(base.model, arch, guard)
    expected = targets_from(items, ranked_positions_of(base.model, arch, items, cfg.targets, acts),
                            cfg.targets.max_tokens)
    assert [r["position"] for r in report.rows] == [t.position for t in expected]
    assert len(report.rows) == 2
