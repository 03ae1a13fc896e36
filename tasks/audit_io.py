"""Glue for the before/after audit of an edit (plain functions; :mod:`tasks.auditing` wraps them as tasks).

Offers :func:`benign_texts` (corpus documents holding no finding of the run: held-out text for perplexity),
:func:`retain_items` (what Specificity checks: retained findings and benign continuations that the *unedited*
model reproduces), :func:`audit_edit` (both stages, as one audit table) and :func:`verdict_metrics` (audit table →
the metrics dict of :func:`tasks.verdict.evaluate_audit`) with :func:`summary` (aggregate scores per stage).

Extra rows beyond :func:`revs_engine.metrics.audit_model`'s, in the same ``AUDIT_SCHEMA``:
``perturbed_greedy_extraction`` (greedy decoding from the Perturbation attack's prompts reproduces the value) and
``layer_rank`` (mean rank of the target tokens in each layer's residual stream, ``k`` = layer index), used by the
report's per-layer plot. Raw text lives only in memory here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pii_detect.readers import IssueLog, iter_documents
from revs_engine import probes
from revs_engine.arch import resolve_arch
from revs_engine.attacks.generation import greedy_extraction
from revs_engine.attacks.logit_lens import capture_targets, stream_ranks
from revs_engine.attacks.perturb import perturb_text
from revs_engine.lens import VocabLens
from revs_engine.metrics import ALL_TARGETS, AuditConfig, AuditRow, audit_model
from tasks import probing_io

logger = logging.getLogger(__name__)
MAX_BENIGN = 64
#: Benign corpus documents guarding an edit (each cut to unlearning_io.GUARD_PREFIX_TOKENS tokens). The guard
#: projection fits each layer's edit to the guard's positions, so more of them generalise to text it never saw:
#: on the demo sweep (held-out perplexity, same edit settings) 16 texts +5.8 %, 48 +2.5 %, 96 +0.6 % — with
#: Efficacy 100 and Specificity 100 in all three. Cost: activations of 96 × 64 positions per layer (SmolLM2:
#: 30 × 6144 × 1536 floats ≈ 1.1 GB; an 8B model needs ≈ 11 GB — lower it there).
GUARD_BENIGN = 96
GUARD_HALF, AUDIT_HALF = 0, 1  # the guard and the audit read disjoint halves of the benign documents
BENIGN_TAIL_WORDS = 2


def benign_texts(corpus: Sequence[Path], findings: Sequence[pa.Table], limit: int = MAX_BENIGN,
                 half: int | None = None) -> list[str]:
    """Return up to ``limit`` corpus documents that hold none of the findings' locations (raw; memory only).

    ``half`` = 0 or 1 keeps only the even or odd ones of those documents: the guard of an edit reads half 0
    (:data:`GUARD_HALF`), the audit half 1 (:data:`AUDIT_HALF`), so that perplexity and benign Specificity are
    measured on text the edit never saw, however small the corpus.
    """
    used = {(s, k) for t in findings for s, k in zip(t.column("source").to_pylist(), t.column("doc_key")
                                                      .to_pylist(), strict=True)}
    out, seen = [], 0
    for doc in iter_documents(corpus, None, IssueLog()):
        if (doc.source, doc.doc_key) not in used and len(doc.text.split()) > BENIGN_TAIL_WORDS:
            seen += 1
            if half is None or (seen - 1) % 2 == half:
                out.append(doc.text)
                if len(out) >= limit:
                    break
    return out


def benign_tail_pairs(benign: Sequence[str]) -> list[tuple[int, str, str]]:
    """Return ``(index, text but its last words, " " + last words)`` of every benign text long enough: the
    continuations Specificity checks on benign text (raw; memory only)."""
    out = []
    for i, text in enumerate(benign):
        words = text.rstrip().split(" ")
        prefix, tail = " ".join(words[:-BENIGN_TAIL_WORDS]), " " + " ".join(words[-BENIGN_TAIL_WORDS:])
        if prefix.strip():
            out.append((i, prefix, tail))
    return out


def retain_items(model, tokenizer, retain: pa.Table, benign: Sequence[str]) -> tuple[list[str], list]:
    """Return ``(ids, items)`` of retained findings and benign tails that ``model`` reproduces greedily now."""
    ids, items = probing_io.probe_items(tokenizer, probing_io.read_probe_texts(retain, max_prefix_chars=2000))
    for i, prefix, tail in benign_tail_pairs(benign):
        ids.append(f"benign-{i}")
        items += probes.items_from_texts(tokenizer, [(prefix, tail)])
    if not items:
        return [], []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    results = probes.probe(model, items, finding_ids=ids, pad_id=pad)
    keep = [i for i, r in enumerate(results) if r.exact_match]
    return [ids[i] for i in keep], [items[i] for i in keep]


def _extra_rows(model, arch, tokenizer, inputs, stage: str, cfg: AuditConfig, pad: int) -> list[AuditRow]:
    encode = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    moved = [probes.ProbeItem(tuple(encode(perturb_text(p, n_spaces=cfg.n_spaces, seed=cfg.perturb_seed))),
                              item.target_ids)
             for p, item in zip(inputs.prompts, inputs.forget_items, strict=True)]
    result = greedy_extraction(model, moved, decode=tokenizer.decode, batch_size=cfg.batch_size, pad_id=pad)
    rows = [AuditRow(fid, stage, "perturbed_greedy_extraction", None, 100.0 * hit, not hit)
            for fid, hit in zip(inputs.forget_ids, result.extracted, strict=True)]
    rows.append(AuditRow(ALL_TARGETS, stage, "perturbed_greedy_extraction", None, result.rate, result.rate == 0.0))
    ranks = stream_ranks(capture_targets(model, arch, inputs.forget, batch_size=cfg.batch_size),
                         VocabLens(model, arch)).double().mean(0)  # [n_layers]
    rows += [AuditRow(ALL_TARGETS, stage, "layer_rank", layer, float(r), None) for layer, r in enumerate(ranks)]
    return rows


def edited_positions(model_dir: Path) -> dict[str, list[int]]:
    """Return finding id → targeted token positions from an edit's ``targets.parquet`` (empty when absent)."""
    path = Path(model_dir) / "targets.parquet"
    if not path.is_file():
        return {}
    out: dict[str, list[int]] = {}
    for row in pq.read_table(path, columns=["finding_id", "position"]).to_pylist():
        out.setdefault(row["finding_id"], []).append(int(row["position"]))
    return out


