"""The compliance policy: :class:`Policy` (entity types, memorization criteria, the inventory, REVS settings, audit
thresholds) and :func:`load_policy` (TOML, see ``deploy/policy.example.toml``), which rejects an invalid policy
with :class:`~flows.params.ParamsError`, one line per problem."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from flows.params import ParamsError, _err, _messages
from tasks.verdict import AuditThresholds


class EntityPolicy(BaseModel):
    """Which PII the sweep looks for.

    ``phone_regions``: ISO 3166 codes whose national phone formats count as PHONE_NUMBER (numbers written with
    ``+`` and a country code always do); default ``pii_detect.DEFAULT_PHONE_REGIONS``, Presidio's default
    regions (US, GB, DE, FR, IL, IN, CA, BR) plus JP and CN.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    types: list[str] = Field(default_factory=lambda: ["EMAIL_ADDRESS", "US_SSN", "PHONE_NUMBER", "PERSON"],
                             min_length=1)
    min_score: float = Field(0.5, ge=0.0, le=1.0)
    phone_regions: list[str] = Field(default_factory=lambda: _default_phone_regions(), min_length=1)

    @field_validator("phone_regions")
    @classmethod
    def _known_phone_regions(cls, regions: list[str]) -> list[str]:
        from pii_detect.config import check_phone_regions
        from pii_detect.errors import ConfigError

        try:
            return list(check_phone_regions(regions))
        except ConfigError as exc:
            raise _err("phone_regions", str(exc).removeprefix("phone_regions: ")) from None

    @field_validator("types")
    @classmethod
    def _known_types(cls, types: list[str]) -> list[str]:
        return _check_entity_types(types)


def _check_entity_types(types: list[str]) -> list[str]:
    # Checked at load, so a typo fails before anything runs (not mid-flow after version 1 is registered).
    from pii_detect.config import NER_ENTITIES, STRUCTURED_ENTITIES

    known = (*STRUCTURED_ENTITIES, *NER_ENTITIES)
    unknown = [t for t in types if t not in known]
    if unknown:
        raise _err("entity_type", f"unknown entity type(s) {', '.join(map(repr, unknown))}; known types: "
                                  + ", ".join(known))
    duplicates = sorted({t for t in types if types.count(t) > 1})
    if duplicates:
        raise _err("duplicate", f"{', '.join(duplicates)} listed more than once")
    return types


def _default_phone_regions() -> list[str]:
    from pii_detect.config import DEFAULT_PHONE_REGIONS

    return list(DEFAULT_PHONE_REGIONS)


class MemorizationPolicy(BaseModel):
    """When a finding counts as memorized (and is selected for erasure)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exact_match: bool = True
    min_extraction_score: float = Field(0.8, ge=0.0, le=1.0)


class InventoryPolicy(BaseModel):
    """The memorization inventory (:mod:`tasks.inventory`): how it is built when a version has none, and how an
    erasure splits it between its guard and the audit's held-out slice."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # findings of the corpus probed to build an inventory for a version that has none (deletion requests)
    sample: int = Field(200, ge=0, le=100_000)
    # share of the inventory's memorized findings the guard never sees: Specificity on them shows collateral
    # damage the guard could not prevent
    holdout_pct: float = Field(25.0, ge=0.0, le=100.0)
    holdout_limit: int = Field(256, ge=0, le=100_000)
    seed: int = 0
    # entity types a sweep also finds and probes besides [entities] types: memorized ones join its inventory, so
    # they guard the edit and the audit checks them, but they are never erased
    types: list[str] = Field(default_factory=list)

    @field_validator("types")
    @classmethod
    def _known_types(cls, types: list[str]) -> list[str]:
        return _check_entity_types(types)


class Policy(BaseModel):
    """The compliance policy: what to look for, what counts as memorized, how to edit, when an audit passes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _finite_numbers(cls, data: Any) -> Any:
        problems = non_finite_numbers(data)
        if problems:
            raise _err("finite", "; ".join(problems))
        return data

    entities: EntityPolicy = Field(default_factory=EntityPolicy)
    memorization: MemorizationPolicy = Field(default_factory=MemorizationPolicy)
    inventory: InventoryPolicy = Field(default_factory=InventoryPolicy)
    # A preset name and overrides of its fields (revs_engine.presets; checked at load, unknown keys are named).
    revs: dict[str, Any] = Field(default_factory=dict)
    audit: AuditThresholds = Field(default_factory=AuditThresholds)

    @field_validator("revs")
    @classmethod
    def _valid_revs_config(cls, value: dict[str, Any]) -> dict[str, Any]:
        from revs_engine.presets import FAMILY_PRESET, resolve_config

        # without a named preset, the default depends on the model's tokenizer: check against every default
        for default in dict.fromkeys(FAMILY_PRESET.values()):
            try:
                resolve_config(value, default)
            except (TypeError, ValueError) as exc:
                hint = "" if "preset" in value else f" (with the default preset {default!r}; name a preset " \
                    "to choose another)"
                raise _err("revs", f"{exc}{hint}") from None
        return value

    @property
    def scan_types(self) -> list[str]:
        """Entity types a run scans: the ``[entities]`` types it may erase, then the ``[inventory]`` types it only
        inventories (guard + audit)."""
        return list(dict.fromkeys([*self.entities.types, *self.inventory.types]))


def load_policy(path: str | Path | None = None) -> Policy:
    """Load a policy TOML file (``None``: the defaults).

    Raises:
        ParamsError: TOML syntax error (with line and column) or one line per invalid field.
    """
    if path is None:
        return Policy()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ParamsError(str(path), [f"TOML syntax error: {exc}"]) from None
    except UnicodeDecodeError:
        raise ParamsError(str(path), ["(file): not UTF-8 text"]) from None
    problems = non_finite_numbers(data) + inconsistent_settings(data)
    if problems:
        raise ParamsError(str(path), problems)
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise ParamsError(str(path), _messages(exc)) from None


def non_finite_numbers(data: Any, path: str = "") -> list[str]:
    """Return ``"<field path>: must be a finite number"`` for every nan or infinity in a policy document.

    A nan threshold compares false with everything, so an audit checked against it could never fail.
    """
    if isinstance(data, float) and not math.isfinite(data):
        return [f"{path or '(top level)'}: must be a finite number (nan and inf are not thresholds)"]
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in non_finite_numbers(v, f"{path}.{k}" if path else str(k))]
    if isinstance(data, list | tuple):
        return [p for i, v in enumerate(data) for p in non_finite_numbers(v, f"{path}[{i}]")]
    return []


def inconsistent_settings(data: Any) -> list[str]:
    """Return one line per setting of a policy document that contradicts another one."""
    problems = []
    memorization = data.get("memorization") if isinstance(data, dict) else None
    if isinstance(memorization, dict) and memorization.get("exact_match") is False \
            and memorization.get("min_extraction_score") == 0:
        problems.append("memorization.min_extraction_score: 0 with exact_match = false marks every finding as "
                        "memorized, even those the model never reproduces; give a score above 0")
    return problems
