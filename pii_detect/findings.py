"""Typed findings and their conversion to Arrow.

Offers :class:`Span` (a located entity inside one text, no value), :class:`PiiFinding` (one row of
:data:`~pii_detect.schema.FINDINGS_SCHEMA`), :func:`make_finding_id`, :func:`make_finding` (span + document text +
key -> finding, computing the HMAC and the masked preview from the value, which is then dropped) and
:func:`findings_to_table`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import astuple, dataclass, fields

import pyarrow as pa

from pii_detect.mask import mask_value
from pii_detect.normalize import value_hmac
from pii_detect.schema import FINDINGS_SCHEMA


@dataclass(frozen=True, slots=True)
class Span:
    """One entity located in a text by character offsets ``[start, end)``; carries no value.

    Args:
        start: Offset of the first character.
        end: Offset one past the last character.
        entity_type: Presidio-style entity type (``EMAIL_ADDRESS``, ``PERSON``, ...).
        score: Confidence in ``[0, 1]``.
        recognizer: Name of the recognizer that produced it.
    """

    start: int
    end: int
    entity_type: str
    score: float
    recognizer: str


@dataclass(frozen=True, slots=True)
class PiiFinding:
    """One findings row (DESIGN §2). Holds only ids, locations, an HMAC and a masked preview — no raw value."""

    finding_id: str
    source: str
    doc_key: str
    doc_sha256: str
    start: int
    end: int
    entity_type: str
    score: float
    recognizer: str
    value_hmac: str
    masked_preview: str

    def to_record(self) -> dict[str, str | int | float]:
        """Return the row as a plain dict keyed by schema column names."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def make_finding_id(source: str, doc_key: str, start: int, end: int, entity_type: str) -> str:
    """Return a deterministic hex id (sha256, 32 hex chars) of a finding's location and entity type."""
    raw = "\x1f".join((source, doc_key, str(start), str(end), entity_type))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def make_finding(span: Span, *, text: str, source: str, doc_key: str, doc_sha256: str, key: bytes) -> PiiFinding:
    """Turn a span of ``text`` into a finding; the raw value is used for the HMAC and the mask, then dropped."""
    value = text[span.start : span.end]
    return PiiFinding(
        finding_id=make_finding_id(source, doc_key, span.start, span.end, span.entity_type),
        source=source,
        doc_key=doc_key,
        doc_sha256=doc_sha256,
        start=span.start,
        end=span.end,
        entity_type=span.entity_type,
        score=float(span.score),
        recognizer=span.recognizer,
        value_hmac=value_hmac(key, span.entity_type, value),
        masked_preview=mask_value(span.entity_type, value),
    )


def findings_to_table(findings: Iterable[PiiFinding]) -> pa.Table:
    """Return findings as a :data:`FINDINGS_SCHEMA` table (columnar, built without per-row dicts)."""
    columns: list[list] = [[] for _ in FINDINGS_SCHEMA.names]
    for finding in findings:
        for column, value in zip(columns, astuple(finding), strict=True):
            column.append(value)
    return pa.Table.from_arrays(
        [pa.array(col, type=fld.type) for col, fld in zip(columns, FINDINGS_SCHEMA, strict=True)],
        schema=FINDINGS_SCHEMA,
    )
