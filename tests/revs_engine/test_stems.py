"""Shared stems (revs_engine.attacks.stems): which sequences share a stem, and continuations run from the stems'
caches equal those of the whole pass and of generate()."""

import pytest
import torch

from revs_engine.arch import resolve_arch
from revs_engine.attacks import generation, resumed_greedy, resumed_sampling
from revs_engine.attacks.logit_lens import capture_targets
from revs_engine.attacks.stems import stem_groups
from revs_engine.probes import ProbeItem
from revs_engine.targets import TokenTarget
from tests.revs_engine.conftest import FAMILIES
from tests.revs_engine.tiny import tiny_model

FORM = (30, 31, 32, 33, 34, 35, 36)  # two templates' opening tokens
VISIT = (50, 51, 52, 53, 54)


def test_groups_share_the_longest_stems_within_each_prefix():
    seqs = [FORM + (1, 2), FORM + (3, 4, 5), FORM[:5] + (9, 9), VISIT + (7,), VISIT + (8, 8), (60, 61, 62, 63, 64)]
    limits = [len(s) - 1 for s in seqs]
    groups = dict((tuple(sorted(m)), n) for n, m in stem_groups(seqs, limits))
    # the three form sequences share 5 tokens (10 positions saved; the first two alone share 7: 7 saved)
    assert groups == {(0, 1, 2): 5, (3, 4): 5}
    # a stem never passes a member's limit, and shorter than min_len is not shared
    assert dict((tuple(sorted(m)), n) for n, m in stem_groups(seqs, [3] * 6)) == {}
    assert dict((tuple(sorted(m)), n) for n, m in stem_groups(seqs, [4] * 6)) == {(0, 1, 2): 4, (3, 4): 4}
    assert stem_groups(seqs, limits, min_len=6) == [(7, [0, 1])]


def _most_saved(seqs, limits, min_len):
    """The most positions any cut of the sorted order into runs saves (brute force)."""
    order = sorted(range(len(seqs)), key=lambda i: seqs[i])

    def stem(run):
        n = min(limits[i] for i in run)
        for a in run[1:]:
            same = [x == y for x, y in zip(seqs[run[0]], seqs[a], strict=False)] + [False]
            n = min(n, same.index(False))
        return n

    def best(k):
        if k == len(order):
            return 0
        out = best(k + 1)
        for j in range(k + 2, len(order) + 1):
            n = stem(order[k:j])
            if n >= min_len:
                out = max(out, (j - k - 1) * n + best(j))
        return out

    return best(0)


def test_groups_save_the_most_positions_on_random_sequences():
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        seqs = [tuple(torch.randint(0, 2, (int(torch.randint(4, 9, (1,), generator=g)),), generator=g).tolist())
                for _ in range(7)]
        limits = [len(s) - 1 for s in seqs]
        groups = stem_groups(seqs, limits, min_len=2)
        assert sum((len(m) - 1) * n for n, m in groups) == _most_saved(seqs, limits, 2)
        for n, members in groups:  # every member starts with the stem and keeps its limit
            assert all(seqs[i][:n] == seqs[members[0]][:n] and n <= limits[i] for i in members)


def _items(model):
    """Items on two templates plus one alone: some greedy reproduces, some it leaves early or late."""
    out = []
    for t, template in enumerate((FORM, VISIT, FORM)):
        for i in range(3):
            prefix = template + (8 + 3 * t + i, 20 + i)
            ids = torch.tensor([list(prefix)])
            cont = tuple(model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=4,
                                        do_sample=False, pad_token_id=0)[0, len(prefix):].tolist())
            j = (i + t) % 4
            out.append(ProbeItem(prefix, cont if i == 0 else (*cont[:j], 60 + j, *cont[j + 1:])))
    return out + [ProbeItem((5, 9, 11), (1, 2, 3))]


@pytest.mark.parametrize("family", FAMILIES)
def test_continuations_from_stems_equal_the_whole_pass_and_generate(family):
    model = tiny_model(family)
    model.generation_config.eos_token_id = None
    arch = resolve_arch(model)
    items = _items(model)
    # taps at each item's last prompt token and one target token in
    taps = {s: resumed_greedy.Taps(arch, {i: [len(it.prefix_ids) - 1, len(it.prefix_ids) + 1]
                                          for i, it in enumerate(items)}) for s in (True, False)}
    conts = {s: resumed_greedy.greedy_continuations(model, items, 8, eos_ids=(), batch_size=4, taps=taps[s],
                                                    stems=s) for s in (True, False)}
    # then with stems or without, each continuation is what generate() decodes from the prefix
    assert conts[True] == conts[False]
    for item, cont in zip(items, conts[True], strict=True):
        ids = torch.tensor([list(item.prefix_ids)])
        want = tuple(model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False,
                                    pad_token_id=0)[0, ids.shape[1]:].tolist())
        assert cont == (item.target_ids if want[:len(item.target_ids)] == item.target_ids else want)
    assert sum(c == it.target_ids for c, it in zip(conts[True], items, strict=True)) >= 3
    # and the tapped streams are those capture_targets finds at each token
    targets = [TokenTarget(i, j, it.prefix_ids + it.target_ids[:j], it.target_ids[j])
               for i, it in enumerate(items) for j in (0, 2)]
    acts = capture_targets(model, arch, targets)
    for k, t in enumerate(targets):
        found = taps[True].found[(t.secret_index, len(t.prefix_ids) - 1)]
        for stream in ("resid_post", "mlp_out"):
            torch.testing.assert_close(found[stream], getattr(acts, stream)[k], rtol=1e-4, atol=1e-5)


def _passes(model, items, **kw):
    """Positions the model ran in passes of more than one token (the teacher-forced passes, not decoding steps)."""
    ran = []
    hook = model.get_input_embeddings().register_forward_hook(
        lambda m, a, o: ran.append(o.shape[0] * o.shape[1]) if o.shape[1] > 1 else None)
    try:
        resumed_greedy.greedy_continuations(model, items, 8, eos_ids=(), batch_size=16, **kw)
    finally:
        hook.remove()
    return sum(ran)


@pytest.mark.parametrize("family", ["llama", "gpt2", "gptj"])
def test_stems_run_once_and_samples_resume_from_them(family):
    # given items sharing their templates' opening tokens
    model = tiny_model(family)
    model.generation_config.eos_token_id = None
    items = _items(model)
    kept = resumed_greedy.Kept(frozenset(range(len(items))))
    # then the teacher-forced passes run fewer positions with stems than without
    assert _passes(model, items, keep=kept) < _passes(model, items, stems=False)
    # and samples resuming from those kept results draw what generate() draws
    seeds = [generation._batch_seed(3, s) for s in range(0, len(items), 4)]
    resumed = resumed_sampling.sampled_continuations(model, items, 4, 6, temperature=1.0, top_k=3, seeds=seeds,
                                                     batch_size=4, eos_ids=(), teacher_forced=kept.found)
    assert resumed == generation.generate_continuations(model, [it.prefix_ids for it in items], max_new_tokens=6,
                                                        n_samples=4, do_sample=True, top_k=3, seed=3, batch_size=4)
