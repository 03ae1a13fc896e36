"""The guard's streaming statistics equal what the full activation tensor gives, in memory that does not depend on
the number of guarded positions."""

import pytest
import torch

from revs_engine.capture import capture_activations
from revs_engine.guard import RetainGuard
from revs_engine.guard_stats import OverlapQuery, guard_statistics, stats_bytes
from revs_engine.probes import ProbeItem
from tests.revs_engine.guard_reference import full_activations
from tests.revs_engine.test_revs import _model

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: thread hand-offs cost more than they save


def _guard(copies=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    items = [ProbeItem(tuple(torch.randint(2, 64, (5,), generator=g).tolist()), (8, 9, 8)) for _ in range(3)]
    benign = [tuple(torch.randint(2, 64, (int(n),), generator=g).tolist())
              for n in torch.randint(4, 30, (5 * copies,), generator=g)]
    return RetainGuard.from_items(items, benign)


QUERIES = [OverlapQuery((5, 6, 7), (30, 31, 32, 33), (0, 2, 3)), OverlapQuery((9, 10), (40, 41), ()),
           OverlapQuery((11, 12, 13, 14), (8, 9, 8), (1, 2))]


@pytest.mark.parametrize("family", ["llama", "gpt2", "gpt_neox"])
def test_streamed_overlap_is_the_largest_cosine_over_every_guarded_position(family):
    # given a guard and three secrets' positions (one with none eligible)
    model, arch = _model(family)
    guard = _guard()
    acts = torch.nn.functional.normalize(full_activations(model, arch, guard)[0], dim=-1)  # [L, m, d_ff]
    for batch_size in (1, 3, 16):
        # when the guard streams past them in batches
        stats = guard_statistics(model, arch, guard, covariance=False, collateral=False, queries=QUERIES,
                                 batch_size=batch_size)
        # then each position's overlap is the mean over layers of its largest cosine with any guarded position
        assert stats.query_positions == ((0, 2, 3), (), (1, 2))
        for i, q in enumerate(QUERIES):
            ids = torch.tensor([q.prompt_ids + q.secret_ids])
            want = []
            for p in q.positions:
                cap = capture_activations(model, arch, ids, positions=torch.tensor([[len(q.prompt_ids) - 1 + p]]))
                a = torch.nn.functional.normalize(cap.neuron_act[0, 0].float(), dim=-1)  # [L, d_ff]
                want.append(torch.einsum("ld,lmd->lm", a, acts).amax(-1).mean())
            torch.testing.assert_close(stats.overlap(i), torch.stack(want) if want else torch.zeros(0),
                                       rtol=1e-5, atol=1e-6)


def _tensor_bytes(stats):
    tensors = [*(stats._cov or ()), *stats._coll_tok.values(), *stats._overlap]
    if stats._coll_all is not None:
        tensors.append(stats._coll_all)
    return sum(t.numel() * t.element_size() for t in tensors)


def test_what_the_statistics_keep_does_not_grow_with_the_guard():
    model, arch = _model("llama")
    sizes = {}
    for copies in (1, 4, 16):
        stats = guard_statistics(model, arch, _guard(copies), tokens=[8, 9, 10], queries=QUERIES)
        sizes[copies] = (stats.n_positions, _tensor_bytes(stats))
    positions = [n for n, _ in sizes.values()]
    assert positions[2] > 8 * positions[0]  # the guard did grow
    assert len({b for _, b in sizes.values()}) == 1  # what is kept did not
    # the collateral of a token no position predicts is the all-position maximum, not stored again
    assert sizes[1][1] <= stats_bytes(arch, n_tokens=3, n_query=sum(len(q.positions) for q in QUERIES))


def test_an_empty_guard_is_refused():
    model, arch = _model("llama")
    with pytest.raises(ValueError, match="empty"):
        guard_statistics(model, arch, RetainGuard())
