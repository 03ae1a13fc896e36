"""Walk one prompt through the model layer by layer, resuming from cached hidden states after an edit.

Offers :class:`LayerActs` (one layer's streams at the last position), :class:`LayerWalker` (``layer(l)`` →
:class:`LayerActs`, ``commit(l, edited)``) and :func:`record_block_inputs` / :func:`run_blocks` (the resume
primitive, exposed for tests).

REVS edits FF2 of layer l and then needs layer l+1's activations on the *edited* model (reference/revs-method.md
§1.2). The authors re-run the full model per layer (L forward passes per target, O(L²) block calls). Editing
layer l changes nothing before block l, so the walker keeps the full-sequence input of the current block, runs that
single block with hooks, and — only when the block was edited — runs it once more to get the edited output:
L + (#edited layers) block calls per target.

How blocks are called is not re-implemented per family: one ordinary forward pass records every block's
positional and keyword arguments besides the hidden states (causal mask, position ids, rotary ``(cos, sin)`` for
llama/NeoX, nothing weight-dependent), and the walker calls ``block(hidden, *args, **kwargs)`` with them. That is
the exact call the model makes, so resumed values are bit-identical to a full forward for every family in
the table (tested). ``resume=False`` runs one full :func:`capture_activations` per layer instead (the naive
variant's forwards, ``revs.unlearn(naive=True)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from revs_engine.arch import ModelArch
from revs_engine.capture import capture_activations, first, hooks, last_logits_only, model_forward


@dataclass(frozen=True)
class LayerActs:
    """Streams of one layer at the last prompt position (reference/revs-method.md §1.2).

    Attributes:
        resid_pre, resid_post, attn_out, mlp_out: ``[d_model]``.
        neuron_act: ``[d_ff]`` input of FF2.
    """

    resid_pre: torch.Tensor = field(repr=False)
    resid_post: torch.Tensor = field(repr=False)
    attn_out: torch.Tensor = field(repr=False)
    mlp_out: torch.Tensor = field(repr=False)
    neuron_act: torch.Tensor = field(repr=False)


@dataclass(frozen=True)
class BlockInputs:
    """What the model passed to every block in one forward pass.

    Attributes:
        hidden: ``[L, 1, seq, d_model]``-like list: the hidden states entering each block.
        args / kwargs: per block, the other positional / keyword arguments of the call.
    """

    hidden: list[torch.Tensor] = field(repr=False)
    args: list[tuple] = field(repr=False)
    kwargs: list[dict] = field(repr=False)
    output: torch.Tensor | None = field(default=None, repr=False)  # the last block's output
    logits: torch.Tensor | None = field(default=None, repr=False)  # the model's logits at the last position


@torch.no_grad()
def record_block_inputs(model: nn.Module, arch: ModelArch, input_ids: torch.Tensor) -> BlockInputs:
    """Run one forward pass on ``input_ids`` ``[1, seq]`` and record each block's call arguments."""
    hidden: dict[int, torch.Tensor] = {}
    args: dict[int, tuple] = {}
    kwargs: dict[int, dict] = {}

    def pre(layer):
        def hook(module, a, kw):
            if a:
                hidden[layer], args[layer] = a[0], tuple(a[1:])
                kwargs[layer] = dict(kw)
            else:
                kw = dict(kw)
                hidden[layer], args[layer] = kw.pop("hidden_states"), ()
                kwargs[layer] = kw
        return hook

    last: list[torch.Tensor] = []

    def keep_last(module, a, output):
        last.append(first(output))

    regs = [(block, "pre", pre(i)) for i, block in enumerate(arch.layers)]
    with hooks([*regs, (arch.layers[-1], "forward", keep_last)]):
        out = model_forward(model, input_ids, **last_logits_only(model))
    n = arch.n_layers
    return BlockInputs([hidden[i] for i in range(n)], [args[i] for i in range(n)], [kwargs[i] for i in range(n)],
                       last[0], out.logits[0, -1])


def call_block(arch: ModelArch, inputs: BlockInputs, layer: int, hidden: torch.Tensor) -> torch.Tensor:
    """Run block ``layer`` on ``hidden`` ``[1, seq, d_model]`` exactly as the model's forward does."""
    return first(arch.layers[layer](hidden, *inputs.args[layer], **inputs.kwargs[layer]))


