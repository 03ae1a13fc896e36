"""Architecture table: where each supported family keeps the modules REVS reads and edits.

Offers :data:`ARCH_SPECS` (keyed by ``config.model_type``), :class:`ArchSpec`, :func:`resolve_arch` (spec + the
model's live modules, layout checked once), :func:`neuron_vectors` and :func:`add_to_neurons` — the only accessors
of FF2 ("neuron") weights, so the Conv1D transpose lives in one place.

A "neuron" is one column of an MLP output projection (FF2): its write vector into the residual stream
(reference/revs-method.md §0). All tensors returned are views of the live weights: ``[d_ff, d_model]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from revs_engine.errors import UnsupportedArchitectureError


@dataclass(frozen=True, slots=True)
class ArchSpec:
    """Module paths of one model family (relative to the ``*ForCausalLM`` model).

    Args:
        layers: path of the ``nn.ModuleList`` of transformer blocks.
        attn: attention sub-module of a block (its first output is the attention's residual contribution).
        mlp: MLP sub-module of a block (its output is the MLP's residual contribution).
        mlp_out: FF2 / output projection inside a block — the edited "neuron" matrix.
        final_norm: final norm applied before the unembedding.
        norm_kind: ``"rms"`` (RMSNorm, no bias, no mean) or ``"layer"`` (LayerNorm).
        transposed: True when FF2 is a ``Conv1D`` storing ``[d_ff, d_model]`` (GPT-2).
        parallel_residual: True when attention and MLP read the same block input (GPT-J; GPT-NeoX by config).
    """

    layers: str
    attn: str
    mlp: str
    mlp_out: str
    final_norm: str
    norm_kind: Literal["rms", "layer"]
    transposed: bool = False
    parallel_residual: bool = False


_LLAMA = ArchSpec("model.layers", "self_attn", "mlp", "mlp.down_proj", "model.norm", "rms")

ARCH_SPECS: dict[str, ArchSpec] = {
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "gpt2": ArchSpec("transformer.h", "attn", "mlp", "mlp.c_proj", "transformer.ln_f", "layer", transposed=True),
    "gptj": ArchSpec("transformer.h", "attn", "mlp", "mlp.fc_out", "transformer.ln_f", "layer",
                     parallel_residual=True),
    "gpt_neox": ArchSpec("gpt_neox.layers", "attention", "mlp", "mlp.dense_4h_to_h",
                         "gpt_neox.final_layer_norm", "layer", parallel_residual=True),
}


@dataclass(frozen=True)
class ModelArch:
    """A spec bound to one model's live modules.

    Attributes:
        model_type: the config's ``model_type``.
        spec: the table entry.
        layers: the transformer blocks, in order.
        mlp_out: the FF2 module of every block, in order.
        final_norm: the final norm module.
        unembed: the output embedding (``lm_head``), weight ``[vocab, d_model]``.
        tied: whether ``unembed`` shares its weight with the input embedding.
        n_layers, d_model, d_ff, vocab_size: sizes read off the modules.
        parallel_residual: effective value for this model (NeoX reads it from the config).
    """

    model_type: str
    spec: ArchSpec
    layers: list[nn.Module] = field(repr=False)
    mlp_out: list[nn.Module] = field(repr=False)
    final_norm: nn.Module = field(repr=False)
    unembed: nn.Module = field(repr=False)
    tied: bool
    n_layers: int
    d_model: int
    d_ff: int
    vocab_size: int
    parallel_residual: bool

    def sub(self, layer: int, path: str) -> nn.Module:
        """Return the sub-module at ``path`` inside block ``layer``."""
        return self.layers[layer].get_submodule(path)


def supported_model_types() -> list[str]:
    """Return the model types in the architecture table, sorted."""
    return sorted(ARCH_SPECS)


def resolve_arch(model: nn.Module, spec: ArchSpec | None = None) -> ModelArch:
    """Bind the table entry (or an explicit ``spec``) to ``model`` and check the layout once.

    Raises:
        UnsupportedArchitectureError: ``model_type`` not in the table and no ``spec`` given, or the model's modules
            do not match the spec (missing path, Conv1D where Linear expected or vice versa).
    """
    model_type = getattr(getattr(model, "config", None), "model_type", None) or "?"
    if spec is None:
        spec = ARCH_SPECS.get(model_type)
        if spec is None:
            raise UnsupportedArchitectureError(
                f"model_type {model_type!r} is not supported. Supported: {', '.join(supported_model_types())}. "
                "For another decoder-only family, pass an explicit revs_engine.arch.ArchSpec naming its blocks, "
                "attention, MLP, MLP output projection and final norm."
            )
    try:
        layers = list(model.get_submodule(spec.layers))
        mlp_out = [blk.get_submodule(spec.mlp_out) for blk in layers]
        for blk in layers:
            blk.get_submodule(spec.attn)
            blk.get_submodule(spec.mlp)
        final_norm = model.get_submodule(spec.final_norm)
    except AttributeError as exc:
        raise UnsupportedArchitectureError(
            f"{type(model).__name__} (model_type {model_type!r}) does not have the modules its ArchSpec names: "
            f"{exc}. Pass an ArchSpec matching this model's module names."
        ) from exc
    if not layers:
        raise UnsupportedArchitectureError(f"{type(model).__name__}: no transformer blocks at {spec.layers!r}.")
    for i, module in enumerate(mlp_out):
        if isinstance(module, Conv1D) != spec.transposed:
            kind = "Conv1D" if isinstance(module, Conv1D) else type(module).__name__
            raise UnsupportedArchitectureError(
                f"layer {i} {spec.mlp_out} is a {kind}, but the spec says transposed={spec.transposed}. "
                "Fix the ArchSpec's `transposed` flag."
            )
    unembed = model.get_output_embeddings()
    if unembed is None:
        raise UnsupportedArchitectureError(f"{type(model).__name__} has no output embedding: "
                                           "not a causal LM head.")
    embed = model.get_input_embeddings()
    tied = embed is not None and embed.weight.data_ptr() == unembed.weight.data_ptr()
    w0 = neuron_vectors(mlp_out[0], spec.transposed)
    parallel = spec.parallel_residual
    if model_type == "gpt_neox":
        parallel = bool(getattr(model.config, "use_parallel_residual", True))
    return ModelArch(
        model_type=model_type, spec=spec, layers=layers, mlp_out=mlp_out, final_norm=final_norm,
        unembed=unembed, tied=tied, n_layers=len(layers), d_model=w0.shape[1], d_ff=w0.shape[0],
        vocab_size=unembed.weight.shape[0], parallel_residual=parallel,
    )


def neuron_vectors(module: nn.Module, transposed: bool) -> torch.Tensor:
    """Return the FF2 write vectors of ``module`` as a view ``[d_ff, d_model]`` (row j = neuron j)."""
    return module.weight if transposed else module.weight.T


def neuron_bias(module: nn.Module) -> torch.Tensor | None:
    """Return the FF2 output bias ``[d_model]`` or None."""
    return getattr(module, "bias", None)


@torch.no_grad()
def add_to_neurons(module: nn.Module, transposed: bool, idx: torch.Tensor, delta: torch.Tensor) -> None:
    """Add ``delta`` ``[k, d_model]`` to the write vectors of neurons ``idx`` ``[k]`` of ``module`` in place (for
    bf16/fp16 weights the sum is taken in float32 and rounded to the weights' dtype once)."""
    vectors = neuron_vectors(module, transposed)
    if delta.shape != (idx.numel(), vectors.shape[1]):
        raise ValueError(f"delta has shape {tuple(delta.shape)}, expected ({idx.numel()}, {vectors.shape[1]})")
    idx = idx.to(vectors.device)
    if vectors.dtype not in (torch.bfloat16, torch.float16):
        vectors.index_add_(0, idx, delta.to(vectors.dtype))
        return
    # half precision: add in float32 and round once (rounding the delta first would round twice)
    rows, where = torch.unique(idx, return_inverse=True)
    summed = vectors[rows].float().index_add_(0, where, delta.to(vectors.device, torch.float32))
    vectors[rows] = summed.to(vectors.dtype)
