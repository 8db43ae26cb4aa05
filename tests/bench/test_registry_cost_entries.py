"""The registry's cost inputs: Anthropic cache-write prices, CPU-only hardware, GPU profiles."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from bench.registry import ApiEndpoint, Hardware, load_registry


def test_anthropic_entries_price_cache_writes_at_1_25x_input() -> None:
    registry = load_registry()
    anthropic = [e for e in registry.data.api.values() if e.provider == "anthropic"]
    assert anthropic
    for entry in anthropic:
        assert isinstance(entry, ApiEndpoint)
        assert entry.prices.cache_write_per_1m == pytest.approx(1.25 * entry.prices.input_per_1m)


def test_cpu_profile_for_the_offline_models() -> None:
    hw = load_registry().data.hardware["cpu-2vcpu"]
    assert hw.gpu is None and hw.vcpus == 2 and hw.usd_per_hour > 0
    assert hw.label == "AWS t3.large (Intel Xeon) (2 vCPU)"
    assert load_registry().data.hardware["h100-80gb-x1"].label == "1x H100 SXM 80GB"


def test_a_profile_names_its_gpu_or_its_cpu() -> None:
    base = {"usd_per_hour": 1.0, "as_of": date(2026, 1, 1), "source": "test"}
    with pytest.raises(ValidationError, match="'gpu'"):
        Hardware.model_validate(base)
    with pytest.raises(ValidationError, match="gpu_memory_gib"):
        Hardware.model_validate({**base, "gpu": "L4"})
    assert Hardware.model_validate({**base, "gpu": "L4", "gpu_memory_gib": 22.5}).count == 1


def test_mock_entries_take_cache_and_reasoning_blocks() -> None:
    from bench.registry import MockEndpoint

    entry = MockEndpoint.model_validate(
        {"provider": "anthropic", "model": "m", "cache": {"explicit_min_tokens": 2048},
         "reasoning": {"tokens": 64}}
    )  # fmt: skip
    assert (entry.cache.explicit_min_tokens, entry.cache.enabled, entry.reasoning.tokens) == (2048, True, 64)
    with pytest.raises(ValidationError, match="min_token"):
        MockEndpoint.model_validate({"provider": "openai", "model": "m", "cache": {"min_tokens": 1}})
