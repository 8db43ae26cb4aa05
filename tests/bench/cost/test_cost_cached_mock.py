"""Cached usage priced by hand: the mock's OpenAI and Anthropic usage shapes, read by our clients and as raw
JSON, through bench.cost; and the same run priced as if nothing were cached.

Anthropic (mock-frontier's prices): input $3.00, output $15.00, cache writes 1.25 × 3.00 = $3.75, cache
reads 0.1 × 3.00 = $0.30 per 1M tokens. Two requests, each a 1,100-token system prompt marked as a cache
breakpoint plus a 4-token question, 3 output tokens each:
    1st: 4 fresh, 1,100 written; 2nd: 4 fresh, 1,100 read.
    cached:   8 × 3.00 + 1,100 × 3.75 + 1,100 × 0.30 + 6 × 15.00 = 24 + 4,125 + 330 + 90 = 4,569 → $0.004569
    uncached: 2,208 × 3.00 + 6 × 15.00 = 6,624 + 90 = 6,714 → $0.006714; difference $0.002145
OpenAI (mock-mini's prices): input $0.15, cached input $0.075, output $0.60 per 1M tokens. A 1,300-token
prompt sent twice, 3 output tokens each: 1st all fresh, 2nd 1,280 cached (10 steps of 128), 20 fresh.
    cached:   1,320 × 0.15 + 1,280 × 0.075 + 6 × 0.60 = 198 + 96 + 3.6 = 297.6 → $0.0002976
    uncached: 2,600 × 0.15 + 6 × 0.60 = 393.6 → $0.0003936; difference 1,280 × 0.075 = 96 → $0.000096
"""

from __future__ import annotations

import asyncio
from datetime import date

import httpx
import pytest

from bench.clients import ClientConfig, make_client
from bench.cost import Usage, api_cost, from_provider, from_record
from bench.records import GenRequest, RequestRecord, ServerKind
from bench.registry import Prices, load_registry
from serve.mock.server import running_mock
from serve.specs import MockSpec

FRONTIER = Prices(input_per_1m=3.0, output_per_1m=15.0, cached_input_per_1m=0.30,  # 0.1 × input
                  cache_write_per_1m=3.75, cache_write_1h_per_1m=6.0,  # 1.25 × and 2 × input
                  as_of=date(2026, 11, 23), source="test")  # fmt: skip
MINI = Prices(input_per_1m=0.15, output_per_1m=0.60, cached_input_per_1m=0.075, as_of=date(2026, 11, 23),
              source="test")  # fmt: skip
DOC = "abcd" * 1100  # 1,100 tokens as the mock counts them
QUESTION = "What is it about"  # 4 tokens
PROMPT = "wxyz" * 1300  # 1,300 tokens


def run(api: str, kind: ServerKind, request: GenRequest) -> list[RequestRecord]:
    async def main(url: str) -> list[RequestRecord]:
        async with make_client(api, ClientConfig(url, "m", server_kind=kind)) as client:
            return [await client.send(request, 0.0) for _ in range(2)]

    with running_mock(MockSpec(model="m", port=0)) as url:
        return asyncio.run(main(url))


def total(records: list[RequestRecord]) -> Usage:
    out = Usage()
    for r in records:
        assert r.ok, r.error_text
        out += from_record(r.input_tokens, r.output_tokens, r.cached_input_tokens, r.cache_write_tokens)
    return out


def test_the_shipped_mock_prices_are_the_ones_checked_here() -> None:
    registry = load_registry()
    frontier, mini = registry.data.mock["mock-frontier"].prices, registry.data.mock["mock-mini"].prices
    assert frontier is not None and mini is not None
    assert frontier.model_dump(exclude={"as_of", "source"}) == FRONTIER.model_dump(
        exclude={"as_of", "source"}
    )
    assert mini.model_dump(exclude={"as_of", "source"}) == MINI.model_dump(exclude={"as_of", "source"})
    assert FRONTIER.cache_write_per_1m == 1.25 * FRONTIER.input_per_1m
    assert FRONTIER.cache_write_1h_per_1m == 2 * FRONTIER.input_per_1m
    assert FRONTIER.cached_input_per_1m == pytest.approx(0.1 * FRONTIER.input_per_1m)


