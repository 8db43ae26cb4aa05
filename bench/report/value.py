"""A reported figure: a number, or "n/a" with the reason it is missing (never a silent 0)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Value:
    """A number with its unit, or None with the reason; `note` qualifies a number (e.g. a lower bound)."""

    value: float | None
    reason: str | None = None
    note: str | None = None

    @property
    def known(self) -> bool:
        return self.value is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value}
        if self.value is None:
            out["na"] = self.reason or "not measured"
        if self.note:
            out["note"] = self.note
        return out


def known(value: float | None, note: str | None = None, *, reason: str = "not measured") -> Value:
    """A Value from a number that may be missing (None or NaN reads as n/a with `reason`)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Value(None, reason)
    return Value(float(value), None, note)


def na(reason: str) -> Value:
    """A missing figure and why."""
    return Value(None, reason)


def fmt_number(x: float, digits: int = 3) -> str:
    """A compact number: 1,234 / 12.3 / 0.0456 / 4.6e-07."""
    if x == 0:
        return "0"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 1:
        return f"{x:.{max(0, digits - len(str(int(ax))))}f}".rstrip("0").rstrip(".") or "0"
    if ax >= 1e-3:
        return f"{x:.{digits}g}"
    return f"{x:.2e}"


def fmt_tokens(x: float) -> str:
    """A token count with a unit: 950 / 12.3k / 2.89M / 1.2B."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.3g}{unit}"
    return f"{x:.0f}"


def fmt_usd(x: float) -> str:
    """Dollars with enough digits for tiny per-token figures: $12.30, $0.0456, $4.6e-07."""
    if abs(x) >= 100:
        return f"${x:,.0f}"
    if abs(x) >= 1:
        return f"${x:,.2f}"
    if abs(x) >= 0.1:
        return f"${x:.3f}"
    return "$" + fmt_number(x)


def show(v: Value, kind: str = "number", *, na_text: str = "n/a") -> str:
    """Text for a cell: the formatted number, or 'n/a: reason'."""
    if v.value is None:
        return f"{na_text}: {v.reason}" if v.reason else na_text
    if kind == "usd":
        text = fmt_usd(v.value)
    elif kind == "pct":
        text = f"{100 * v.value:.1f}%"
    elif kind == "ms":
        text = f"{v.value:,.0f}" if abs(v.value) >= 100 else f"{v.value:.1f}"
    else:
        text = fmt_number(v.value)
    return ("≥" + text) if v.note == "lower bound" else text
