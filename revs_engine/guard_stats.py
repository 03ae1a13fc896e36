"""What an erase needs from the retain guard, computed in one streaming pass in memory that does not grow with it.

Offers :class:`OverlapQuery` (a secret's candidate target positions), :class:`GuardStats` (the statistics, with
:meth:`~GuardStats.covariance`, :meth:`~GuardStats.collateral` and :meth:`~GuardStats.overlap`),
:func:`guard_statistics` (the pass), :func:`query_activations` and :func:`stats_bytes` (the memory it takes).

Per layer, over every guarded position (:func:`revs_engine.guard.guarded_rows`) of the unedited model:

- ``covariance``: ``AᵀA / m`` of the FF2 input activations ``[d_ff, d_ff]`` (the guard projection,
  :mod:`revs_engine.guard_projection`), a running float32 sum of each batch's ``AᵀA``; with a value weight ``w``,
  ``C_all + w·C_values`` (the value positions' own average added), and the unweighted diagonal kept beside it;
- ``collateral``: the largest |activation| of each neuron over the positions whose next token is ``t``, for every
  token ``t`` an edit may target (the secrets' tokens, known up front), and over all positions (contrast scoring,
  :func:`revs_engine.select.contrast_scores`);
- ``overlap``: for each query position (a secret's eligible target positions, also known up front), the largest
  cosine similarity between its FF2 activation and any guarded position's (the ``distinct`` position rule,
  :mod:`revs_engine.positions`); the queries' activations are computed first, then the guard streams past them.

Memory: ``n_layers·d_ff²·4`` bytes for the covariance, ``n_layers·(tokens + 1)·d_ff·4`` for the collateral and
``n_layers·queries·(d_ff + 1)·4`` for the overlap, plus one batch's activations of one layer at a time (the FF2
hooks update the statistics during the forward pass and keep nothing): nothing proportional to the number of
guarded positions. :func:`stats_bytes` computes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch

from revs_engine.arch import ModelArch
from revs_engine.capture import capture_activations, hooks, last_logits_only, model_forward
from revs_engine.guard import RetainGuard, guarded_rows

#: Widest MLP whose per-layer covariance stays on the model's device. Above it (Llama-3-8B's 14336: 822 MB a
#: layer, 26 GB for 32 layers) each batch's ``AᵀA`` is added into a float32 sum in host memory, so that an
#: accelerator's memory holds the model and one batch; on a CPU-only run the two are the same place.
COVARIANCE_MAX_DFF = 4096


@dataclass(frozen=True)
class OverlapQuery:
    """Positions of one secret whose overlap with the guard is wanted: ``secret_ids[p]`` for ``p`` in
    ``positions``, each predicted from ``prompt_ids + secret_ids[:p]``."""

    prompt_ids: tuple[int, ...] = field(repr=False)
    secret_ids: tuple[int, ...] = field(repr=False)
    positions: tuple[int, ...] = ()


@dataclass(frozen=True)
class GuardStats:
    """The guard's running statistics (module docstring); build with :func:`guard_statistics`.

    Attributes:
        n_positions: guarded positions streamed (``m``).
        tokens: the next tokens whose collateral is tracked.
        query_positions: each :class:`OverlapQuery`'s positions, in order (to check a reused object fits).
    """

    n_positions: int
    tokens: frozenset[int]
    query_positions: tuple[tuple[int, ...], ...]
    value_weight: float = 0.0
    _cov: tuple[torch.Tensor, ...] | None = field(default=None, repr=False)
    _coll_all: torch.Tensor | None = field(default=None, repr=False)  # [L, d_ff]
    _coll_tok: dict[int, torch.Tensor] = field(default_factory=dict, repr=False)  # token -> [L, d_ff]
    _overlap: tuple[torch.Tensor, ...] = field(default=(), repr=False)  # per query [n]
    _plain_var: torch.Tensor | None = field(default=None, repr=False)  # [L, d_ff], with a value weight only

    @property
    def has_covariance(self) -> bool:
        """Whether the covariance was accumulated."""
        return self._cov is not None

    @property
    def has_collateral(self) -> bool:
        """Whether the collateral maxima were tracked."""
        return self._coll_all is not None

    def covariance(self, layer: int) -> torch.Tensor:
        """Return ``AᵀA / m`` ``[d_ff, d_ff]`` (float32) of ``layer`` over the guarded positions (on the model's
        device, or in host memory above :data:`COVARIANCE_MAX_DFF`)."""
        if self._cov is None:
            raise ValueError("these guard statistics hold no covariance: build them with covariance=True")
        return self._cov[layer]

    def plain_variance(self, layer: int) -> torch.Tensor:
        """Return ``[d_ff]``: each neuron's mean squared activation over every guarded position, unweighted (the
        diagonal of the covariance without the value weight; the guard projection's ridge is scaled by it, so
        that the weight adds protection of the values without loosening the rest)."""
        if self._cov is None:
            raise ValueError("these guard statistics hold no covariance: build them with covariance=True")
        return torch.diagonal(self._cov[layer]) if self._plain_var is None else self._plain_var[layer]

    def collateral(self, layer: int, token_id: int | None = None) -> torch.Tensor:
        """Return ``[d_ff]``: the largest |activation| of each neuron at ``layer`` over the guarded positions that
        predict ``token_id`` (where demoting it would break a retained prediction); over all positions when
        ``token_id`` is None or no position predicts it.

        Raises:
            ValueError: no collateral was tracked, or ``token_id`` was not among the tracked tokens.
        """
        if self._coll_all is None:
            raise ValueError("these guard statistics hold no collateral: build them with collateral=True")
        if token_id is None:
            return self._coll_all[layer]
        if token_id not in self.tokens:
            raise ValueError(f"token {token_id} was not tracked by these guard statistics: pass every token an "
                             "edit may target in guard_statistics(tokens=...)")
        hit = self._coll_tok.get(token_id)
        return self._coll_all[layer] if hit is None else hit[layer]

    def overlap(self, query: int) -> torch.Tensor:
        """Return ``[n]`` (CPU): for each position of query ``query``, the mean over layers of the largest cosine
        similarity between its FF2 activation and any guarded position's (1 = an identical context)."""
        return self._overlap[query]

    def check(self, *, covariance: bool = False, collateral: bool = False, tokens: Iterable[int] = (),
              query_positions: Sequence[Sequence[int]] | None = None, value_weight: float | None = None) -> None:
        """Raise ValueError unless these statistics hold what an edit needs (reused objects must fit)."""
        wanted = (("covariance", covariance, self.has_covariance), ("collateral", collateral, self.has_collateral))
        missing = [name for name, need, has in wanted if need and not has]
        if covariance and value_weight is not None and value_weight != self.value_weight:
            missing.append(f"a covariance with value weight {value_weight} (it has {self.value_weight})")
        untracked = sorted(set(tokens) - self.tokens) if collateral else []
        if untracked:
            missing.append(f"collateral of {len(untracked)} target token(s)")
        if query_positions is not None and tuple(map(tuple, query_positions)) != self.query_positions:
            missing.append("the overlap of these secrets' eligible positions")
        if missing:
            raise ValueError(f"the guard statistics passed in lack {', '.join(missing)}: compute them for this "
                             "erase (revs_engine.erase.guard_stats_for) or let erase compute them")


