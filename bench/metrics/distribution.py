"""One summary type for every latency: count, mean, std, min, max and percentiles."""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0),
    ("p90", 90.0),
    ("p95", 95.0),
    ("p99", 99.0),
    ("p999", 99.9),
)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) of ascending values by linear interpolation (numpy's default method).

    The rank is h = (n − 1)·q/100; the result is v[⌊h⌋] + (h − ⌊h⌋)·(v[⌊h⌋+1] − v[⌊h⌋]), so p50 of 1..10
    is 5.5 and p90 is 9.1.
    """
    n = len(sorted_values)
    if n == 0:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} is outside 0..100")
    h = (n - 1) * q / 100.0
    lo = math.floor(h)
    if lo >= n - 1:
        return float(sorted_values[-1])
    low, high = float(sorted_values[lo]), float(sorted_values[lo + 1])
    return low + (h - lo) * (high - low)


@dataclass(frozen=True, slots=True)
class Distribution:
    """Summary of a set of values (ms for latencies); all fields but count are None when it is empty.

    `std` is the population standard deviation (ddof = 0, numpy's default). Percentiles use linear
    interpolation between closest ranks (numpy's default "linear" method), see `percentile`.
    """

    count: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    p999: float | None = None

    @classmethod
    def of(cls, values: Iterable[float]) -> Distribution:
        """Summarize `values` (any order); an empty input gives count 0 and None everywhere else."""
        ordered = sorted(values)
        n = len(ordered)
        if n == 0:
            return cls(count=0)
        quantiles = {name: percentile(ordered, q) for name, q in PERCENTILES}
        # Pooled ITL can hold millions of values: one pass of builtins, centred on the median so that
        # E[d²] − E[d]² does not cancel when the spread is tiny next to the values.
        centre = quantiles["p50"]
        shifted = [v - centre for v in ordered]
        mean_d = sum(shifted) / n
        var = max(0.0, sum(map(operator.mul, shifted, shifted)) / n - mean_d * mean_d)
        return cls(
            count=n,
            mean=centre + mean_d,
            std=math.sqrt(var),
            min=float(ordered[0]),
            max=float(ordered[-1]),
            **quantiles,
        )

    def to_json(self) -> dict[str, Any]:
        """Plain dict: count, mean, std, min, max, p50, p90, p95, p99, p999."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Distribution:
        """Inverse of `to_json`."""
        values: dict[str, Any] = {k: data.get(k) for k in cls.__dataclass_fields__}
        return cls(**values)
