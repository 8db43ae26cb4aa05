"""Cache reads and writes as the Anthropic client records them, and as an accuracy item prices them."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from bench.clients.anthropic import AnthropicStream
from bench.cost import api_cost, from_anthropic, from_record
from bench.records import RequestRecord, Status
from bench.registry import Prices
from bench.runs.pricing import token_cost

USAGE = {"input_tokens": 600, "cache_read_input_tokens": 400, "cache_creation_input_tokens": 1000}
PRICES = Prices(input_per_1m=3.0, output_per_1m=15.0, cached_input_per_1m=0.3, cache_write_per_1m=3.75,
                as_of=date(2026, 11, 23), source="test")  # fmt: skip


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def test_anthropic_stream_records_cache_writes_apart() -> None:
    rec = RequestRecord(request_id=0, status=Status.OK, scheduled_s=0.0, start_s=0.0, end_s=0.0)
    stream = AnthropicStream(rec, keep_text=False)
    stream.feed(_event("message_start", {"type": "message_start", "message": {"usage": USAGE}}), 1.0)
    stream.feed(_event("message_delta", {"type": "message_delta", "usage": {"output_tokens": 500}}), 2.0)
    assert (rec.input_tokens, rec.cached_input_tokens, rec.cache_write_tokens) == (2000, 400, 1000)
    assert rec.output_tokens == 500
    usage = from_record(rec.input_tokens, rec.output_tokens, rec.cached_input_tokens, rec.cache_write_tokens)
    assert usage == from_anthropic({**USAGE, "output_tokens": 500})
    expected = 0.01317  # 600 × 3 + 400 × 0.3 + 1000 × 3.75 + 500 × 15, per 1M
    assert api_cost(usage, PRICES).total_usd == pytest.approx(expected)
    assert token_cost(PRICES, 2000, 500, 400, 1000) == pytest.approx(expected)
    assert token_cost(PRICES, 2000, 500, 400) == pytest.approx(expected - 1000 * (3.75 - 3.0) / 1e6)
