"""SVG plots of an audit report (self-contained, no scripts): per-layer target rank and attack scores.

Offers :func:`rank_plot_svg` (per-layer target rank before/after, log-scaled line plot) and :func:`attack_bars_svg`
(attack scores after the edit vs their thresholds). Every label is XML-escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

_W, _H = 560, 280
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 60, 110, 20, 40
_BEFORE, _AFTER, _THRESH, _FAIL, _PASS = "#1f77b4", "#d62728", "#222222", "#d62728", "#2ca02c"

def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def _axes(y_ticks: Sequence[tuple[float, str]], x_ticks: Sequence[tuple[float, str]], x_label: str,
          y_label: str) -> list[str]:
    x0, y0, x1, y1 = _PAD_L, _H - _PAD_B, _W - _PAD_R, _PAD_T
    parts = [f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#444"/>',
             f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#444"/>']
    for y, label in y_ticks:
        parts.append(f'<line x1="{x0 - 4}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{x0 - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{escape(label)}</text>')
    for x, label in x_ticks:
        parts.append(f'<text x="{x:.1f}" y="{y0 + 16}" font-size="11" text-anchor="middle">{escape(label)}</text>')
    parts.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{_H - 6}" font-size="12" text-anchor="middle">'
                 f'{escape(x_label)}</text>')
    parts.append(f'<text x="14" y="{(y0 + y1) / 2:.1f}" font-size="12" text-anchor="middle" '
                 f'transform="rotate(-90 14 {(y0 + y1) / 2:.1f})">{escape(y_label)}</text>')
    return parts


def _svg(parts: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" '
            f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(parts)}</svg>')


def rank_plot_svg(before: Sequence[float], after: Sequence[float]) -> str:
    """Draw the target token's rank per layer, before and after the edit (log10 rank axis; rank 0 = top)."""
    series = [(name, color, [_num(v) for v in values]) for name, color, values in
              (("before", _BEFORE, before), ("after", _AFTER, after))]
    n_layers = max((len(s[2]) for s in series), default=0)
    ranks = [v for _, _, vals in series for v in vals if v is not None]
    if n_layers == 0 or not ranks:
        return "<p>No per-layer rank data recorded.</p>"
    top = max(1.0, math.ceil(math.log10(max(ranks) + 1)))
    x0, y0, x1, y1 = _PAD_L, _H - _PAD_B, _W - _PAD_R, _PAD_T

    def sx(i: int) -> float:
        return x0 + (x1 - x0) * (i / max(n_layers - 1, 1))

    def sy(rank: float) -> float:
        return y0 - (y0 - y1) * (math.log10(max(rank, 0) + 1) / top)

    y_ticks = [(sy(0), "0")] + [(sy(10 ** e), f"{10 ** e:,}") for e in range(1, int(top) + 1)]
    step = max(1, n_layers // 10)
    parts = _axes(y_ticks, [(sx(i), str(i)) for i in range(0, n_layers, step)], "layer", "target rank (log)")
    for i, (name, color, values) in enumerate(series):
        points = [(sx(j), sy(v)) for j, v in enumerate(values) if v is not None]
        if points:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2.5" points="{path}"/>')
            parts.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in points)
        parts.append(f'<rect x="{x1 + 14}" y="{y1 + 10 + 22 * i}" width="14" height="14" fill="{color}"/>'
                     f'<text x="{x1 + 34}" y="{y1 + 22 + 22 * i}" font-size="12">{name}</text>')
    return _svg(parts, "Per-layer target rank before and after the edit")


def attack_bars_svg(attacks: Sequence[Mapping[str, Any]]) -> str:
    """Draw one bar per attack (score after the edit, percent) with its threshold as a dashed line.

    A bar is green when the score is at or above its threshold (the attack failed to extract), red otherwise.
    """
    rows = [(str(a.get("name", "?")), _num(a.get("score")), _num(a.get("threshold"))) for a in attacks]
    rows = [r for r in rows if r[1] is not None]
    if not rows:
        return "<p>No attack scores recorded.</p>"
    top = max(100.0, *(s for _, s, _ in rows), *(t for _, _, t in rows if t is not None))
    x0, y0, x1, y1 = _PAD_L, _H - _PAD_B, _W - _PAD_R, _PAD_T
    slot = (x1 - x0) / len(rows)

    def sy(v: float) -> float:
        return y0 - (y0 - y1) * (v / top)

    parts = _axes([(sy(v), f"{v:g}") for v in (0, 25, 50, 75, 100)],
                  [(x0 + slot * (i + 0.5), name) for i, (name, _, _) in enumerate(rows)], "attack", "score (%)")
    for i, (_name, score, threshold) in enumerate(rows):
        bx = x0 + slot * i + slot * 0.2
        color = _PASS if threshold is None or score >= threshold else _FAIL
        parts.append(f'<rect x="{bx:.1f}" y="{sy(score):.1f}" width="{slot * 0.6:.1f}" '
                     f'height="{y0 - sy(score):.1f}" fill="{color}"/>')
        if threshold is not None:
            parts.append(f'<line x1="{bx - 4:.1f}" y1="{sy(threshold):.1f}" x2="{bx + slot * 0.6 + 4:.1f}" '
                         f'y2="{sy(threshold):.1f}" stroke="{_THRESH}" stroke-width="2" stroke-dasharray="6,3"/>')
    parts.append(f'<line x1="{x1 + 10}" y1="{y1 + 17}" x2="{x1 + 28}" y2="{y1 + 17}" stroke="{_THRESH}" '
                 f'stroke-width="2" stroke-dasharray="6,3"/><text x="{x1 + 34}" y="{y1 + 21}" font-size="12">'
                 "threshold</text>")
    return _svg(parts, "Attack scores after the edit versus thresholds")
