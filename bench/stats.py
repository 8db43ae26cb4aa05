"""Statistics as pure functions, used by metrics, accuracy, recovery, the report and sweeps.

Wilson intervals for one run's accuracy, paired comparisons for two runs on the same items, and the Student-t
interval of a mean (batch means of a run; a figure over a sweep's repetitions).

The interval of a paired difference (B − A on the same items) is Newcombe's hybrid score interval for paired
proportions (method 10 of Newcombe 1998, "square and add": the Wilson intervals of both marginal shares,
combined with a continuity-corrected correlation ψ). Unlike a bootstrap of the pairs it is never [0, 0]
when no item differs: with 7 of 10 right on both sides it is ±20.0 points. Its p-value is the exact McNemar
test on the discordant pairs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054
# Two-sided 95% Student-t quantiles for 1..30 degrees of freedom (the normal 1.96 beyond).
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042)  # fmt: skip


def t95(df: int) -> float:
    """The two-sided 95% quantile of Student's t with `df` degrees of freedom (df ≥ 1)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, not {df}")
    return _T95[df - 1] if df <= len(_T95) else 1.96


def mean_ci95(values: Sequence[float]) -> tuple[float, float] | None:
    """The 95% t-interval of the mean of `values` (sample std, ddof = 1); None with fewer than two."""
    n = len(values)
    if n < 2:
        return None
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t95(n - 1) * std / math.sqrt(n)
    return (mean - half, mean + half)


@dataclass(frozen=True)
class Proportion:
    """A share of correct answers with its 95% Wilson score interval."""

    correct: int
    n: int
    score: float | None  # None when nothing was scored: no score, not 0%
    ci95: tuple[float, float] | None


def wilson(correct: int, n: int, z: float = Z95) -> Proportion:
    """Accuracy and its Wilson score interval (good at small n and near 0 or 1).

    The bounds always hold the estimate, lo ≤ score ≤ hi, inside [0, 1]: exactly 0 when nothing is right
    and exactly 1 when everything is (rounding would otherwise give, say, 8.7e-19 above a score of 0).
    """
    if n == 0:
        return Proportion(0, 0, None, None)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if correct == 0 else min(p, max(0.0, centre - half))
    hi = 1.0 if correct == n else max(p, min(1.0, centre + half))
    return Proportion(correct, n, p, (lo, hi))


