"""Arrow schemas of the tables :mod:`pii_detect` produces, declared once.

Offers :data:`FINDINGS_SCHEMA` (DESIGN §2 "findings"): one row per PII span, locations plus a keyed HMAC and a
masked preview, never the raw value.
"""

from __future__ import annotations

import pyarrow as pa

FINDINGS_SCHEMA = pa.schema(
    [
        pa.field("finding_id", pa.string()),
        pa.field("source", pa.string()),
        pa.field("doc_key", pa.string()),
        pa.field("doc_sha256", pa.string()),
        pa.field("start", pa.int64()),
        pa.field("end", pa.int64()),
        pa.field("entity_type", pa.string()),
        pa.field("score", pa.float64()),
        pa.field("recognizer", pa.string()),
        pa.field("value_hmac", pa.string()),
        pa.field("masked_preview", pa.string()),
    ],
    metadata={"name": "findings", "version": "1"},
)
