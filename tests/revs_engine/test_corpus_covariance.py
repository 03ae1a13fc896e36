"""The corpus covariance (revs_engine.corpus_covariance) and the joint re-projection away from it
(RevsConfig.joint_covariance 'corpus' / 'both')."""

import dataclasses

import pytest
import torch

from revs_engine.arch import neuron_vectors
from revs_engine.capture import capture_activations
from revs_engine.corpus_covariance import corpus_covariance
from revs_engine.edit import restore
from revs_engine.erase import erase
from revs_engine.hashing import weights_sha256
from revs_engine.joint_reprojection import _covariance
from tests.revs_engine.test_joint_reprojection import _guarded_erase
from tests.revs_engine.test_revs import CFG, _model


def _texts(n=5, seed=3):
    g = torch.Generator().manual_seed(seed)
    return [tuple(torch.randint(2, 64, (int(torch.randint(3, 12, (1,), generator=g)),), generator=g).tolist())
            for _ in range(n)]


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_the_streamed_covariance_is_the_second_moment_over_every_real_position(family):
    # given a tiny model, texts of different lengths (padding in every batch), two layers and some neurons
    model, arch = _model(family)
    texts = _texts()
    picks = {0: torch.tensor([1, 4, 7]), arch.n_layers - 1: torch.arange(arch.d_ff)}
    # when the covariance is streamed two texts at a time, each cut to its first 8 tokens
    covs, m = corpus_covariance(model, arch, texts, picks, max_tokens=8, batch_size=2)
    # then it equals AᵀA / m over every real position, read one text at a time without padding
    rows = {layer: [] for layer in picks}
    for t in texts:
        ids = torch.tensor([list(t)[:8]])
        cap = capture_activations(model, arch, ids, positions=torch.arange(ids.shape[1]).unsqueeze(0),
                                  layers=sorted(picks), logits=False)
        for k, layer in enumerate(sorted(picks)):
            rows[layer].append(cap.neuron_act[0, :, k][:, picks[layer]].double())
    assert m == sum(min(len(t), 8) for t in texts)
    for layer, idx in picks.items():
        a = torch.cat(rows[layer])
        assert covs[layer].shape == (len(idx), len(idx))
        torch.testing.assert_close(covs[layer], a.T @ a / m, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="at least one non-empty text"):
        corpus_covariance(model, arch, [()], picks)


def test_positions_before_a_demoted_token_are_weighed_on_top_of_every_position():
    # given a tiny model, texts of different lengths and the token ids an erase demotes
    model, arch = _model("llama")
    texts = _texts(6, seed=5)
    before = {t[i + 1] for t in texts[:3] for i in range(0, len(t) - 1, 3)}
    picks = {0: torch.tensor([0, 2, 5]), arch.n_layers - 1: torch.tensor([1, 3])}
    plain, m = corpus_covariance(model, arch, texts, picks, batch_size=4)
    # when the positions whose next token is demoted are weighed 3 more
    weighed, m2 = corpus_covariance(model, arch, texts, picks, batch_size=4, before=before, weight=3.0)
    # then the matrix is C_all + 3 · C_before, C_before over those positions alone, read text by text
    sel = {layer: [] for layer in picks}
    for t in texts:
        ids = torch.tensor([list(t)])
        cap = capture_activations(model, arch, ids, positions=torch.arange(ids.shape[1]).unsqueeze(0),
                                  layers=sorted(picks), logits=False)
        rows = [i for i in range(len(t) - 1) if t[i + 1] in before]
        for k, layer in enumerate(sorted(picks)):
            sel[layer].append(cap.neuron_act[0, rows, k][:, picks[layer]].double())
    assert m2 == m
    for layer in picks:
        a = torch.cat(sel[layer])
        assert len(a) > 0
        torch.testing.assert_close(weighed[layer], plain[layer] + 3.0 * a.T @ a / len(a), rtol=1e-5, atol=1e-7)
    # and a weight without any such position, or no weight, leaves C_all; a negative weight is refused
    for kw in ({"before": {10_000}, "weight": 3.0}, {"before": before, "weight": 0.0}):
        same, _ = corpus_covariance(model, arch, texts, picks, batch_size=4, **kw)
        for layer in picks:
            torch.testing.assert_close(same[layer], plain[layer])
    with pytest.raises(ValueError, match="weight must be ≥ 0"):
        corpus_covariance(model, arch, texts, picks, before=before, weight=-1.0)


def test_an_erase_weighs_the_corpus_positions_before_its_demoted_tokens():
    # given a guarded erase re-projecting its last block away from a corpus sample in which the secrets' tokens
    # follow some positions, with and without weighing those positions
    model, arch, inputs, cfg = _guarded_erase()
    secret_tokens = sorted({t for s in inputs.forget for t in s.secret_ids})
    planted = (secret_tokens * 8)[:8]
    corpus = tuple(tuple(t[:2]) + (d,) + tuple(t[2:]) for t, d in zip(_texts(8, seed=11), planted, strict=True))
    inputs = dataclasses.replace(inputs, corpus=corpus)
    last = arch.n_layers - 1
    vectors = neuron_vectors(arch.mlp_out[last], arch.spec.transposed)
    runs = {}
    for w in (0.0, 50.0):
        revs = dataclasses.replace(cfg.revs, joint_final=0.001, joint_covariance="corpus", corpus_value_weight=w)
        result = erase(model, arch, inputs, dataclasses.replace(cfg, revs=revs))
        neurons = result.backup.neurons[last]
        runs[w] = (result, neurons, (vectors[neurons] - result.backup.original[last]).detach().double())
        restore(model, arch, result.backup)
    (plain, neurons, plain_change), (weighed, neurons_w, change) = runs[0.0], runs[50.0]
    demoted = {t.token_id for t in plain.targets}
    before, _ = corpus_covariance(model, arch, corpus, {last: neurons}, before=demoted, weight=1e6)
    # then both keep every final rank the passes reached, and the weighed one leaves less of the block's change
    # at the positions before a demoted token
    assert torch.equal(neurons, neurons_w)
    assert [o.rank_final for o in weighed.outcomes] == [o.rank_final for o in plain.outcomes]
    trace = lambda d: float(torch.einsum("kd,kj,jd->", d, before[last], d))  # noqa: E731
    assert trace(change) < trace(plain_change)


