"""The batched teacher-forced probe agrees with what greedy generate() actually emits."""

import pytest
import torch

from revs_engine.errors import ShapeError
from revs_engine.probes import ProbeConfig, ProbeItem, k_extractable, plan_batches, probe, probes_table
from revs_engine.schema import PROBES_SCHEMA
from tests.revs_engine.tiny import tiny_model


def greedy(model, prefix, n):
    """Return the ``n`` ids that model.generate(do_sample=False) emits after ``prefix`` (one prompt, no batch)."""
    ids = torch.tensor([list(prefix)])
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=0,
                         do_sample=False, pad_token_id=1)
    return tuple(out[0, ids.shape[1]:].tolist())


def no_eos(model):
    model.generation_config.eos_token_id = None  # compare plain argmax decoding over the whole target
    return model


def mixed_items(model, n=24, seed=0):
    """Items whose targets are the model's own greedy continuation, some with one token changed."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n):
        plen = int(torch.randint(1, 12, (1,), generator=g))
        tlen = int(torch.randint(1, 7, (1,), generator=g))
        prefix = tuple(torch.randint(2, 64, (plen,), generator=g).tolist())
        target = list(greedy(model, prefix, tlen))
        if i % 3 == 1:  # corrupt one position: greedy must diverge exactly there
            j = int(torch.randint(0, tlen, (1,), generator=g))
            target[j] = 2 + (target[j] + 7) % 62
        elif i % 3 == 2:
            target = torch.randint(2, 64, (tlen,), generator=g).tolist()
        items.append(ProbeItem(prefix, tuple(target)))
    return items


def test_probe_verdicts_equal_greedy_generate_on_every_family(tiny):
    # given items of mixed lengths, some memorized (the model's own continuation), some not
    model, _ = tiny
    no_eos(model)
    items = mixed_items(model)
    # when
    right = probe(model, items, config=ProbeConfig(batch_size=5, padding_side="right"))
    left = probe(model, items, config=ProbeConfig(batch_size=7, padding_side="left"))
    # then
    assert right == left
    assert sum(r.exact_match for r in right) >= 8
    assert sum(not r.exact_match for r in right) >= 8
    for item, res in zip(items, right, strict=True):
        emitted = greedy(model, item.prefix_ids, len(item.target_ids))
        assert res.exact_match == (emitted == item.target_ids)
        pairs = enumerate(zip(emitted, item.target_ids, strict=True))
        expected_first = next((j for j, (a, b) in pairs if a != b), -1)
        assert res.first_mismatch == expected_first
        assert res.memorized == res.exact_match
        assert len(res.target_token_ranks) == len(item.target_ids)
        assert (res.extraction_score == 1.0) == res.exact_match


def test_batching_and_padding_do_not_change_ranks(tiny):
    model, _ = tiny
    items = mixed_items(no_eos(model), n=9, seed=3)
    one_by_one = [probe(model, [it])[0] for it in items]
    right = probe(model, items, config=ProbeConfig(batch_size=4))
    left = probe(model, items, config=ProbeConfig(batch_size=9, padding_side="left"))
    for a, b, c in zip(one_by_one, right, left, strict=True):
        assert a.target_token_ranks == b.target_token_ranks == c.target_token_ranks
        assert a.exact_match == b.exact_match == c.exact_match


def test_ties_are_broken_like_argmax_lowest_id_wins():
    # given a model whose final norm outputs zeros: every logit is 0, every token ties at rank 0
    model = no_eos(tiny_model("llama"))
    with torch.no_grad():
        model.model.norm.weight.zero_()
    # when
    res = probe(model, [ProbeItem((5, 6), (0, 0, 0)), ProbeItem((5, 6), (7, 7))])
    # then: greedy emits id 0 (lowest index), so only the first is reproduced although all ranks are 0
    assert greedy(model, (5, 6), 3) == (0, 0, 0)
    assert res[0].exact_match
    assert res[0].target_token_ranks == (0, 0, 0)
    assert not res[1].exact_match
    assert res[1].first_mismatch == 0
    assert res[1].target_token_ranks == (0, 0)


def test_first_mismatch_and_extraction_score_of_a_partial_match():
    model = no_eos(tiny_model("gpt2"))
    prefix = (3, 4, 5)
    cont = greedy(model, prefix, 4)
    bad = cont[:2] + (2 + (cont[2] + 5) % 62,) + cont[3:]
    res = probe(model, [ProbeItem(prefix, bad)])[0]
    assert res.first_mismatch == 2
    assert res.target_token_ranks[2] > 0
    assert not res.memorized
    assert res.extraction_score <= 0.75


def test_memorized_threshold_allows_near_misses():
    model = no_eos(tiny_model("gpt2"))
    prefix = (3, 4, 5)
    cont = greedy(model, prefix, 4)
    bad = cont[:3] + (2 + (cont[3] + 5) % 62,)
    res = probe(model, [ProbeItem(prefix, bad)], config=ProbeConfig(memorized_threshold=0.75))[0]
    assert not res.exact_match
    assert res.memorized


def test_long_prefix_raises_unless_truncation_is_explicit():
    model = no_eos(tiny_model("llama"))  # 256 positions
    long_prefix = tuple([7] * 300)
    with pytest.raises(ShapeError, match="max_prefix_tokens"):
        probe(model, [ProbeItem(long_prefix, (3,))])
    res = probe(model, [ProbeItem(long_prefix, (3,))], config=ProbeConfig(max_prefix_tokens=32))[0]
    assert res.prefix_truncated
    assert res.prefix_tokens == 32
    same = probe(model, [ProbeItem(long_prefix[-32:], (3,))])[0]
    assert same.target_token_ranks == res.target_token_ranks
    assert not same.prefix_truncated


def test_k_extractable_uses_exactly_the_last_k_tokens():
    # given a target that is greedy's continuation of the last 4 tokens only
    model = no_eos(tiny_model("llama"))
    ctx = (9, 10, 11, 12)
    target = greedy(model, ctx, 3)
    items = [ProbeItem((2, 3, 4, 5, 6) + ctx, target), ProbeItem((5, 6), target)]
    # when
    out = k_extractable(model, items, ks=(4, 8))
    # then
    assert out[4].flags[0] is True
    assert out[4].flags[1] is None
    assert out[4].eligible == 1
    assert out[4].extractable == 1
    assert out[4].rate == 1.0
    assert out[8].eligible == 1
    assert out[8].flags[1] is None
    assert out[8].flags[0] == probe(model, [ProbeItem(items[0].prefix_ids[-8:], target)])[0].exact_match


def test_probes_table_has_the_declared_schema_and_no_ids():
    model = tiny_model("gpt2")
    res = probe(model, [ProbeItem((3, 4), (5, 6))], finding_ids=["f-1"])
    table = probes_table(res)
    assert table.schema.equals(PROBES_SCHEMA)
    row = table.to_pylist()[0]
    assert row["finding_id"] == "f-1"
    assert row["prefix_tokens"] == 2
    assert row["target_tokens"] == 2


def test_probe_item_rejects_empty_parts():
    with pytest.raises(ValueError, match="at least one"):
        ProbeItem((), (1,))
    with pytest.raises(ValueError, match="batch_size"):
        ProbeConfig(batch_size=0)


@pytest.mark.parametrize("max_rows", [1, 3, 8, 64])
def test_plan_batches_covers_every_item_once_within_the_row_cap(max_rows):
    lengths = [int(x) for x in torch.randint(1, 40, (50,), generator=torch.Generator().manual_seed(max_rows))]
    batches = plan_batches(lengths, max_rows)
    assert sorted(i for b in batches for i in b) == list(range(50))
    assert all(1 <= len(b) <= max_rows for b in batches)
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat)  # contiguous runs of the length order


def test_plan_batches_keeps_long_rows_from_padding_short_ones():
    # given 30 short items and 2 long ones: one batch would pad 30 rows to 200 positions
    lengths = [10] * 30 + [200, 190]
    batches = plan_batches(lengths, max_rows=32, overhead=64)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert len(batches) == 2
    assert padded == 30 * 10 + 2 * 200
    assert plan_batches([5] * 10, max_rows=32) == [list(range(10))]  # equal lengths: one forward
    assert plan_batches([], max_rows=4) == []


def test_probe_batches_are_sized_to_the_devices_free_memory():
    from revs_engine.probes import CPU_BATCH, MAX_BATCH, batch_size_for

    model = tiny_model("llama")
    # on the CPU the default batch; on an accelerator (free memory given) as many rows as half of it holds
    assert batch_size_for(model, 320) == CPU_BATCH
    small = batch_size_for(model, 320, free_bytes=2**24)
    big = batch_size_for(model, 320, free_bytes=2**26)
    assert 1 <= small < big <= MAX_BATCH
    assert abs(big - 4 * small) <= 4  # four times the memory, four times the rows
    assert batch_size_for(model, 640, free_bytes=2**26) < big / 2  # longer rows: fewer (attention grows too)
    assert batch_size_for(model, 320, free_bytes=1) == 1
    assert batch_size_for(model, 320, free_bytes=2**50) == MAX_BATCH
    assert batch_size_for(model, 320, free_bytes=2**50, most=5 * MAX_BATCH) == 5 * MAX_BATCH  # a caller's cap
    # a bf16 model fits more rows in the same memory
    assert batch_size_for(model.to(torch.bfloat16), 320, free_bytes=2**26) > big
