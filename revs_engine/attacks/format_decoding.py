"""Format-constrained greedy decoding and the partial-knowledge attack.

Offers :class:`ConstrainedDecodeResult`, :func:`constrained_greedy` (greedy, but each step may only emit a token
whose text fits the format at the current character offset), :func:`constrained_attack` (decode after the prompt
and count the secret's characters that come back), :class:`PartialKnowledgeResult` and :func:`partial_knowledge`
(given the first half of the secret, do plain greedy and constrained greedy decoding complete the rest exactly?).

Constrained decoding tracks the format's matching states (:meth:`revs_engine.formats.SecretFormat.advance`), so
a token may hold one character (digit-level tokenizers such as SmolLM2's) or several (``"555"``, ``"-01"``,
``" 5"``): it is allowed when all its characters fit where they would land. Separators come from the format — only
the format's separator fits there. Check rules (Luhn, SSN issue rules) are not enforced while decoding, so the
decode may break them. When a choice format allows both stopping and going on (``example.co`` / ``example.com``),
decoding goes on only if the model's unconstrained top token is one of the allowed continuations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from revs_engine.attacks.scoring import TokenVocab, greedy_decode
from revs_engine.formats import SecretFormat


@dataclass(frozen=True, slots=True)
class ConstrainedDecodeResult:
    """What format-constrained greedy decoding after the prompt gives back.

    Attributes:
        text: the decoded value (may reproduce the secret: keep in memory only; not in records).
        complete: whether decoding reached a complete value of the format.
        chars_recovered: variable characters of the secret reproduced at the same position.
        n_variable_chars: the secret's variable characters (its separators and fixed parts excluded).
        mismatch_positions: indices (among the secret's variable characters) that did not come back.
    """

    text: str = field(repr=False)
    complete: bool
    chars_recovered: int
    n_variable_chars: int
    mismatch_positions: tuple[int, ...]

    @property
    def fraction(self) -> float:
        """``chars_recovered / n_variable_chars``."""
        return self.chars_recovered / self.n_variable_chars

    @property
    def exact(self) -> bool:
        """Whether every variable character came back."""
        return self.chars_recovered == self.n_variable_chars


def constrained_greedy(model: torch.nn.Module, context_ids: Sequence[int], fmt: SecretFormat, vocab: TokenVocab,
                       *, given_text: str = "") -> tuple[str, bool]:
    """Greedy-decode a value of ``fmt`` after ``context_ids``; return ``(text, complete)``.

    ``given_text`` is the part of the value already in the context (its last tokens); decoding continues it and
    the returned text starts with it.
    """
    states = fmt.advance(fmt.start(), given_text)
    if not states:
        raise ValueError(f"the given text does not start a value of format {fmt.name!r}")
    text = [given_text]

    def choose(logits: torch.Tensor) -> int | None:
        nonlocal states
        options: dict[int, frozenset] = {}
        for c in fmt.next_chars(states):
            for i in vocab.by_first.get(c, ()):
                if i < logits.shape[0]:
                    nxt = fmt.advance(states, vocab.texts[i])
                    if nxt:
                        options[i] = nxt
        can_stop = any(fmt.is_end(s) for s in states)
        if not options or (can_stop and int(logits.argmax()) not in options):
            return None
        ids = sorted(options)  # ties go to the lowest id, as argmax does
        best = ids[int(logits[torch.tensor(ids, device=logits.device)].argmax())]
        states = options[best]
        text.append(vocab.texts[best])
        return best

    greedy_decode(model, context_ids, choose, max_steps=fmt.max_length - len(given_text) + 1)
    return "".join(text), any(fmt.is_end(s) for s in states)


def compare(fmt: SecretFormat, secret: str, decoded: str) -> tuple[int, int, tuple[int, ...]]:
    """Return ``(recovered, n_variable, mismatch positions)``: the secret's variable characters that ``decoded``
    has at the same position."""
    mask = fmt.variable_mask(secret)
    if mask is None:
        raise ValueError(f"the secret does not fit format {fmt.name!r}")
    variable = [i for i, m in enumerate(mask) if m]
    miss = tuple(j for j, i in enumerate(variable) if i >= len(decoded) or decoded[i] != secret[i])
    return len(variable) - len(miss), len(variable), miss


def constrained_attack(model: torch.nn.Module, prompt_ids: Sequence[int], secret_text: str, fmt: SecretFormat,
                       vocab: TokenVocab) -> ConstrainedDecodeResult:
    """Decode a value of ``fmt`` after the prompt and count the secret's characters that come back."""
    text, complete = constrained_greedy(model, prompt_ids, fmt, vocab)
    recovered, n_var, miss = compare(fmt, secret_text, text)
    return ConstrainedDecodeResult(text=text, complete=complete, chars_recovered=recovered, n_variable_chars=n_var,
                                   mismatch_positions=miss)


@dataclass(frozen=True, slots=True)
class PartialKnowledgeResult:
    """Does the model complete the secret from its first half?

    Attributes:
        given_chars: variable characters given (the first half, rounded up to a token boundary).
        n_variable_chars: the secret's variable characters.
        given_tokens: secret tokens given after the prompt.
        greedy_completes: plain greedy decoding continues with exactly the rest of the secret.
        constrained_completes: format-constrained greedy decoding gives exactly the rest.
    """

    given_chars: int
    n_variable_chars: int
    given_tokens: int
    greedy_completes: bool
    constrained_completes: bool


def split_half(fmt: SecretFormat, secret_text: str, secret_ids: Sequence[int],
               decode: Callable[[list[int]], str]) -> tuple[int, str]:
    """Return ``(n_tokens, text)`` of the shortest token prefix of the secret holding at least half (rounded down)
    of its variable characters, one token short of the whole secret at most."""
    mask = fmt.variable_mask(secret_text)
    if mask is None:
        raise ValueError(f"the secret does not fit format {fmt.name!r}")
    half = sum(mask) // 2
    for n in range(len(secret_ids)):
        text = decode(list(secret_ids[:n]))
        if sum(mask[:len(text)]) >= half:
            return n, text
    n = len(secret_ids) - 1
    return n, decode(list(secret_ids[:n]))


def partial_knowledge(model: torch.nn.Module, prompt_ids: Sequence[int], secret_text: str, fmt: SecretFormat,
                      secret_ids: Sequence[int], decode: Callable[[list[int]], str],
                      vocab: TokenVocab) -> PartialKnowledgeResult:
    """Give the prompt and the first half of the secret; check whether greedy decoding, plain and constrained,
    completes the rest exactly."""
    n_given, given = split_half(fmt, secret_text, secret_ids, decode)
    if not secret_text.startswith(given):
        raise ValueError("decoding a prefix of the secret's ids does not give a prefix of the secret; pass the "
                         "encode/decode pair the secret was tokenised with")
    rest = secret_text[len(given):]
    context = list(prompt_ids) + list(secret_ids[:n_given])
    generated: list[int] = []

    def choose(logits: torch.Tensor) -> int | None:
        if len(decode(generated)) >= len(rest):
            return None
        generated.append(int(logits.argmax()))
        return generated[-1]

    greedy_decode(model, context, choose, max_steps=len(rest) + 1)
    greedy_ok = decode(generated)[:len(rest)] == rest
    constrained, _ = constrained_greedy(model, context, fmt, vocab, given_text=given)
    mask = fmt.variable_mask(secret_text)
    return PartialKnowledgeResult(given_chars=sum(mask[:len(given)]), n_variable_chars=sum(mask),
                                  given_tokens=n_given, greedy_completes=greedy_ok,
                                  constrained_completes=constrained == secret_text)