def stats_bytes(arch: ModelArch, *, covariance: bool = True, n_tokens: int = 0, n_query: int = 0) -> int:
    """Return the bytes :func:`guard_statistics` keeps for ``arch`` (whatever the number of guarded positions)."""
    d_ff = arch.d_ff
    per_layer = (d_ff * d_ff if covariance else 0) + (n_tokens + 1) * d_ff + n_query * (d_ff + 1)
    return 4 * arch.n_layers * per_layer


@torch.no_grad()
def query_activations(model: torch.nn.Module, arch: ModelArch, query: OverlapQuery) -> torch.Tensor:
    """Return the unit-normalized FF2 activations ``[n_layers, n, d_ff]`` (float32) that predict each of
    ``query.positions`` (one forward pass)."""
    if not query.positions:
        return torch.zeros(arch.n_layers, 0, arch.d_ff, device=arch.unembed.weight.device)
    device = arch.unembed.weight.device
    ids = torch.tensor(list(query.prompt_ids) + list(query.secret_ids), dtype=torch.long, device=device)[None]
    at = torch.tensor([len(query.prompt_ids) - 1 + p for p in query.positions], dtype=torch.long,
                      device=device)[None]
    acts = capture_activations(model, arch, ids, positions=at).neuron_act[0]  # [n, L, d_ff]
    return torch.nn.functional.normalize(acts.transpose(0, 1).float(), dim=-1)


