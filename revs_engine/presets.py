"""Named erase configurations, the default for a tokenizer, and a policy's overrides on top of them.

Offers :class:`EraseConfig` (method + REVS / FT-L hyperparameters + which tokens), :data:`PRESETS`,
:func:`tokenizer_family`, :func:`default_preset` and :func:`resolve_config`.

A preset is a configuration with a row in ``benchmarks/RESULTS.md`` (``revs_bench`` runs each by name through
:func:`revs_engine.erase.erase`):

- ``paper``: REVS as published (rarest two tokens per secret, no guard; reference/revs-method.md §1).
- ``digits``: the best measured configuration for tokenizers that write numbers one digit per token (SmolLM2):
  the retain guard with format-preserving decoys of each secret (after its own prompt, and two look-alike values
  after each guarded retained item's prompt, only their value positions guarded), one target per secret at the
  position least like the guard's contexts (positions whose letters the prompt spells last), each layer's edit
  re-weighted by the guard projection over the chosen neurons plus the 512 most specific to the secret's
  context, residual window 0.4–2 % and MLP window 0.6–90 % of the vocabulary, then two settle rounds (targets
  later edits pulled back below the window are edited again) and two perturbation rounds of four perturbed
  prompts per target (targets that come back below it after perturbed prompts are edited again after them);
  last, the last block's whole change re-projected at once (λ 0.001) away from the positions of the guard and
  of a sample of the training corpus (``EraseInputs.corpus``; without one that step is skipped). The shallow
  window spares other people's values that share the edited digit; the rounds give back the margin it loses;
  the re-projection takes the last block's summed trace off ordinary text.
- ``ftl``: the FT-L baseline (constrained fine-tuning) on the ``digits`` preset's target tokens.

The default (:func:`default_preset`) is ``digits`` for digit-level tokenizers and ``paper`` otherwise: the
``digits`` rules were measured only on a digit-level tokenizer, the published ones on Llama-3 and GPT-J.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from revs_engine.config import AssociationConfig, RevsConfig
from revs_engine.ftl import FtlConfig
from revs_engine.targets import TargetConfig


@dataclass(frozen=True)
class EraseConfig:
    """How :func:`revs_engine.erase.erase` edits.

    Args:
        name: the preset this came from (``custom`` when built by hand).
        method: ``revs`` or ``ftl`` (the baseline).
        revs: REVS hyperparameters; its ``targets`` (which tokens) and ``decoys`` (the guard's look-alikes of each
            secret) also serve FT-L.
        ftl: FT-L hyperparameters (used when ``method == "ftl"``).
        overrides: the fields a policy changed on top of the preset (recorded in reports).
    """

    name: str = "custom"
    method: Literal["revs", "ftl"] = "revs"
    revs: RevsConfig = field(default_factory=RevsConfig)
    ftl: FtlConfig = field(default_factory=FtlConfig)
    overrides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.method not in ("revs", "ftl"):
            raise ValueError(f"method must be 'revs' or 'ftl', got {self.method!r}")
        if self.method == "ftl" and (self.revs.targets.fallback or self.revs.targets.cover_ranks):
            raise ValueError("targets.fallback and targets.cover_ranks run REVS on more positions and do nothing "
                             "for FT-L: drop them")

    @property
    def uses_guard(self) -> bool:
        """Whether the edit reads a retain guard (see :attr:`RevsConfig.uses_guard`; FT-L only for positions)."""
        if self.method == "ftl":
            return self.revs.targets.method == "distinct"
        return self.revs.uses_guard

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (preset name, method, both configs, what was overridden)."""
        return {"preset": self.name, "method": self.method, "overrides": list(self.overrides),
                "revs": self.revs.to_dict(),
                "ftl": {f.name: getattr(self.ftl, f.name) for f in dataclasses.fields(self.ftl)}}


_DIGIT_TARGETS = TargetConfig(max_tokens=1, method="distinct", copied_last=True)

#: The named configurations (module docstring); ``benchmarks/RESULTS.md`` has a row for each.
PRESETS: dict[str, EraseConfig] = {
    "paper": EraseConfig("paper", "revs", RevsConfig()),
    "digits": EraseConfig("digits", "revs", RevsConfig(
        guard_projection=0.02, guard_spread=512, residual_rank_window=(0.004, 0.02), mlp_rank_window=(0.006, 0.9),
        decoys=8, cross_decoys=2, settle_rounds=2, perturb_rounds=2, perturb_prompts=4, joint_final=0.001,
        joint_covariance="both", joint_variants=True,
        targets=dataclasses.replace(_DIGIT_TARGETS, spellings=True))),
    # FT-L's lr is raised from the paper's 1e-5: at 1e-5 and ε = 5e-4 it barely moves SmolLM2's digits (measured)
    "ftl": EraseConfig("ftl", "ftl", RevsConfig(decoys=8, targets=_DIGIT_TARGETS),
                       FtlConfig(lr=1e-4, steps=5, epsilon=5e-4)),
}

#: The tokenizer families :func:`default_preset` tells apart, and the preset each gets.
FAMILY_PRESET = {"digit-level": "digits", "multi-digit": "paper"}


def tokenizer_family(encode: Callable[[str], list[int]]) -> str:
    """Return ``digit-level`` when the tokenizer writes a number one digit per token (SmolLM2, Llama-2,
    Mistral), else ``multi-digit`` (GPT-2, Llama-3: several digits per token)."""
    probe = "4096173582"
    return "digit-level" if len(encode(probe)) >= len(probe) else "multi-digit"


