"""What an attacker knows about an erased e-mail address, from the run's findings: the subject's names and the
corpus's domains.

Offers :class:`EmailHints` and :func:`email_hints` (findings tables → the PERSON values of each document and
every e-mail domain found). The audit's e-mail format (:func:`revs_engine.format_entities.email_format`) then
guesses local parts among the subject's name variants and domains among the corpus's, instead of strings of the
address's shape, which no model would rank near a real address. Raw names live only in memory here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from tasks import probing_io

DocKey = tuple[str, str]


@dataclass(frozen=True)
class EmailHints:
    """Per document ``(source, doc_key)``: the names found in it; and every e-mail domain found (sorted)."""

    names: dict[DocKey, tuple[str, ...]] = field(default_factory=dict, repr=False)
    domains: tuple[str, ...] = field(default=(), repr=False)

    def names_for(self, source: str, doc_key: str) -> tuple[str, ...]:
        """The names found in one document (empty when none was)."""
        return self.names.get((source, doc_key), ())


def _of_type(table: pa.Table, entity: str) -> pa.Table:
    return table.filter(pc.equal(table.column("entity_type"), entity))


def email_hints(findings: Sequence[pa.Table]) -> EmailHints:
    """Read the PERSON and EMAIL_ADDRESS values of ``findings`` (tables in ``FINDINGS_SCHEMA``) back from the
    corpus; return the names per document and the domains of the addresses."""
    names: dict[DocKey, set[str]] = {}
    domains: set[str] = set()
    for table in findings:
        if table.num_rows == 0:
            continue
        people = _of_type(table, "PERSON")
        doc_of = {r["finding_id"]: (r["source"], r["doc_key"])
                  for r in people.select(["finding_id", "source", "doc_key"]).to_pylist()}
        for t in probing_io.read_probe_texts(people):
            if t.target.strip():
                names.setdefault(doc_of[t.finding_id], set()).add(t.target.strip())
        for t in probing_io.read_probe_texts(_of_type(table, "EMAIL_ADDRESS")):
            _, at, domain = t.target.strip().rpartition("@")
            if at and domain:
                domains.add(domain.lower())
    return EmailHints({k: tuple(sorted(v)) for k, v in names.items()}, tuple(sorted(domains)))
