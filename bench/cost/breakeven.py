"""Break-even between a self-hosted option and an API: the monthly volume above which self-hosting is cheaper.

Volumes are output tokens per month of one workload (its input tokens ride along: the API's price per
output token includes them, the box's throughput was measured with them). Self-hosting is stepwise: one
replica serves up to K tokens a month (its operating-point throughput × 730 h) and costs C = $/hour × 730;
n replicas serve up to nK. An API costs p per token, linearly.

- The first break-even is T₁ = C/p, where one replica costs what the API would; it exists only when
  pK ≥ C, i.e. when a fully busy replica is cheaper per token than the API (the break-even utilization
  u = C/(pK) = the box's allocation price ÷ the API's price is at most 1).
- Just after each new replica is added, the API can be cheaper again (n replicas at T slightly above
  (n−1)K cost nC > pT when nC/p > (n−1)K). That happens for every n < 1/(1−u); the volume above which
  self-hosting is always at least as cheap is n_last·C/p for the last such n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.cost.selfhosted import HOURS_PER_MONTH, PER_1M, SECONDS_PER_HOUR

_EPS = 1e-12


def monthly_capacity(tokens_per_s: float) -> float:
    """Tokens one replica produces in a month at `tokens_per_s`."""
    return tokens_per_s * SECONDS_PER_HOUR * HOURS_PER_MONTH


def replicas_for(monthly_tokens: float, tokens_per_s: float) -> int:
    """Whole replicas needed for a monthly volume (0 for no traffic)."""
    if monthly_tokens <= 0:
        return 0
    return max(1, math.ceil(monthly_tokens / monthly_capacity(tokens_per_s) - _EPS))


def selfhosted_monthly_usd(monthly_tokens: float, usd_per_hour: float, tokens_per_s: float) -> float:
    """USD a month for enough whole replicas to serve the volume (each paid every hour)."""
    return replicas_for(monthly_tokens, tokens_per_s) * usd_per_hour * HOURS_PER_MONTH


def api_monthly_usd(monthly_tokens: float, usd_per_1m: float) -> float:
    """USD a month at an API's price per 1M (output) tokens."""
    return monthly_tokens * usd_per_1m / PER_1M


@dataclass(frozen=True, slots=True)
class BreakEven:
    """Where a self-hosted option becomes cheaper than an API (volumes in output tokens per month)."""

    volume: float | None  # first volume at which one replica costs what the API would; None: never
    utilization: float  # u = C/(pK): the share of one replica's capacity at the first break-even
    always_above: float | None  # above this, self-hosting is never dearer; None when never
    replicas_at_always: int | None  # replicas serving the volume `always_above`
    capacity: float  # one replica's monthly capacity K
    monthly_usd_per_replica: float  # C
    reason: str | None = None  # why there is no break-even

    def to_json(self) -> dict[str, float | int | str | None]:
        return {
            "volume_tokens_per_month": self.volume,
            "utilization": self.utilization,
            "always_cheaper_above_tokens_per_month": self.always_above,
            "replicas_at_always": self.replicas_at_always,
            "replica_capacity_tokens_per_month": self.capacity,
            "usd_per_replica_month": self.monthly_usd_per_replica,
            "reason": self.reason,
        }


def break_even(usd_per_hour: float, tokens_per_s: float, api_usd_per_1m: float) -> BreakEven:
    """Break-even of a box ($/hour, output tokens/s at the operating point) against an API ($/1M output)."""
    if not tokens_per_s > 0:
        raise ValueError(f"tokens/s at the operating point must be positive, not {tokens_per_s!r}")
    capacity = monthly_capacity(tokens_per_s)
    per_replica = usd_per_hour * HOURS_PER_MONTH
    p = api_usd_per_1m / PER_1M
    if p <= 0:
        return BreakEven(None, math.inf, None, None, capacity, per_replica, "the API is free")
    u = per_replica / (p * capacity)
    if u > 1 + _EPS:
        reason = (
            f"a fully busy replica costs {u:.2f}× the API per token: self-hosting is dearer at any volume"
        )
        return BreakEven(None, u, None, None, capacity, per_replica, reason)
    first = per_replica / p
    if u >= 1 - _EPS:
        # Each new replica is paid in full before it is busy: the API wins just after every step.
        return BreakEven(first, u, None, None, capacity, per_replica, "break-even only at full replicas")
    n_last = max(1, math.ceil(1 / (1 - u) - _EPS) - 1)
    return BreakEven(first, u, n_last * first, n_last, capacity, per_replica)
