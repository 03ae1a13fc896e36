"""Patches: an edit as data that reproduces the edited model bit-for-bit and removes itself bit-for-bit.

Offers :class:`Patch` (per layer: neuron indices, original vectors, edited vectors, deltas), :func:`make_patch`
(from a :class:`~revs_engine.edit.WeightBackup` and the edited model), :class:`PatchManifest`, :func:`save_patch`
/ :func:`load_patch` (safetensors + ``manifest.json``, written atomically: a temp dir, then one rename),
:func:`apply_patch` / :func:`revert_patch` (write the recorded EDITED / ORIGINAL values — never add or subtract, so
both are exact, in any dtype: a bf16 patch stores bf16 vectors), :data:`EDITS_SCHEMA` and :func:`edits_table` (one
row per edited neuron for the audit trail).

The manifest names targets only by HMAC strings passed in by the caller (DESIGN.md §2–3): this library never sees
the raw values and never computes those HMACs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from revs_engine.arch import ModelArch, neuron_vectors
from revs_engine.edit import WeightBackup, write_vectors
from revs_engine.errors import RevsError
from revs_engine.hashing import weights_sha256

PATCH_FILE = "patch.safetensors"
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1

EDITS_SCHEMA = pa.schema(
    [
        pa.field("layer", pa.int32(), nullable=False),
        pa.field("neuron", pa.int64(), nullable=False),
        pa.field("delta_norm", pa.float64(), nullable=False),
        pa.field("delta_max_abs", pa.float64(), nullable=False),
        pa.field("original_norm", pa.float64(), nullable=False),
        pa.field("edited_norm", pa.float64(), nullable=False),
    ],
    metadata={"name": "revs_edits", "version": "1"},
)


class PatchMismatchError(RevsError, ValueError):
    """A patch does not fit the model it is applied to (shape, or weights sha256 when verifying)."""


@dataclass(frozen=True)
class Patch:
    """The exact weight change of an edit, per layer.

    Attributes:
        neurons: layer → ``[k]`` int64 sorted neuron indices.
        original: layer → ``[k, d_model]`` write vectors before the edit.
        edited: layer → ``[k, d_model]`` write vectors after the edit.
    """

    neurons: dict[int, torch.Tensor] = field(repr=False)
    original: dict[int, torch.Tensor] = field(repr=False)
    edited: dict[int, torch.Tensor] = field(repr=False)

    @property
    def layers(self) -> list[int]:
        """Edited layers, sorted."""
        return sorted(self.neurons)

    def delta(self, layer: int) -> torch.Tensor:
        """Return the summed delta ``edited − original`` ``[k, d_model]`` of ``layer`` (float32 for a bf16/fp16
        patch: the difference of two half-precision values is exact in float32, not in their own dtype)."""
        edited, original = self.edited[layer], self.original[layer]
        if edited.dtype in (torch.bfloat16, torch.float16):
            edited, original = edited.float(), original.float()
        return edited - original

    def n_neurons(self) -> int:
        """Total number of edited neurons over all layers."""
        return sum(int(n.numel()) for n in self.neurons.values())


@torch.no_grad()
def make_patch(arch: ModelArch, backup: WeightBackup) -> Patch:
    """Build a patch from the originals in ``backup`` and the model's current (edited) vectors."""
    edited = {
        layer: neuron_vectors(arch.mlp_out[layer], arch.spec.transposed).detach()[idx].clone().cpu()
        for layer, idx in backup.neurons.items()
    }
    return Patch(dict(backup.neurons), dict(backup.original), edited)


@dataclass(frozen=True)
class PatchManifest:
    """What a patch was made from and what it produces.

    Attributes:
        base_model: id or path of the base model.
        base_weights_sha256: :func:`~revs_engine.hashing.weights_sha256` of the base model.
        edited_weights_sha256: the same hash of the edited model.
        method: ``revs`` or ``ftl``.
        config: the method's config as a JSON dict.
        target_hmacs: keyed HMACs of the erased values (computed by the caller).
        layers: edited layers; ``neurons``: layer (as str) → edited neuron indices.
        convergence: summary counts, e.g. ``{"targets": 20, "converged": 19}``.
    """

    base_model: str
    base_weights_sha256: str
    edited_weights_sha256: str
    method: str = "revs"
    config: dict[str, Any] = field(default_factory=dict)
    target_hmacs: list[str] = field(default_factory=list)
    layers: list[int] = field(default_factory=list)
    neurons: dict[str, list[int]] = field(default_factory=dict)
    convergence: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION


def save_patch(patch: Patch, manifest: PatchManifest, out_dir: Path, *, overwrite: bool = False) -> Path:
    """Write ``patch.safetensors`` + ``manifest.json`` into ``out_dir`` atomically; return ``out_dir``.

    Everything is written into a sibling temp dir that is renamed into place at the end, so a crash leaves either
    no ``out_dir`` (or the previous one) and no temp dir. ``manifest.layers`` / ``neurons`` are filled from
    the patch.

    Raises:
        FileExistsError: ``out_dir`` exists and ``overwrite`` is False.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists; pass overwrite=True to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    record = asdict(manifest)
    record["layers"] = patch.layers
    record["neurons"] = {str(layer): patch.neurons[layer].tolist() for layer in patch.layers}
    tensors = {}
    for layer in patch.layers:
        tensors[f"layer.{layer}.neurons"] = patch.neurons[layer].contiguous()
        tensors[f"layer.{layer}.original"] = patch.original[layer].contiguous()
        tensors[f"layer.{layer}.edited"] = patch.edited[layer].contiguous()
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out_dir.name}-", dir=out_dir.parent))
    try:
        save_file(tensors, str(tmp / PATCH_FILE), metadata={"format_version": str(FORMAT_VERSION)})
        (tmp / MANIFEST_FILE).write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
        tmp.chmod(0o755)
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".old-{out_dir.name}-", dir=out_dir.parent))
            os.replace(out_dir, old / out_dir.name)
            os.rename(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def load_patch(patch_dir: Path) -> tuple[Patch, PatchManifest]:
    """Read a directory written by :func:`save_patch`."""
    patch_dir = Path(patch_dir)
    if not (patch_dir / PATCH_FILE).exists() or not (patch_dir / MANIFEST_FILE).exists():
        raise FileNotFoundError(f"{patch_dir} is not a patch directory (needs {PATCH_FILE} and {MANIFEST_FILE})")
    tensors = load_file(str(patch_dir / PATCH_FILE))
    manifest = PatchManifest(**json.loads((patch_dir / MANIFEST_FILE).read_text(encoding="utf-8")))
    layers = sorted({int(k.split(".")[1]) for k in tensors})
    patch = Patch(
        {layer: tensors[f"layer.{layer}.neurons"] for layer in layers},
        {layer: tensors[f"layer.{layer}.original"] for layer in layers},
        {layer: tensors[f"layer.{layer}.edited"] for layer in layers},
    )
    return patch, manifest


def _check(model: nn.Module, expected: str | None, what: str) -> None:
    if expected is not None and (actual := weights_sha256(model)) != expected:
        raise PatchMismatchError(f"{what} weights sha256 is {actual[:12]}…, the patch expects {expected[:12]}…: "
                                 "this patch was made for another model version.")


def _write(model: nn.Module, arch: ModelArch, patch: Patch, values: dict[int, torch.Tensor]) -> None:
    for layer in patch.layers:
        if layer >= arch.n_layers or values[layer].shape[-1] != arch.d_model:
            raise PatchMismatchError(f"patch layer {layer} does not fit a model with {arch.n_layers} layers, "
                                     f"d_model {arch.d_model}")
        write_vectors(arch, layer, patch.neurons[layer], values[layer])


def apply_patch(model: nn.Module, arch: ModelArch, patch: Patch, *, expect_base: str | None = None,
                expect_edited: str | None = None) -> None:
    """Write the patch's EDITED vectors into ``model`` (bit-exact reproduction of the edited model).

    Args:
        expect_base / expect_edited: sha256s to verify before / after (e.g. from the manifest); None skips.
    """
    _check(model, expect_base, "the base model's")
    _write(model, arch, patch, patch.edited)
    _check(model, expect_edited, "the patched model's")


def revert_patch(model: nn.Module, arch: ModelArch, patch: Patch, *, expect_edited: str | None = None,
                 expect_base: str | None = None) -> None:
    """Write the patch's ORIGINAL vectors into ``model`` (bit-exact removal), verifying sha256s when given."""
    _check(model, expect_edited, "the edited model's")
    _write(model, arch, patch, patch.original)
    _check(model, expect_base, "the reverted model's")


def edits_table(patch: Patch) -> pa.Table:
    """Return one :data:`EDITS_SCHEMA` row per edited neuron."""
    rows = []
    for layer in patch.layers:
        delta = patch.delta(layer).double()
        orig, edit = patch.original[layer].double(), patch.edited[layer].double()
        for i, neuron in enumerate(patch.neurons[layer].tolist()):
            rows.append({"layer": layer, "neuron": neuron, "delta_norm": float(delta[i].norm()),
                         "delta_max_abs": float(delta[i].abs().max()), "original_norm": float(orig[i].norm()),
                         "edited_norm": float(edit[i].norm())})
    return pa.Table.from_pylist(rows, schema=EDITS_SCHEMA)
