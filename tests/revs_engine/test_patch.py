import json

import pytest
import torch

from revs_engine import patch as patch_mod
from revs_engine.edit import NeuronEdit, apply_edits, restore
from revs_engine.hashing import weights_sha256
from revs_engine.patch import (
    EDITS_SCHEMA,
    PatchManifest,
    PatchMismatchError,
    apply_patch,
    edits_table,
    load_patch,
    make_patch,
    revert_patch,
    save_patch,
)


def _edit(model, arch):
    g = torch.Generator().manual_seed(1)
    edits = [NeuronEdit(0, torch.tensor([1, 5]), torch.randn(2, arch.d_model, generator=g)),
             NeuronEdit(1, torch.tensor([5, 9, 40]), torch.randn(3, arch.d_model, generator=g))]
    base_sha = weights_sha256(model)
    backup = apply_edits(model, arch, edits)
    return base_sha, backup, make_patch(arch, backup)


def _manifest(base_sha, edited_sha):
    return PatchManifest(base_model="tiny", base_weights_sha256=base_sha, edited_weights_sha256=edited_sha,
                         target_hmacs=["hmac-a", "hmac-b"], convergence={"targets": 2, "converged": 2})


def test_save_load_apply_reproduces_edited_model_and_revert_restores_base(tiny, tmp_path):
    # given an edited model and its saved patch
    model, arch = tiny
    base_sha, backup, patch = _edit(model, arch)
    edited_sha = weights_sha256(model)
    save_patch(patch, _manifest(base_sha, edited_sha), tmp_path / "p")
    restore(model, arch, backup)
    assert weights_sha256(model) == base_sha
    # when the patch is loaded and applied to the base
    loaded, manifest = load_patch(tmp_path / "p")
    apply_patch(model, arch, loaded, expect_base=manifest.base_weights_sha256,
                expect_edited=manifest.edited_weights_sha256)
    # then the edited model is reproduced bit-for-bit, and revert gives the base back bit-for-bit
    assert weights_sha256(model) == edited_sha
    revert_patch(model, arch, loaded, expect_edited=edited_sha, expect_base=base_sha)
    assert weights_sha256(model) == base_sha


def test_manifest_records_layers_neurons_and_hmacs(tiny, tmp_path):
    model, arch = tiny
    base_sha, _, patch = _edit(model, arch)
    save_patch(patch, _manifest(base_sha, weights_sha256(model)), tmp_path / "p")
    record = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert record["layers"] == [0, 1]
    assert record["neurons"] == {"0": [1, 5], "1": [5, 9, 40]}
    assert record["target_hmacs"] == ["hmac-a", "hmac-b"]


def test_apply_refuses_a_model_with_another_base_sha(tiny, tmp_path):
    model, arch = tiny
    base_sha, backup, patch = _edit(model, arch)
    with pytest.raises(PatchMismatchError, match="another model version"):
        apply_patch(model, arch, patch, expect_base=base_sha)  # model is already edited


def test_crash_during_save_leaves_nothing(tiny, tmp_path, monkeypatch):
    model, arch = tiny
    base_sha, _, patch = _edit(model, arch)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(patch_mod.Path, "write_text", boom)
    with pytest.raises(OSError, match="disk full"):
        save_patch(patch, _manifest(base_sha, "x"), tmp_path / "p")
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_to_overwrite_unless_asked(tiny, tmp_path):
    model, arch = tiny
    base_sha, _, patch = _edit(model, arch)
    save_patch(patch, _manifest(base_sha, "x"), tmp_path / "p")
    with pytest.raises(FileExistsError):
        save_patch(patch, _manifest(base_sha, "x"), tmp_path / "p")
    save_patch(patch, _manifest(base_sha, "y"), tmp_path / "p", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]
    assert json.loads((tmp_path / "p" / "manifest.json").read_text())["edited_weights_sha256"] == "y"


def test_edits_table_has_one_row_per_neuron(tiny):
    model, arch = tiny
    _, _, patch = _edit(model, arch)
    table = edits_table(patch)
    assert table.schema.equals(EDITS_SCHEMA)
    assert table.num_rows == 5
    assert min(table.column("delta_norm").to_pylist()) > 0
