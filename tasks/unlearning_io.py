"""Glue for `revs unlearn` and the flows' edit step: findings + corpus → :func:`revs_engine.erase.erase` → a saved
model version with its patch.

Offers :class:`UnlearnItem` (one finding to erase: ids, preview, HMAC and its :class:`~revs_engine.erase.Secret`),
:func:`read_items`, :func:`erase_config`, :class:`UnlearnReport` and :func:`run_unlearn`.

This module only reads findings and corpus spans, tokenizes them once (:func:`tasks.probing_io.finding_secret`,
the one split convention) and saves; guard, decoys, positions, fallback and the method all live behind
:func:`~revs_engine.erase.erase`. Only finding ids, masked previews and HMACs are returned, logged or written.
The output directory appears whole or not at all: model (safetensors, config, tokenizer — loadable with
``from_pretrained``), ``patch/`` (patch.safetensors, manifest.json, edits.parquet) and ``targets.parquet``
(:data:`revs_engine.schema.TARGETS_SCHEMA`) are staged in a sibling temp dir and renamed into place.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from pii_detect.schema import FINDINGS_SCHEMA
from revs_engine.arch import resolve_arch
from revs_engine.erase import (
    EraseInputs,
    EraseResult,
    Secret,
    erase,
    reads_corpus,
)
from revs_engine.erase_guard import GUARD_BENIGN, GUARD_ITEMS
from revs_engine.hashing import weights_sha256
from revs_engine.lens import VocabLens
from revs_engine.loading import load_model
from revs_engine.patch import PatchManifest, edits_table, make_patch, save_patch
from revs_engine.presets import EraseConfig, default_preset, resolve_config
from revs_engine.schema import PROBES_SCHEMA, TARGETS_SCHEMA
from revs_engine.targets import encoder
from tasks._io import read_table, write_table
from tasks._models import model_runtime
from tasks.probing_io import finding_secrets, probe_items, read_probe_texts

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnlearnItem:
    """One finding to erase: its ids, preview and HMAC, and its prompt and value as token ids."""

    finding_id: str
    masked_preview: str
    value_hmac: str
    entity_type: str
    secret: Secret = field(repr=False)


def _wanted(probes: list[dict], findings: pa.Table, only_memorized: bool,
            entities: Sequence[str] | None) -> list[dict]:
    types = dict(zip(findings.column("finding_id").to_pylist(), findings.column("entity_type").to_pylist(),
                     strict=True))
    return [r for r in probes if (r["memorized"] or not only_memorized)
            and (not entities or types.get(r["finding_id"]) in entities)]


def read_items(probes: Path | pa.Table, findings: Path | pa.Table, tokenizer, *, only_memorized: bool,
               entities: Sequence[str] | None = None) -> list[UnlearnItem]:
    """Join probes with findings, re-read each value from the corpus and tokenize it (once).

    ``only_memorized``: only findings the probe judged memorized; ``entities``: only these entity types. The prompt
    is cut to the probe's ``prefix_tokens`` last tokens so the edit works on the context the probe measured. A
    value repeated in the same context (duplicated documents) is erased once.
    """
    probes, findings = _table(probes, PROBES_SCHEMA).to_pylist(), _table(findings, FINDINGS_SCHEMA)
    wanted = _wanted(probes, findings, only_memorized, entities)
    rows = {r["finding_id"]: r for r in findings.to_pylist()}
    missing = [r["finding_id"] for r in wanted if r["finding_id"] not in rows]
    if missing:
        raise KeyError(f"probe {missing[0]} has no row in the findings; pass the findings it was made from")
    cut = {r["finding_id"]: r["prefix_tokens"] for r in wanted}
    table = findings.filter(pa.array([f in cut for f in findings.column("finding_id").to_pylist()]))
    secrets = finding_secrets(tokenizer, table, max_prefix_tokens=cut)
    seen: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()
    items, duplicates = [], 0
    for r in wanted:
        if r["finding_id"] not in secrets:
            continue
        secret = secrets[r["finding_id"]][0]
        key = (secret.prompt_ids, secret.secret_ids)
        if key in seen:  # the same value in the same context (duplicated documents): one edit covers both
            duplicates += 1
            continue
        seen.add(key)
        f = rows[r["finding_id"]]
        items.append(UnlearnItem(f["finding_id"], f["masked_preview"], f["value_hmac"], f["entity_type"], secret))
    if duplicates:
        logger.info("%d finding(s) repeat an earlier one's value and context; edited once", duplicates)
    return items


def _table(source: Path | pa.Table, schema: pa.Schema) -> pa.Table:
    return source if isinstance(source, pa.Table) else read_table(source, schema)


def corpus_benign(findings: Path | pa.Table) -> list[str]:
    """Return benign guard texts from the findings' own source files: documents holding no finding (the guard's
    half of them, :data:`tasks.audit_io.GUARD_HALF`; raw, memory only)."""
    from tasks.audit_io import GUARD_HALF, benign_texts

    findings = _table(findings, FINDINGS_SCHEMA)
    sources = [Path(s) for s in dict.fromkeys(findings.column("source").to_pylist()) if Path(s).is_file()]
    return benign_texts(sources, [findings], limit=GUARD_BENIGN, half=GUARD_HALF) if sources else []


#: The corpus sample an erase reads when its configuration asks for one (``revs.joint_covariance`` ``corpus`` /
#: ``both``): documents of the guard's half holding no finding, up to this many texts and words (about 40k
#: tokens on SmolLM2's tokenizer; each text is read up to its first 128 tokens).
CORPUS_SAMPLE_TEXTS, CORPUS_SAMPLE_WORDS = 1024, 32768


def corpus_sample(files: Sequence[Path], findings: pa.Table) -> list[str]:
    """Return the corpus sample of an erase: documents of ``files`` (corpus files or directories) holding no
    finding, the guard's half of them (:data:`tasks.audit_io.GUARD_HALF`, never the audit's), up to
    :data:`CORPUS_SAMPLE_TEXTS` texts and :data:`CORPUS_SAMPLE_WORDS` words (raw, memory only)."""
    from tasks.audit_io import GUARD_HALF, benign_texts

    files = [Path(f) for f in files if Path(f).exists()]  # files or directories, as a corpus is given
    return benign_texts(files, [findings], limit=CORPUS_SAMPLE_TEXTS, half=GUARD_HALF,
                        max_words=CORPUS_SAMPLE_WORDS) if files else []


def erase_config(overrides: Mapping[str, Any] | None, tokenizer) -> EraseConfig:
    """Return the policy's ``[revs]`` table resolved for this tokenizer: its ``preset`` (default: the best measured
    one for the tokenizer's family, :func:`revs_engine.presets.default_preset`) plus its overrides."""
    return resolve_config(overrides, default_preset(encoder(tokenizer)))


