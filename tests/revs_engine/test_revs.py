import dataclasses
import logging

import pytest
import torch

from revs_engine.arch import resolve_arch
from revs_engine.config import RevsConfig
from revs_engine.edit import restore
from revs_engine.hashing import weights_sha256
from revs_engine.patch import PatchManifest, apply_patch, load_patch, make_patch, save_patch
from revs_engine.revs import unlearn
from revs_engine.targets import TokenTarget
from tests.revs_engine.tiny import tiny_model

# tiny vocabulary of 64: neuron window ranks 32–44, residual bottom 19
CFG = RevsConfig(n_neurons=10, act_top_k=20, neuron_rank_window=(0.5, 0.7), mlp_rank_window=(0.1, 0.9),
                 residual_rank_window=(0.3, 0.6))
BOTTOM = CFG.bounds(64)["residual"][0]


def _model(model_type, mlp_scale=30.0, **kw):
    # random tiny models write almost nothing through their MLPs; scale FF2 so the MLP drives the logits
    model = tiny_model(model_type, **kw)
    arch = resolve_arch(model)
    with torch.no_grad():
        for module in arch.mlp_out:
            module.weight.mul_(mlp_scale)
    return model, arch


def _targets(model, n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        ids = torch.randint(2, 64, (6,), generator=g)
        top = int(model(ids[None]).logits[0, -1].argmax())
        out.append(TokenTarget(i, 0, tuple(ids.tolist()), top))
    return out


@pytest.fixture(params=["gpt2", "gpt_neox", "gptj", "llama", "mistral", "qwen2"])
def family(request):
    return request.param


def test_converged_targets_reach_the_bottom_margin_and_others_say_so(family):
    model, arch = _model(family)
    result = unlearn(model, arch, _targets(model), CFG)
    assert len(result.targets) == 3
    for t in result.targets:
        assert t.rank_before == 0 or t.target_index > 0  # each target starts as the model's top token
        assert t.converged == (t.rank_after >= BOTTOM)
    assert result.n_converged >= 1  # the edit works on every family


def test_non_convergence_is_reported_not_silent(family, caplog):
    model, arch = _model(family, mlp_scale=1.0)  # MLPs too weak to move the final rank
    cfg = RevsConfig(n_neurons=2, act_top_k=20, neuron_rank_window=(0.5, 0.7), mlp_rank_window=(0.1, 0.9),
                     residual_rank_window=(0.9, 0.95), max_iter_mlp=1)
    with caplog.at_level(logging.WARNING, logger="revs_engine.revs"):
        result = unlearn(model, arch, _targets(model, 2), cfg)
    assert not any(t.converged for t in result.targets)
    assert sum("did not converge" in r.message for r in caplog.records) == 2


def test_restore_of_the_backup_is_bit_exact(family):
    model, arch = _model(family)
    base = weights_sha256(model)
    result = unlearn(model, arch, _targets(model), CFG)
    assert result.edits
    assert weights_sha256(model) != base
    restore(model, arch, result.backup)
    assert weights_sha256(model) == base


def test_deterministic_and_resume_gives_the_same_edits_as_naive(family):
    runs = []
    for mode in ({}, {}, {"resume": False}, {"naive": True}):
        model, arch = _model(family)
        result = unlearn(model, arch, _targets(model), CFG, **mode)
        runs.append((result, weights_sha256(model)))
    (fast, sha), (again, sha2), (forward, sha3), (naive, sha4) = runs
    assert sha == sha2 == sha3 == sha4
    assert naive.block_calls == forward.block_calls  # the naive variant differs in projections, not forwards
    for other in (again, forward, naive):
        assert len(other.edits) == len(fast.edits)
        for a, b in zip(fast.edits, other.edits, strict=True):
            assert a.layer == b.layer
            assert torch.equal(a.neurons, b.neurons)
            assert torch.equal(a.delta, b.delta)
        assert [t.rank_after for t in other.targets] == [t.rank_after for t in fast.targets]


def test_patch_of_a_run_reproduces_the_edited_model(family, tmp_path):
    # given an unlearned model and its saved patch
    model, arch = _model(family)
    base = weights_sha256(model)
    result = unlearn(model, arch, _targets(model), CFG)
    edited = weights_sha256(model)
    save_patch(make_patch(arch, result.backup),
               PatchManifest("tiny", base, edited, config=CFG.to_dict(), convergence=result.summary()),
               tmp_path / "patch")
    # when it is applied to a fresh base model
    fresh, fresh_arch = _model(family)
    patch, manifest = load_patch(tmp_path / "patch")
    apply_patch(fresh, fresh_arch, patch, expect_base=manifest.base_weights_sha256,
                expect_edited=manifest.edited_weights_sha256)
    # then it is bit-identical to the edited one
    assert weights_sha256(fresh) == edited


def test_records_are_flat():
    model, arch = _model("llama")
    result = unlearn(model, arch, _targets(model, 1), CFG)
    record = result.targets[0].to_record()
    assert {"rank_before", "rank_after", "rank_final", "converged", "layers", "seconds"} <= set(record)
    assert all(isinstance(v, str | int | float | bool) for v in record.values())


def test_the_k_rule_never_asks_for_more_neurons_than_were_selected():
    # given one selected neuron whose edit overshoots the MLP window (the shrink branch of §1.7)
    from revs_engine.outer import next_k as _next_k

    bounds = {"mlp": (10, 100), "residual": (10, 50)}
    # when / then: shrinking from k=1 stays at 1 (it used to return 2 and index past the one neuron)
    assert _next_k(1, 5000, 20, bounds, 1, CFG) == (1, False)
    assert _next_k(5, 5000, 20, bounds, 5, CFG) == (4, False)
    assert _next_k(3, 50, 30, bounds, 3, CFG) == (3, True)


def test_promoting_decides_on_skipped_layers_whose_mlp_still_writes_the_token():
    from revs_engine.revs import promoting
    from revs_engine.select import GateDecision
    cfg = RevsConfig(promoting_mlp=0.1)  # the top 6 of 64
    assert promoting(GateDecision(False, 3, 40, "residual_demoted", None), cfg, 64)
    assert not promoting(GateDecision(False, 6, 40, "residual_demoted", None), cfg, 64)  # not in the top 6
    assert not promoting(GateDecision(False, 3, 2, "mlp_not_promoting", None), cfg, 64)
    assert not promoting(GateDecision(True, 3, 2, "edit", None), cfg, 64)  # the gate edits it anyway
    assert not promoting(GateDecision(False, 3, 40, "residual_demoted", None), RevsConfig(), 64)  # off
    with pytest.raises(ValueError, match="promoting_mlp"):
        RevsConfig(promoting_mlp=1.0)


def test_promoting_mlp_also_edits_layers_past_the_residual_window_that_still_promote(family):
    # the paper's gate never edits a layer whose residual already ranks the target past the window
    model, arch = _model(family, layers=6)
    plain = unlearn(model, arch, _targets(model, 6), CFG)
    assert all(lr.rank_residual_before < BOTTOM for t in plain.targets for lr in t.layer_results)
    restore(model, arch, plain.backup)
    # with promoting_mlp it also edits the layers after that whose MLP output ranks the target in its top 60 %
    cfg = dataclasses.replace(CFG, promoting_mlp=0.6)
    deep = unlearn(model, arch, _targets(model, 6), cfg)
    extra = [lr for t in deep.targets for lr in t.layer_results if lr.rank_residual_before >= BOTTOM]
    assert extra, "no layer past the residual window promoted the target in this model"
    assert all(lr.rank_mlp_before < int(0.6 * 64) for lr in extra)
    # and such a layer's edit moves its MLP output's rank down, into the MLP window or as far as it went
    assert all(lr.rank_mlp_after > lr.rank_mlp_before for lr in extra)