@torch.no_grad()
def run_blocks(arch: ModelArch, inputs: BlockInputs, start: int, hidden: torch.Tensor) -> torch.Tensor:
    """Run blocks ``start..L−1`` from ``hidden`` ``[1, seq, d_model]``; return the last block's output."""
    for layer in range(start, arch.n_layers):
        hidden = call_block(arch, inputs, layer, hidden)
    return hidden


class LayerWalker:
    """Visit the layers of one prompt in order, on a model that may be edited between visits.

    Args:
        model: the causal LM (its FF2 weights may change between :meth:`layer` calls).
        arch: ``resolve_arch(model)``.
        input_ids: ``[seq]`` or ``[1, seq]``.
        resume: True — resume from cached hidden states (fast); False — one full forward per layer.

    Call ``layer(l)`` for l = 0, 1, … in order, then ``commit(l, edited)`` once layer l's edit (if any) is in the
    weights. Values are bit-identical between the two modes.
    """

    def __init__(self, model: nn.Module, arch: ModelArch, input_ids: torch.Tensor, *, resume: bool = True):
        self.model, self.arch, self.resume = model, arch, resume
        self.ids = input_ids.reshape(1, -1)
        self.forward_blocks = 0  # block calls made, for the speed comparison
        self._pos = 0
        self._out: torch.Tensor | None = None
        self._committed: list[torch.Tensor] = []
        if resume:
            self._inputs = record_block_inputs(model, arch, self.ids)
            self._hidden = self._inputs.hidden[0]
            self.forward_blocks += arch.n_layers

    def initial_streams(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(resume only) Return the model's logits ``[V]`` and every layer's residual ``[L, d_model]`` at the last
        position, as they were before any edit of this walk — from the forward that recorded the block inputs."""
        if not self.resume:
            raise ValueError("initial_streams needs a resuming walker (resume=True): a naive walk records nothing")
        inp = self._inputs
        resid = [h[0, -1] for h in inp.hidden[1:]] + [inp.output[0, -1]]
        return inp.logits, torch.stack(resid)

    def final_residuals(self) -> torch.Tensor:
        """(resume only, after the last commit) Every layer's residual ``[L, d_model]`` at the last position on
        the current weights: layer l's committed output depends only on layers ≤ l, none of which changed after
        its commit, so these equal a fresh forward's (bit-identical, like every resumed value)."""
        if not self.resume:
            raise ValueError("final_residuals needs a resuming walker (resume=True): a naive walk keeps nothing")
        if len(self._committed) != self.arch.n_layers:
            raise ValueError(f"final_residuals needs all {self.arch.n_layers} layers committed, "
                             f"got {len(self._committed)}")
        return torch.stack(self._committed)

    @torch.no_grad()
    def layer(self, layer: int) -> LayerActs:
        """Return layer ``layer``'s streams at the last position on the current weights."""
        if layer != self._pos:
            raise ValueError(f"layers must be visited in order: expected {self._pos}, got {layer}")
        if not self.resume:
            cap = capture_activations(self.model, self.arch, self.ids, layers=[layer])
            self.forward_blocks += self.arch.n_layers
            return LayerActs(*(getattr(cap, s)[0, 0, 0] for s in
                               ("resid_pre", "resid_post", "attn_out", "mlp_out", "neuron_act")))
        store: dict[str, torch.Tensor] = {}

        def keep(name):
            def hook(module, args, output):
                store[name] = first(output)[0, -1]
            return hook

        def keep_pre(module, args, kwargs):
            store["neuron_act"] = (args[0] if args else kwargs["input"])[0, -1]

        regs = [(self.arch.sub(layer, self.arch.spec.attn), "forward", keep("attn_out")),
                (self.arch.sub(layer, self.arch.spec.mlp), "forward", keep("mlp_out")),
                (self.arch.mlp_out[layer], "pre", keep_pre)]
        with hooks(regs):
            self._out = call_block(self.arch, self._inputs, layer, self._hidden)
        self.forward_blocks += 1
        return LayerActs(self._hidden[0, -1], self._out[0, -1], store["attn_out"], store["mlp_out"],
                         store["neuron_act"])

    @torch.no_grad()
    def commit(self, layer: int, edited: bool) -> None:
        """Mark layer ``layer`` done; if its weights were ``edited``, recompute its output once."""
        if layer != self._pos:
            raise ValueError(f"commit({layer}) does not match the visited layer {self._pos}")
        if self.resume:
            if edited:
                self._out = call_block(self.arch, self._inputs, layer, self._hidden)
                self.forward_blocks += 1
            self._hidden = self._out
            self._committed.append(self._out[0, -1].clone())  # not a view: the full output can be freed
        self._pos += 1