class _Accumulator:
    """The running statistics of one pass (see :func:`guard_statistics`)."""

    def __init__(self, arch: ModelArch, device: torch.device, covariance: bool, collateral: bool,
                 tokens: list[int], queries: torch.Tensor | None, weighted: bool = False) -> None:
        L, d_ff = arch.n_layers, arch.d_ff
        self.cov_device = device if d_ff <= COVARIANCE_MAX_DFF else torch.device("cpu")
        self.cov = [torch.zeros(d_ff, d_ff, device=self.cov_device) for _ in range(L)] if covariance else None
        self.plain_var = torch.zeros(L, d_ff, device=device) if covariance and weighted else None
        self.coll_all = torch.zeros(L, d_ff, device=device) if collateral else None
        self.tokens = tokens if collateral else []
        self.coll_tok = torch.zeros(len(self.tokens), L, d_ff, device=device)
        self.seen = torch.zeros(len(self.tokens), dtype=torch.bool)
        self.queries = queries  # [L, n_query, d_ff] unit rows, or None
        self.best = None if queries is None else torch.full(queries.shape[:2], -torch.inf, device=device)
        self.masks: list[torch.Tensor] = []  # per tracked token: [n_valid] bool of the current batch

    def batch(self, next_ids: torch.Tensor) -> None:
        """Start a batch whose guarded positions predict ``next_ids`` ``[n_valid]``."""
        self.masks = [next_ids == t for t in self.tokens]
        for k, m in enumerate(self.masks):
            self.seen[k] |= bool(m.any())

    def layer(self, layer: int, a: torch.Tensor, scale: torch.Tensor | None = None) -> None:
        """Add one batch's activations ``[n_valid, d_ff]`` (float32) at ``layer``; ``scale`` ``[n_valid]``
        multiplies each position's activations in the covariance only (the square root of its weight)."""
        if self.cov is not None:
            w = a if scale is None else a * scale[:, None]
            self.cov[layer] += (w.T @ w).to(self.cov_device)
            if self.plain_var is not None:
                self.plain_var[layer] += (a * a).sum(0)
        if self.coll_all is not None:
            mag = a.abs()
            torch.maximum(self.coll_all[layer], mag.amax(0), out=self.coll_all[layer])
            for k, m in enumerate(self.masks):
                if m.any():
                    torch.maximum(self.coll_tok[k, layer], mag[m].amax(0), out=self.coll_tok[k, layer])
        if self.queries is not None and self.queries.shape[1]:
            g = torch.nn.functional.normalize(a, dim=-1)
            torch.maximum(self.best[layer], (self.queries[layer] @ g.T).amax(-1), out=self.best[layer])


