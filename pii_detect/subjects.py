"""Deletion requests: parse and validate them, then find every occurrence of a subject's identifiers.

Offers :class:`Identifier`, :class:`Subject`, :class:`DeletionRequest`, :func:`parse_deletion_request` (dict ->
request, :class:`~pii_detect.errors.RequestError` naming the JSON field path; messages never echo values),
:class:`SubjectMatcher` (documents -> findings rows, same schema as scans) and :func:`locate_subject`
(corpus -> streaming findings batches).

Matching is normalized: emails case-insensitively; SSNs with or without dashes, dots or spaces; phone numbers in
any format that parses to the same E.164 number; names and free strings case-insensitively with any run of
whitespace between words (names also as ``Last, First``). A finding's ``value_hmac`` is the HMAC of the
identifier's normalized value, so all variants of one identifier share it (and match a scan's HMAC for it).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers

from pii_detect.config import ReaderOptions
from pii_detect.errors import RequestError
from pii_detect.findings import PiiFinding, Span, make_finding
from pii_detect.normalize import DEFAULT_REGION, ENTITY_FOR_TYPE, normalize_phone, normalize_value, value_hmac
from pii_detect.pipeline import ProgressFn, ScanStats, run_detector
from pii_detect.readers import Document, iter_documents

IDENTIFIER_TYPES = tuple(ENTITY_FOR_TYPE)
RECOGNIZER = "SubjectMatcher"
_SSN_CANDIDATE = re.compile(r"(?<![\w-])\d{3}\s*[-.]?\s*\d{2}\s*[-.]?\s*\d{4}(?![\w-])")


@dataclass(frozen=True, slots=True)
class Identifier:
    """One identifier of a subject. ``value`` is personal data: kept out of ``repr``."""

    type: str
    value: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Subject:
    """The person a deletion request is about."""

    name: str | None = field(default=None, repr=False)
    identifiers: tuple[Identifier, ...] = ()

    def all_identifiers(self) -> tuple[Identifier, ...]:
        """Return the identifiers including ``name`` as a ``name`` identifier."""
        extra = (Identifier("name", self.name),) if self.name else ()
        return extra + self.identifiers


@dataclass(frozen=True, slots=True)
class DeletionRequest:
    """A verified erasure request (GDPR Art. 17). Only ``subject`` is needed to locate data."""

    request_id: str | None
    subject: Subject
    received_at: str | None = None
    verified_at: str | None = None
    legal_basis: str | None = None
    requester_ref: str | None = field(default=None, repr=False)


def _opt_str(data: Mapping[str, Any], key: str, path: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise RequestError(f"{path}{key}: must be a string (got {type(value).__name__}).")
    return value


def _check_value(kind: str, value: str, path: str) -> None:
    digits = sum(c.isdigit() for c in value)
    if kind == "email" and ("@" not in value or "." not in value.rpartition("@")[2]):
        raise RequestError(f"{path}.value: not an email address (expected local@domain.tld).")
    if kind == "ssn" and digits != 9:
        raise RequestError(f"{path}.value: an SSN has 9 digits (this one has {digits}).")
    if kind == "phone" and digits < 7:
        raise RequestError(f"{path}.value: a phone number needs at least 7 digits (this one has {digits}).")


def parse_deletion_request(data: Any) -> DeletionRequest:
    """Validate a deletion-request JSON object and return it typed.

    Expected shape: ``{"request_id", "received_at", "verified_at", "legal_basis", "requester_ref",
    "subject": {"name", "identifiers": [{"type": "email|ssn|phone|name|other", "value"}]}}``.

    Raises:
        RequestError: Naming the field path (``subject.identifiers[1].type``) and what to fix.
    """
    if not isinstance(data, Mapping):
        raise RequestError("(root): a deletion request must be a JSON object.")
    subject = data.get("subject")
    if not isinstance(subject, Mapping):
        raise RequestError("subject: missing or not an object; give {\"name\": ..., \"identifiers\": [...]}.")
    name = _opt_str(subject, "name", "subject.")
    raw_ids = subject.get("identifiers", [])
    if not isinstance(raw_ids, list):
        raise RequestError("subject.identifiers: must be a list of {\"type\", \"value\"} objects.")
    identifiers = []
    for i, item in enumerate(raw_ids):
        path = f"subject.identifiers[{i}]"
        if not isinstance(item, Mapping):
            raise RequestError(f"{path}: must be an object with 'type' and 'value'.")
        kind, value = item.get("type"), item.get("value")
        if kind not in IDENTIFIER_TYPES:
            raise RequestError(f"{path}.type: must be one of {', '.join(IDENTIFIER_TYPES)} (got {kind!r}).")
        if not isinstance(value, str) or not value.strip():
            raise RequestError(f"{path}.value: must be a non-empty string.")
        _check_value(kind, value, path)
        identifiers.append(Identifier(kind, value.strip()))
    if not (name and name.strip()) and not identifiers:
        raise RequestError("subject: give a non-empty 'name' or at least one entry in 'identifiers'.")
    return DeletionRequest(
        request_id=_opt_str(data, "request_id", ""),
        subject=Subject(name=name.strip() if name and name.strip() else None, identifiers=tuple(identifiers)),
        received_at=_opt_str(data, "received_at", ""),
        verified_at=_opt_str(data, "verified_at", ""),
        legal_basis=_opt_str(data, "legal_basis", ""),
        requester_ref=_opt_str(data, "requester_ref", ""),
    )


def _words_pattern(words: list[str]) -> str:
    return r"\s+".join(re.escape(w) for w in words)


class SubjectMatcher:
    """Find a subject's identifiers in texts; emits findings rows like a scan.

    Args:
        subject: Who to look for.
        key: HMAC key bytes.
        region: Default region for phone numbers written without a country code.
    """

    def __init__(self, subject: Subject, key: bytes, region: str = DEFAULT_REGION) -> None:
        self._key = key
        self._region = region
        self._regexes: list[tuple[re.Pattern, str, str]] = []  # (pattern, entity, identifier value)
        self._ssns: dict[str, str] = {}
        self._phones: dict[str, str] = {}
        for ident in subject.all_identifiers():
            entity = ENTITY_FOR_TYPE[ident.type]
            if ident.type == "ssn":
                self._ssns[normalize_value(entity, ident.value)] = ident.value
            elif ident.type == "phone":
                self._phones[normalize_phone(ident.value, region)] = ident.value
            elif ident.type == "email":
                pat = rf"(?<![\w.+'-]){re.escape(ident.value.strip())}(?![\w-]|\.\w)"
                self._regexes.append((re.compile(pat, re.IGNORECASE), entity, ident.value))
            else:
                words = ident.value.split()
                alts = [_words_pattern(words)]
                if ident.type == "name" and len(words) >= 2:
                    alts.append(_words_pattern([words[-1] + ","] + words[:-1]).replace(r",\s+", r",\s*"))
                pat = rf"(?<!\w)(?:{'|'.join(alts)})(?!\w)"
                self._regexes.append((re.compile(pat, re.IGNORECASE), entity, ident.value))
        self._phone_tails = {re.sub(r"\D", "", p)[-4:] for p in self._phones}

    def __repr__(self) -> str:
        return f"SubjectMatcher(patterns={len(self._regexes)}, ssns={len(self._ssns)}, phones={len(self._phones)})"

    def find(self, text: str) -> list[tuple[Span, str]]:
        """Return ``(span, identifier value)`` pairs for every occurrence in ``text``."""
        out: list[tuple[Span, str]] = []
        for regex, entity, ident in self._regexes:
            out += [(Span(m.start(), m.end(), entity, 1.0, RECOGNIZER), ident) for m in regex.finditer(text)]
        if self._ssns:
            for m in _SSN_CANDIDATE.finditer(text):
                ident = self._ssns.get(re.sub(r"\D", "", m.group()))
                if ident is not None:
                    out.append((Span(m.start(), m.end(), "US_SSN", 1.0, RECOGNIZER), ident))
        if self._phones and any(t in text for t in self._phone_tails):
            for m in phonenumbers.PhoneNumberMatcher(text, self._region, leniency=phonenumbers.Leniency.POSSIBLE):
                e164 = phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.E164)
                ident = self._phones.get(e164)
                if ident is not None:
                    out.append((Span(m.start, m.end, "PHONE_NUMBER", 1.0, RECOGNIZER), ident))
        return out

    def scan_documents(self, docs: Iterable[Document]) -> list[PiiFinding]:
        """Return findings rows for every occurrence in ``docs`` (HMAC of the identifier, masked preview)."""
        findings: list[PiiFinding] = []
        for doc in docs:
            hits = self.find(doc.text)
            if not hits:
                continue
            sha = doc.sha256
            seen = set()
            for span, ident in sorted(hits, key=lambda h: (h[0].start, h[0].end)):
                if (span.start, span.end, span.entity_type) in seen:
                    continue
                seen.add((span.start, span.end, span.entity_type))
                f = make_finding(span, text=doc.text, source=doc.source, doc_key=doc.doc_key, doc_sha256=sha,
                                 key=self._key)
                # all variants of one identifier share its HMAC (e.g. "Doe, John" and "john doe")
                findings.append(_with_hmac(f, value_hmac(self._key, span.entity_type, ident)))
        return findings


def _with_hmac(finding: PiiFinding, hmac_hex: str) -> PiiFinding:
    from dataclasses import replace

    return replace(finding, value_hmac=hmac_hex)


def locate_subject(
    paths: Iterable[str | Path],
    subject: Subject,
    key: bytes,
    reader: ReaderOptions | None = None,
    *,
    workers: int = 1,
    stats: ScanStats | None = None,
    progress: ProgressFn | None = None,
) -> Iterator[list[PiiFinding]]:
    """Yield findings batches for every occurrence of ``subject``'s identifiers in the corpus (streaming)."""
    stats = stats if stats is not None else ScanStats()
    docs = iter_documents(paths, reader or ReaderOptions(), stats.issues)
    yield from run_detector(docs, functools.partial(SubjectMatcher, subject, key), workers=workers, stats=stats,
                            progress=progress)