@dataclass(frozen=True)
class UnlearnReport:
    """What `revs unlearn` did: one row per target (ids and previews only), plus the output location."""

    rows: list[dict] = field(repr=False)
    out_dir: Path
    base_sha256: str
    edited_sha256: str
    converged: int
    seconds: float
    config: dict[str, Any]


def _target_rows(items: list[UnlearnItem], result: EraseResult) -> list[dict]:
    rows = []
    for t, o in zip(result.targets, result.outcomes, strict=True):
        item = items[t.secret_index]
        rows.append({"finding_id": item.finding_id, "masked_preview": item.masked_preview,
                     "value_hmac": item.value_hmac, "entity_type": item.entity_type, "position": t.position,
                     "rank_before": o.rank_before, "rank_after": o.rank_after, "rank_final": o.rank_final,
                     "converged": o.converged})
    return rows


def memorized_kept(probes: Path | pa.Table, findings: Path | pa.Table, erased: Sequence[UnlearnItem]) -> pa.Table:
    """Return the findings the probes judged memorized that are not being erased (nor copies of an erased value):
    what the edit must keep reproducing."""
    findings = _table(findings, FINDINGS_SCHEMA)
    memorized = {r["finding_id"] for r in _table(probes, PROBES_SCHEMA).to_pylist() if r["memorized"]}
    gone = {i.value_hmac for i in erased}
    ids, hmacs = findings.column("finding_id").to_pylist(), findings.column("value_hmac").to_pylist()
    keep = [f in memorized and h not in gone for f, h in zip(ids, hmacs, strict=True)]
    return findings.filter(pa.array(keep, pa.bool_()))


def keep_items(tokenizer, retain: pa.Table | None) -> tuple[list[str], list]:
    """Return the retained findings' ids and ``(prefix, value)`` probe items (at most :data:`GUARD_ITEMS`)."""
    if retain is None or not retain.num_rows:
        return [], []
    return probe_items(tokenizer, read_probe_texts(retain.slice(0, GUARD_ITEMS), max_prefix_chars=2000))


