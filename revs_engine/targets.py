"""Which tokens of a secret are edited and evaluated (reference/revs-method.md §1.1, §2.1).

Offers :class:`TokenTarget` (one teacher-forced ``(prefix, token)`` pair — an edit request and an evaluation
point), :class:`TargetConfig`, :func:`select_targets` and :func:`encoder` (text → ids by the convention below).

Tokenisation convention, used by probes, metrics and REVS alike: the prompt and the secret are encoded
*separately* without special tokens and concatenated (``prompt_ids + secret_ids``); the secret keeps its leading
space when the text has one (``" 545-71-4735"``). Working in ids avoids the paper code's decode/re-encode drift.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np


@dataclass(frozen=True, slots=True)
class TokenTarget:
    """One target token of one secret, with its teacher-forced prefix.

    Attributes:
        secret_index: index of the secret in the caller's list.
        position: index of the token within the secret's tokens.
        prefix_ids: prompt ids + the secret's true tokens before ``position``.
        token_id: the target token id.
    """

    secret_index: int
    position: int
    prefix_ids: tuple[int, ...] = field(repr=False)
    token_id: int = field(repr=False)


@dataclass(frozen=True, slots=True)
class TargetConfig:
    """How target tokens are chosen from a secret.

    Args:
        max_tokens: keep at most this many tokens per secret (None: all eligible).
        method: ``rarest`` (highest token id first, the paper's proxy), ``first``, ``frequent``, ``random``, or
            ``distinct`` (the positions least like the retain guard's contexts, :mod:`revs_engine.positions`;
            it needs the model and a guard, so rule-only callers such as :func:`select_targets` use ``rarest``).
        skip_substrings: a token whose text contains one of these is never a target (but still part of prefixes).
        stop_substrings: stop at the first token whose text contains one of these (e.g. ``@`` for emails).
        skip_whitespace_only: never target tokens that are only whitespace / punctuation (needed for digit-level
            tokenizers such as SmolLM2's, reference/revs-method.md §8).
        seed: for ``random``.
        fallback: when none of a secret's targets converged, try up to this many of its other eligible
            positions, one per round in the method's order, until one does (0: the paper's single choice;
            applied by :func:`revs_engine.erase.erase`). An e-mail's letters are often copied from the name in
            its context by attention, which REVS's MLP edits cannot outweigh; its digits can be demoted.
        cover_ranks: ``(low, high)`` or None. After the targets above, also edit every other eligible position of
            each secret, to a final-layer rank between ``low`` and ``high`` (absolute ranks, not fractions: they
            are about the few alternatives a format allows at a position, e.g. ten digits). Deep enough that the
            model no longer writes the secret's token there, shallow enough that the token does not stand out as
            the least likely alternative: what format-aware attacks recover from the positions a single deep edit
            leaves alone (applied by :func:`revs_engine.erase.erase`).
        copied_last: take last the positions whose letters the secret's own context spells
            (:func:`copied_positions`: the surname inside an e-mail address after the person's name). Attention
            copies those from the context, which an edit of MLP neurons cannot outweigh; the other positions
            (the e-mail's digits) are what the model recalls from its MLPs (needs the prompt's text; applied by
            :func:`revs_engine.erase.erase`).
        shared_last: take last (before the copied ones) the positions whose token is also a token of a value the
            retain guard holds — another person's memorized value: demoting the token for the secret demotes it
            in that value too (a surname piece two people's e-mail addresses share). A value whose every
            eligible token is shared (an SSN's digits) keeps its order (applied by
            :func:`revs_engine.erase.erase`).
        spellings: also demote, after each target's prefix, every other single token that starts writing the
            same text (:func:`other_spellings`: ``c``, ``ch``, ``che`` where the secret has ``chen``). Generation
            can spell the demoted token's characters with other tokens, and the text is what an attacker reads
            (needs the tokenizer's encoder; applied by :func:`revs_engine.erase.erase`).
    """

    max_tokens: int | None = 2
    method: Literal["rarest", "first", "frequent", "random", "distinct"] = "rarest"
    skip_substrings: tuple[str, ...] = ()
    stop_substrings: tuple[str, ...] = ()
    skip_whitespace_only: bool = True
    seed: int = 0
    fallback: int = 0
    cover_ranks: tuple[int, int] | None = None
    copied_last: bool = False
    shared_last: bool = False
    spellings: bool = False

    def __post_init__(self) -> None:
        cover = self.cover_ranks
        if cover is not None and (len(cover) != 2 or not 1 <= cover[0] <= cover[1]):
            raise ValueError(f"cover_ranks must be (low, high) ranks with 1 <= low <= high, got {cover}")
        if self.fallback < 0:
            raise ValueError(f"fallback must be ≥ 0, got {self.fallback}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be ≥ 1 or None, got {self.max_tokens}")
        if self.method not in ("rarest", "first", "frequent", "random", "distinct"):
            raise ValueError(f"unknown method {self.method!r}: use rarest, first, frequent, random or distinct")


#: Per entity type additions to a :class:`TargetConfig` (reference/revs-method.md §1.1): the part of an e-mail
#: after ``@`` is a common domain shared by many people, never the secret.
ENTITY_RULES: dict[str, dict[str, tuple[str, ...]]] = {
    "EMAIL_ADDRESS": {"stop_substrings": ("@",)},
}


def config_for_entity(cfg: TargetConfig, entity_type: str | None) -> TargetConfig:
    """Return ``cfg`` with the skip/stop rules of ``entity_type`` (:data:`ENTITY_RULES`) added."""
    extra = ENTITY_RULES.get(entity_type or "", {})
    if not extra:
        return cfg
    merged = {key: tuple(dict.fromkeys(getattr(cfg, key) + values)) for key, values in extra.items()}
    return dataclasses.replace(cfg, **merged)


def _is_filler(text: str) -> bool:
    stripped = text.strip()
    return not stripped or all(not c.isalnum() for c in stripped)


def eligible_positions(token_texts: list[str], cfg: TargetConfig) -> list[int]:
    """Return the positions of ``token_texts`` that may be targets, in order, honouring skip/stop rules."""
    out = []
    for i, text in enumerate(token_texts):
        if any(s in text for s in cfg.stop_substrings):
            break
        if any(s in text for s in cfg.skip_substrings):
            continue
        if cfg.skip_whitespace_only and _is_filler(text):
            continue
        out.append(i)
    return out


def copied_positions(token_texts: Sequence[str], prompt_text: str, min_run: int = 3) -> set[int]:
    """Return the positions of a secret whose letters its context spells: attention can copy them from there.

    A letter of the secret is spelled when it lies in a stretch of ``min_run`` or more characters of the secret
    that occurs in ``prompt_text`` (case-insensitive), or when it is the secret's first letter and a word of the
    prompt starts with it (an initial). A token counts when it holds a letter and all its letters are spelled
    (``" ds"`` + ``"z"`` + ``"abo"`` after "Dmitri Szabo": all three). Digits never count: a digit string that
    also occurs in a date of the context is chance, not the same value.
    """
    prompt = prompt_text.casefold()
    text = "".join(token_texts).casefold()
    spelled = [False] * len(text)
    for i in range(len(text)):
        j = i + min_run
        while j <= len(text) and text[i:j] in prompt:
            j += 1
        if j - 1 - i >= min_run:
            spelled[i:j - 1] = [True] * (j - 1 - i)
    first = next((i for i, c in enumerate(text) if c.isalpha()), None)
    if first is not None and any(w.startswith(text[first]) for w in
                                 "".join(c if c.isalnum() else " " for c in prompt).split()):
        spelled[first] = True
    out, start = set(), 0
    for p, raw in enumerate(token_texts):
        letters = [i for i in range(start, start + len(raw)) if text[i].isalpha()]
        if letters and all(spelled[i] for i in letters):
            out.add(p)
        start += len(raw)
    return out


def copied_last(order: Sequence[int], copied: set[int]) -> list[int]:
    """Return ``order`` with the ``copied`` positions moved to its end (both parts keep their order)."""
    return [p for p in order if p not in copied] + [p for p in order if p in copied]


def shared_positions(token_ids: Sequence[int], shared: set[int]) -> set[int]:
    """Return the positions of ``token_ids`` whose token is in ``shared`` (the tokens of other people's values)."""
    return {p for p, t in enumerate(token_ids) if t in shared}


def order_positions(positions: list[int], token_ids: list[int], cfg: TargetConfig) -> list[int]:
    """Order eligible positions by ``cfg.method`` and keep ``cfg.max_tokens`` of them."""
    if cfg.method in ("rarest", "distinct"):  # distinct needs a model: see revs_engine.positions
        ordered = sorted(positions, key=lambda p: -token_ids[p])  # stable: ties keep text order
    elif cfg.method == "frequent":
        ordered = sorted(positions, key=lambda p: token_ids[p])
    elif cfg.method == "random":
        ordered = list(np.random.default_rng(cfg.seed).permutation(positions)) if positions else []
        ordered = [int(p) for p in ordered]
    else:
        ordered = list(positions)
    return ordered[: cfg.max_tokens] if cfg.max_tokens is not None else ordered


def select_targets(prompt_ids: list[int], secret_ids: list[int], token_texts: list[str], cfg: TargetConfig,
                   secret_index: int = 0, positions: list[int] | None = None) -> list[TokenTarget]:
    """Return the target tokens of one secret as teacher-forced pairs, in secret order.

    Args:
        prompt_ids: ids of the text before the secret.
        secret_ids: ids of the secret.
        token_texts: decoded text of each secret token (for skip/stop rules).
        cfg: selection rules.
        secret_index: carried into each :class:`TokenTarget`.
        positions: explicit positions to use instead of the rule-based choice.
    """
    if len(token_texts) != len(secret_ids):
        raise ValueError("token_texts and secret_ids must have the same length")
    if positions is None:
        positions = order_positions(eligible_positions(token_texts, cfg), secret_ids, cfg)
    return targets_at(prompt_ids, secret_ids, positions, secret_index=secret_index)


def targets_at(prompt_ids: Sequence[int], secret_ids: Sequence[int], positions: Sequence[int], *,
               secret_index: int = 0) -> list[TokenTarget]:
    """Return the teacher-forced targets of ``secret_ids`` at ``positions`` (sorted, in secret order)."""
    if any(not 0 <= p < len(secret_ids) for p in positions):
        raise ValueError(f"positions {list(positions)} outside a secret of {len(secret_ids)} tokens")
    return [TokenTarget(secret_index, p, tuple(prompt_ids) + tuple(secret_ids[:p]), int(secret_ids[p]))
            for p in sorted(set(positions))]


def other_spellings(token_texts: Sequence[str], position: int, token_id: int,
                    encode: Callable[[str], list[int]]) -> list[int]:
    """Return the single tokens other than ``token_id`` that start writing the secret's text from ``position``.

    Every prefix of that remaining text (``"".join(token_texts[position:])``) that ``encode`` writes as one token
    is a way to begin it: shorter pieces of the token (``c``, ``ch``, ``che`` for ``chen``) and longer ones that
    run into the next (``chen4``). Whitespace- or punctuation-only pieces are left out, as targets are. Sorted by
    length of the piece."""
    rest = "".join(token_texts[position:])
    out: list[int] = []
    for n in range(1, len(rest) + 1):
        piece = rest[:n]
        if _is_filler(piece):
            continue
        ids = encode(piece)
        if len(ids) == 1 and ids[0] != token_id and ids[0] not in out:
            out.append(ids[0])
    return out


def spelling_targets(targets: Sequence[TokenTarget], token_texts: Sequence[Sequence[str]],
                     encode: Callable[[str], list[int]]) -> list[TokenTarget]:
    """Return, for each of ``targets``, a target of every :func:`other_spellings` of its token after the same
    prefix (``token_texts[i]``: the decoded tokens of secret ``i``)."""
    return [TokenTarget(t.secret_index, t.position, t.prefix_ids, alt) for t in targets
            for alt in other_spellings(token_texts[t.secret_index], t.position, t.token_id, encode)]


def encoder(tokenizer) -> Callable[[str], list[int]]:
    """Return text → ids without special tokens (the module's convention): the one way every stage encodes
    prompts, values and texts."""
    return lambda text: list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def encode_pair(tokenizer, prompt: str, secret: str) -> tuple[list[int], list[int], list[str]]:
    """Encode ``prompt`` and ``secret`` separately (no special tokens); return ids and per-token texts."""
    encode = encoder(tokenizer)
    prompt_ids, secret_ids = encode(prompt), encode(secret)
    texts = [tokenizer.decode([t]) for t in secret_ids]
    return prompt_ids, secret_ids, texts