def test_anthropic_cached_run_priced_by_hand() -> None:
    messages = [{"role": "system", "content": DOC}, {"role": "user", "content": QUESTION}]
    request = GenRequest(0, messages=messages, max_tokens=3, cache_breakpoints=(0,))
    usage = total(run("anthropic", "anthropic", request))
    assert usage == Usage(fresh_input=8, cache_read=1100, cache_write=1100, output=6)
    cost = api_cost(usage, FRONTIER)
    assert (cost.input_usd, cost.cache_write_usd, cost.cache_read_usd, cost.output_usd) == pytest.approx(
        (24e-6, 4125e-6, 330e-6, 90e-6)
    )
    assert cost.total_usd == pytest.approx(0.004569)
    uncached = api_cost(usage.as_uncached(), FRONTIER).total_usd
    assert uncached == pytest.approx(0.006714)
    assert uncached - cost.total_usd == pytest.approx(0.002145)


def test_openai_cached_run_priced_by_hand() -> None:
    usage = total(run("openai-chat", "openai", GenRequest(0, prompt=PROMPT, max_tokens=3)))
    assert usage == Usage(fresh_input=1320, cache_read=1280, output=6)
    cost = api_cost(usage, MINI)
    assert cost.total_usd == pytest.approx(297.6e-6)
    uncached = api_cost(usage.as_uncached(), MINI).total_usd
    assert uncached == pytest.approx(393.6e-6)
    assert uncached - cost.total_usd == pytest.approx(96e-6)


def test_raw_usage_shapes_price_the_same() -> None:
    """The non-streamed JSON usage objects, read by bench.cost's provider readers."""
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01", "authorization": "Bearer k"}
    system = [{"type": "text", "text": DOC, "cache_control": {"type": "ephemeral"}}]
    anthropic_body = {"model": "m", "max_tokens": 3, "system": system,
                      "messages": [{"role": "user", "content": QUESTION}]}  # fmt: skip
    openai_body = {"model": "m", "max_tokens": 3, "messages": [{"role": "user", "content": PROMPT}]}
    with running_mock(MockSpec(model="m", port=0)) as url:
        a = [
            httpx.post(url + "/v1/messages", json=anthropic_body, headers=headers).json()["usage"]
            for _ in "12"
        ]
        o = [
            httpx.post(url + "/v1/chat/completions", json=openai_body, headers=headers).json()["usage"]
            for _ in "12"
        ]
    anthropic_usage = from_provider("anthropic", a[0]) + from_provider("anthropic", a[1])
    assert anthropic_usage == Usage(fresh_input=8, cache_read=1100, cache_write=1100, output=6)
    assert api_cost(anthropic_usage, FRONTIER).total_usd == pytest.approx(0.004569)
    openai_usage = from_provider("openai", o[0]) + from_provider("openai", o[1])
    assert openai_usage == Usage(fresh_input=1320, cache_read=1280, output=6)
    assert api_cost(openai_usage, MINI).total_usd == pytest.approx(297.6e-6)


def test_anthropic_one_hour_breakpoint_priced_by_hand() -> None:
    """The same two requests with a 1-hour breakpoint: 1st 4 fresh + 1,100 written for an hour, 2nd 4 fresh
    + 1,100 read; 3 output tokens each.
        1st: 4 × 3.00 + 1,100 × 6.00 + 3 × 15.00 = 12 + 6,600 + 45 = 6,657 → $0.006657
        2nd: 4 × 3.00 + 1,100 × 0.30 + 3 × 15.00 = 12 + 330 + 45 = 387 → $0.000387"""
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    system = [{"type": "text", "text": DOC, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    body = {
        "model": "m",
        "max_tokens": 3,
        "system": system,
        "messages": [{"role": "user", "content": QUESTION}],
    }
    with running_mock(MockSpec(model="m", port=0)) as url:
        raw = [httpx.post(url + "/v1/messages", json=body, headers=headers).json()["usage"] for _ in "12"]
    first, second = (from_provider("anthropic", u) for u in raw)
    assert first == Usage(fresh_input=4, cache_write=1100, cache_write_1h=1100, output=3)
    assert second == Usage(fresh_input=4, cache_read=1100, output=3)
    assert api_cost(first, FRONTIER).total_usd == pytest.approx(0.006657)
    assert api_cost(second, FRONTIER).total_usd == pytest.approx(0.000387)