def default_preset(encode: Callable[[str], list[int]]) -> str:
    """Return the name of the best measured preset for the tokenizer behind ``encode``."""
    return FAMILY_PRESET[tokenizer_family(encode)]


_TOP_LEVEL = ("preset", "ftl", "targets", "association")
#: The REVS fields an FT-L preset still reads: the decoys of its guard (for the distinct position rule).
FTL_USES = {"decoys", "seed"}


def resolve_config(overrides: Mapping[str, Any] | None, default: str) -> EraseConfig:
    """Return the preset named by ``overrides["preset"]`` (else ``default``) with the other keys applied.

    ``overrides`` is a policy's ``[revs]`` table: ``preset``, any :class:`RevsConfig` field, a nested ``targets``
    table (:class:`TargetConfig` fields), a nested ``association`` table (:class:`AssociationConfig` fields) and
    a nested ``ftl`` table (:class:`FtlConfig` fields).

    Raises:
        ValueError: an unknown preset or key (named, with the valid ones), an invalid value, or a combination
            that would do nothing (e.g. ``guard_spread`` without ``guard_projection``).
    """
    overrides = dict(overrides or {})
    name = overrides.pop("preset", default)
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
    base = PRESETS[name]
    revs_fields = {f.name for f in dataclasses.fields(RevsConfig)} - {"targets", "association"}
    assoc_fields = {f.name for f in dataclasses.fields(AssociationConfig)}
    target_fields = {f.name for f in dataclasses.fields(TargetConfig)}
    ftl_fields = {f.name for f in dataclasses.fields(FtlConfig)}
    targets, ftl = dict(overrides.pop("targets", None) or {}), dict(overrides.pop("ftl", None) or {})
    assoc = dict(overrides.pop("association", None) or {})
    if base.method == "ftl" and set(overrides) - FTL_USES:
        raise ValueError(f"preset {name!r} runs FT-L, which does not use REVS's "
                         f"{', '.join(sorted(set(overrides) - FTL_USES))}: drop them, or override ftl.* fields")
    unknown = sorted(set(overrides) - revs_fields) + sorted(f"targets.{k}" for k in set(targets) - target_fields) \
        + sorted(f"ftl.{k}" for k in set(ftl) - ftl_fields) \
        + sorted(f"association.{k}" for k in set(assoc) - assoc_fields)
    if assoc and base.method == "ftl":
        raise ValueError(f"preset {name!r} runs FT-L; the association stage runs before REVS only: drop "
                         "association.*")
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(_TOP_LEVEL)}, "
                         f"{', '.join(sorted(revs_fields))} (targets: {', '.join(sorted(target_fields))}; ftl: "
                         f"{', '.join(sorted(ftl_fields))}; association: {', '.join(sorted(assoc_fields))})")
    overrides = _follow_switched_off(base.revs, overrides)
    try:
        target_cfg = dataclasses.replace(base.revs.targets, **{k: _tuple(v) for k, v in targets.items()})
        assoc_cfg = dataclasses.replace(base.revs.association, **{k: _tuple(v) for k, v in assoc.items()})
        revs = dataclasses.replace(base.revs, targets=target_cfg, association=assoc_cfg,
                                   **{k: _tuple(v) for k, v in overrides.items()})
        ftl_cfg = dataclasses.replace(base.ftl, **{k: _tuple(v) for k, v in ftl.items()})
    except TypeError as exc:
        raise ValueError(str(exc)) from None
    changed = tuple(sorted([*overrides, *(f"targets.{k}" for k in targets), *(f"ftl.{k}" for k in ftl),
                            *(f"association.{k}" for k in assoc)]))
    return EraseConfig(name, base.method, revs, ftl_cfg, changed)


def _joint_on(r: Mapping[str, Any]) -> bool:
    return bool(r["joint_projection"] or r["joint_final"])


#: Preset settings that only act through another step: when a policy switches that step off and leaves the
#: setting alone, the setting goes back to :class:`RevsConfig`'s default with it (a policy that names the setting
#: too is checked as written, so an inert combination it asks for is still refused).
_FOLLOWERS: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "joint_covariance": _joint_on,
    "corpus_value_weight": lambda r: _joint_on(r) and r["joint_covariance"] != "guard",
    "joint_variants": lambda r: _joint_on(r) and bool(r["perturb_rounds"])
    and bool(r["perturb_prompts"] or r["perturb_drops"]),
    "joint_settle_rounds": _joint_on,
}


def switched_off(revs: RevsConfig, **changes: Any) -> RevsConfig:
    """``revs`` with ``changes`` (steps switched off) and every :data:`_FOLLOWERS` setting whose step no longer
    acts back at its default, so that the result passes :class:`RevsConfig`'s inert-setting check."""
    return dataclasses.replace(revs, **_follow_switched_off(revs, changes))


def _follow_switched_off(preset: RevsConfig, overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` plus the :data:`_FOLLOWERS` the preset sets and the policy leaves alone whose step the
    policy switched off, back at their defaults."""
    merged = {f.name: getattr(preset, f.name) for f in dataclasses.fields(RevsConfig)} | overrides
    out = dict(overrides)
    for name, acts in _FOLLOWERS.items():
        default = next(f.default for f in dataclasses.fields(RevsConfig) if f.name == name)
        if name not in overrides and merged[name] != default and not acts(merged):
            out[name] = default
    return out


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
