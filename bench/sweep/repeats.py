"""Figures over a sweep's repetitions: the mean and its 95% Student-t interval, per point and load step.

A repetition is the same load step run again against the same server (fresh prompts, prefix cache reset).
The interval says how much a figure moves between repeats on this machine; with one repetition there is
none, and it is shown as n/a rather than as a zero-width interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bench.stats import t95

FIGURES = ("output_tokens_per_s", "requests_per_s", "goodput_requests_per_s")


def mean_ci(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample standard deviation and 95% t-interval of the mean (n/a below two values)."""
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "ci95": None, "na": "no value measured"}
    mean = math.fsum(values) / n
    if n == 1:
        return {"n": 1, "mean": mean, "std": None, "ci95": None, "na": "one repetition: no interval"}
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t95(n - 1) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci95": [mean - half, mean + half]}


def repeat_figures(summaries: Sequence[dict[str, Any]], ttft_key: str = "p50") -> dict[str, Any]:
    """Each figure of `summaries` (one load summary per repetition) as mean ± 95% CI."""
    out: dict[str, Any] = {}
    for key in FIGURES:
        out[key] = mean_ci([s[key] for s in summaries if s.get(key) is not None])
    out[f"ttft_{ttft_key}_ms"] = mean_ci(
        [s["ttft_ms"][ttft_key] for s in summaries if (s.get("ttft_ms") or {}).get(ttft_key) is not None]
    )
    return out
