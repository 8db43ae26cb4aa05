"""Workload figures on hand-computed records: prompt-cache hit rates (usage and server counters), TTFT and
TTFA by turn, per-session counts, the load of a session run, and the TTFA SLO bound."""

from __future__ import annotations

import json

import pytest

from bench.metrics import RunSummary, Slo, request_metrics, summarize
from bench.metrics.load import LoadTarget
from bench.metrics.summary import SUMMARY_SCHEMA
from bench.metrics.workload import (
    NOT_REPORTED,
    PREFIX_CACHE_HITS,
    PREFIX_CACHE_QUERIES,
    CacheMeasure,
    PrefixCounters,
    cache_measure,
    prefix_cache_delta,
)
from bench.records import RequestRecord, Status


def turn(
    session: str,
    k: int,
    start: float,
    end: float,
    *,
    first: float | None = None,
    answer: float | None = None,
    status: Status = Status.OK,
    prompt: int | None = 100,
    cached: int | None = 0,
    error_kind: str | None = None,
) -> RequestRecord:
    ok = status is Status.OK
    return RequestRecord(
        request_id=0,
        status=status,
        scheduled_s=start,
        start_s=start,
        end_s=end,
        first_byte_s=first,
        first_token_s=first,
        first_content_s=answer if answer is not None else first,
        token_chunk_s=[] if first is None else [first, end],
        input_tokens=prompt if ok else None,
        output_tokens=4 if ok else None,
        cached_input_tokens=cached if ok else None,
        tokens_from="usage",
        error_kind=error_kind,
        session_id=session,
        turn=k,
    )


def three_sessions() -> list[RequestRecord]:
    """A answers all three turns; B's turn 1 fails (turn 2 not sent); C's turn 1 is cut off by the end."""
    return [
        turn("A", 0, 0.0, 0.5, first=0.125, answer=0.25, cached=0),
        turn("B", 0, 0.25, 0.75, first=0.5, cached=None),  # usage without a cached-token count
        turn("C", 0, 0.5, 1.0, first=0.625, answer=0.75, cached=0),
        turn("A", 1, 1.0, 1.5, first=1.25, answer=1.375, prompt=300, cached=256),
        turn("B", 1, 1.25, 1.5, status=Status.ERROR, error_kind="http_500"),
        turn("B", 2, 1.5, 1.5, status=Status.NOT_SENT, error_kind="not_sent"),
        turn("C", 1, 1.5, 3.0, status=Status.CANCELLED, error_kind="cancelled"),
        turn("A", 2, 2.0, 2.5, first=2.375, prompt=500, cached=384),
        turn("C", 2, 3.0, 3.0, status=Status.NOT_SENT, error_kind="not_sent"),
    ]


# prompt cache from usage ----------------------------------------------------------------------------


def test_usage_hit_rate_is_read_over_prompt_of_the_reporting_requests() -> None:
    ok = [
        turn("x", 0, 0, 1, first=0.5, prompt=1000, cached=0),
        turn("x", 1, 1, 2, first=1.5, prompt=1000, cached=768),
        turn("x", 2, 2, 3, first=2.5, prompt=1000, cached=None),
    ]
    ok[1].cache_write_tokens = 12
    cache = cache_measure(ok, None, 0.5)
    assert (cache.requests, cache.reported, cache.not_reported) == (3, 2, 1)
    assert (cache.prompt_tokens, cache.read_tokens, cache.write_tokens) == (2000, 768, 12)
    assert cache.hit_rate == 768 / 2000 == 0.384
    assert cache.designed_reuse == 0.5
    assert cache.server_hit_rate is None and "server_hit_rate" in cache.unknown


def test_no_cached_count_reported_makes_the_hit_rate_unknown_never_zero() -> None:
    ok = [turn("x", 0, 0, 1, first=0.5, cached=None), turn("x", 1, 1, 2, first=1.5, cached=None)]
    cache = cache_measure(ok, None, None)
    assert cache.hit_rate is None and cache.unknown["hit_rate"] == NOT_REPORTED
    assert (cache.reported, cache.not_reported, cache.read_tokens) == (0, 2, 0)


