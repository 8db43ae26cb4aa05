"""Pricing moved out of the measuring code: bench.runs costs items and requests exactly as before."""

from __future__ import annotations

from datetime import date

import pytest

from bench.records import ItemRecord, RequestRecord, Status
from bench.registry import Prices
from bench.runs.pricing import priced_item, request_cost, shared_cost, token_cost

PRICES = Prices(
    input_per_1m=3.0,
    output_per_1m=15.0,
    cached_input_per_1m=0.3,
    cache_write_per_1m=3.75,
    as_of=date(2026, 1, 1),
    source="test",
)


def record(tin: int | None, tout: int | None, cached: int | None = None) -> RequestRecord:
    return RequestRecord(
        0, Status.OK, 0.0, 0.0, 1.0, input_tokens=tin, output_tokens=tout, cached_input_tokens=cached
    )


def test_a_suite_item_is_priced_from_its_tokens_and_its_cache_reads_and_writes() -> None:
    extra = {"cached_input_tokens": 400, "cache_write_tokens": 1000}
    item = ItemRecord("q1", "ok", input_tokens=2000, output_tokens=500, extra=extra)
    assert item.cost_usd is None
    assert priced_item(item, PRICES).cost_usd == token_cost(PRICES, 2000, 500, 400, 1000)
    assert priced_item(item, None).cost_usd is None
    assert priced_item(ItemRecord("q2", "error", extra={}), PRICES).cost_usd is None  # no usage: no price


def test_an_lm_eval_sample_shares_a_batched_request_and_is_unpriced_when_one_request_is() -> None:
    a, b = record(100, 10, 20), record(300, 1)
    expected = request_cost(PRICES, a) / 2 + request_cost(PRICES, b)
    assert shared_cost([(a, 2), (b, 1)], PRICES) == pytest.approx(expected)
    assert shared_cost([(a, 1), (record(None, 1), 1)], PRICES) is None
    assert shared_cost([(a, 1)], None) is None
