"""Printed figures read back as the stored values: a deterministic sweep over magnitudes 1e-9..1e9, signs and
zero, plus the money rule (3 significant figures, no exponent, one unit per column) and the bound marks."""

from __future__ import annotations

import math
import random

import pytest

from bench.report.value import (
    PER_1K_REQUESTS,
    PER_1M_OUTPUT,
    PER_CORRECT,
    SIG,
    Value,
    fmt_number,
    fmt_tokens,
    fmt_usd,
    per_column,
    show,
)

MANTISSAS = (1.0, 1.0004, 1.005, 1.2345, 1.5, 2.5, 3.5965, 4.05, 4.35, 5.0, 9.994, 9.995, 9.996, 9.9999)


def _sweep() -> list[float]:
    """Every mantissa at each power of ten 1e-9..1e9, both signs, zero, and 3,000 log-uniform draws."""
    values = [m * 10.0**e for e in range(-9, 10) for m in MANTISSAS]
    rng = random.Random(16)
    values += [10 ** rng.uniform(-9, 9.9) for _ in range(3000)]
    values += [359.65, 500.0, 999.6, 100.0, 0.02, 2.57e-4, 0.0144]  # the figures of issue 16
    return [0.0, *values, *(-v for v in values)]


def _digits(text: str) -> str:
    """The significant digits of a printed number: no sign, separator, point or leading zero."""
    return "".join(c for c in text if c.isdigit()).lstrip("0")


def _assert_reads_back(x: float, text: str) -> None:
    assert "e" not in text.lower(), f"{x!r} printed with an exponent: {text}"
    number = text.replace("$", "").replace(",", "")
    got = float(number)
    if x == 0:
        assert got == 0 and text.lstrip("-$") == "0"
        return
    # Within half a unit of the last stated significant figure of x.
    half_unit = 0.5 * 10 ** (math.floor(math.log10(abs(x))) - SIG + 1)
    assert abs(got - x) <= half_unit * (1 + 1e-9), f"{x!r} printed as {text} (reads {got!r})"
    assert math.copysign(1, got) == math.copysign(1, x), f"{x!r} printed as {text}: sign lost"
    assert len(_digits(text)) >= SIG, f"{x!r} printed as {text}: fewer than {SIG} significant figures"


def test_every_printed_number_reads_back_as_the_stored_value() -> None:
    for x in _sweep():
        _assert_reads_back(x, fmt_number(x))


def test_every_printed_dollar_figure_reads_back_and_has_no_exponent() -> None:
    for x in _sweep():
        text = fmt_usd(x)
        assert text.startswith("-$" if x < 0 else "$"), text
        _assert_reads_back(x, text)


def test_the_figures_of_issue_16() -> None:
    # Before: "36", "5", "1", "1" (a real zero dropped), "$2.57e-04", "$4.35e-05", "$0.02", "1e+03k".
    assert [fmt_number(x) for x in (359.65, 500, 999.6, 100)] == ["360", "500", "1,000", "100"]
    assert [fmt_number(x) for x in (1234.5, 12.34, 2.5, 0.02, 0.0456)] == [
        "1,234",
        "12.3",
        "2.50",
        "0.0200",
        "0.0456",
    ]
    assert [fmt_usd(x) for x in (2.57e-4, 0.0144, 4.35e-5, 4.05e-7, 0.02, 21.0, 1234.5)] == [
        "$0.000257",
        "$0.0144",
        "$0.0000435",
        "$0.000000405",
        "$0.0200",
        "$21.0",
        "$1,234",
    ]
    assert [fmt_tokens(x) for x in (950, 12_345, 999_999, 2.894e6, 1.2e9)] == [
        "950",
        "12.3k",
        "1.00M",
        "2.89M",
        "1.20B",
    ]


def test_a_money_column_has_one_unit_chosen_by_its_smallest_figure() -> None:
    # $/correct of $0.000257 and $0.0144: per 1k correct answers, where both read with 3 figures.
    unit = per_column(PER_CORRECT, [2.57e-4, 0.0144, None])
    assert unit.heading == "$/1k correct" and unit.phrase == "per 1k correct answers"
    assert [show(Value(v), "usd", unit) for v in (2.57e-4, 0.0144)] == ["$0.257", "$14.4"]
    # $4.35e-05 against $4.05e-07 read as 4.35 against 4.05 before; per 1M they read $43.5 and $0.405.
    tiny = per_column(PER_CORRECT, [4.35e-5, 4.05e-7])
    assert tiny.heading == "$/1M correct"
    assert [show(Value(v), "usd", tiny) for v in (4.35e-5, 4.05e-7)] == ["$43.5", "$0.405"]
    assert per_column(PER_CORRECT, [0.5, 2.0]).heading == "$/correct"
    assert per_column(PER_CORRECT, [None]).phrase == "per correct answer"
    # Per-request columns start at 1k; per-token columns stay per 1M, whatever their size.
    assert per_column(PER_1K_REQUESTS, [0.5]).heading == "$/1k req"
    assert per_column(PER_1K_REQUESTS, [2e-6]).heading == "$/1M req"
    assert show(Value(2e-6), "usd", per_column(PER_1K_REQUESTS, [2e-6])) == "$0.00200"
    assert per_column(PER_1M_OUTPUT, [0.003, 21.0]).heading == "$/1M out"
    assert show(Value(0.003), "usd", per_column(PER_1M_OUTPUT, [0.003])) == "$0.00300"


@pytest.mark.parametrize(
    ("note", "text"),
    [("lower bound", "≥0.120"), ("upper bound", "≤0.120"), ("upper bound: search at its ceiling", "≤0.120"),
     ("in+out at the measured mix 2:1", "0.120"), (None, "0.120")],
)  # fmt: skip
def test_bounds_are_marked(note: str | None, text: str) -> None:
    assert show(Value(0.12, note=note)) == text
    assert show(Value(0.0091, note=note), "usd") == text.replace("0.120", "$0.00910")
    assert Value(0.0091, note=note).to_json().get("note") == note


def test_missing_figures_print_their_reason() -> None:
    assert show(Value(None, "no load run")) == "n/a: no load run"
    assert show(Value(None)) == "n/a"
