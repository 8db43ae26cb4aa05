"""A compact summary of one answer's token logprobs, kept in an accuracy item's `extra["logprobs"]`.

A low quantile (the 10th percentile by default) is the confidence signal for cascades: the mean is biased by
length, since a long answer's many easy tokens hide its few uncertain ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from bench.metrics.distribution import percentile

EXTRA_KEY = "logprobs"  # the key in ItemRecord.extra
Quantile = Literal["min", "p05", "p10", "p25", "p50", "mean"]
QUANTILES: tuple[Quantile, ...] = ("min", "p05", "p10", "p25", "p50", "mean")
_DIGITS = 4


class LogprobSummary(BaseModel):
    """Token logprobs of one answer (natural log, ≤ 0): count, low quantiles and mean."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int
    min: float
    p05: float
    p10: float
    p25: float
    p50: float
    mean: float

    def value(self, quantile: Quantile) -> float:
        """One of the summary's figures by name."""
        return float(getattr(self, quantile))


def summarize_logprobs(values: Sequence[float]) -> LogprobSummary | None:
    """The summary of an answer's token logprobs (percentiles by linear interpolation); None when empty."""
    if not values:
        return None
    ordered = sorted(values)

    def q(p: float) -> float:
        return round(percentile(ordered, p), _DIGITS)

    return LogprobSummary(
        n=len(ordered),
        min=round(ordered[0], _DIGITS),
        p05=q(5),
        p10=q(10),
        p25=q(25),
        p50=q(50),
        mean=round(sum(ordered) / len(ordered), _DIGITS),
    )
