"""The association stage (revs_engine.association): middle-layer change that stops a secret's digits being
preferred after its prompt, exactly zero at the guarded values' keys, undone by its backup."""

import dataclasses

import pytest
import torch

from revs_engine.arch import resolve_arch
from revs_engine.association import (
    ValueSequence,
    _keys,
    _value_covariance,
    association_layers,
    edit_subspace,
    loosen_associations,
)
from revs_engine.config import AssociationConfig, RevsConfig
from revs_engine.edit import restore
from revs_engine.erase import EraseInputs, Secret, erase
from revs_engine.hashing import weights_sha256
from revs_engine.presets import PRESETS, EraseConfig, resolve_config
from revs_engine.targets import TargetConfig
from tests.revs_engine.test_revs import CFG
from tests.revs_engine.tiny import tiny_model

DIGITS = list(range(10, 20))  # the tiny vocabulary's "digit" tokens
ALTERNATIVES = {d: tuple(x for x in DIGITS if x != d) for d in DIGITS}
# the tests' guards are a few sequences on purpose: the stage runs whatever the guard's size
STAGE = AssociationConfig(steps=40, layer_range=(0.0, 0.5), lr=1e-1, covariance_weight=0.0, retain_weight=0.0,
                          min_guard_fraction=0.0)


def _model(family="llama"):
    model = tiny_model(family, layers=4)
    arch = resolve_arch(model)
    with torch.no_grad():
        for module in arch.mlp_out:
            module.weight.mul_(30.0)
    return model, arch