# prompt cache from the server's counters ------------------------------------------------------------


def sample(t: float, name: str, value: float, engine: str = "0") -> tuple[float, str, dict[str, str], float]:
    return (t, name, {"model_name": "m", "engine": engine}, value)


def test_server_counters_delta_from_the_last_sample_before_the_measured_start() -> None:
    q, h = PREFIX_CACHE_QUERIES, PREFIX_CACHE_HITS
    samples = [
        sample(-0.01, q, 100), sample(-0.01, h, 40),  # before the run
        sample(0.5, q, 300), sample(0.5, h, 100),  # the barrier sample, after the warm-up
        sample(2.0, q, 1100), sample(2.0, h, 640),  # after the run
    ]  # fmt: skip
    # Measuring from the start: 1,000 queried tokens, 600 found: 0.6.
    assert prefix_cache_delta(samples, 0.0) == PrefixCounters(queries=1000.0, hits=600.0)
    # Measuring from 0.5 s (the warm-up before it left out): 800 queried, 540 found.
    assert prefix_cache_delta(samples, 0.5) == PrefixCounters(queries=800.0, hits=540.0)
    cache = cache_measure([], PrefixCounters(800.0, 540.0), None)
    assert cache.server_hit_rate == 540 / 800 == 0.675


def test_server_counters_sum_engines_and_refuse_what_cannot_be_read() -> None:
    q, h = PREFIX_CACHE_QUERIES, PREFIX_CACHE_HITS
    two = [
        sample(0.0, q, 10, "0"), sample(0.0, h, 0, "0"), sample(0.0, q, 20, "1"), sample(0.0, h, 5, "1"),
        sample(1.0, q, 110, "0"), sample(1.0, h, 50, "0"), sample(1.0, q, 70, "1"), sample(1.0, h, 25, "1"),
    ]  # fmt: skip
    assert prefix_cache_delta(two, 0.0) == PrefixCounters(queries=150.0, hits=70.0)
    assert prefix_cache_delta([sample(1.0, q, 5), sample(1.0, h, 1)], 0.0) is None  # nothing before
    assert prefix_cache_delta([sample(0, q, 5), sample(0, h, 1), sample(1, q, 2), sample(1, h, 2)], 0) is None
    assert prefix_cache_delta([], 0.0) is None  # a server without the counters


# per turn and per session ---------------------------------------------------------------------------


def test_turn_figures_by_hand() -> None:
    s = summarize(three_sessions())
    t0, t1, t2 = s.turns
    assert (t0.turn, t0.sent, t0.ok, t0.failed, t0.not_sent) == (0, 3, 3, 0, 0)
    assert t0.ttft_ms.count == 3 and t0.ttft_ms.p50 == 125.0 and t0.ttft_ms.max == 250.0  # 125, 250, 125
    assert t0.ttfa_ms.p50 == 250.0 and t0.ttfa_ms.min == 250.0  # every first answer at 250 ms
    assert (t0.cache_reported, t0.prompt_tokens, t0.cache_read_tokens) == (2, 200, 0)  # B reported none
    assert (t1.sent, t1.ok, t1.failed, t1.not_sent) == (3, 1, 1, 0)  # A ok, B failed, C cut off
    assert t1.ttft_ms.p50 == 250.0 and t1.ttfa_ms.p50 == 375.0
    assert (t1.prompt_tokens, t1.cache_read_tokens) == (300, 256)
    assert (t2.sent, t2.ok, t2.failed, t2.not_sent) == (1, 1, 0, 2)
    assert t2.ttft_ms.p50 == 375.0 and t2.cache_hit_rate == 384 / 500