def test_both_weighs_the_two_covariances_equally_at_unit_scale():
    # given guard statistics and a corpus covariance of very different scales
    stats = dataclasses.make_dataclass("S", [])()
    guard = torch.diag(torch.tensor([4.0, 2.0]))
    stats.covariance = lambda layer: guard
    stats.plain_variance = lambda layer: torch.diagonal(guard)
    corpus = torch.tensor([[300.0, 30.0], [30.0, 300.0]])
    neurons = torch.tensor([0, 1])
    # then each mode returns its covariance with the ridge unit of its own scale
    cov, unit = _covariance(stats, 0, neurons, None, "guard")
    assert torch.equal(cov, guard.double())
    assert unit == 3.0
    cov, unit = _covariance(stats, 0, neurons, corpus, "corpus")
    assert torch.equal(cov, corpus.double())
    assert unit == 300.0
    cov, unit = _covariance(stats, 0, neurons, corpus, "both")
    torch.testing.assert_close(cov, 0.5 * (guard.double() / 3 + corpus.double() / 300))
    assert unit == 1.0
    assert float(torch.diagonal(cov).mean()) == pytest.approx(1.0)


@pytest.mark.parametrize("which", ["corpus", "both"])
def test_an_erase_reprojects_away_from_the_corpus_and_keeps_every_final_rank(which):
    # given a guarded erase, alone and with the last block re-projected away from a corpus sample
    model, arch, inputs, cfg = _guarded_erase()
    base = weights_sha256(model)
    plain = erase(model, arch, inputs, cfg)
    last = arch.n_layers - 1
    neurons = plain.backup.neurons[last]
    vectors = neuron_vectors(arch.mlp_out[last], arch.spec.transposed)
    plain_change = (vectors[neurons] - plain.backup.original[last]).detach().double()
    corpus = _texts(8, seed=11)
    cov, _ = corpus_covariance(model, arch, corpus, {last: neurons})
    restore(model, arch, plain.backup)
    joint = dataclasses.replace(cfg, revs=dataclasses.replace(cfg.revs, joint_final=0.001, joint_covariance=which))
    result = erase(model, arch, dataclasses.replace(inputs, corpus=tuple(corpus)), joint)
    # then the last block got its joint edit, every final rank is where the passes left it, the corpus sees less
    # of the block's change than after the plain erase, and the backup restores the model bit-exactly
    assert [e.layer for e in result.edits if e.target_index == -1] == [last]
    assert [o.rank_final for o in result.outcomes] == [o.rank_final for o in plain.outcomes]
    assert torch.equal(result.backup.neurons[last], neurons)
    change = (vectors[neurons] - result.backup.original[last]).detach().double()
    trace = lambda d: float(torch.einsum("kd,kj,jd->", d, cov[last], d))  # noqa: E731
    assert trace(change) < trace(plain_change)
    restore(model, arch, result.backup)
    assert weights_sha256(model) == base


def test_without_a_corpus_the_joint_step_is_skipped_and_the_result_says_so(caplog):
    # given a guarded erase that asks for the corpus covariance, and no corpus sample
    model, arch, inputs, cfg = _guarded_erase()
    joint = dataclasses.replace(cfg, revs=dataclasses.replace(cfg.revs, joint_final=0.001,
                                                              joint_covariance="corpus", corpus_value_weight=2.0))
    # when it erases
    with caplog.at_level("WARNING", logger="revs_engine.erase"):
        result = erase(model, arch, inputs, joint)
    # then it erased without the joint step, warned, and its configuration records what ran
    assert not [e for e in result.edits if e.target_index == -1]
    assert "the joint re-projection is skipped" in caplog.text
    assert (result.config.revs.joint_final, result.config.revs.joint_covariance,
            result.config.revs.corpus_value_weight) == (0.0, "guard", 0.0)
    assert result.guard["corpus_texts"] == 0
    restore(model, arch, result.backup)


def test_a_corpus_covariance_without_a_joint_step_or_of_another_name_is_refused():
    with pytest.raises(ValueError, match="only acts through the joint re-projection"):
        dataclasses.replace(CFG, guard_projection=0.02, joint_covariance="corpus")
    with pytest.raises(ValueError, match="corpus_value_weight = 2.0 weighs the joint re-projection's corpus"):
        dataclasses.replace(CFG, guard_projection=0.02, joint_final=0.01, corpus_value_weight=2.0)
    with pytest.raises(ValueError, match="must be ≥ 0"):
        dataclasses.replace(CFG, guard_projection=0.02, joint_final=0.01, joint_covariance="both",
                            corpus_value_weight=-1.0)
    with pytest.raises(ValueError, match="joint_covariance must be"):
        dataclasses.replace(CFG, guard_projection=0.02, joint_final=0.01, joint_covariance="prose")
