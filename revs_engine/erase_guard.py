"""The retain guard of an erase: what it keeps, cut to a budget.

Offers :func:`build_guard` (retained items, benign text and the secrets' look-alikes as a
:class:`~revs_engine.guard.RetainGuard`), :func:`guarded_value_tokens` and the guard's budget constants.
:func:`revs_engine.erase.erase` is the one caller that edits with it.
"""

from __future__ import annotations

from revs_engine.decoys import decoy_sequences, decoy_values
from revs_engine.erase_types import EraseInputs
from revs_engine.guard import RetainGuard
from revs_engine.probes import ProbeItem

#: Guard budget: retained prefixes, benign texts and decoy prompts are cut to their last this-many tokens; at most
#: :data:`GUARD_ITEMS` retained items and :data:`GUARD_BENIGN` benign texts guard an edit. The guard projection
#: fits each layer's edit to the guard's positions, so more benign text carries over to text it never saw (the
#: held-out perplexity measured for 16, 48 and 96 texts is in the README's demo section).
GUARD_PREFIX_TOKENS = 64
GUARD_ITEMS = 256
GUARD_BENIGN = 96
#: Cross decoys (:attr:`~revs_engine.config.RevsConfig.cross_decoys`) follow at most this many retained items'
#: prompts: every position of a decoy is guarded, so each costs the guard pass a whole prompt.
GUARD_CROSS_ITEMS = 128


def build_guard(inputs: EraseInputs, decoys: int, cross_decoys: int = 0,
                cross_secrets: bool = False) -> tuple[RetainGuard | None, int]:
    """Return the retain guard of an erase (None when empty) and how many decoys it holds.

    Retained items and benign texts beyond :data:`GUARD_ITEMS` / :data:`GUARD_BENIGN` are dropped; every sequence
    is cut to its last :data:`GUARD_PREFIX_TOKENS` tokens (benign texts to their first). ``decoys`` look-alikes of
    each secret follow its own prompt; ``cross_decoys`` look-alikes of secret ``j mod #secrets`` follow retained
    item ``j``'s prompt (:attr:`~revs_engine.config.RevsConfig.cross_decoys`); with ``cross_secrets``, the
    secrets themselves follow those prompts, taken in turn until every secret and every prompt had one
    (:attr:`~revs_engine.config.RevsConfig.cross_secrets`), leaving out the prompts ``inputs.keep_related``
    marks (they may speak of a person being erased).
    """
    cut = GUARD_PREFIX_TOKENS
    items = [ProbeItem(it.prefix_ids[-cut:], it.target_ids) for it in inputs.keep[:GUARD_ITEMS]]
    texts = [list(b[:cut]) for b in inputs.benign[:GUARD_BENIGN]]
    if (decoys or cross_decoys) and inputs.forget and inputs.encode is None:
        raise ValueError("decoys need EraseInputs.encode (text → ids) to write each look-alike value")
    # each secret's look-alikes after its own prompt: every position guarded, like a benign text
    own = [seq for i, s in enumerate(inputs.forget) if decoys
           for seq in decoy_sequences(s.prompt_ids[-cut:], s.text, inputs.encode, decoys, seed=i)]
    lookalikes, cross = [], items[:GUARD_CROSS_ITEMS]
    if cross_decoys and inputs.forget:  # the secrets in turn after the first retained items' prompts: values only
        lookalikes = [ProbeItem(it.prefix_ids, tuple(inputs.encode(d))) for j, it in enumerate(cross)
                      for d in decoy_values(inputs.forget[j % len(inputs.forget)].text, cross_decoys,
                                            seed=10_000 + j)]
    others = _unrelated(cross, inputs.keep_related)
    if cross_secrets and inputs.forget and others:  # each secret itself after other people's prompts, in turn
        n = len(inputs.forget)
        lookalikes += [ProbeItem(others[k % len(others)].prefix_ids, inputs.forget[k % n].secret_ids)
                       for k in range(max(len(others), n))]
    n_decoys = len(own) + len(lookalikes)
    guard = RetainGuard.from_items(items, texts + own, lookalikes)
    return (guard if len(guard) else None), n_decoys


def _unrelated(cross: list[ProbeItem], related: tuple[bool, ...]) -> list[ProbeItem]:
    """The cross prompts that speak of nobody being erased (``EraseInputs.keep_related`` unset)."""
    return [it for j, it in enumerate(cross) if not (related and related[j])]


def guarded_value_tokens(inputs: EraseInputs) -> set[int]:
    """Every token of the retained values the erase's guard holds (its first :data:`GUARD_ITEMS` items): other
    people's memorized values, which ``targets.shared_last`` keeps the edit's tokens away from."""
    return {t for it in inputs.keep[:GUARD_ITEMS] for t in it.target_ids}
