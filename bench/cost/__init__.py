"""Cost as pure functions: API usage × prices, self-hosted $/hour ÷ throughput, and break-even volumes."""

from bench.cost.api import ApiCost, api_cost, blended_per_1m, per_1k_requests, workload_per_1m_output
from bench.cost.breakeven import (
    BreakEven,
    api_monthly_usd,
    break_even,
    monthly_capacity,
    replicas_for,
    selfhosted_monthly_usd,
)
from bench.cost.selfhosted import (
    HOURS_PER_MONTH,
    SelfHostedCost,
    allocation_per_1m,
    selfhosted_cost,
    utilization_per_1m,
)
from bench.cost.usage import Usage, from_anthropic, from_openai, from_provider, from_record

__all__ = [
    "HOURS_PER_MONTH",
    "ApiCost",
    "BreakEven",
    "SelfHostedCost",
    "Usage",
    "allocation_per_1m",
    "api_cost",
    "api_monthly_usd",
    "blended_per_1m",
    "break_even",
    "from_anthropic",
    "from_openai",
    "from_provider",
    "from_record",
    "monthly_capacity",
    "per_1k_requests",
    "replicas_for",
    "selfhosted_cost",
    "selfhosted_monthly_usd",
    "utilization_per_1m",
    "workload_per_1m_output",
]
