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
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from pii_detect.errors import CorpusChangedError
from pii_detect.readers import read_documents
from pii_detect.readers.base import doc_sha256
from revs_engine import probes
from revs_engine.erase import Secret
from revs_engine.targets import encoder

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
    docs = _documents(rows)
    out = []
    for r in rows:
        text = docs[(r["source"], r["doc_key"], r["doc_sha256"])]
        if doc_sha256(text) != r["doc_sha256"]:
            raise CorpusChangedError(f"finding {r['finding_id']}: its document changed since the scan; rescan")
        if not 0 <= r["start"] < r["end"] <= len(text):
            raise CorpusChangedError(f"finding {r['finding_id']}: span outside its document; rescan")
        prefix, target = split_finding(text, r["start"], r["end"])
        if max_prefix_chars is not None:
            prefix = prefix[-max_prefix_chars:]
        out.append(ProbeText(r["finding_id"], prefix, target))
    logger.info("re-read %d findings from %d documents", len(out), len(docs))
    return out


#: Documents already read by this process, keyed by ``(source, doc_key, doc_sha256)``: the probe, the edit and the
#: audit of one run read each value from the corpus once. The key holds the content hash the findings recorded,
#: so a cached text is exactly the text they point into; bounded by total characters (raw text, memory only).
_DOC_CACHE: OrderedDict[tuple[str, str, str], str] = OrderedDict()
DOC_CACHE_CHARS = 64 * 1024 * 1024


def _documents(rows: list[dict]) -> dict[tuple[str, str, str], str]:
    wanted = {(r["source"], r["doc_key"], r["doc_sha256"]) for r in rows}
    with _LOCK:
        out = {key: _DOC_CACHE[key] for key in wanted if key in _DOC_CACHE}
    by_source: dict[str, set[str]] = {}
    for source, key, _ in wanted - set(out):
        by_source.setdefault(source, set()).add(key)
    for source, keys in by_source.items():
        for key, text in read_documents(source, sorted(keys)).items():
            out.update({k: text for k in wanted if k[:2] == (source, key)})
            _remember((source, key, doc_sha256(text)), text)
    with _LOCK:
        for key in out:
            if key in _DOC_CACHE:
                _DOC_CACHE.move_to_end(key)
    return out


_cached_chars = 0
_LOCK = threading.Lock()


def _remember(key: tuple[str, str, str], text: str) -> None:
    global _cached_chars
    with _LOCK:
        if key in _DOC_CACHE:
            return
        _DOC_CACHE[key] = text
        _cached_chars += len(text)
        while _cached_chars > DOC_CACHE_CHARS and len(_DOC_CACHE) > 1:
            _cached_chars -= len(_DOC_CACHE.popitem(last=False)[1])


def finding_secrets(tokenizer, findings: pa.Table, *, max_prefix_tokens: int | Mapping[str, int] | None = None,
                    max_prefix_chars: int = 2000) -> dict[str, tuple[Secret, str]]:
    """Re-read and tokenize every finding once: finding id → (:class:`~revs_engine.erase.Secret` — prompt ids,
    value ids with the value's leading space, per-token texts, entity type —, the prompt's text).

    ``max_prefix_tokens`` (one number, or per finding id; 0 or absent: no cut) keeps the prompt's last tokens.
    Findings with no text before them, or nothing left after tokenization, are skipped with a warning.
    """
    encode = encoder(tokenizer)
    entity = dict(zip(findings.column("finding_id").to_pylist(), findings.column("entity_type").to_pylist(),
                      strict=True))
    out = {}
    for t in read_probe_texts(findings, max_prefix_chars=max_prefix_chars):
        prompt_ids, secret_ids = encode(t.prefix), encode(t.target)
        cut = max_prefix_tokens.get(t.finding_id) if isinstance(max_prefix_tokens, Mapping) else max_prefix_tokens
        if cut and len(prompt_ids) > cut:
            prompt_ids = prompt_ids[-cut:]
        if not prompt_ids or not secret_ids:
            logger.warning("finding %s: empty prompt or value after tokenization; skipped", t.finding_id)
            continue
        texts = tuple(tokenizer.decode([i]) for i in secret_ids)
        secret = Secret(tuple(prompt_ids), tuple(secret_ids), texts, entity[t.finding_id])
        out[t.finding_id] = (secret, t.prefix)
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
