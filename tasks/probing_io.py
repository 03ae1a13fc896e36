"""Glue between findings, the corpus and the probe library (plain functions; a Prefect task can wrap them).

Offers :class:`ProbeText` (one finding's prefix and target text, in memory only), :func:`read_probe_texts`
(findings rows → texts re-read from the corpus, sha256-checked), :func:`probe_items` (texts → token-id
:class:`~revs_engine.probes.ProbeItem`\\ s, the separate-encoding convention) and :func:`probe_findings` (findings
table → probes table).

The prefix of a finding is its document's text before ``start`` and the target is ``text[start:end]``
(DESIGN §2), with one tokenisation convention shared by probes, memorisation, REVS and the audit
(:func:`split_finding`): a space right before the value belongs to the target (``"SSN" + " 123-45-6789"``), as
in the document's own tokenisation (``" jo"`` is one token, ``" "`` + ``"jo"`` are two).

Raw values exist only inside these objects: ``ProbeText`` hides them from ``repr`` and nothing here writes or
logs them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from pii_detect.errors import CorpusChangedError
from pii_detect.readers import read_documents
from pii_detect.readers.base import doc_sha256
from revs_engine import probes

logger = logging.getLogger(__name__)


def split_finding(text: str, start: int, end: int) -> tuple[str, str]:
    """Return ``(prefix, target)`` of the span ``[start, end)`` of ``text``; a space right before the span moves
    into the target, so prefix and target tokenise as the whole document does (and every stage — probe,
    memorisation, edit, audit — numbers the target's tokens alike)."""
    prefix, target = text[:start], text[start:end]
    if prefix.endswith(" ") and not target.startswith(" "):
        prefix, target = prefix[:-1], " " + target
    return prefix, target


@dataclass(frozen=True, slots=True)
class ProbeText:
    """A finding's prefix and target text (raw; keep in memory only)."""

    finding_id: str
    prefix: str = field(repr=False)
    target: str = field(repr=False)


def read_probe_texts(findings: pa.Table, *, max_prefix_chars: int | None = None) -> list[ProbeText]:
    """Re-read every finding's prefix and target from its corpus document, checking ``doc_sha256``.

    Args:
        findings: a table in ``pii_detect.FINDINGS_SCHEMA``.
        max_prefix_chars: keep only the last this-many prefix characters (bounds tokenisation of long documents;
            the probe's own ``max_prefix_tokens`` decides the context actually fed).

    Raises:
        CorpusChangedError: a document changed since the scan, or a span lies outside it.
    """
    rows = findings.select(["finding_id", "source", "doc_key", "doc_sha256", "start", "end"]).to_pylist()
    docs: dict[tuple[str, str], str] = {}
    by_source: dict[str, set[str]] = {}
    for r in rows:
        by_source.setdefault(r["source"], set()).add(r["doc_key"])
    for source, keys in by_source.items():
        for key, text in read_documents(source, sorted(keys)).items():
            docs[(source, key)] = text
    out = []
    for r in rows:
        text = docs[(r["source"], r["doc_key"])]
        if doc_sha256(text) != r["doc_sha256"]:
            raise CorpusChangedError(f"finding {r['finding_id']}: its document changed since the scan; rescan")
        if not 0 <= r["start"] < r["end"] <= len(text):
            raise CorpusChangedError(f"finding {r['finding_id']}: span outside its document; rescan")
        prefix, target = split_finding(text, r["start"], r["end"])
        if max_prefix_chars is not None:
            prefix = prefix[-max_prefix_chars:]
        out.append(ProbeText(r["finding_id"], prefix, target))
    logger.info("re-read %d findings from %d sources", len(out), len(by_source))
    return out


def probe_items(tokenizer, texts: Sequence[ProbeText]) -> tuple[list[str], list[probes.ProbeItem]]:
    """Tokenise texts into probe items; findings at the very start of a document (empty prefix) are skipped."""
    ids, items = [], []
    for t in texts:
        if not t.prefix:
            logger.warning("finding %s has no text before it; not probed", t.finding_id)
            continue
        ids.append(t.finding_id)
        items.append(probes.items_from_texts(tokenizer, [(t.prefix, t.target)])[0])
    return ids, items


def probe_findings(model, tokenizer, findings: pa.Table, config: probes.ProbeConfig | None = None) -> pa.Table:
    """Probe every finding of ``findings`` and return the probes table (``PROBES_SCHEMA``)."""
    cfg = config or probes.ProbeConfig()
    max_chars = None if cfg.max_prefix_tokens is None else 16 * cfg.max_prefix_tokens
    ids, items = probe_items(tokenizer, read_probe_texts(findings, max_prefix_chars=max_chars))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    results = probes.probe(model, items, finding_ids=ids, config=cfg, pad_id=pad)
    return probes.probes_table(results)


@dataclass(frozen=True)
class AuditInputs:
    """Everything :func:`revs_engine.metrics.audit_model` needs, built from findings (raw text in memory only)."""

    forget: list = field(repr=False)  # list[TokenTarget], rarest rule (§2.1)
    forget_ids: list[str]
    prompts: list[str] = field(repr=False)
    forget_items: list = field(repr=False)  # list[ProbeItem]
    retain: list = field(repr=False)
    retain_ids: list[str]
    generality: list = field(repr=False)


def audit_inputs(tokenizer, forget: pa.Table, retain: pa.Table | None = None,
                 generality: pa.Table | None = None, *, max_prefix_chars: int = 2000,
                 target_config=None, positions: dict[str, list[int]] | None = None) -> AuditInputs:
    """Build forgotten targets (rarest rule), retained items and generality targets from findings tables.

    A generality finding belongs to the forgotten secret with the same ``value_hmac`` (the same value in another
    context); generality findings matching no forgotten secret are ignored. ``positions`` (finding id → the
    token positions the edit targeted, from the edit's ``targets.parquet``) overrides the rule, so the audit
    scores the tokens that were edited; a finding without an entry takes the positions of another finding with
    the same value (a deduplicated copy), else the rule.
    """
    from revs_engine.targets import TargetConfig, config_for_entity, encode_pair, select_targets

    cfg = target_config or TargetConfig()
    entity = dict(zip(forget.column("finding_id").to_pylist(), forget.column("entity_type").to_pylist(),
                      strict=True))
    hmac_of = dict(zip(forget.column("finding_id").to_pylist(), forget.column("value_hmac").to_pylist(),
                       strict=True))
    by_value = {hmac_of[f]: p for f, p in (positions or {}).items() if f in hmac_of}

    def edited(finding_id: str, n_tokens: int) -> list[int] | None:
        pos = (positions or {}).get(finding_id) or by_value.get(hmac_of.get(finding_id))
        kept = [p for p in pos or [] if p < n_tokens]
        return kept or None
    fts = [t for t in read_probe_texts(forget, max_prefix_chars=max_prefix_chars) if t.prefix]
    targets, ids, prompts, items = [], [], [], []
    for t in fts:
        p_ids, s_ids, texts = encode_pair(tokenizer, t.prefix, t.target)
        chosen = select_targets(p_ids, s_ids, texts, config_for_entity(cfg, entity.get(t.finding_id)),
                                secret_index=len(ids), positions=edited(t.finding_id, len(s_ids)))
        if not chosen:
            logger.warning("finding %s has no eligible target token; not audited", t.finding_id)
            continue
        targets += chosen
        ids.append(t.finding_id)
        prompts.append(t.prefix)
        items.append(probes.ProbeItem(tuple(p_ids), tuple(s_ids)))
    retain_ids, retain_items = ([], []) if retain is None else \
        probe_items(tokenizer, read_probe_texts(retain, max_prefix_chars=max_prefix_chars))
    gen_targets = []
    if generality is not None:
        secret_of = {hmac_of[f]: i for i, f in enumerate(ids)}
        g_hmac = dict(zip(generality.column("finding_id").to_pylist(), generality.column("value_hmac").to_pylist(),
                          strict=True))
        for t in read_probe_texts(generality, max_prefix_chars=max_prefix_chars):
            s = secret_of.get(g_hmac[t.finding_id])
            if s is None or not t.prefix:
                continue
            p_ids, s_ids, texts = encode_pair(tokenizer, t.prefix, t.target)
            gen_targets += select_targets(p_ids, s_ids, texts, config_for_entity(cfg, entity.get(ids[s])),
                                          secret_index=s, positions=edited(ids[s], len(s_ids)))
    return AuditInputs(targets, ids, prompts, items, retain_items, retain_ids, gen_targets)
