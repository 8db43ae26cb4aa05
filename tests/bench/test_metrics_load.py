"""The load a run really reached, its steady window and the noise of its throughput: hand-computed cases."""

from __future__ import annotations

import pytest

from bench.metrics import Slo, summarize
from bench.metrics.load import (
    LoadTarget,
    in_flight_steps,
    mean_in_flight,
    steady_window_closed,
)
from bench.records import RequestRecord, Status


def rec(
    i: int, start: float, end: float, chunks: list[float], tokens: int | None, **kw: object
) -> RequestRecord:
    return RequestRecord(
        request_id=i,
        status=kw.pop("status", Status.OK),  # type: ignore[arg-type]
        scheduled_s=start,
        start_s=start,
        end_s=end,
        first_byte_s=chunks[0] if chunks else None,
        first_token_s=chunks[0] if chunks else None,
        first_content_s=chunks[0] if chunks else None,
        token_chunk_s=list(chunks),
        output_tokens=tokens,
        input_tokens=10,
        tokens_from="usage",
        **kw,  # type: ignore[arg-type]
    )


# Three requests at concurrency 2 (a slot freed at t=2 is refilled at once):
#   r1 [0, 2]  chunks 0.5 1.0 1.5 2.0  8 tokens -> 2 per chunk
#   r2 [0, 3]  chunks 1.0 2.0 3.0      3 tokens -> 1 per chunk
#   r3 [2, 4]  chunks 2.5 3.0 3.5 4.0  4 tokens -> 1 per chunk
THREE = [
    rec(0, 0.0, 2.0, [0.5, 1.0, 1.5, 2.0], 8),
    rec(1, 0.0, 3.0, [1.0, 2.0, 3.0], 3),
    rec(2, 2.0, 4.0, [2.5, 3.0, 3.5, 4.0], 4),
]


def test_mean_in_flight_is_time_weighted() -> None:
    # Busy time inside [0, 3]: 2 + 2 = 4 request-seconds over 3 s.
    assert mean_in_flight([(0.0, 2.0), (1.0, 3.0)], (0.0, 3.0)) == pytest.approx(4 / 3)
    # Clipped to the window: [0.5, 1.5] holds 1 + 0.5 = 1.5 request-seconds over 1 s.
    assert mean_in_flight([(0.0, 2.0), (1.0, 3.0)], (0.5, 1.5)) == pytest.approx(1.5)


def test_in_flight_steps_apply_ends_before_sends_at_the_same_time() -> None:
    steps = in_flight_steps([(r.start_s, r.end_s) for r in THREE])
    assert steps == [(0.0, 2), (2.0, 2), (3.0, 1), (4.0, 0)]


def test_steady_window_of_a_closed_loop() -> None:
    intervals = [(r.start_s, r.end_s) for r in THREE]
    assert steady_window_closed(intervals, 2) == (0.0, 3.0)  # 2 in flight from 0 until r2 ends at 3
    assert steady_window_closed(intervals, 4) is None  # never 3.8 in flight


def test_steady_throughput_and_its_batch_means_by_hand() -> None:
    s = summarize(THREE, load_target=LoadTarget("concurrency", 2))
    load = s.load
    assert load is not None and load.reached and load.reasons == []
    assert load.in_flight_max == 2
    assert load.in_flight_mean == pytest.approx(7 / 4)  # whole window [0, 4]: 2 + 3 + 2 request-seconds / 4 s
    steady = load.steady
    assert steady is not None
    assert steady.window_s == (0.0, 3.0)
    assert steady.in_flight_mean == pytest.approx(2.0)  # (2 + 3 + 1) / 3
    # Tokens emitted in [0, 3]: r1 all 8, r2 all 3, r3 its chunks at 2.5 and 3.0 (1 + 1) = 13.
    assert steady.output_tokens == pytest.approx(13.0)
    assert steady.output_tokens_per_s == pytest.approx(13 / 3)
    # Batches of 0.6 s: [2, 3, 2, 3, 3] tokens -> [3.333, 5, 3.333, 5, 5] tok/s; mean 4.3333, sample
    # std sqrt(3.3333 / 4) = 0.91287; half-width 2.776 × 0.91287 / sqrt(5) = 1.13330.
    assert steady.batch_output_tokens_per_s == pytest.approx([10 / 3, 5.0, 10 / 3, 5.0, 5.0])
    lo, hi = steady.output_tokens_per_s_ci95 or (0.0, 0.0)
    assert lo == pytest.approx(3.20003, abs=1e-4) and hi == pytest.approx(5.46663, abs=1e-4)
    assert steady.noise == pytest.approx(1.13330 / (13 / 3), abs=1e-4)
    assert steady.requests_per_s == pytest.approx(2 / 3)  # r1 and r2 end inside [0, 3]
    assert steady.sent == 3
    assert s.invalid_reasons == []
    assert s.to_json()["valid"] is True


