"""Formatting helpers shared by the report's HTML sections (every value HTML-escaped).

Offers :func:`fmt` (numbers with units, thousands separators, None as a dash), :func:`e` (fmt, escaped),
:func:`table` (rows of escaped cells), :func:`date` (ISO → ``YYYY-MM-DD HH:MM UTC``), :func:`plural` and
:func:`badge` (PASS / FAIL).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    suffix = f" {unit.strip()}" if unit and unit.strip() else ""
    if isinstance(value, float):
        text = (f"{value:,.0f}" if abs(value) >= 1000 or value.is_integer() else
                f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}")
        return text + suffix
    if isinstance(value, int):
        return f"{value:,}{suffix}"
    if isinstance(value, Mapping | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def e(value: Any, unit: str = "") -> str:
    return escape(fmt(value, unit))


def table(rows: Sequence[Sequence[str]], header: Sequence[str], cls: str = "", num_from: int = 99) -> str:
    """Rows of already-escaped HTML cells; columns from ``num_from`` are right-aligned numbers."""
    def cell(tag: str, i: int, html: str) -> str:
        return f'<{tag}{" class=num" if i >= num_from else ""}>{html}</{tag}>'
    head = "".join(cell("th", i, escape(h)) for i, h in enumerate(header)) if header else ""
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f'<table class="{cls}">' + (f"<tr>{head}</tr>" if head else "") + body + "</table>"


def date(value: Any) -> str:
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(str(value)).astimezone(UTC)
    except ValueError:
        return escape(str(value))
    return escape(moment.strftime("%Y-%m-%d %H:%M UTC"))


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def badge(passed: bool) -> str:
    return f'<span class="badge {"pass" if passed else "fail"}">{"PASS" if passed else "FAIL"}</span>'