def related_to_erased(keep_ids: Sequence[str], retain: pa.Table | None, findings: pa.Table,
                      erased: Sequence[UnlearnItem]) -> tuple[bool, ...]:
    """Per retained finding, whether it shares a document with an erased one: its prompt may speak of the person
    being erased (``EraseInputs.keep_related``)."""
    if retain is None or not keep_ids:
        return ()
    gone = {i.finding_id for i in erased}
    docs = {(r["source"], r["doc_key"]) for r in findings.select(["finding_id", "source", "doc_key"]).to_pylist()
            if r["finding_id"] in gone}
    where = {r["finding_id"]: (r["source"], r["doc_key"])
             for r in retain.select(["finding_id", "source", "doc_key"]).to_pylist()}
    return tuple(where.get(f) in docs for f in keep_ids)


def run_unlearn(model_spec: str, probes_path: Path, findings_path: Path | pa.Table, out_dir: Path, *,
                cache_dir: Path, only_memorized: bool = False, entities: Sequence[str] | None = None,
                overrides: Mapping[str, Any] | None = None, progress: bool = False, overwrite: bool = False,
                retain_findings: Path | None = None, benign: Sequence[str] | None = None,
                corpus: Sequence[Path] | None = None) -> UnlearnReport:
    """Load the model, erase the probed findings, save the edited model + patch into ``out_dir`` atomically.

    ``overrides`` is the policy's ``[revs]`` table (:func:`erase_config`). The edit is guarded by
    ``retain_findings`` (default: the probes' other memorized findings, :func:`memorized_kept`) and ``benign``
    texts (default: documents of the findings' sources that hold no finding, the guard's half of them). When the
    configuration reads a corpus sample (:func:`~revs_engine.erase.reads_corpus`) it comes from ``corpus``
    (default: the findings' sources), :func:`corpus_sample`.
    ``findings_path``: the findings Parquet, or the table when the caller has read it already.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists; choose another --out or pass --overwrite")
    loaded = load_model(model_spec, cache_dir=cache_dir, **model_runtime())  # REVS_DEVICE / REVS_DTYPE
    model, tok = loaded.model, loaded.tokenizer
    cfg = erase_config(overrides, tok)
    arch = resolve_arch(model)
    probes, findings = read_table(probes_path, PROBES_SCHEMA), _table(findings_path, FINDINGS_SCHEMA)
    items = read_items(probes, findings, tok, only_memorized=only_memorized, entities=entities)
    if not items:
        raise ValueError(f"nothing to erase: no {'memorized ' if only_memorized else ''}finding in {probes_path}"
                         + (f" of type {', '.join(entities)}" if entities else ""))
    retain = read_table(retain_findings, FINDINGS_SCHEMA) if retain_findings is not None \
        else memorized_kept(probes, findings, items)
    if benign is None:
        benign = corpus_benign(findings)
    encode = encoder(tok)
    sample = ()
    if reads_corpus(cfg):
        files = corpus if corpus is not None else [Path(s) for s in
                                                    dict.fromkeys(findings.column("source").to_pylist())]
        sample = tuple(tuple(encode(t)) for t in corpus_sample(list(files), findings))
        logger.info("erase: corpus sample of %d documents", len(sample))
    keep_ids, keep = keep_items(tok, retain)
    inputs = EraseInputs(tuple(i.secret for i in items), tuple(keep), tuple(tuple(encode(t)) for t in benign),
                         encode, tok.decode, corpus=sample,
                         keep_related=related_to_erased(keep_ids, retain, findings, items))
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    result = erase(model, arch, inputs, cfg, lens=VocabLens(model, arch), pad_id=pad, progress=progress)
    logger.info("erase: %s", result.summary())
    rows = _target_rows(items, result)
    edited = weights_sha256(model)
    convergence = {"targets": len(rows), "converged": result.n_converged}
    cfg = result.config  # what ran (an erase may leave out a step its inputs cannot feed)
    manifest = PatchManifest(loaded.source, loaded.weights_sha256, edited, method=cfg.method, config=cfg.to_dict(),
                             target_hmacs=sorted({i.value_hmac for i in items}), convergence=convergence)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".tmp-{out_dir.name}-", dir=out_dir.parent))
    try:
        from revs_engine.saving import save_model

        save_model(model, tok, stage / "v")
        patch = make_patch(arch, result.backup)
        save_patch(patch, manifest, stage / "v" / "patch")
        write_table(edits_table(patch), stage / "v" / "patch" / "edits.parquet")
        write_table(pa.Table.from_pylist(rows, schema=TARGETS_SCHEMA), stage / "v" / "targets.parquet",
                    TARGETS_SCHEMA)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.rename(stage / "v", out_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return UnlearnReport(rows, out_dir, loaded.weights_sha256, edited, result.n_converged, result.seconds,
                         cfg.to_dict())
