"""Activation capture in one batched forward pass.

Offers :func:`capture_activations` → :class:`Capture`, :func:`stream_hooks` (the hooks it uses, for other
forward passes), :func:`hooks` (a context manager that removes every hook it registered on every path, including
exceptions) and :func:`right_padded` (id sequences as one padded batch). Positions are sliced inside the hooks,
so memory is ``O(batch × positions × layers × d)``, not ``O(sequence)``.

Per layer ``l`` and chosen position: ``resid_pre`` (block input; for l=0 the embeddings), ``resid_post`` (block
output), ``attn_out`` and ``mlp_out`` (the two residual contributions) and ``neuron_act`` (FF2 input, captured
with a forward *pre*-hook). For every supported family ``resid_post == resid_pre + attn_out + mlp_out``:
sequential blocks (Llama, GPT-2, NeoX with ``use_parallel_residual=False``) add them one after the other;
parallel blocks (GPT-J, NeoX by default) compute both from the same input and add both — the same identity.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from revs_engine.arch import ModelArch
from revs_engine.errors import ShapeError

STREAMS = ("resid_pre", "resid_post", "attn_out", "mlp_out", "neuron_act")


def first(x):
    """Return ``x[0]`` for tuple outputs (GPT-J blocks, attention modules), else ``x``."""
    return x[0] if isinstance(x, tuple | list) else x


@dataclass(frozen=True)
class Capture:
    """Activations at the chosen positions.

    Attributes:
        resid_pre, resid_post, attn_out, mlp_out: ``[batch, n_pos, n_layers, d_model]``.
        neuron_act: ``[batch, n_pos, n_layers, d_ff]``.
        logits: the model's final logits at the positions, ``[batch, n_pos, V]`` (None when not asked for).
        positions: ``[batch, n_pos]`` absolute positions in the (padded) input.
        layers: the captured layer indices.
    """

    resid_pre: torch.Tensor
    resid_post: torch.Tensor
    attn_out: torch.Tensor
    mlp_out: torch.Tensor
    neuron_act: torch.Tensor
    logits: torch.Tensor | None
    positions: torch.Tensor
    layers: tuple[int, ...]


@contextlib.contextmanager
def hooks(registrations: list[tuple[nn.Module, str, Callable]]) -> Iterator[None]:
    """Register ``(module, "forward"|"pre", fn)`` hooks for the duration of the block; always remove them."""
    handles = []
    try:
        for module, kind, fn in registrations:
            if kind == "pre":
                handles.append(module.register_forward_pre_hook(fn, with_kwargs=True))
            else:
                handles.append(module.register_forward_hook(fn))
        yield
    finally:
        for handle in handles:
            handle.remove()


def last_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Return the index of the last real token of each row ``[batch, 1]`` (works for left and right padding)."""
    idx = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (attention_mask.long() * idx).argmax(-1, keepdim=True)


def right_padded(seqs: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(input_ids, attention_mask)`` ``[len(seqs), longest]`` of the id sequences, right-padded."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, s in enumerate(seqs):
        ids[r, :len(s)] = torch.tensor(list(s), dtype=torch.long)
        mask[r, :len(s)] = 1
    return ids, mask


def position_ids_for(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that count only real tokens, so left padding gives the same result as no padding."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def model_forward(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                  **kwargs):
    """Run ``model`` with padding-safe position ids; return its output."""
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    return model(input_ids=input_ids, attention_mask=attention_mask,
                 position_ids=position_ids_for(attention_mask), use_cache=False, **kwargs)


def last_logits_only(model: nn.Module) -> dict:
    """Keyword arguments that make ``model`` compute logits at the last position only (``logits_to_keep=1``)
    when its forward accepts them — the unembedding of every other position is a waste when only the next token
    matters (49k × 576 per position for SmolLM2)."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return {}
    return {"logits_to_keep": 1} if "logits_to_keep" in params else {}


def stream_hooks(arch: ModelArch, take: Callable[[torch.Tensor], torch.Tensor],
                 store: dict[str, dict[int, torch.Tensor]],
                 layers: list[int]) -> list[tuple[nn.Module, str, Callable]]:
    """Hook registrations (for :func:`hooks`) that write ``take(stream)`` of every layer in ``layers`` into
    ``store[stream][layer]`` for each stream of :data:`STREAMS` that ``store`` has a key for; ``take`` picks the
    positions out of a ``[batch, seq, d]`` tensor."""
    def output_of(name: str, layer: int) -> Callable:  # forward hook: the module's output
        def hook(module, args, output):
            store[name][layer] = take(first(output))
        return hook

    def input_of(name: str, keyword: str, layer: int) -> Callable:  # pre-hook: the module's input
        def hook(module, args, kwargs):
            store[name][layer] = take(args[0] if args else kwargs[keyword])
        return hook

    regs = []
    for layer in layers:
        block = arch.layers[layer]
        wanted = {
            "resid_pre": (block, "pre", input_of("resid_pre", "hidden_states", layer)),
            "resid_post": (block, "forward", output_of("resid_post", layer)),
            "attn_out": (arch.sub(layer, arch.spec.attn), "forward", output_of("attn_out", layer)),
            "mlp_out": (arch.sub(layer, arch.spec.mlp), "forward", output_of("mlp_out", layer)),
            "neuron_act": (arch.mlp_out[layer], "pre", input_of("neuron_act", "input", layer)),
        }
        regs += [reg for name, reg in wanted.items() if name in store]
    return regs


@torch.no_grad()
def capture_activations(model: nn.Module, arch: ModelArch, input_ids: torch.Tensor,
                        attention_mask: torch.Tensor | None = None, positions: torch.Tensor | None = None,
                        layers: list[int] | None = None, logits: bool = True) -> Capture:
    """Run one forward pass and capture every stream at ``positions`` of ``layers``.

    Args:
        model: causal LM in eval mode.
        arch: ``resolve_arch(model)``.
        input_ids: ``[batch, seq]`` (a 1-D tensor is treated as one row).
        attention_mask: ``[batch, seq]``; None means no padding.
        positions: ``[batch, n_pos]`` absolute indices; None means the last real token of each row.
        layers: layer indices to capture (default all).
        logits: also return the final logits at ``positions``; False runs the base model only (no unembedding
            of any position) when the model has one.

    Returns:
        A :class:`Capture`.
    """
    if input_ids.dim() == 1:
        input_ids = input_ids.unsqueeze(0)
    if input_ids.dim() != 2 or input_ids.shape[1] == 0:
        raise ShapeError(f"input_ids must be [batch, seq] with seq ≥ 1, got {tuple(input_ids.shape)}")
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    if positions is None:
        positions = last_positions(attention_mask)
    positions = positions.to(input_ids.device).long()
    if positions.dim() == 1:
        positions = positions.unsqueeze(1)
    layers = list(range(arch.n_layers)) if layers is None else list(layers)
    rows = torch.arange(input_ids.shape[0], device=input_ids.device).unsqueeze(1)
    store: dict[str, dict[int, torch.Tensor]] = {name: {} for name in STREAMS}

    def take(x: torch.Tensor) -> torch.Tensor:  # [batch, seq, d] -> [batch, n_pos, d]
        return x[rows, positions]

    regs = stream_hooks(arch, take, store, layers)
    body = model if logits or getattr(model, "base_model", model) is model else model.base_model
    with hooks(regs):
        out = model_forward(body, input_ids, attention_mask)
    stacked = {name: torch.stack([store[name][layer] for layer in layers], dim=2) for name in STREAMS}
    return Capture(**stacked, logits=out.logits[rows, positions] if body is model else None, positions=positions,
                   layers=tuple(layers))
