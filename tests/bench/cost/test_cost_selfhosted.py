"""Self-hosted cost and break-even on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from bench.cost import (
    HOURS_PER_MONTH,
    allocation_per_1m,
    api_monthly_usd,
    break_even,
    monthly_capacity,
    replicas_for,
    selfhosted_cost,
    selfhosted_monthly_usd,
    utilization_per_1m,
)


def test_allocation_basis_is_dollars_per_hour_over_tokens_per_hour() -> None:
    # $2.69/h at 1,000 tok/s: 2.69 / 3.6M tokens × 1M = $0.7472 per 1M
    assert allocation_per_1m(2.69, 1000.0) == pytest.approx(2.69 / 3.6)
    assert utilization_per_1m(2.69, 1000.0, 0.25) == pytest.approx(4 * 2.69 / 3.6)
    cost = selfhosted_cost(2.69, 1000.0, total_tokens_per_s=4000.0, requests_per_s=5.0)
    assert cost.basis == "allocation" and cost.utilization == 1.0
    assert cost.per_1m_total == pytest.approx(2.69 / 14.4)
    assert cost.per_1k_requests == pytest.approx(2.69 / (5 * 3600) * 1000)  # 0.14944
    half = selfhosted_cost(2.69, 1000.0, requests_per_s=5.0, utilization=0.5)
    assert half.basis == "utilization" and half.per_1m_output == pytest.approx(2 * cost.per_1m_output)
    assert half.per_1m_total is None


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan])
def test_no_throughput_is_an_error_not_a_zero_cost(bad: float) -> None:
    with pytest.raises(ValueError, match="operating point"):
        allocation_per_1m(1.0, bad)
    with pytest.raises(ValueError, match="utilization"):
        utilization_per_1m(1.0, 10.0, 1.5)


def test_replicas_are_whole_steps() -> None:
    capacity = monthly_capacity(100.0)
    assert capacity == 100 * 3600 * HOURS_PER_MONTH == 262_800_000
    assert replicas_for(0, 100.0) == 0
    assert replicas_for(1, 100.0) == 1
    assert replicas_for(capacity, 100.0) == 1
    assert replicas_for(capacity + 1, 100.0) == 2
    assert selfhosted_monthly_usd(capacity + 1, 1.0, 100.0) == 2 * 730.0
    assert api_monthly_usd(73_000_000, 10.0) == pytest.approx(730.0)


def test_break_even_within_the_first_replica() -> None:
    # C = $730 a month, K = 262.8M tokens, p = $10/1M: T1 = 73M tokens, u = 730 / 2628 = 0.2778
    be = break_even(1.0, 100.0, 10.0)
    assert be.volume == pytest.approx(73_000_000)
    assert be.utilization == pytest.approx(730 / 2628)
    assert be.always_above == pytest.approx(73_000_000) and be.replicas_at_always == 1
    assert be.reason is None


def test_break_even_with_gaps_after_new_replicas() -> None:
    # p = $4/1M: u = 730 / 1051.2 = 0.6944; 1/(1-u) = 3.27, so the API wins again just after the 2nd and
    # 3rd replica are added; above 3 × 182.5M = 547.5M tokens self-hosting always wins.
    be = break_even(1.0, 100.0, 4.0)
    assert be.volume == pytest.approx(182_500_000)
    assert be.always_above == pytest.approx(547_500_000) and be.replicas_at_always == 3
    k = monthly_capacity(100.0)
    just_after_two = 2 * k + 1
    assert selfhosted_monthly_usd(just_after_two, 1.0, 100.0) > api_monthly_usd(just_after_two, 4.0)
    for volume in (547_500_001, 600e6, 3 * k + 1, 10 * k):
        assert selfhosted_monthly_usd(volume, 1.0, 100.0) <= api_monthly_usd(volume, 4.0) + 1e-9


def test_no_break_even_when_a_full_replica_costs_more_than_the_api() -> None:
    be = break_even(1.0, 100.0, 2.0)  # pK = $525.6 < C = $730
    assert be.volume is None and be.always_above is None
    assert be.utilization == pytest.approx(730 / 525.6)
    assert be.reason is not None and "dearer at any volume" in be.reason
    assert break_even(1.0, 100.0, 0.0).reason == "the API is free"
