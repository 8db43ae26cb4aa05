"""The latency plan as pure functions: absolute schedule, seeded jitter, chunk grouping, error draws."""

from __future__ import annotations

import itertools

import pytest

from serve.mock.schedule import LatencyPlan
from serve.specs import LatencyModel


def test_schedule_is_absolute_ttft_plus_gaps() -> None:
    plan = LatencyPlan(LatencyModel(ttft_ms=200, ttft_per_prompt_token_ms=0.5, itl_ms=20))
    offsets = plan.chunk_offsets(tokens=4, prompt_tokens=10, request_no=1)
    assert offsets == pytest.approx([0.205, 0.225, 0.245, 0.265])
    assert not plan.instant


def test_jitter_is_seeded_per_request_and_never_negative() -> None:
    plan = LatencyPlan(LatencyModel(ttft_ms=10, itl_ms=1, itl_jitter_ms=5, seed=4))
    first = plan.chunk_offsets(200, 1, request_no=7)
    assert first == plan.chunk_offsets(200, 1, request_no=7)
    assert first != plan.chunk_offsets(200, 1, request_no=8)
    gaps = [b - a for a, b in itertools.pairwise(first)]
    assert min(gaps) >= 0
    assert 0 in gaps  # a normal draw below zero is clamped, not redrawn


def test_chunks_leave_with_their_last_token() -> None:
    plan = LatencyPlan(LatencyModel(ttft_ms=100, itl_ms=10, tokens_per_chunk=2))
    assert plan.chunk_offsets(5, 1, 1) == pytest.approx([0.11, 0.13, 0.14])
    assert plan.chunk_offsets(0, 1, 1) == pytest.approx([0.1])  # an empty answer still ends at TTFT


def test_zero_latency_is_instant_and_error_draws_are_seeded() -> None:
    assert LatencyPlan(LatencyModel()).instant
    draws = [LatencyPlan(LatencyModel(error_rate_429=0.5, error_rate_500=0.5, seed=1)) for _ in range(2)]
    sequences = [[plan.injected_error() for _ in range(50)] for plan in draws]
    assert sequences[0] == sequences[1]
    assert set(sequences[0]) == {429, 500}
    assert LatencyPlan(LatencyModel()).injected_error() is None
