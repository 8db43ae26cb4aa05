"""API cost: usage × the registry's per-1M-token prices, each billed quantity at its own price."""

from __future__ import annotations

from dataclasses import dataclass

from bench.cost.usage import Usage
from bench.registry import Prices

PER_1M = 1_000_000.0
BLEND_INPUT, BLEND_OUTPUT = 3, 1  # the conventional blended price: 3 input tokens per output token


@dataclass(frozen=True, slots=True)
class ApiCost:
    """USD of some usage, by billed quantity; `notes` says where a price was missing and what stood in."""

    input_usd: float
    cache_read_usd: float
    cache_write_usd: float
    output_usd: float
    notes: tuple[str, ...] = ()

    @property
    def total_usd(self) -> float:
        return self.input_usd + self.cache_read_usd + self.cache_write_usd + self.output_usd


def api_cost(usage: Usage, prices: Prices) -> ApiCost:
    """Price `usage`: fresh input at the input price, cache reads at the cache-read price, cache writes at
    the write price of their lifetime (5 minutes, or 1 hour), output (reasoning included) at the output
    price. A missing cache price is billed at base input, and said so."""
    notes: list[str] = []
    read_price = prices.cached_input_per_1m
    if read_price is None:
        read_price = prices.input_per_1m
        if usage.cache_read:
            notes.append("no cache-read price: cache reads billed at the base input price")
    write_price = prices.cache_write_per_1m
    if write_price is None:
        write_price = prices.input_per_1m
        if usage.cache_write > usage.cache_write_1h:
            notes.append("no cache-write price: cache writes billed at the base input price")
    write_1h = min(usage.cache_write_1h, usage.cache_write)
    price_1h = prices.cache_write_1h_per_1m
    if price_1h is None:
        price_1h = prices.input_per_1m
        if write_1h:
            notes.append("no 1-hour cache-write price: those writes billed at the base input price")
    return ApiCost(
        input_usd=usage.fresh_input * prices.input_per_1m / PER_1M,
        cache_read_usd=usage.cache_read * read_price / PER_1M,
        cache_write_usd=((usage.cache_write - write_1h) * write_price + write_1h * price_1h) / PER_1M,
        output_usd=usage.output * prices.output_per_1m / PER_1M,
        notes=tuple(notes),
    )


def blended_per_1m(prices: Prices) -> float:
    """List price of 1M tokens at 3 input : 1 output (USD), the usual headline figure for an API."""
    total = BLEND_INPUT + BLEND_OUTPUT
    return (BLEND_INPUT * prices.input_per_1m + BLEND_OUTPUT * prices.output_per_1m) / total


def workload_per_1m_output(usage: Usage, prices: Prices) -> float | None:
    """USD per 1M output tokens of a measured workload, its input tokens included; None without output."""
    if usage.output <= 0:
        return None
    return api_cost(usage, prices).total_usd / usage.output * PER_1M


def per_1k_requests(usage: Usage, requests: int, prices: Prices) -> float | None:
    """USD per 1,000 requests of a measured workload; None without requests."""
    if requests <= 0:
        return None
    return api_cost(usage, prices).total_usd / requests * 1000.0