def test_session_figures_and_what_not_sent_turns_leave_out() -> None:
    s = summarize(three_sessions())
    assert s.sessions is not None
    sessions = s.sessions
    assert (sessions.started, sessions.completed, sessions.abandoned, sessions.cut_off) == (3, 1, 1, 1)
    assert (sessions.turns_sent, sessions.turns_ok, sessions.turns_failed, sessions.turns_not_sent) == (
        7,
        5,
        1,
        2,
    )
    # The measured window: first send 0.0 to last completion 2.5 (the cut-off and unsent turns are out).
    assert s.window_s == (0.0, 2.5) and sessions.sessions_per_s == 1 / 2.5
    # Turns never sent are no requests: neither failures, nor cut off, nor warm-up.
    assert (s.completed, s.failed, s.cancelled, s.warmup) == (5, 1, 1, 0)
    assert s.errors == {"http_500": 1}
    assert s.cache is not None and s.cache.hit_rate == 640 / 1000
    assert (s.cache.reported, s.cache.not_reported) == (4, 1)


def test_the_load_of_a_session_run_is_sessions_active() -> None:
    s = summarize(three_sessions(), load_target=LoadTarget("concurrency", 3))
    load = s.load
    assert load is not None and load.steady is not None
    # Occupancy: A 0–2.5 s, B 0.25–1.5 s, C 0.5–3.0 s (its cut-off turn ended at 3.0).
    assert load.in_flight_max == 3 and load.steady.window_s == (0.5, 1.5)
    assert load.steady.in_flight_mean == 3.0
    assert load.in_flight_mean == pytest.approx((2.5 + 1.25 + 2.0) / 2.5)  # over the measured window
    assert not load.reached  # steady for 1 s of 2.5 s: under half
    rate = summarize(three_sessions(), load_target=LoadTarget("rate", 4.0)).load
    assert rate is not None and rate.send_rate_per_s == 4.0  # 2 gaps over 0.5 s of session starts


def test_a_plain_run_has_no_session_figures() -> None:
    plain = turn("x", 0, 0.0, 1.0, first=0.5)
    plain.session_id = plain.turn = None
    s = summarize([plain])
    assert s.turns == [] and s.sessions is None


# TTFA bound -----------------------------------------------------------------------------------------


def test_ttfa_bound_judges_the_first_answer_token() -> None:
    slo = Slo.parse("ttfa_ms=300")
    assert slo.ttfa_ms == 300.0 and str(slo) == "ttfa_ms=300"
    early = turn("x", 0, 0.0, 0.5, first=0.125, answer=0.25)  # TTFA 250 ms
    late = turn("x", 1, 1.0, 1.5, first=1.125, answer=1.375)  # TTFT 125 ms, TTFA 375 ms
    assert slo.met_by(request_metrics(early), 4)
    assert not slo.met_by(request_metrics(late), 4)
    assert Slo.parse("ttft_ms=200").met_by(request_metrics(late), 4)
    no_answer = turn("x", 2, 2.0, 2.5, first=2.125)
    no_answer.first_content_s = None
    assert not slo.met_by(request_metrics(no_answer), 4)


# stored and read back -------------------------------------------------------------------------------


def test_workload_figures_round_trip_and_old_summaries_read_without_them() -> None:
    s = summarize(
        three_sessions(), server_cache=PrefixCounters(800.0, 540.0), designed_reuse=0.25,
        slo=Slo(ttfa_ms=300.0),
    )  # fmt: skip
    data = json.loads(json.dumps(s.to_json()))
    assert data["schema"] == SUMMARY_SCHEMA == "llmbench.load-summary/3"
    again = RunSummary.from_json(data)
    assert again == s and again.to_json() == s.to_json()
    assert again.cache == CacheMeasure.from_json(data["cache"]) and again.cache is not None
    assert again.cache.server_hit_rate == 0.675 and again.cache.designed_reuse == 0.25
    old = {k: v for k, v in data.items() if k not in ("cache", "turns", "sessions")}
    old["schema"] = "llmbench.load-summary/2"
    read = RunSummary.from_json(old)
    assert read.cache is None and read.turns == [] and read.sessions is None