@torch.no_grad()
def guard_statistics(model: torch.nn.Module, arch: ModelArch, guard: RetainGuard, *, covariance: bool = True,
                     collateral: bool = True, tokens: Iterable[int] = (), queries: Sequence[OverlapQuery] = (),
                     batch_size: int = 16, pad_id: int = 0, value_weight: float = 0.0) -> GuardStats:
    """Stream the guard through the (unedited) model once and return its :class:`GuardStats`.

    Args:
        covariance / collateral: which statistics to keep (module docstring).
        value_weight: ``w`` ≥ 0: the covariance becomes ``C_all + w·C_values``, where ``C_values`` is ``AᵀA``
            averaged over the value positions alone (the retained items' and look-alikes' target positions) and
            ``C_all`` over every guarded position as before. Without it a few hundred digit positions of other
            people's values are averaged with thousands of benign-text positions, and the guard projection barely
            sees them. 0 keeps the plain average.
        tokens: the next tokens whose collateral is tracked (every token an edit may target).
        queries: the secrets' positions whose overlap with the guard is wanted.
        batch_size, pad_id: guarded sequences per forward pass (right-padded with ``pad_id``).

    Raises:
        ValueError: the guard is empty.
    """
    rows = guarded_rows(guard)
    if not rows:
        raise ValueError("the retain guard is empty")
    if value_weight < 0:
        raise ValueError(f"value_weight must be ≥ 0, got {value_weight}")
    device = arch.unembed.weight.device
    scales = _value_scales(rows, len(guard.items) + len(guard.lookalikes), value_weight)
    queries = list(queries)
    q = [query_activations(model, arch, query) for query in queries]
    acc = _Accumulator(arch, device, covariance, collateral, sorted(set(tokens)), torch.cat(q, 1) if q else None,
                       weighted=any(s != 1.0 for s in scales))
    m = 0
    for start in range(0, len(rows), batch_size):
        m += _stream_batch(model, arch, acc, rows[start:start + batch_size], pad_id,
                           scales[start:start + batch_size])
    cov = None if acc.cov is None else tuple(c / max(m, 1) for c in acc.cov)
    coll_tok = {t: acc.coll_tok[k] for k, t in enumerate(acc.tokens) if acc.seen[k]}
    overlap: list[torch.Tensor] = []
    if acc.best is not None:
        start = 0
        for part in q:
            n = part.shape[1]
            overlap.append(acc.best[:, start:start + n].contiguous().mean(0).cpu())
            start += n
    plain_var = None if acc.plain_var is None else acc.plain_var / max(m, 1)
    return GuardStats(m, frozenset(acc.tokens), tuple(tuple(query.positions) for query in queries),
                      float(value_weight), cov, acc.coll_all, coll_tok, tuple(overlap), plain_var)


def _value_scales(rows: list[tuple[list[int], list[int]]], n_value_rows: int, value_weight: float) -> list[float]:
    """Per guarded row, the factor its activations take in the covariance: ``√(1 + w·m/m_v)`` for the first
    ``n_value_rows`` rows (``m`` positions in all, ``m_v`` of them value positions), 1 for the rest — so that
    ``Σ (s·a)(s·a)ᵀ / m = C_all + w·C_values``."""
    m = sum(len(p) for _, p in rows)
    m_v = sum(len(p) for _, p in rows[:n_value_rows])
    if value_weight == 0 or m_v == 0:
        return [1.0] * len(rows)
    s = (1.0 + value_weight * m / m_v) ** 0.5
    return [s] * n_value_rows + [1.0] * (len(rows) - n_value_rows)


def _stream_batch(model: torch.nn.Module, arch: ModelArch, acc: _Accumulator,
                  chunk: list[tuple[list[int], list[int]]], pad_id: int, scales: list[float]) -> int:
    """Run one right-padded batch of guarded rows; the FF2 hooks add each layer's activations at the guarded
    positions to ``acc`` during the pass (each row's scaled by its factor in ``scales`` in the covariance).
    Return the number of guarded positions."""
    device = arch.unembed.weight.device
    width = max(len(ids) for ids, _ in chunk)
    n_pos = max(len(p) for _, p in chunk)
    ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    pos = torch.zeros((len(chunk), n_pos), dtype=torch.long)
    valid = torch.zeros((len(chunk), n_pos), dtype=torch.bool)
    for r, (seq, p) in enumerate(chunk):
        ids[r, :len(seq)] = torch.tensor(seq)
        mask[r, :len(seq)] = 1
        pos[r, :len(p)] = torch.tensor(p)
        valid[r, :len(p)] = True
    acc.batch(ids.gather(1, (pos + 1).clamp(max=width - 1))[valid].to(device))
    rows = torch.arange(len(chunk), device=device).unsqueeze(1)
    pos, valid = pos.to(device), valid.to(device)
    scale = None if all(s == 1.0 for s in scales) else \
        torch.tensor(scales, device=device).unsqueeze(1).expand(-1, n_pos)[valid]

    def ff2_pre(layer):
        def hook(module, args, kwargs):
            x = args[0] if args else kwargs["input"]
            acc.layer(layer, x[rows, pos][valid].float(), scale)
        return hook

    with hooks([(arch.mlp_out[layer], "pre", ff2_pre(layer)) for layer in range(arch.n_layers)]):
        model_forward(model, ids.to(device), mask.to(device), **last_logits_only(model))
    return int(valid.sum())
