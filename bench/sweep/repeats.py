"""Figures over a sweep's repetitions: the mean and its 95% Student-t interval, per point and load step.

A repetition is the same load step run again against the same server (fresh prompts, prefix cache reset).
The interval says how much a figure moves between repeats on this machine; with one repetition there is
none, and it is shown as n/a rather than as a zero-width interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from bench.documents import RepeatFigures
from bench.metrics import RunSummary
from bench.stats import t95


def mean_ci(values: Sequence[float]) -> RepeatFigures:
    """Mean, sample standard deviation and 95% t-interval of the mean (n/a below two values)."""
    n = len(values)
    if n == 0:
        return RepeatFigures(n=0, na="no value measured")
    mean = math.fsum(values) / n
    if n == 1:
        return RepeatFigures(n=1, mean=mean, na="one repetition: no interval")
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t95(n - 1) * std / math.sqrt(n)
    return RepeatFigures(n=n, mean=mean, std=std, ci95=(mean - half, mean + half))


def repeat_figures(summaries: Sequence[RunSummary]) -> dict[str, RepeatFigures]:
    """Each figure of `summaries` (one load summary per repetition) as mean ± 95% CI, TTFT p50 included:
    the figure fields of bench.documents.RepeatStep."""

    def over(values: Sequence[float | None]) -> RepeatFigures:
        return mean_ci([v for v in values if v is not None])

    return {
        "output_tokens_per_s": over([s.output_tokens_per_s for s in summaries]),
        "requests_per_s": over([s.requests_per_s for s in summaries]),
        "goodput_requests_per_s": over([s.goodput_requests_per_s for s in summaries]),
        "ttft_p50_ms": over([s.ttft_ms.p50 for s in summaries]),
    }
