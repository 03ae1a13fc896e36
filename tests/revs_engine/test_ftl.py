import pytest
import torch

from revs_engine.edit import restore
from revs_engine.ftl import FtlConfig, unlearn_ftl
from revs_engine.hashing import weights_sha256
from revs_engine.patch import make_patch
from tests.revs_engine.test_revs import _model, _targets

CFG = FtlConfig(lr=1e-2, steps=5, epsilon=0.05)


def test_target_probability_drops_and_weights_stay_within_epsilon(tiny):
    # given a tiny model whose MLPs drive the logits
    model, arch = _model(tiny[1].model_type)
    originals = [m.weight.detach().clone() for m in arch.mlp_out]
    others = {k: v.clone() for k, v in model.state_dict().items() if "mlp" not in k}
    # when FT-L runs
    result = unlearn_ftl(model, arch, _targets(model, 2), CFG)
    # then the targets are less likely, FF2 moved at most epsilon, nothing else moved
    assert sum(t.prob_after for t in result.targets) < sum(t.prob_before for t in result.targets)
    for module, orig in zip(arch.mlp_out, originals, strict=True):
        assert (module.weight.detach() - orig).abs().max() <= CFG.epsilon + 1e-6
    state = model.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in others.items())
    assert not any(p.requires_grad is False for p in model.parameters())


def test_backup_restores_bit_exact_and_makes_a_full_patch(tiny):
    model, arch = _model(tiny[1].model_type)
    base = weights_sha256(model)
    result = unlearn_ftl(model, arch, _targets(model, 2), CFG)
    patch = make_patch(arch, result.backup)
    assert patch.n_neurons() == arch.n_layers * arch.d_ff
    restore(model, arch, result.backup)
    assert weights_sha256(model) == base


def test_invalid_config_raises():
    with pytest.raises(ValueError, match="epsilon"):
        FtlConfig(epsilon=0)
