"""Self-hosted cost from a priced hardware profile and the throughput measured at the operating point.

Allocation basis: the box is reserved and paid every hour, and it produces tokens at the operating point's
throughput; USD per 1M tokens = $/hour ÷ (tokens/s × 3600) × 10⁶. This is the figure to hold against an
API's per-token price. Utilization basis: the same box busy only a share U of the time (idle time still
paid), so each token costs 1/U as much again. Throughput is read at the operating point (the highest load
that meets the SLO), never at saturation: that is the caller's job.
"""

from __future__ import annotations

from dataclasses import dataclass

PER_1M = 1_000_000.0
SECONDS_PER_HOUR = 3600.0
HOURS_PER_MONTH = 730.0  # 8,760 hours a year ÷ 12


def _check_rate(tokens_per_s: float, what: str = "tokens/s") -> None:
    if not tokens_per_s > 0:
        raise ValueError(f"{what} at the operating point must be positive, not {tokens_per_s!r}")


def _check_utilization(utilization: float) -> None:
    if not 0 < utilization <= 1:
        raise ValueError(f"utilization is a share of time in (0, 1], not {utilization!r}")


def allocation_per_1m(usd_per_hour: float, tokens_per_s: float) -> float:
    """USD per 1M tokens of a reserved box producing `tokens_per_s` (allocation basis)."""
    _check_rate(tokens_per_s)
    return usd_per_hour / (tokens_per_s * SECONDS_PER_HOUR) * PER_1M


def utilization_per_1m(usd_per_hour: float, tokens_per_s: float, utilization: float) -> float:
    """USD per 1M tokens when the box is busy a share `utilization` of the time (idle time paid)."""
    _check_utilization(utilization)
    return allocation_per_1m(usd_per_hour, tokens_per_s) / utilization


def per_1k_requests(usd_per_hour: float, requests_per_s: float, utilization: float = 1.0) -> float:
    """USD per 1,000 requests at `requests_per_s` (the operating point), busy a share `utilization`."""
    _check_rate(requests_per_s, "requests/s")
    _check_utilization(utilization)
    return usd_per_hour / (requests_per_s * SECONDS_PER_HOUR * utilization) * 1000.0


@dataclass(frozen=True, slots=True)
class SelfHostedCost:
    """A self-hosted option's cost figures (USD) on one basis."""

    basis: str  # 'allocation' or 'utilization'
    utilization: float  # 1.0 on the allocation basis
    per_1m_output: float  # per 1M output tokens (the input processed with them included)
    per_1m_total: float | None  # per 1M tokens, input and output together, at the measured mix
    per_1k_requests: float | None


def selfhosted_cost(
    usd_per_hour: float,
    output_tokens_per_s: float,
    *,
    total_tokens_per_s: float | None = None,
    requests_per_s: float | None = None,
    utilization: float | None = None,
) -> SelfHostedCost:
    """Every self-hosted figure at once; `utilization` None means the allocation basis."""
    u = 1.0 if utilization is None else utilization
    _check_utilization(u)
    return SelfHostedCost(
        basis="allocation" if utilization is None else "utilization",
        utilization=u,
        per_1m_output=allocation_per_1m(usd_per_hour, output_tokens_per_s) / u,
        per_1m_total=(
            allocation_per_1m(usd_per_hour, total_tokens_per_s) / u
            if total_tokens_per_s is not None and total_tokens_per_s > 0
            else None
        ),
        per_1k_requests=(
            per_1k_requests(usd_per_hour, requests_per_s, u)
            if requests_per_s is not None and requests_per_s > 0
            else None
        ),
    )
