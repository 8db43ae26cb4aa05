"""Thresholds on a signal's scores: the candidates a training fold chooses from, and the threshold that
sends a given share of items to the strong model. An item goes to the strong model when its score is at
least the threshold; `math.inf` means never (but for the fallback)."""

from __future__ import annotations

import math
from collections.abc import Iterable

MAX_CANDIDATES = 50


def candidates(scores: Iterable[float | None]) -> list[float]:
    """Every distinct score (at most MAX_CANDIDATES, evenly spread over the sorted scores), and inf."""
    values = sorted({s for s in scores if s is not None})
    if len(values) > MAX_CANDIDATES:
        step = (len(values) - 1) / (MAX_CANDIDATES - 1)
        values = sorted({values[round(i * step)] for i in range(MAX_CANDIDATES)})
    return [*values, math.inf]


def for_share(scores: Iterable[float | None], share: float) -> float:
    """The threshold that sends `share` of the scored items to the strong model (more on tied scores):
    the k-th highest score, k = round(share × n); inf for k = 0."""
    ordered = sorted((s for s in scores if s is not None), reverse=True)
    k = round(share * len(ordered))
    return math.inf if k == 0 else ordered[k - 1]
