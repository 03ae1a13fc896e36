"""Glue for the before/after audit of an edit: findings + corpus → :class:`revs_engine.audit.AuditInputs` →
:func:`revs_engine.audit.audit` on both models → one audit table.

Offers :func:`benign_texts` (corpus documents holding no finding of the run: held-out text for perplexity and the
guard), :func:`benign_tail_pairs`, :func:`edited_positions` (an edit's ``targets.parquet`` → positions),
:func:`audit_inputs` (findings tables → audit inputs, tokenized once, the edit's positions), :func:`retained`
(what Specificity checks: retained findings and benign continuations the *unedited* model reproduces) and
:func:`audit_edit` (both stages, as one table). Reading the table back: :mod:`revs_engine.audit`'s ``summary``,
``layer_ranks`` and ``verdict_metrics``. Raw text lives only in memory here.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Collection, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pii_detect.readers import IssueLog, iter_documents
from pii_detect.readers.base import doc_sha256
from revs_engine import probes
from revs_engine.arch import resolve_arch
from revs_engine.audit import AuditConfig, AuditInputs, audit, audit_units, reproduced
from revs_engine.format_entities import format_for
from revs_engine.targets import (
    TargetConfig,
    config_for_entity,
    eligible_positions,
    encoder,
    order_positions,
    targets_at,
)
from tasks import probing_io
from tasks.format_hints import EmailHints, email_hints
from tasks.progress import StepProgress

logger = logging.getLogger(__name__)
#: The audit's benign sample: up to this many texts and words (the perplexity check's 2 % threshold needs
#: thousands of tokens; 64 short notes, about 1,200 tokens, moved an edit's measured change by ±2 points).
MAX_BENIGN, MAX_BENIGN_WORDS = 256, 4096
GUARD_HALF, AUDIT_HALF = 0, 1  # the guard and the audit read disjoint halves of the benign documents
BENIGN_TAIL_WORDS = 2


def benign_texts(corpus: Sequence[Path], findings: Sequence[pa.Table], limit: int = MAX_BENIGN,
                 half: int | None = None, max_words: int | None = None) -> list[str]:
    """Return up to ``limit`` corpus documents that hold none of the findings (raw; memory only), stopping once
    they hold ``max_words`` words (None: no word budget).

    ``half`` = 0 or 1 keeps only the documents whose content hash is even or odd: the guard of an edit reads half
    0 (:data:`GUARD_HALF`), the audit half 1 (:data:`AUDIT_HALF`). A document's half depends on its text alone, so
    the two never share a text, whatever findings each side leaves out and whichever files each side reads. Each
    distinct text is returned once: a corpus that repeats a short note many times gives it one vote, not many.

    A document holds a finding when it is at the finding's location (resolved file path and document key, so a
    corpus reached through a symlink or a relative path is the same corpus) or has the content the finding was
    read from (``doc_sha256``, so a copy of the corpus at another path, or the same document stored twice, is
    never read as benign text).
    """
    resolved = functools.cache(os.path.realpath)  # a corpus's documents share a few source files
    used = {(resolved(s), k) for t in findings for s, k in zip(t.column("source").to_pylist(),
                                                                 t.column("doc_key").to_pylist(), strict=True)}
    hashes = {h for t in findings if "doc_sha256" in t.column_names for h in t.column("doc_sha256").to_pylist()}
    out, emitted, words = [], set(), 0
    for doc in iter_documents(corpus, None, IssueLog()):
        n_words = len(doc.text.split())
        if (resolved(doc.source), doc.doc_key) in used or n_words <= BENIGN_TAIL_WORDS:
            continue
        digest = doc_sha256(doc.text)
        if digest in hashes or digest in emitted or (half is not None and int(digest[:8], 16) % 2 != half):
            continue
        emitted.add(digest)
        out.append(doc.text)
        words += n_words
        if len(out) >= limit or (max_words is not None and words >= max_words):
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


def edited_positions(model_dir: Path) -> dict[str, list[int]]:
    """Return finding id → targeted token positions from an edit's ``targets.parquet`` (in the file's order, each
    once: an edit can demote several tokens at one position; empty when absent)."""
    path = Path(model_dir) / "targets.parquet"
    if not path.is_file():
        return {}
    out: dict[str, dict[int, None]] = {}
    for row in pq.read_table(path, columns=["finding_id", "position"]).to_pylist():
        out.setdefault(row["finding_id"], {})[int(row["position"])] = None
    return {f: list(p) for f, p in out.items()}


def audit_inputs(tokenizer, forget: pa.Table, *, positions: dict[str, list[int]] | None = None,
                 retain: Sequence[probes.ProbeItem] = (), retain_ids: Sequence[str] = (),
                 guarded: Collection[str] = (), generality: pa.Table | None = None,
                 benign: Sequence[str] = (), with_formats: bool = True,
                 hints: EmailHints | None = None) -> AuditInputs:
    """Build the audit's inputs from findings (each value re-read and tokenized once).

    ``positions`` (finding id → the token positions the edit targeted, :func:`edited_positions`) makes the audit
    score the tokens that were edited; a finding without an entry takes the positions of another finding with the
    same value (a deduplicated copy), else the paper's evaluation rule (rarest two tokens, §2.1). A generality
    finding belongs to the erased secret with the same ``value_hmac`` (the same value in another context).
    ``guarded``: ids of the retained items the edit's guard held. ``with_formats``: each erased value's format
    (:func:`revs_engine.format_entities.format_for`) for the format-aware attacks; ``hints``
    (:func:`tasks.format_hints.email_hints`) make an e-mail's format the subject's name variants at the corpus's
    domains (a document without a found name keeps the address's shape).
    """
    encode = encoder(tokenizer)
    hmac_of = dict(zip(forget.column("finding_id").to_pylist(), forget.column("value_hmac").to_pylist(),
                       strict=True))
    by_value = {hmac_of[f]: p for f, p in (positions or {}).items() if f in hmac_of}
    doc_of = {r["finding_id"]: (r["source"], r["doc_key"])
              for r in forget.select(["finding_id", "source", "doc_key"]).to_pylist()}

    def picks(finding_id: str, secret) -> list[int]:
        pos = (positions or {}).get(finding_id) or by_value.get(hmac_of.get(finding_id)) or []
        kept = sorted(p for p in pos if p < len(secret.secret_ids))
        if kept:
            return kept
        rule = config_for_entity(TargetConfig(), secret.entity_type)
        return order_positions(eligible_positions(list(secret.token_texts), rule), list(secret.secret_ids), rule)

    targets, ids, prompts, items, secrets = [], [], [], [], []
    for fid, (s, prompt) in probing_io.finding_secrets(tokenizer, forget).items():
        chosen = targets_at(s.prompt_ids, s.secret_ids, picks(fid, s), secret_index=len(ids))
        if not chosen:
            logger.warning("finding %s has no eligible target token; not audited", fid)
            continue
        targets += chosen
        ids.append(fid)
        prompts.append(prompt)
        items.append(probes.ProbeItem(s.prompt_ids, s.secret_ids))
        secrets.append(s)
    if not ids:
        raise ValueError("no erased finding has an eligible target token; nothing can be audited")
    gen_targets, gen_items = [], []
    if generality is not None:
        secret_of = {hmac_of[f]: i for i, f in enumerate(ids)}
        g_hmac = dict(zip(generality.column("finding_id").to_pylist(), generality.column("value_hmac").to_pylist(),
                          strict=True))
        for fid, (s, _) in probing_io.finding_secrets(tokenizer, generality).items():
            i = secret_of.get(g_hmac[fid])
            if i is not None:
                gen_targets += targets_at(s.prompt_ids, s.secret_ids, picks(ids[i], s), secret_index=i)
                gen_items.append(probes.ProbeItem(s.prompt_ids, s.secret_ids))
    guarded = set(guarded)
    formats = tuple(_format(s, tokenizer.decode(list(s.secret_ids)), doc_of[fid], hints)
                    for fid, s in zip(ids, secrets, strict=True)) if with_formats else ()
    return AuditInputs(tuple(targets), tuple(ids), tuple(items), tuple(prompts), encode, tokenizer.decode,
                       tuple(gen_targets), tuple(gen_items), tuple(retain), tuple(retain_ids),
                       tuple(r in guarded for r in retain_ids), tuple(tuple(encode(t)) for t in benign), formats)


def _format(secret, value: str, doc: tuple[str, str], hints: EmailHints | None):
    if secret.entity_type == "EMAIL_ADDRESS" and hints is not None:
        return format_for("EMAIL_ADDRESS", value, names=hints.names_for(*doc) or None,
                          domains=hints.domains or None)
    return format_for(secret.entity_type or "", value)


def retained(model, tokenizer, retain: pa.Table, benign: Sequence[str]) -> tuple[list[str], list]:
    """Return ``(ids, items)`` of retained findings and benign tails that ``model`` reproduces greedily now."""
    ids, items = probing_io.probe_items(tokenizer, probing_io.read_probe_texts(retain, max_prefix_chars=2000))
    for i, prefix, tail in benign_tail_pairs(benign):
        ids.append(f"benign-{i}")
        items += probes.items_from_texts(tokenizer, [(prefix, tail)])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    keep = [i for i, ok in enumerate(reproduced(model, items, pad_id=pad)) if ok]
    return [ids[i] for i in keep], [items[i] for i in keep]


def audit_edit(before, after, forget: pa.Table, retain: pa.Table, benign: Sequence[str], cfg: AuditConfig,
               positions: dict[str, list[int]] | None = None, guarded: Collection[str] = ()) -> pa.Table:
    """Audit the unedited (``before``) and edited (``after``) :class:`~revs_engine.loading.LoadedModel`.

    Both stages use the same erased targets (the edited positions), the same retained items (chosen on the
    unedited model) and the same benign texts, so before/after scores compare like with like.
    """
    retain_ids, retain_list = retained(before.model, before.tokenizer, retain, benign)
    inputs = audit_inputs(before.tokenizer, forget, positions=positions, retain=retain_list, retain_ids=retain_ids,
                          guarded=guarded, benign=benign, hints=email_hints([forget, retain]))
    tables = []
    total = sum(audit_units(inputs, cfg, stage) for stage in ("before", "after"))
    with StepProgress("audit", total, "parts", every_s=30.0) as progress:
        for stage, loaded in (("before", before), ("after", after)):
            pad = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0
            report = audit(loaded.model, resolve_arch(loaded.model), inputs, cfg, stage=stage, pad_id=pad,
                           progress=progress)
            tables.append(report.table())
    logger.info("audited %d erased findings; %d retained items", len(inputs.forget_ids), len(retain_list))
    return pa.concat_tables(tables)


def run_audit(model_spec: str, reference_spec: str | None, forget: pa.Table, retain: pa.Table,
              generality: pa.Table | None, benign: Sequence[str], cfg: AuditConfig, *, cache_dir: Path) -> list:
    """Audit ``model_spec`` (stage ``after``) and, when given, its unedited ``reference_spec`` (stage ``before``)
    on the same inputs; return the :class:`~revs_engine.audit.AuditReport` s (`revs audit`).

    Specificity checks the retained findings the reference reproduces (without a reference: all of them).

    The erased tokens are the ones the edit targeted when ``model_spec`` is a directory holding the edit's
    ``targets.parquet`` (what `revs unlearn` writes), else the paper's evaluation rule.
    """
    from revs_engine.loading import load_model
    from tasks._models import model_runtime

    after = load_model(model_spec, cache_dir=cache_dir, **model_runtime())
    before = load_model(reference_spec, cache_dir=cache_dir, **model_runtime()) if reference_spec else None
    if before is not None:  # Specificity checks what the unedited model reproduced
        retain_ids, retain_list = retained(before.model, before.tokenizer, retain, [])
    else:  # no reference: every retained finding counts (choosing them on the edited model would hide damage)
        retain_ids, retain_list = probing_io.probe_items(after.tokenizer, probing_io.read_probe_texts(
            retain, max_prefix_chars=2000))
    positions = edited_positions(Path(model_spec)) if Path(model_spec).is_dir() else {}
    inputs = audit_inputs(after.tokenizer, forget, positions=positions, retain=retain_list,
                          retain_ids=retain_ids, generality=generality, benign=benign,
                          hints=email_hints([forget, retain]))
    reports = []
    for stage, loaded in (("before", before), ("after", after)):
        if loaded is not None:
            pad = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0
            reports.append(audit(loaded.model, resolve_arch(loaded.model), inputs, cfg, stage=stage, pad_id=pad))
    return reports
