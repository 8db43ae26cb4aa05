"""Prices on what an accuracy run measured: the layer that knows the target's prices costs its items.

The measuring code (bench.accuracy) leaves `cost_usd` empty and keeps the tokens; here each item and each
recorded request is priced with bench.cost's formula (input, cache reads and cache writes at their own
rates, output).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from bench.cost.api import api_cost
from bench.cost.usage import from_record
from bench.records import ItemRecord, RequestRecord
from bench.registry import Prices


def token_cost(
    prices: Prices | None,
    input_tokens: int | None,
    output_tokens: int | None,
    cached_input: int | None = None,
    cache_write: int | None = None,
) -> float | None:
    """USD for one request from per-1M-token prices; None without prices or without usage.

    `input_tokens` is the whole prompt (the clients' normalized shape); `cached_input` (cache reads) and
    `cache_write` are parts of it, priced at their own rates (base input where the entry has none).
    """
    if prices is None or input_tokens is None or output_tokens is None:
        return None
    usage = from_record(input_tokens, output_tokens, cached_input, cache_write)
    return api_cost(usage, prices).total_usd


def priced_item(item: ItemRecord, prices: Prices | None) -> ItemRecord:
    """A suite item with its cost: its request's tokens (cache reads and writes from `extra`), USD."""
    cost = token_cost(
        prices,
        item.input_tokens,
        item.output_tokens,
        item.extra.get("cached_input_tokens"),
        item.extra.get("cache_write_tokens"),
    )
    return dataclasses.replace(item, cost_usd=cost)


def request_cost(prices: Prices | None, record: RequestRecord) -> float | None:
    """USD of one request lm-eval sent (its usage as the proxy recorded it)."""
    return token_cost(prices, record.input_tokens, record.output_tokens, record.cached_input_tokens)


def shared_cost(requests: Sequence[tuple[RequestRecord, int]], prices: Prices | None) -> float | None:
    """An lm-eval sample's cost: its requests' costs, a request batched over N prompts counting 1/N, USD;
    None when any of them cannot be priced."""
    cost: float | None = 0.0
    for record, share in requests:
        one = request_cost(prices, record)
        cost = None if one is None or cost is None else cost + one / share
    return cost
