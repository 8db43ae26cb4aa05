"""A reported figure, and the one way every figure is printed (Markdown, HTML, cards, terminal tables).

Numbers: rounded to SIG = 3 significant figures in positional notation, never an exponent, and never with a
digit dropped: 359.65 → "360", 500 → "500", 12.345 → "12.3", 0.020 → "0.0200" (trailing zeros are kept:
they are significant). From 10**SIG up a number prints whole, with thousands separators (1,234; 1,234,568),
so it keeps at least SIG significant figures.

Money: the same rule after a "$" (3 significant figures, never an exponent): "$21.0", "$0.0144",
"$0.000257". A money column has one unit for every row, chosen from the column's smallest figure (`Per`):

- per-token columns stay per 1M tokens (the unit price sheets use), whatever their size;
- other columns ($/correct, $/1k requests) count per 1, per 1k or per 1M of their noun: the smallest count
  at which the column's smallest non-zero figure reads at least MONEY_FLOOR ($0.01). $0.000257 and
  $0.0144 per correct answer print as "$0.257" and "$14.4" under "$/1k correct".

Shares (accuracy, attainment, utilization) print as percent with one decimal, as the accuracy intervals in
points beside them; p-values with two significant figures.

A figure whose note starts with "lower bound" prints as "≥x", one whose note starts with "upper bound" as
"≤x" (e.g. a cost read at a search that stopped at its ceiling); JSON keeps the note itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

SIG = 3  # significant figures of every printed number
MONEY_FLOOR = 0.01  # dollars: the smallest figure of a money column reads at least this in its unit
_COUNT_TEXT = {1.0: "", 1e3: "1k ", 1e6: "1M ", 1e9: "1B "}
_BOUNDS = (("lower bound", "≥"), ("upper bound", "≤"))


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


def fmt_number(x: float, sig: int = SIG) -> str:
    """`x` to `sig` significant figures, positional: 1,234 / 360 / 12.3 / 0.0200 / 0.000000460."""
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return str(x)
    exponent = int(f"{x:.{sig - 1}e}".partition("e")[2])  # the power of ten after rounding
    if exponent >= sig - 1:
        return f"{x:,.0f}"
    return f"{x:,.{sig - 1 - exponent}f}"


def fmt_signed(x: float, sig: int = SIG) -> str:
    """A change with its sign: +12.3 / -0.0400 / 0."""
    return ("+" if x > 0 else "") + fmt_number(x, sig)


def fmt_usd(x: float, sig: int = SIG) -> str:
    """Dollars to `sig` significant figures, never an exponent: $1,234 / $21.0 / $0.0144 / $0.000257."""
    return ("-$" if x < 0 else "$") + fmt_number(abs(x), sig)


def fmt_tokens(x: float) -> str:
    """A token count with a unit: 950 / 12.3k / 2.89M / 1.00M / 1.20B."""
    rounded = float(f"{x:.{SIG - 1}e}")
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(rounded) >= size:
            return f"{fmt_number(rounded / size)}{unit}"
    return f"{x:,.0f}"


@dataclass(frozen=True, slots=True)
class Per:
    """The unit of a money figure: dollars per `count` `noun`s; the stored figure is per `base` of them."""

    noun: str  # short, for a column heading: "correct", "req", "out"
    words: str  # for a sentence, singular: "correct answer", "request", "output token"
    base: float = 1.0  # the stored figure is dollars per this many
    counts: tuple[float, ...] = (1.0,)  # the counts a column may choose from
    count: float | None = None  # the count shown (None: the first of `counts`)

    @property
    def shown(self) -> float:
        return self.counts[0] if self.count is None else self.count

    def of(self, usd: float) -> float:
        """A stored figure in this unit."""
        return usd * self.shown / self.base

    @property
    def heading(self) -> str:
        """'$/1k correct', '$/1M out', '$/correct'."""
        return f"$/{_COUNT_TEXT[self.shown]}{self.noun}"

    @property
    def phrase(self) -> str:
        """'per 1k correct answers', 'per correct answer'."""
        count = self.shown
        return f"per {self.words}" if count == 1 else f"per {_COUNT_TEXT[count]}{self.words}s"


def per_column(unit: Per, values: Iterable[float | None]) -> Per:
    """`unit` with the smallest allowed count at which the column's smallest non-zero figure reads at
    least MONEY_FLOOR dollars (the largest count when none does)."""
    tiny = min((abs(v) for v in values if v), default=None)
    if tiny is None:
        return replace(unit, count=unit.counts[0])
    for count in unit.counts:
        if tiny * count / unit.base >= MONEY_FLOOR:
            return replace(unit, count=count)
    return replace(unit, count=unit.counts[-1])


PER_1M_OUTPUT = Per("out", "output token", base=1e6, counts=(1e6,))
PER_1M_BLENDED = Per("blended", "blended token", base=1e6, counts=(1e6,))
PER_1K_REQUESTS = Per("req", "request", base=1e3, counts=(1e3, 1e6))
PER_CORRECT = Per("correct", "correct answer", base=1.0, counts=(1.0, 1e3, 1e6))


def bound_mark(note: str | None) -> str:
    """'≥' for a lower bound, '≤' for an upper bound, '' otherwise."""
    for prefix, mark in _BOUNDS:
        if note and note.startswith(prefix):
            return mark
    return ""


def show(v: Value, kind: str = "number", per: Per | None = None, *, na_text: str = "n/a") -> str:
    """Text for a cell: the formatted number (money in `per`'s unit), or 'n/a: reason'."""
    if v.value is None:
        return f"{na_text}: {v.reason}" if v.reason else na_text
    if kind == "usd":
        text = fmt_usd(v.value if per is None else per.of(v.value))
    elif kind == "pct":
        text = f"{100 * v.value:.1f}%"
    else:  # "number" and "ms": the same significant figures
        text = fmt_number(v.value)
    return bound_mark(v.note) + text