def test_a_closed_loop_that_never_reached_its_concurrency_is_an_invalid_probe() -> None:
    s = summarize(THREE, load_target=LoadTarget("concurrency", 4))
    assert s.load is not None and not s.load.reached
    assert "at most 2" in s.load.reasons[0]
    assert [f.kind for f in s.flags if f.kind == "load_not_reached"] == ["load_not_reached"]
    assert s.invalid_reasons and s.to_json()["valid"] is False


def test_a_burst_that_settles_for_less_than_half_the_window_is_not_steady() -> None:
    # 2 in flight only during [0, 1]; then one request drags on to t = 5.
    records = [rec(0, 0.0, 1.0, [0.5, 1.0], 2), rec(1, 0.0, 5.0, [1.0, 5.0], 2)]
    s = summarize(records, load_target=LoadTarget("concurrency", 2))
    assert s.load is not None and s.load.steady is not None
    assert s.load.steady.window_s == (0.0, 1.0)
    assert not s.load.reached and "20% of the measured window" in s.load.reasons[0]


def test_open_loop_reached_when_sent_on_time_and_long_enough() -> None:
    on_time = [rec(i, 0.5 * i, 0.5 * i + 0.2, [0.5 * i + 0.1, 0.5 * i + 0.2], 2) for i in range(4)]
    s = summarize(on_time, load_target=LoadTarget("rate", 2.0))
    assert s.load is not None and s.load.reached
    assert s.load.send_rate_per_s == pytest.approx(2.0)  # 3 gaps over 1.5 s
    assert s.load.measured == pytest.approx(2.0)
    late = [rec(i, 0.6 * i, 0.6 * i + 0.2, [0.6 * i + 0.1, 0.6 * i + 0.2], 2) for i in range(4)]
    s = summarize(late, load_target=LoadTarget("rate", 2.0))
    assert s.load is not None and not s.load.reached
    assert "short of the target 2/s" in s.load.reasons[0]  # 3 / 1.8 = 1.67/s


def test_open_loop_too_short_for_requests_to_build_up() -> None:
    # Sent at 2/s over 1.5 s, but each request takes 1 s: the span is under twice the median e2e.
    slow = [rec(i, 0.5 * i, 0.5 * i + 1.0, [0.5 * i + 0.5, 0.5 * i + 1.0], 2) for i in range(4)]
    s = summarize(slow, load_target=LoadTarget("rate", 2.0))
    assert s.load is not None and not s.load.reached
    assert "under 2× the median latency" in s.load.reasons[0]


def test_a_response_delivered_in_one_chunk_was_not_streamed() -> None:
    records = [rec(i, float(i), i + 0.5, [i + 0.5], 16) for i in range(4)]
    s = summarize(records, load_target=LoadTarget("concurrency", 1))
    kinds = [f.kind for f in s.flags]
    assert "not_streamed" in kinds
    assert any(r.startswith("not_streamed: 4 of 4 multi-token responses") for r in s.invalid_reasons)
    # Several chunks read together at one instant are one read too; chunks read apart are a stream, even
    # when most gaps are 0 ms (a fast server: coalesced_reads, not not_streamed).
    at_once = [rec(i, float(i), i + 0.5, [i + 0.5] * 8, 16) for i in range(4)]
    assert "not_streamed" in [f.kind for f in summarize(at_once).flags]
    bursts = [rec(i, float(i), i + 0.5, [i + 0.2] * 6 + [i + 0.5] * 6, 16) for i in range(4)]
    kinds = [f.kind for f in summarize(bursts).flags]
    assert "not_streamed" not in kinds and "coalesced_reads" in kinds


def test_steady_attainment_counts_errors_sent_in_the_window_as_misses() -> None:
    records = [*THREE, rec(3, 1.0, 1.5, [], None, status=Status.ERROR, error_kind="http_500")]
    s = summarize(records, slo=Slo(ttft_ms=600), load_target=LoadTarget("concurrency", 2))
    steady = s.load.steady if s.load else None
    assert steady is not None
    # Sent inside the window: r1 (TTFT 500 ms: met), r2 (1000 ms: missed), r3 (500 ms: met), the error.
    assert steady.sent == 4 and steady.slo_attainment == pytest.approx(2 / 4)


def test_target_from_stored_profiles() -> None:
    from documents import load_profile

    assert load_profile("concurrent", concurrency=8).target == LoadTarget("concurrency", 8)
    assert load_profile("synchronous").target == LoadTarget("concurrency", 1)
    assert load_profile("poisson", rate=3.5).target == LoadTarget("rate", 3.5)
    goodput = load_profile("goodput", concurrency=16, pacing={"kind": "concurrent", "concurrency": 16})
    assert goodput.target == LoadTarget("concurrency", 16)