@dataclass(frozen=True)
class PairedComparison:
    """B minus A on the items both runs scored: difference in points, its 95% CI (Newcombe's paired score
    interval), and McNemar's exact p."""

    n: int
    a_score: float
    b_score: float
    diff_points: float
    ci95_points: tuple[float, float]
    a_only: int  # items A got right and B wrong
    b_only: int  # items B got right and A wrong
    p_value: float
    ratio: float | None = None  # B ÷ A score (recovery when B is a quantized A); None when A scores 0
    ratio_ci95: tuple[float, float] | None = None  # paired bootstrap percentile interval of B ÷ A

    def sentence(self, a: str = "A", b: str = "B") -> str:
        """'B is X points below A, 95% CI [lo, hi]' in plain words."""
        lo, hi = self.ci95_points
        d = self.diff_points
        if abs(d) < 0.05:
            rel = f"{b} scores the same as {a}"
        else:
            rel = f"{b} is {abs(d):.1f} points {'below' if d < 0 else 'above'} {a}"
        verdict = "significant" if self.p_value < 0.05 else "not significant"
        return (
            f"{rel} (B−A = {d:+.1f} points, 95% CI [{lo:+.1f}, {hi:+.1f}], McNemar p = {self.p_value:.3g}, "
            f"{verdict} at 5%; n = {self.n} paired items)"
        )


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pair counts (binomial test at 1/2)."""
    k = a_only + b_only
    if k == 0:
        return 1.0
    low = min(a_only, b_only)
    tail: float = sum(math.comb(k, i) for i in range(low + 1)) / 2**k
    return min(1.0, 2 * tail)


def paired_interval(both: int, a_only: int, b_only: int, neither: int, z: float = Z95) -> tuple[float, float]:
    """95% interval of B − A (shares, not points) from the paired 2×2 table: Newcombe's hybrid score
    interval (1998, method 10). `both`: items both got right; `a_only`/`b_only`: right on one side only."""
    n = both + a_only + b_only + neither
    if n == 0:
        raise ValueError("no paired items")
    pa, pb = (both + a_only) / n, (both + b_only) / n
    la, ua = _wilson_bounds(both + a_only, n, z)
    lb, ub = _wilson_bounds(both + b_only, n, z)
    margins = (both + a_only, b_only + neither, both + b_only, a_only + neither)
    psi = 0.0
    if all(margins):
        cross = both * neither - a_only * b_only
        root = math.sqrt(math.prod(margins))
        if cross > n / 2:
            psi = (cross - n / 2) / root
        elif cross < 0:
            psi = cross / root
    d = pb - pa
    down = math.sqrt(max(0.0, (pb - lb) ** 2 + (ua - pa) ** 2 - 2 * psi * (pb - lb) * (ua - pa)))
    up = math.sqrt(max(0.0, (ub - pb) ** 2 + (pa - la) ** 2 - 2 * psi * (ub - pb) * (pa - la)))
    return max(-1.0, d - down), min(1.0, d + up)


def _wilson_bounds(correct: int, n: int, z: float) -> tuple[float, float]:
    ci = wilson(correct, n, z).ci95
    assert ci is not None
    return ci


def paired_compare(
    a: Mapping[str, bool], b: Mapping[str, bool], *, resamples: int = 5000, seed: int = 0
) -> PairedComparison:
    """Compare two runs on their common items: B−A with Newcombe's paired score interval and the exact
    McNemar p; B÷A with a paired bootstrap percentile interval.

    B÷A resamples where A scores 0 count as infinite, so a mostly-zero A gives an open-ended interval rather
    than a wrong one. When no item differs every resample has B÷A = 1, so its interval is [1, 1].
    `resamples=0` skips the bootstrap (no ratio interval).
    """
    common = sorted(set(a) & set(b))
    n = len(common)
    if n == 0:
        raise ValueError("the two runs share no scored items")
    pairs = [(a[i], b[i]) for i in common]
    a_only = sum(1 for x, y in pairs if x and not y)
    b_only = sum(1 for x, y in pairs if y and not x)
    both = sum(1 for x, y in pairs if x and y)
    a_vals = [int(x) for x, _ in pairs]
    b_vals = [int(y) for _, y in pairs]
    diff = 100.0 * (sum(b_vals) - sum(a_vals)) / n
    lo, hi = paired_interval(both, a_only, b_only, n - both - a_only - b_only)
    a_correct = sum(a_vals)
    ratio = sum(b_vals) / a_correct if a_correct else None
    ratio_ci = _ratio_bootstrap(a_vals, b_vals, resamples, seed) if a_correct and resamples > 0 else None
    return PairedComparison(
        n=n,
        a_score=sum(x for x, _ in pairs) / n,
        b_score=sum(y for _, y in pairs) / n,
        diff_points=diff,
        ci95_points=(100.0 * lo, 100.0 * hi),
        a_only=a_only,
        b_only=b_only,
        p_value=mcnemar_exact(a_only, b_only),
        ratio=ratio,
        ratio_ci95=ratio_ci,
    )


def _ratio_bootstrap(a_vals: list[int], b_vals: list[int], resamples: int, seed: int) -> tuple[float, float]:
    """Paired bootstrap percentile interval of ΣB ÷ ΣA over resamples of the item pairs."""
    n = len(a_vals)
    rng = random.Random(seed)
    ratios: list[float] = []
    population = range(n)
    for _ in range(resamples):
        idx = rng.choices(population, k=n)
        sa = sum(map(a_vals.__getitem__, idx))
        sb = sum(map(b_vals.__getitem__, idx))
        ratios.append(sb / sa if sa else math.inf)
    ratios.sort()
    return _quantile(ratios, 0.025), _quantile(ratios, 0.975)


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    if sorted_values[hi] == math.inf or pos == lo:
        return sorted_values[lo] if pos == lo else sorted_values[hi]
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)
