"""API cost on hand-computed cases: one per provider usage shape, reasoning, cache reads and writes."""

from __future__ import annotations

from datetime import date

import pytest

from bench.cost import (
    Usage,
    api_cost,
    blended_per_1m,
    from_anthropic,
    from_openai,
    from_provider,
    from_record,
    per_1k_requests,
    workload_per_1m_output,
)
from bench.registry import Prices

GPT = Prices(input_per_1m=2.50, output_per_1m=10.00, cached_input_per_1m=1.25, as_of=date(2026, 11, 23),
             source="test")  # fmt: skip
SONNET = Prices(input_per_1m=3.00, output_per_1m=15.00, cached_input_per_1m=0.30, cache_write_per_1m=3.75,
                cache_write_1h_per_1m=6.00, as_of=date(2026, 11, 23), source="test")  # fmt: skip

OPENAI_USAGE = {
    "prompt_tokens": 1000,
    "prompt_tokens_details": {"cached_tokens": 400},
    "completion_tokens": 500,
    "completion_tokens_details": {"reasoning_tokens": 200},
}
ANTHROPIC_USAGE = {
    "input_tokens": 600,
    "cache_read_input_tokens": 400,
    "cache_creation_input_tokens": 1000,
    "output_tokens": 500,
}


def test_openai_prompt_tokens_include_cached_and_completion_includes_reasoning() -> None:
    usage = from_openai(OPENAI_USAGE)
    assert usage == Usage(fresh_input=600, cache_read=400, cache_write=0, output=500, reasoning=200)
    cost = api_cost(usage, GPT)
    # 600 × 2.50 + 400 × 1.25 + 500 × 10.00 (reasoning is inside the 500, billed as output) per 1M
    assert cost.input_usd == pytest.approx(0.0015)
    assert cost.cache_read_usd == pytest.approx(0.0005)
    assert cost.output_usd == pytest.approx(0.005)
    assert cost.total_usd == pytest.approx(0.007)
    assert cost.notes == ()


def test_anthropic_input_excludes_cache_reads_and_writes_and_writes_cost_more() -> None:
    usage = from_anthropic(ANTHROPIC_USAGE)
    assert usage.fresh_input == 600 and usage.cache_read == 400 and usage.cache_write == 1000
    assert usage.input_total == 2000
    cost = api_cost(usage, SONNET)
    # 600 × 3.00 + 400 × 0.30 + 1000 × 3.75 + 500 × 15.00 per 1M = 0.0018 + 0.00012 + 0.00375 + 0.0075
    assert cost.total_usd == pytest.approx(0.01317)
    assert cost.cache_write_usd == pytest.approx(0.00375) and cost.cache_write_usd > 1000 * 3.00 / 1e6


def test_a_stored_record_is_normalized_to_the_whole_prompt() -> None:
    # The Anthropic client stores input = 600 + 400 + 1000 and cached = the 400 reads.
    usage = from_record(2000, 500, cached_input_tokens=400, cache_write_tokens=1000)
    assert usage == from_anthropic(ANTHROPIC_USAGE)
    assert api_cost(usage, SONNET).total_usd == pytest.approx(0.01317)
    # An OpenAI record: prompt 1000 with 400 cached, completion 500 of which 200 reasoning.
    openai = from_record(1000, 500, cached_input_tokens=400, reasoning_tokens=200)
    assert openai == from_openai(OPENAI_USAGE)
    assert from_provider("anthropic", ANTHROPIC_USAGE) == usage
    assert from_provider("openai-compatible", OPENAI_USAGE) == openai


def test_missing_cache_prices_fall_back_to_base_input_and_say_so() -> None:
    plain = Prices(input_per_1m=1.0, output_per_1m=2.0, as_of=date(2026, 1, 1), source="test")
    cost = api_cost(Usage(fresh_input=100, cache_read=50, cache_write=10, output=20), plain)
    assert cost.total_usd == pytest.approx((100 + 50 + 10) * 1.0 / 1e6 + 20 * 2.0 / 1e6)
    assert any("cache-read" in n for n in cost.notes) and any("cache-write" in n for n in cost.notes)


def test_blended_and_workload_figures() -> None:
    assert blended_per_1m(GPT) == pytest.approx((3 * 2.50 + 10.00) / 4)  # 4.375
    usage = Usage(fresh_input=3000, output=1000)  # 3:1 fresh input, no cache
    assert workload_per_1m_output(usage, GPT) == pytest.approx((3000 * 2.5 + 1000 * 10) / 1000)  # 17.5
    assert per_1k_requests(usage, 10, GPT) == pytest.approx((0.0075 + 0.01) / 10 * 1000)  # 1.75
    assert workload_per_1m_output(Usage(fresh_input=5), GPT) is None
    assert per_1k_requests(usage, 0, GPT) is None


def test_bad_counts_read_as_zero_never_negative() -> None:
    assert from_openai({"prompt_tokens": None, "completion_tokens": -3}) == Usage()
    assert from_record(10, 5, cached_input_tokens=50) == Usage(fresh_input=0, cache_read=10, output=5)


def test_anthropic_one_hour_writes_cost_twice_input() -> None:
    """800 writes live 5 minutes, 200 live an hour: 600 × 3.00 + 400 × 0.30 + 800 × 3.75 + 200 × 6.00 +
    500 × 15.00 = 1,800 + 120 + 3,000 + 1,200 + 7,500 = 13,620 per 1M → $0.01362."""
    split = {"ephemeral_5m_input_tokens": 800, "ephemeral_1h_input_tokens": 200}
    usage = from_anthropic({**ANTHROPIC_USAGE, "cache_creation": split})
    assert usage == Usage(fresh_input=600, cache_read=400, cache_write=1000, output=500, cache_write_1h=200)
    cost = api_cost(usage, SONNET)
    assert cost.cache_write_usd == pytest.approx(0.0042)
    assert cost.total_usd == pytest.approx(0.01362)
    assert cost.notes == ()
    # Without a 1-hour price those 200 are billed at base input (3.00), and the bill says so.
    no_1h = SONNET.model_copy(update={"cache_write_1h_per_1m": None})
    cheap = api_cost(usage, no_1h)
    assert cheap.total_usd == pytest.approx(0.01362 - 200 * (6.00 - 3.00) / 1e6)
    assert cheap.notes == ("no 1-hour cache-write price: those writes billed at the base input price",)
    assert (usage + usage).cache_write_1h == 400


def test_shipped_entries_carry_their_providers_cache_prices() -> None:
    """Every shipped API and mock entry of an OpenAI or Anthropic shape has a cache-read price (OpenAI: its
    cached-input price; Anthropic: 0.1 × input), and every Anthropic one its write prices (1.25 × input for
    5 minutes, 2 × input for an hour), so the one formula bills caching on both sides as the provider does."""
    from bench.registry import load_registry

    data = load_registry().data
    entries = {**data.api, **data.mock}
    checked = 0
    for name, entry in entries.items():
        if entry.provider not in ("openai", "anthropic") or entry.prices is None:
            continue
        p = entry.prices
        assert p.cached_input_per_1m is not None, name
        assert p.cached_input_per_1m < p.input_per_1m, name
        if entry.provider == "anthropic":
            assert p.cached_input_per_1m == pytest.approx(0.1 * p.input_per_1m), name
            assert p.cache_write_per_1m == pytest.approx(1.25 * p.input_per_1m), name
            assert p.cache_write_1h_per_1m == pytest.approx(2 * p.input_per_1m), name
        checked += 1
    assert checked >= 14
