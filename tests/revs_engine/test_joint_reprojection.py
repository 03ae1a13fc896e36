"""The joint re-projection of a block's whole change (revs_engine.guard_projection.project_jointly,
revs_engine.joint_reprojection): every edited context keeps its MLP output, the guard sees less of the sum."""

import dataclasses

import pytest
import torch

from revs_engine import joint_reprojection
from revs_engine.arch import neuron_vectors
from revs_engine.edit import restore
from revs_engine.erase import erase, guard_stats_for
from revs_engine.guard_projection import project_edit, project_jointly
from revs_engine.hashing import weights_sha256
from revs_engine.joint_reprojection import _context_acts, add_rewritten_contexts, note_contexts, reproject_blocks
from revs_engine.perturb_rounds import rewritten_prompts
from revs_engine.presets import EraseConfig
from revs_engine.targets import TargetConfig, TokenTarget
from tests.revs_engine.test_erase import _inputs
from tests.revs_engine.test_revs import CFG, _model


def _case(n=3, k=12, d=16, m=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    guard = torch.rand(m, k, generator=g)
    return torch.rand(n, k, generator=g) + 0.5, torch.randn(k, d, generator=g), guard.T @ guard / m


def _trace(delta, cov):
    return float(torch.einsum("kd,kj,jd->", delta.double(), cov.double(), delta.double()))


def test_every_context_keeps_its_change_and_the_guard_sees_less_of_the_sum():
    acts, delta, cov = _case()
    out = project_jointly(acts, delta, cov, lam=0.01)
    torch.testing.assert_close(acts @ out, acts @ delta, rtol=1e-5, atol=1e-5)
    assert _trace(out, cov) < 0.5 * _trace(delta, cov)
    # a smaller ridge moves further from the edit and leaves the guard less
    assert _trace(project_jointly(acts, delta, cov, lam=1e-4), cov) < _trace(out, cov)


def test_one_context_is_the_single_edit_projection():
    acts, delta, cov = _case(n=1)
    torch.testing.assert_close(project_jointly(acts, delta, cov, lam=0.05),
                               project_edit(acts[0], delta, None, 0.05, cov=cov), rtol=1e-5, atol=1e-6)


def test_a_large_ridge_returns_the_change_and_repeated_contexts_are_solved_once():
    acts, delta, cov = _case()
    torch.testing.assert_close(project_jointly(acts, delta, cov, lam=1e9), delta, rtol=1e-4, atol=1e-4)
    twice = torch.cat([acts, acts[:1]])  # a context noted twice: dependent rows, still every change kept
    out = project_jointly(twice, delta, cov, lam=0.01)
    torch.testing.assert_close(acts @ out, acts @ delta, rtol=1e-4, atol=1e-4)
    assert project_jointly(acts[:0], delta, cov, lam=0.01) is delta
    with pytest.raises(ValueError, match="lam"):
        project_jointly(acts, delta, cov, lam=0.0)
    with pytest.raises(ValueError, match="context_acts"):
        project_jointly(acts[:, :5], delta, cov, lam=0.01)


def test_contexts_are_noted_per_layer_once_each():
    t = [TokenTarget(0, 0, (1, 2), 3), TokenTarget(0, 1, (1, 2, 3), 4)]
    edits = [dataclasses.make_dataclass("E", ["layer", "target_index"])(layer, i)
             for layer, i in ((0, 0), (0, 1), (1, 0), (0, 0), (2, -1))]
    contexts = {}
    note_contexts(contexts, t, edits)
    assert contexts == {0: [(1, 2), (1, 2, 3)], 1: [(1, 2)]}


def _guarded_erase(joint_projection=0.0, joint_final=0.0):
    model, arch = _model("llama")
    rules = TargetConfig(max_tokens=2, method="distinct")
    cfg = EraseConfig("test", "revs", dataclasses.replace(
        CFG, guard_projection=0.05, guard_spread=4, decoys=2, targets=rules,
        joint_projection=joint_projection, joint_final=joint_final))
    inputs = _inputs(model, n=3)
    return model, arch, inputs, cfg


def test_reprojecting_a_guarded_erase_keeps_every_edited_context_and_the_backup_restores_it():
    # given a tiny model erased with the guard projection, the contexts its edits were made at, its guard stats
    model, arch, inputs, cfg = _guarded_erase()
    base = weights_sha256(model)
    stats = guard_stats_for(model, arch, inputs, cfg)
    result = erase(model, arch, inputs, cfg, guard_stats=stats)
    contexts = {}
    note_contexts(contexts, list(result.targets), [e for e in result.edits if e.target_index >= 0])
    assert contexts
    layers = sorted(contexts)
    total = {ly: (neuron_vectors(arch.mlp_out[ly], arch.spec.transposed)[result.backup.neurons[ly]]
                  - result.backup.original[ly]).detach().clone() for ly in layers}
    # when every edited block is re-projected at once
    joint = reproject_blocks(model, arch, contexts, result.backup, stats, 0.01)
    # then each block got one edit over the neurons the erase touched, its change of the MLP output at every
    # context it was edited at is the same (read with the block's input as the earlier blocks now give it), and
    # the guard sees less of each block's change
    assert [e.layer for e in joint] == layers
    for e in joint:
        ly = e.layer
        assert torch.equal(e.neurons, result.backup.neurons[ly])
        assert e.target_index == -1
        vectors = neuron_vectors(arch.mlp_out[ly], arch.spec.transposed)
        acts = _context_acts(model, arch, ly, contexts[ly], 0)[:, e.neurons]
        new = (vectors[e.neurons] - result.backup.original[ly]).detach()
        torch.testing.assert_close(acts @ new.double(), acts @ total[ly].double(), rtol=1e-4, atol=1e-5)
        cov = stats.covariance(ly)[e.neurons][:, e.neurons]
        assert _trace(new, cov) < _trace(total[ly], cov)
    # and the erase's backup still restores the model bit-exactly
    restore(model, arch, result.backup)
    assert weights_sha256(model) == base


def test_the_erase_runs_the_step_per_setting_and_keeps_the_final_ranks_it_reached():
    # given the same guarded erase with and without the last block's joint re-projection
    model, arch, inputs, cfg = _guarded_erase()
    base = weights_sha256(model)
    plain = erase(model, arch, inputs, cfg)
    restore(model, arch, plain.backup)
    last = arch.n_layers - 1
    with_final = dataclasses.replace(cfg, revs=dataclasses.replace(cfg.revs, joint_final=0.01))
    final = erase(model, arch, inputs, with_final)
    # then only the last block got a joint edit, and every target's final rank is where the passes left it
    joint = [e for e in final.edits if e.target_index == -1]
    assert [e.layer for e in joint] == [last]
    assert [o.rank_final for o in final.outcomes] == [o.rank_final for o in plain.outcomes]
    restore(model, arch, final.backup)
    both = erase(model, arch, inputs, dataclasses.replace(
        cfg, revs=dataclasses.replace(cfg.revs, joint_projection=0.01, joint_final=0.01)))
    assert len([e for e in both.edits if e.target_index == -1]) > 1
    restore(model, arch, both.backup)
    assert weights_sha256(model) == base


def test_a_joint_setting_without_the_projection_is_refused():
    for name in ("joint_projection", "joint_final"):
        with pytest.raises(ValueError, match=f"{name} = 0.01 re-projects with the guard projection"):
            dataclasses.replace(CFG, **{name: 0.01})
        with pytest.raises(ValueError, match="must be ≥ 0"):
            dataclasses.replace(CFG, guard_projection=0.02, **{name: -1.0})


def test_rewritten_contexts_follow_each_context_of_a_secrets_prompt():
    prompts = [(1, 2), (1, 2, 3)]  # the second prompt extends the first: the longest match wins
    rewrites = [[(9,), (8, 8)], [(7,)]]
    contexts = {0: [(1, 2, 5), (1, 2, 3, 6)], 4: [(6, 6)], 5: [(1, 2), (9, 5)]}
    added = add_rewritten_contexts(contexts, prompts, rewrites)
    assert contexts == {0: [(1, 2, 5), (1, 2, 3, 6), (9, 5), (8, 8, 5), (7, 6)], 4: [(6, 6)],
                        5: [(1, 2), (9, 5), (9,), (8, 8)]}  # (9, 5) was already there: not added twice
    assert added == 5
    assert add_rewritten_contexts(contexts, prompts, [[], []]) == 0


def test_joint_variants_keep_the_change_after_the_rewritten_prompts_too():
    # given a guarded erase with perturbation rounds: without the joint step, with it, with it and variants
    model, arch, inputs, cfg = _guarded_erase()
    alphabet = [chr(c) for c in range(32, 127)]
    encode = lambda text: [3 + alphabet.index(c) % 40 for c in text]  # noqa: E731
    decode = lambda ids: "".join(alphabet[(i - 3) % 40] for i in ids)  # noqa: E731
    inputs = dataclasses.replace(inputs, encode=encode, decode=decode)
    revs = dataclasses.replace(cfg.revs, perturb_rounds=1, perturb_prompts=2)
    last = arch.n_layers - 1
    base = weights_sha256(model)
    runs, acts = {}, {}
    for name, joint_final, variants in (("variants", 0.01, True), ("joint", 0.01, False), ("none", 0.0, False)):
        result = erase(model, arch, inputs, dataclasses.replace(cfg, revs=dataclasses.replace(
            revs, joint_final=joint_final, joint_variants=variants)))
        w = neuron_vectors(arch.mlp_out[last], arch.spec.transposed)
        neurons = result.backup.neurons[last]
        runs[name] = (w[neurons] - result.backup.original[last]).detach().clone()
        if not acts:  # the last block's MLP input (as the erased earlier blocks give it, the same in every run)
            # after the contexts it was edited at and after their rewritten prompts
            contexts = {}
            note_contexts(contexts, list(result.targets), [e for e in result.edits if e.target_index >= 0])
            plain = list(contexts[last])
            prompts = [s.prompt_ids for s in inputs.forget]
            add_rewritten_contexts(contexts, prompts, rewritten_prompts(prompts, decode, encode, 2, 0))
            moved = [c for c in contexts[last] if c not in plain]
            assert moved
            acts = {k: _context_acts(model, arch, last, c, 0)[:, neurons] for k, c in (("plain", plain),
                                                                                       ("moved", moved))}
        restore(model, arch, result.backup)
    assert weights_sha256(model) == base
    out = {name: {k: a @ change.double() for k, a in acts.items()} for name, change in runs.items()}
    # then both joint steps keep the change at the edited contexts; after the rewritten prompts only the one
    # with variants keeps it (the other moves it, which is what the Perturbation attack reads)
    for name in ("joint", "variants"):
        torch.testing.assert_close(out[name]["plain"], out["none"]["plain"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["variants"]["moved"], out["none"]["moved"], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(out["joint"]["moved"], out["none"]["moved"], rtol=1e-3, atol=1e-4)


def test_joint_variants_without_a_joint_step_or_perturbation_rounds_are_refused():
    with pytest.raises(ValueError, match="joint_variants only acts through the joint re-projection"):
        dataclasses.replace(CFG, guard_projection=0.02, perturb_rounds=1, perturb_prompts=2, joint_variants=True)
    with pytest.raises(ValueError, match="joint_variants keeps the change after the perturbation rounds"):
        dataclasses.replace(CFG, guard_projection=0.02, joint_final=0.01, joint_variants=True)
    with pytest.raises(ValueError, match="true or false"):
        dataclasses.replace(CFG, joint_variants="yes")
    dataclasses.replace(CFG, guard_projection=0.02, joint_final=0.01, perturb_rounds=1, perturb_drops=1,
                        joint_variants=True)


def test_one_pass_over_every_context_gives_the_edits_of_one_pass_per_block(monkeypatch):
    # given a guarded erase and the contexts of its edits, on every edited block
    model, arch, inputs, cfg = _guarded_erase()
    stats = guard_stats_for(model, arch, inputs, cfg)
    result = erase(model, arch, inputs, cfg, guard_stats=stats)
    contexts = {}
    note_contexts(contexts, list(result.targets), [e for e in result.edits if e.target_index >= 0])
    assert len(contexts) > 1
    erased = {n: t.detach().clone() for n, t in model.state_dict().items()}
    # when the blocks are re-projected in one forward pass (the contexts fit), then block by block
    union = joint_reprojection._distinct(contexts.values())
    assert joint_reprojection._fits_one_pass(model, union, len(contexts))
    once = reproject_blocks(model, arch, contexts, result.backup, stats, 0.01)
    after_once = {n: t.detach().clone() for n, t in model.state_dict().items()}
    model.load_state_dict(erased)
    monkeypatch.setattr(joint_reprojection, "ONE_PASS_CPU_BYTES", 0)
    assert not joint_reprojection._fits_one_pass(model, union, len(contexts))
    per_block = reproject_blocks(model, arch, contexts, result.backup, stats, 0.01)
    # then both re-projected the same blocks by the same change, and left the same weights
    assert [e.layer for e in once] == [e.layer for e in per_block] == sorted(contexts)
    for a, b in zip(once, per_block, strict=True):
        assert torch.equal(a.neurons, b.neurons)
        torch.testing.assert_close(a.delta, b.delta, rtol=1e-4, atol=1e-6)
    for name, t in model.state_dict().items():
        torch.testing.assert_close(t, after_once[name], rtol=1e-4, atol=1e-6)


def test_the_checks_after_the_joint_step_edit_again_the_targets_it_moved_back(monkeypatch):
    # given a guarded erase whose joint step (stubbed) moves every block's change back to the original weights
    from revs_engine import erase as erase_module

    model, arch, inputs, cfg = _guarded_erase(joint_final=0.01)
    base = weights_sha256(model)
    low = cfg.revs.bounds(arch.vocab_size)["residual"][0]

    def undone(model, arch, contexts, backup, *args, **kwargs):
        restore(model, arch, backup)
        return []

    monkeypatch.setattr(erase_module, "reproject_erase", undone)
    plain = erase(model, arch, inputs, cfg)
    restore(model, arch, plain.backup)
    # when the erase runs the settle check once more after that step
    settle = dataclasses.replace(cfg, revs=dataclasses.replace(cfg.revs, joint_settle_rounds=1))
    checked = erase(model, arch, inputs, settle)
    # then without the check the targets are back where they began; with it each one left below the window is
    # edited once more, and they end lower than they began
    assert [o.rank_final for o in plain.outcomes] == [o.rank_before for o in plain.outcomes]
    lagging = {j for j, o in enumerate(plain.outcomes) if o.rank_final < low}
    assert lagging

    def edited(result, j):
        return sum(e.target_index == j for e in result.edits)

    assert all(edited(checked, j) > edited(plain, j) for j in lagging)
    assert sum(o.rank_final for o in checked.outcomes) > sum(o.rank_final for o in plain.outcomes)
    restore(model, arch, checked.backup)
    assert weights_sha256(model) == base
    # and the setting does nothing without a joint step, so it is refused there
    with pytest.raises(ValueError, match="joint_settle_rounds = 1 checks the ranks after the joint"):
        dataclasses.replace(CFG, joint_settle_rounds=1)