def _digit_values(model, n, seed, length=4):
    """Prompt + the digit the model likes best after it, repeatedly: a value it 'remembers' among the digits."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        prompt = torch.randint(20, 64, (6,), generator=g).tolist()
        value = []
        for _ in range(length):
            logits = model(torch.tensor([prompt + value])).logits[0, -1]
            value.append(DIGITS[int(logits[DIGITS].argmax())])
        out.append(ValueSequence(tuple(prompt), tuple(value)))
    return out


def _digit_loss(model, seqs):
    """Mean over value positions of relu(log p(true digit) − log mean digit probability)."""
    total = []
    with torch.no_grad():
        for s in seqs:
            ids = list(s.prompt_ids) + list(s.value_ids)
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
            for j, tok in enumerate(s.value_ids):
                row = logp[len(s.prompt_ids) + j - 1]
                mean = torch.logsumexp(row[DIGITS], 0) - torch.log(torch.tensor(10.0))
                total.append(float(torch.relu(row[tok] - mean)))
    return sum(total) / len(total)


def test_the_edit_subspace_avoids_the_kept_keys_and_the_guards_busy_directions():
    # given a covariance with three loud directions and two kept keys
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(12, 12, generator=g, dtype=torch.float64))
    ev = torch.tensor([100.0, 80.0, 60.0] + [1.0] * 9, dtype=torch.float64)
    cov = q @ torch.diag(ev) @ q.T
    kept = torch.randn(2, 12, generator=g, dtype=torch.float64)
    # when
    b = edit_subspace(cov, kept, tau=2.0).double()
    # then: orthonormal, orthogonal to the kept keys and to the loud directions, 12 − 3 − 2 wide
    assert b.shape == (12, 7)
    assert torch.allclose(b.T @ b, torch.eye(7, dtype=torch.float64), atol=1e-5)
    assert float((kept @ b).abs().max()) < 1e-5
    assert float((q[:, :3].T @ b).abs().max()) < 1e-5


def test_one_huge_eigenvalue_does_not_open_the_loud_directions():
    # given a covariance with an outlier direction 10⁶ × the rest and two loud ones (regression: the null-space
    # floor was 10⁻⁴ × the largest eigenvalue, which let directions 40–50 × the median in)
    g = torch.Generator().manual_seed(1)
    q, _ = torch.linalg.qr(torch.randn(12, 12, generator=g, dtype=torch.float64))
    cov = q @ torch.diag(torch.tensor([1e6, 50.0, 40.0] + [1.0] * 9, dtype=torch.float64)) @ q.T
    # when / then: only the nine quiet directions
    assert edit_subspace(cov, None, tau=2.0).shape == (12, 9)


def test_layer_range_names_layers_by_depth_fraction():
    assert association_layers(AssociationConfig(layer_range=(0.14, 0.42)), 30) == list(range(4, 13))
    assert association_layers(AssociationConfig(layer_range=(0.0, 0.5)), 4) == [0, 1, 2]


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_the_secret_digits_stop_being_preferred_and_the_kept_values_keys_see_no_change(family):
    # given a tiny model, two values it prefers among the digits, and two kept values
    model, arch = _model(family)
    secrets, kept = _digit_values(model, 2, seed=1), _digit_values(model, 2, seed=2)
    before = _digit_loss(model, secrets)
    first = arch.mlp_out[0]
    seen = {}
    hook = first.register_forward_hook(lambda m, a, out: seen.__setitem__("out", out.detach().clone()))
    outs_before = []
    for k in kept:
        model(torch.tensor([list(k.prompt_ids) + list(k.value_ids)]))
        outs_before.append(seen["out"])
    base = weights_sha256(model)
    # when
    res = loosen_associations(model, arch, secrets, ALTERNATIVES, kept, [], STAGE)
    # then the secrets' digits are no longer preferred
    after = _digit_loss(model, secrets)
    assert before > 0.05
    assert after < 0.1 * before
    assert res.loss_after < res.loss_before
    # and layer 0's output at the kept values' positions is unchanged (its input is: nothing upstream edited)
    for k, out0 in zip(kept, outs_before, strict=True):
        model(torch.tensor([list(k.prompt_ids) + list(k.value_ids)]))
        n = len(k.prompt_ids)
        assert torch.allclose(seen["out"][0, n - 1:], out0[0, n - 1:], atol=1e-4)
    hook.remove()
    # and the backup undoes it bit for bit
    restore(model, arch, res.backup)
    assert weights_sha256(model) == base


def test_nothing_to_score_edits_nothing():
    model, arch = _model()
    base = weights_sha256(model)
    secrets = [ValueSequence((30, 31, 32), (40, 41))]  # no digit tokens
    assert loosen_associations(model, arch, secrets, ALTERNATIVES, [], [], STAGE) is None
    assert weights_sha256(model) == base


def test_erase_runs_the_stage_first_and_one_backup_restores_everything():
    # given a REVS configuration with the stage on
    model, arch = _model()
    base = weights_sha256(model)
    values = _digit_values(model, 2, seed=3)
    secrets = tuple(Secret(v.prompt_ids, v.value_ids, tuple(str(t - 10) for t in v.value_ids), "US_SSN")
                    for v in values)
    encode = lambda text: [10 + int(c) if c.isdigit() else 3 for c in text]  # noqa: E731
    cfg = EraseConfig("test", "revs", dataclasses.replace(
        CFG, targets=TargetConfig(max_tokens=1, method="first"), association=STAGE))
    # when
    result = erase(model, arch, EraseInputs(secrets, encode=encode), cfg)
    # then the stage ran, its numbers are in the summary, and restoring the one backup gives the model back
    assert result.association is not None
    assert result.summary()["association_layers"] == 3
    assert result.association.loss_after < result.association.loss_before
    restore(model, arch, result.backup)
    assert weights_sha256(model) == base


def test_the_stage_is_a_policy_table_checked_like_the_others():
    cfg = resolve_config({"association": {"steps": 30, "covariance_weight": 3}}, "digits")
    assert cfg.revs.association.steps == 30
    assert cfg.revs.association.covariance_weight == 3
    assert "association.steps" in cfg.overrides
    assert RevsConfig.from_dict(cfg.revs.to_dict()) == cfg.revs
    with pytest.raises(ValueError, match="association.nope"):
        resolve_config({"association": {"nope": 1}}, "digits")
    with pytest.raises(ValueError, match="FT-L"):
        resolve_config({"preset": "ftl", "association": {"steps": 1}}, "digits")
    with pytest.raises(ValueError, match="layer_range"):
        AssociationConfig(layer_range=(0.5, 0.2))
    assert PRESETS["paper"].revs.association.steps == 0
    with pytest.raises(ValueError, match="counterfactuals"):
        AssociationConfig(counterfactuals=-1)

def test_half_precision_weights_train_in_float32_and_restore_bit_exactly():
    model, arch = _model()
    model.to(torch.bfloat16)
    base = weights_sha256(model)
    secrets = _digit_values(model, 2, seed=1)
    res = loosen_associations(model, arch, secrets, ALTERNATIVES, _digit_values(model, 2, seed=2), [],
                              dataclasses.replace(STAGE, steps=5))
    assert arch.mlp_out[0].weight.dtype == torch.bfloat16
    assert weights_sha256(model) != base
    restore(model, arch, res.backup)
    assert weights_sha256(model) == base


def test_tokens_with_different_numbers_of_alternatives_are_scored_together():
    # given a value mixing a one-digit token (9 alternatives) and a "two-digit" token (3 alternatives here)
    model, arch = _model()
    alternatives = {**ALTERNATIVES, 50: (51, 52, 53)}
    value = _digit_values(model, 1, seed=5, length=2)[0]
    secret = ValueSequence(value.prompt_ids, (*value.value_ids, 50))
    base = weights_sha256(model)
    res = loosen_associations(model, arch, [secret], alternatives, [], [], dataclasses.replace(STAGE, steps=3))
    assert res is not None
    restore(model, arch, res.backup)
    assert weights_sha256(model) == base


def _layer0_outputs(model, arch, seqs):
    """Layer 0's FF2 output at each sequence's value-predicting positions."""
    seen, outs = {}, []
    hook = arch.mlp_out[0].register_forward_hook(lambda m, a, out: seen.__setitem__("out", out.detach().clone()))
    with torch.no_grad():
        for s in seqs:
            model(torch.tensor([list(s.prompt_ids) + list(s.value_ids)]))
            outs.append(seen["out"][0, len(s.prompt_ids) - 1:-1])
    hook.remove()
    return torch.cat(outs)


@pytest.mark.parametrize("with_counterfactuals", [True, False])
def test_counterfactual_contexts_keep_their_keys_out_of_the_edit(with_counterfactuals):
    # given secrets and other prompts continued by random digits (values nobody has)
    model, arch = _model()
    secrets = _digit_values(model, 2, seed=1)
    g = torch.Generator().manual_seed(7)
    others = [ValueSequence(tuple(torch.randint(20, 64, (6,), generator=g).tolist()),
                            tuple(DIGITS[int(i)] for i in torch.randint(0, 10, (4,), generator=g)))
              for _ in range(4)]
    before = _layer0_outputs(model, arch, others)
    # when the stage runs with them as counterfactuals (or without)
    res = loosen_associations(model, arch, secrets, ALTERNATIVES, [], [], STAGE,
                              others if with_counterfactuals else ())
    # then the secrets lose their preference either way, and layer 0 no longer changes at the counterfactual
    # positions only when they were given (16 keys: the edit lives in their 32-wide null space)
    assert res.loss_after < 0.5 * res.loss_before
    change = float((_layer0_outputs(model, arch, others) - before).abs().max())
    assert (change < 1e-4) == with_counterfactuals
    assert res.dims[0] == (48 - 16 if with_counterfactuals else 48)


def test_erase_builds_counterfactuals_after_the_guarded_items_prompts():
    # given one secret and one guarded item, with and without look-alikes of the secret after the item's prompt
    from revs_engine.probes import ProbeItem
    model, arch = _model()
    values = _digit_values(model, 2, seed=4)
    secret = Secret(values[0].prompt_ids, values[0].value_ids,
                    tuple(str(t - 10) for t in values[0].value_ids), "US_SSN")
    keep = (ProbeItem(values[1].prompt_ids, values[1].value_ids),)
    encode = lambda text: [10 + int(c) if c.isdigit() else 3 for c in text]  # noqa: E731
    dims = {}
    for n in (0, 3):
        cfg = EraseConfig("test", "revs", dataclasses.replace(
            CFG, targets=TargetConfig(max_tokens=1, method="first"),
            association=dataclasses.replace(STAGE, counterfactuals=n)))
        result = erase(model, arch, EraseInputs((secret,), keep, encode=encode), cfg)
        dims[n] = result.association.dims[0]
        restore(model, arch, result.backup)
    # then the counterfactual keys take directions out of the edit's subspace
    assert dims[3] < dims[0]


@pytest.mark.parametrize("family", ["llama", "gpt2", "gpt_neox", "gptj", "mistral"])
def test_counterfactuals_sharing_a_prompt_give_the_keys_of_one_full_pass_each(family):
    # given groups of values after the same prompt (one-token prompts and a value of another length among them)
    model = tiny_model(family, layers=3)
    arch = resolve_arch(model)
    g = torch.Generator().manual_seed(3)
    seqs = []
    for prompt_len in (7, 1, 5):
        prompt = tuple(torch.randint(20, 64, (prompt_len,), generator=g).tolist())
        seqs += [ValueSequence(prompt, tuple(DIGITS[int(i)] for i in torch.randint(0, 10, (4,), generator=g)))
                 for _ in range(3)]
        seqs.append(ValueSequence(prompt, (DIGITS[2], DIGITS[5])))
    # when their value keys' covariance is computed (the prompt run once per group)
    layers = [0, 2]
    cov = _value_covariance(model, arch, layers, seqs)
    # then it equals the covariance of one full forward pass per sequence
    n = sum(len(s.value_ids) for s in seqs)
    for layer in layers:
        want = sum(k.T @ k for k in (_keys(model, arch, layers, list(s.prompt_ids) + list(s.value_ids))[layer]
                                     [len(s.prompt_ids) - 1:-1] for s in seqs)) / n
        torch.testing.assert_close(cov[layer], want, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_padded_batches_give_the_loss_and_gradient_of_one_sequence_at_a_time(family, monkeypatch):
    # given secrets whose prompts differ in length (the batch pads them) and values with a non-digit token
    from revs_engine.association import _batches, _digit_hinge
    model = tiny_model(family, layers=2)
    g = torch.Generator().manual_seed(5)
    seqs = [ValueSequence(tuple(torch.randint(20, 64, (n,), generator=g).tolist()),
                          (DIGITS[n % 10], 3, DIGITS[(n * 7) % 10], DIGITS[1])) for n in (3, 9, 5, 12)]
    scored = [[0, 2, 3]] * len(seqs)
    options = [[[s.value_ids[j], *ALTERNATIVES[s.value_ids[j]]] for j in (0, 2, 3)] for s in seqs]
    weight = resolve_arch(model).mlp_out[0].weight
    # when the hinge runs on padded batches of two
    monkeypatch.setattr("revs_engine.association.BATCH_ROWS", 2)
    batches = _batches([(s.prompt_ids, s.value_ids) for s in seqs], scored, options, torch.device("cpu"))
    model.zero_grad()
    loss = sum(_digit_hinge(model, b) for b in batches)
    grad = weight.grad.clone()
    # then it equals the sum of each secret's mean hinge computed on its own unpadded sequence, gradient included
    model.zero_grad()
    want = 0.0
    for s in seqs:
        ids = list(s.prompt_ids) + list(s.value_ids)
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
        terms = []
        for j in (0, 2, 3):
            row = logp[len(s.prompt_ids) + j - 1]
            terms.append(torch.relu(row[s.value_ids[j]] - (torch.logsumexp(row[DIGITS], 0) - torch.log(
                torch.tensor(10.0)))))
        one = torch.stack(terms).mean()
        one.backward()
        want += float(one.detach())
    assert len(batches) == 2
    assert loss == pytest.approx(want, rel=1e-5)
    torch.testing.assert_close(grad, weight.grad, rtol=1e-4, atol=1e-7)


def test_the_step_after_which_a_guarded_value_is_lost_is_undone_and_training_stops(monkeypatch):
    # given a stage whose guard check reports a guarded value lost at its fourth pass (after step 3)
    import revs_engine.association as association
    real, calls = association._kept_values, []

    def losing_at_fourth(model, b, weight):
        held = real(model, b, weight)
        calls.append(len(calls))
        return held & False if len(calls) == 4 else held | True

    def stage(steps, patched):
        model, arch = _model()
        secrets, kept = _digit_values(model, 2, seed=1), _digit_values(model, 1, seed=9)
        if patched:
            monkeypatch.setattr(association, "_kept_values", losing_at_fourth)
        res = loosen_associations(model, arch, secrets, ALTERNATIVES, kept, [],
                                  dataclasses.replace(STAGE, steps=steps))
        monkeypatch.setattr(association, "_kept_values", real)
        return res, torch.cat([m.weight.detach().flatten() for m in arch.mlp_out])
    # when it runs for 40 steps, and another for exactly 2 steps with nothing lost
    stopped, weights = stage(40, patched=True)
    short, want = stage(2, patched=False)
    # then the first kept the weights after step 2 (step 3 undone) and says so
    assert stopped.steps == 2
    assert short.steps == 2
    torch.testing.assert_close(weights, want, rtol=0, atol=0)
    assert not torch.equal(want, stage(3, patched=False)[1])


def test_a_run_without_guarded_values_runs_every_step():
    model, arch = _model()
    res = loosen_associations(model, arch, _digit_values(model, 2, seed=1), ALTERNATIVES, [], [], STAGE)
    assert res.steps == STAGE.steps
    assert res.summary()["association_steps"] == STAGE.steps


@pytest.mark.parametrize(("benign_tokens", "runs"), [(47, False), (48, True)])
def test_a_guard_that_cannot_see_every_key_direction_skips_the_stage(benign_tokens, runs):
    # given the product's threshold (the guard must hold d_ff = 48 positions) and a benign text of n tokens
    model, arch = _model()
    base = weights_sha256(model)
    cfg = dataclasses.replace(STAGE, min_guard_fraction=1.0, steps=2)
    benign = [[20 + i % 40 for i in range(benign_tokens)]]
    # when
    res = loosen_associations(model, arch, _digit_values(model, 2, seed=1), ALTERNATIVES, [], benign, cfg)
    # then one position short skips it and leaves the weights alone; enough positions run it
    assert (res is not None) == runs
    assert (weights_sha256(model) != base) == runs


def test_the_stage_needs_a_full_guard_by_default_and_refuses_a_negative_fraction():
    assert AssociationConfig().min_guard_fraction == 1.0
    with pytest.raises(ValueError, match="min_guard_fraction"):
        AssociationConfig(min_guard_fraction=-1.0)
