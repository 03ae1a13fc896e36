"""Find PII spans in texts: a fast structured path (pattern recognizers, no NLP) and optional spaCy NER.

Offers :class:`Scanner` — ``find_spans(text)``, ``find_spans_batch(texts)`` and ``scan_documents(docs)``
(-> findings with HMAC and masked preview, never the value). Long texts are chunked
(:func:`~pii_detect.spans.chunk_bounds`), spans are de-duplicated (:func:`~pii_detect.spans.resolve_spans`),
and per-entity thresholds apply after the context-word boost.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence

from pii_detect.config import ScanConfig
from pii_detect.findings import PiiFinding, Span, make_finding
from pii_detect.readers.base import Document
from pii_detect.recognizers import (
    DIGIT_ENTITIES,
    PREFILTERS,
    apply_context,
    build_structured_recognizers,
    embedded_in_identifier,
)
from pii_detect.spans import chunk_bounds, resolve_spans

logger = logging.getLogger(__name__)


class Scanner:
    """Detect PII in texts according to a :class:`ScanConfig`.

    Args:
        config: Entities, thresholds, custom recognizers, chunking.
        key: HMAC key bytes for ``value_hmac`` (passed in; never read from the environment).
        nlp: A spaCy pipeline for NER entities; loaded with :func:`~pii_detect.engine.load_ner_pipeline` when
            the config asks for NER entities and none is given.
    """

    def __init__(self, config: ScanConfig | None = None, key: bytes = b"", *, nlp=None) -> None:
        self.config = config or ScanConfig()
        self._key = key
        self._recognizers = [
            (ent, rec, list(getattr(rec, "context", None) or []), PREFILTERS.get(ent), ent in DIGIT_ENTITIES)
            for ent, rec in build_structured_recognizers(self.config)
        ]
        self._ner = set(self.config.ner_entities)
        if self._ner and nlp is None:
            from pii_detect.engine import load_ner_pipeline

            nlp = load_ner_pipeline(self.config.spacy_model)
        self._nlp = nlp if self._ner else None

    def __repr__(self) -> str:
        return f"Scanner(entities={self.config.active_entities})"

    # structured fast path -------------------------------------------------------------------------------------
    def _structured(self, text: str, offset: int, owned_until: int) -> list[Span]:
        cfg = self.config
        present: dict[re.Pattern, bool] = {}  # prefilter results, shared by entities with the same test
        out: list[Span] = []
        for ent, rec, context, prefilter, digit_entity in self._recognizers:
            if prefilter is not None:
                if prefilter not in present:
                    present[prefilter] = prefilter.search(text) is not None
                if not present[prefilter]:
                    continue
            for r in rec.analyze(text, entities=[ent], nlp_artifacts=None):
                if r.score <= 0 or offset + r.start >= owned_until:
                    continue
                if digit_entity and embedded_in_identifier(text, r.start, r.end):
                    continue
                score = apply_context(text, r.start, r.score, context, cfg.context_window)
                if score >= cfg.threshold(ent):
                    out.append(Span(offset + r.start, offset + r.end, ent, score, rec.name))
        return out

    def _chunks(self, text: str) -> list[tuple[int, int, int]]:
        return chunk_bounds(text, self.config.chunk_size, self.config.chunk_overlap)

    def _structured_text(self, text: str) -> list[Span]:
        spans: list[Span] = []
        for start, end, owned in self._chunks(text):
            spans += self._structured(text[start:end] if (start, end) != (0, len(text)) else text, start, owned)
        return spans

    # NER -------------------------------------------------------------------------------------------------------
    def _ner_batch(self, texts: Sequence[str]) -> list[list[Span]]:
        from pii_detect.engine import NER_SCORE, SPACY_LABEL_TO_ENTITY

        out: list[list[Span]] = [[] for _ in texts]
        jobs: list[tuple[int, int, int]] = []  # (text index, chunk offset, owned_until)
        pieces: list[str] = []
        for i, text in enumerate(texts):
            for start, end, owned in self._chunks(text):
                jobs.append((i, start, owned))
                pieces.append(text[start:end])
        for (i, offset, owned), doc in zip(jobs, self._nlp.pipe(pieces, batch_size=self.config.ner_batch_size),
                                           strict=True):
            for ent in doc.ents:
                etype = SPACY_LABEL_TO_ENTITY.get(ent.label_)
                if etype not in self._ner or offset + ent.start_char >= owned:
                    continue
                if self.config.threshold(etype) <= NER_SCORE:
                    out[i].append(Span(offset + ent.start_char, offset + ent.end_char, etype, NER_SCORE,
                                       "SpacyRecognizer"))
        return out

    # public API ------------------------------------------------------------------------------------------------
    def find_spans(self, text: str) -> list[Span]:
        """Return the resolved PII spans of one text."""
        return self.find_spans_batch([text])[0]

    def find_spans_batch(self, texts: Sequence[str]) -> list[list[Span]]:
        """Return the resolved PII spans of each text (NER runs batched through ``nlp.pipe``)."""
        structured = [self._structured_text(t) for t in texts]
        if self._nlp is not None:
            for spans, ner in zip(structured, self._ner_batch(texts), strict=True):
                # a validated pattern beats the small NER model: drop NER spans overlapping structured ones
                spans += [n for n in ner if not any(s.start < n.end and n.start < s.end for s in spans)]
        return [resolve_spans(s) for s in structured]

    def scan_documents(self, docs: Iterable[Document]) -> list[PiiFinding]:
        """Return findings (HMAC + masked preview, no value) for a batch of documents."""
        docs = list(docs)
        findings: list[PiiFinding] = []
        for doc, spans in zip(docs, self.find_spans_batch([d.text for d in docs]), strict=True):
            if not spans:
                continue
            sha = doc.sha256
            findings += [make_finding(s, text=doc.text, source=doc.source, doc_key=doc.doc_key,
                                      doc_sha256=sha, key=self._key) for s in spans]
        return findings