def audit_edit(before, after, forget: pa.Table, retain: pa.Table, benign: Sequence[str],
               cfg: AuditConfig, positions: dict[str, list[int]] | None = None) -> pa.Table:
    """Audit the unedited (``before``) and edited (``after``) :class:`~revs_engine.loading.LoadedModel`.

    Both stages use the same forgotten targets, the same retained items (chosen on the unedited model) and the
    same benign texts, so before/after scores compare like with like; ``positions`` (:func:`edited_positions`)
    makes them the tokens the edit targeted.
    """
    retain_ids, retain_list = retain_items(before.model, before.tokenizer, retain, benign)
    tables = []
    for stage, loaded in (("before", before), ("after", after)):
        tok, model = loaded.tokenizer, loaded.model
        arch = resolve_arch(model)
        inputs = probing_io.audit_inputs(tok, forget, positions=positions)
        if not inputs.forget:
            raise ValueError("no forgotten finding has an eligible target token; nothing can be audited")
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        report = audit_model(model, arch, forget=inputs.forget, forget_ids=inputs.forget_ids, stage=stage,
                             retain=retain_list, retain_ids=retain_ids, prompts=inputs.prompts,
                             encode=lambda s, t=tok: t(s, add_special_tokens=False)["input_ids"],
                             decode=tok.decode, benign=list(benign), forget_items=inputs.forget_items,
                             config=cfg, pad_id=pad)
        rows = list(report.rows) + _extra_rows(model, arch, tok, inputs, stage, cfg, pad)
        tables.append(pa.Table.from_pylist([r.to_record() for r in rows], schema=report.table().schema))
    logger.info("audited %d targets; %d retained items", len(probing_io.audit_inputs(after.tokenizer,
                                                                                      forget).forget_ids),
                len(retain_list))
    return pa.concat_tables(tables)


def _rows(table: pa.Table, stage: str) -> list[dict[str, Any]]:
    return [r for r in table.to_pylist() if r["stage"] == stage]


def summary(table: pa.Table, stage: str) -> dict[str, float]:
    """Return the aggregate scores of one stage as ``{"metric@k" or "metric": score}`` (no layer ranks)."""
    return {(r["metric"] if r["k"] is None else f"{r['metric']}@{r['k']}"): r["score"]
            for r in _rows(table, stage) if r["target_id"] == ALL_TARGETS and r["metric"] != "layer_rank"}


def layer_ranks(table: pa.Table, stage: str) -> list[float]:
    """Return the mean target rank per layer for one stage."""
    rows = [r for r in _rows(table, stage) if r["metric"] == "layer_rank" and r["target_id"] == ALL_TARGETS]
    return [r["score"] for r in sorted(rows, key=lambda r: r["k"])]


def verdict_metrics(table: pa.Table, efficacy_k: int) -> dict[str, Any]:
    """Return the metrics dict :func:`tasks.verdict.evaluate_audit` checks (after-edit values, percent)."""
    after = [r for r in _rows(table, "after") if r["target_id"] != ALL_TARGETS]
    agg = summary(table, "after")
    hits = lambda m: sum(1 for r in after if r["metric"] == m and r["score"] > 0)  # noqa: E731
    return {"efficacy": {r["target_id"]: r["score"] for r in after
                         if r["metric"] == "efficacy" and r["k"] == efficacy_k},
            "exact_extractions": {"plain": hits("greedy_extraction"),
                                  "perturbed": hits("perturbed_greedy_extraction")},
            "specificity": agg.get("specificity"),
            "perplexity_before": summary(table, "before").get("perplexity"),
            "perplexity_after": agg.get("perplexity")}
