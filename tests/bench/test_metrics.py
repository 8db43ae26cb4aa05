"""Metric definitions on hand-computed records: latencies, percentiles, rates, goodput, client check."""

from __future__ import annotations

import json
import math
import random
import statistics

import pytest

from bench.errors import UsageError
from bench.metrics import (
    ClientStats,
    Distribution,
    Slo,
    measured_window,
    percentile,
    request_metrics,
    summarize,
)
from bench.records import RequestRecord, Status


def rec(
    rid: int,
    start: float,
    chunks: list[float],
    end: float,
    tokens: int | None,
    *,
    scheduled: float | None = None,
    status: Status = Status.OK,
    warmup: bool = False,
    input_tokens: int | None = 10,
    tokens_from: str = "usage",
    error_kind: str | None = None,
) -> RequestRecord:
    return RequestRecord(
        request_id=rid,
        status=status,
        scheduled_s=start if scheduled is None else scheduled,
        start_s=start,
        end_s=end,
        first_byte_s=chunks[0] - 0.01 if chunks else None,
        first_token_s=chunks[0] if chunks else None,
        first_content_s=chunks[0] if chunks else None,
        token_chunk_s=list(chunks),
        input_tokens=input_tokens,
        output_tokens=tokens,
        tokens_from=tokens_from,  # type: ignore[arg-type]
        error_kind=error_kind,
        warmup=warmup,
    )


# Distribution --------------------------------------------------------------------------------------


def test_percentiles_of_1_to_10_match_hand_values() -> None:
    d = Distribution.of(range(10, 0, -1))  # order does not matter
    assert d.count == 10
    assert (d.min, d.max, d.mean) == (1.0, 10.0, 5.5)
    assert d.p50 == pytest.approx(5.5)
    assert d.p90 == pytest.approx(9.1)
    assert d.p95 == pytest.approx(9.55)
    assert d.p99 == pytest.approx(9.91)
    assert d.p999 == pytest.approx(9.991)
    assert d.std == pytest.approx(math.sqrt(8.25))  # population std


def test_empty_and_single_value_distributions() -> None:
    empty = Distribution.of([])
    assert empty.count == 0
    assert all(v is None for k, v in empty.to_json().items() if k != "count")
    one = Distribution.of([42.0])
    assert (one.p50, one.p999, one.min, one.max, one.std) == (42.0, 42.0, 42.0, 42.0, 0.0)


def test_percentile_matches_numpy_linear_method() -> None:
    np = pytest.importorskip("numpy")
    rng = random.Random(7)
    for n in (2, 3, 17, 1000):
        values = sorted(rng.expovariate(1.0) for _ in range(n))
        for q in (0, 1, 50, 90, 95, 99, 99.9, 100):
            assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12)
        d = Distribution.of(values)
        assert d.mean == pytest.approx(float(np.mean(values)), rel=1e-12)
        assert d.std == pytest.approx(float(np.std(values)), rel=1e-9)


def test_std_keeps_a_tiny_spread_on_large_values() -> None:
    values = [1e6 + 0.001 * (i % 7) for i in range(1000)]
    assert Distribution.of(values).std == pytest.approx(statistics.pstdev(values), rel=1e-6)


def test_distribution_json_round_trip() -> None:
    d = Distribution.of([1.0, 2.0, 4.0])
    assert Distribution.from_json(json.loads(json.dumps(d.to_json()))) == d


# Per request ----------------------------------------------------------------------------------------


def test_request_metrics_hand_computed() -> None:
    r = rec(0, start=0.0, chunks=[0.1, 0.12, 0.15, 0.19], end=0.2, tokens=4, scheduled=-0.005)
    m = request_metrics(r)
    assert m.ttft_ms == pytest.approx(100.0)
    assert m.e2e_ms == pytest.approx(200.0)
    assert m.itl_ms == pytest.approx((20.0, 30.0, 40.0))
    assert m.mean_itl_ms == pytest.approx(30.0)
    assert m.tpot_ms == pytest.approx((200.0 - 100.0) / 3)
    assert m.ttfb_ms == pytest.approx(90.0)
    assert m.sched_lag_ms == pytest.approx(5.0)


def test_chunk_carrying_several_tokens_tpot_uses_tokens_itl_uses_chunks() -> None:
    # usage says 10 tokens, but they came in 5 chunks 100 ms apart
    r = rec(0, start=0.5, chunks=[1.0, 1.1, 1.2, 1.3, 1.4], end=1.5, tokens=10)
    m = request_metrics(r)
    assert m.ttft_ms == pytest.approx(500.0)
    assert m.tpot_ms == pytest.approx(500.0 / 9)  # (e2e − ttft) / (tokens − 1)
    assert len(m.itl_ms) == 4
    assert m.itl_ms == pytest.approx((100.0,) * 4)


def test_tpot_undefined_for_one_token_or_unknown_count() -> None:
    assert request_metrics(rec(0, 0.0, [0.1], 0.2, tokens=1)).tpot_ms is None
    assert request_metrics(rec(0, 0.0, [0.1, 0.2], 0.3, tokens=None)).tpot_ms is None
    no_token = request_metrics(rec(0, 0.0, [], 0.3, tokens=0))
    assert no_token.ttft_ms is None and no_token.mean_itl_ms is None


# SLO parsing ----------------------------------------------------------------------------------------


def test_slo_parse_any_subset() -> None:
    slo = Slo.parse("ttft_ms=500, tpot_ms=50")
    assert (slo.ttft_ms, slo.tpot_ms, slo.itl_ms, slo.e2e_ms) == (500.0, 50.0, None, None)
    assert Slo.parse("e2e_ms=2000,itl_ms=25.5").to_json() == {"itl_ms": 25.5, "e2e_ms": 2000.0}
    assert str(Slo.parse("ttft_ms=500,tpot_ms=50")) == "ttft_ms=500,tpot_ms=50"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("ttft=500", "'ttft'"),
        ("ttft_ms=500,latency_ms=3", "'latency_ms'"),
        ("ttft_ms", "KEY=MS"),
        ("ttft_ms=fast", "not a number"),
        ("ttft_ms=-5", "positive"),
        ("ttft_ms=nan", "positive"),
        ("ttft_ms=1,ttft_ms=2", "twice"),
        ("", "no SLO bound"),
    ],
)
def test_slo_parse_errors_name_the_flag_and_key(text: str, needle: str) -> None:
    with pytest.raises(UsageError) as info:
        Slo.parse(text)
    assert info.value.flag == "--slo"
    assert needle in str(info.value)


# Run summary ----------------------------------------------------------------------------------------


def _run() -> list[RequestRecord]:
    return [
        # warm-up: slow, early, must not count anywhere
        rec(0, 0.0, [5.0, 6.0], 9.0, tokens=2, warmup=True),
        # three successes between 1.0 and 2.0 s
        rec(1, 1.0, [1.1, 1.12, 1.15, 1.19], 1.2, tokens=4),  # ttft 100, tpot 33.3, itl mean 30
        rec(2, 1.2, [1.5, 1.55, 1.6], 1.65, tokens=6),  # ttft 300, tpot 30, itl mean 50
        rec(3, 1.4, [1.45, 1.46], 2.0, tokens=2),  # ttft 50, tpot 550, itl mean 10
        # failures: counted, excluded from distributions, inside the window
        rec(4, 1.5, [1.6], 1.7, tokens=None, status=Status.ERROR, error_kind="http_500"),
        rec(5, 1.6, [], 1.9, tokens=None, status=Status.TIMEOUT),
        rec(6, 1.7, [], 1.8, tokens=None, status=Status.ERROR, error_kind="http_500"),
        # cancelled at the end: counted apart, outside the window
        rec(7, 1.9, [], 3.0, tokens=None, status=Status.CANCELLED, error_kind="cancelled"),
    ]


def test_summary_counts_errors_and_excludes_warmup() -> None:
    s = summarize(_run())
    assert (s.completed, s.failed, s.cancelled, s.warmup) == (3, 3, 1, 1)
    assert s.errors == {"http_500": 2, "timeout": 1}
    assert s.ttft_ms.count == s.e2e_ms.count == s.tpot_ms.count == 3
    assert s.ttft_ms.max == pytest.approx(300.0)
    assert s.ttft_ms.p50 == pytest.approx(100.0)
    assert s.itl_ms.count == 3 + 2 + 1  # pooled gaps of successful requests only
    assert sorted(s.itl_mean_ms.to_json()[k] for k in ("min", "max")) == pytest.approx([10.0, 50.0])
    assert s.tpot_ms.p50 == pytest.approx(100.0 / 3)
    assert s.e2e_ms.max == pytest.approx(600.0)


def test_summary_window_and_rates() -> None:
    s = summarize(_run())
    assert s.window_s == pytest.approx((1.0, 2.0))  # first measured send → last measured completion
    assert s.duration_s == pytest.approx(1.0)
    assert s.output_tokens == 12 and s.input_tokens == 30
    assert s.output_tokens_per_s == pytest.approx(12.0)
    assert s.total_tokens_per_s == pytest.approx(42.0)
    assert s.requests_per_s == pytest.approx(3.0)
    assert s.send_rate_per_s == pytest.approx(5 / 0.7)  # 6 measured sends from 1.0 to 1.7 s
    assert measured_window(_run()) == s.window_s


def test_explicit_window_overrides() -> None:
    s = summarize(_run(), window=(0.0, 4.0))
    assert s.requests_per_s == pytest.approx(0.75)
    assert s.output_tokens_per_s == pytest.approx(3.0)


def test_goodput_without_slo_equals_request_rate() -> None:
    s = summarize(_run())
    assert s.slo_met == 3
    assert s.goodput_requests_per_s == pytest.approx(s.requests_per_s)


def test_goodput_with_slo_counts_only_requests_meeting_every_bound() -> None:
    s = summarize(_run(), slo=Slo.parse("ttft_ms=200"))  # requests 1 and 3
    assert s.slo_met == 2
    assert s.goodput_requests_per_s == pytest.approx(2.0)
    s = summarize(_run(), slo=Slo.parse("ttft_ms=200,tpot_ms=50"))  # request 3 has tpot 550
    assert s.slo_met == 1
    s = summarize(_run(), slo=Slo.parse("itl_ms=40"))  # mean ITL 30, 50, 10
    assert s.slo_met == 2
    s = summarize(_run(), slo=Slo.parse("e2e_ms=300"))  # e2e 200, 450, 600
    assert s.slo_met == 1


def test_slo_on_undefined_metrics() -> None:
    one_token = rec(1, 0.0, [0.1], 0.2, tokens=1)
    unknown = rec(2, 0.0, [0.1, 0.2], 0.3, tokens=None, tokens_from="none")
    s = summarize([one_token, unknown], slo=Slo.parse("tpot_ms=50,itl_ms=1000"))
    assert s.slo_met == 1  # one token cannot exceed a TPOT bound; an unknown count cannot prove it


def test_tokens_from_breakdown_and_unknown_counts_flagged() -> None:
    records = [
        rec(1, 0.0, [0.1, 0.2], 1.0, tokens=5, tokens_from="usage"),
        rec(2, 0.0, [0.1, 0.2], 1.0, tokens=7, tokens_from="tokenizer"),
        rec(3, 0.0, [0.1, 0.2], 1.0, tokens=None, tokens_from="none", input_tokens=None),
    ]
    s = summarize(records)
    assert s.tokens_from == {"none": 1, "tokenizer": 1, "usage": 1}
    # Known counts are summed, but a rate over an undercount is not a figure: it is unknown, with why.
    assert s.output_tokens == 12 and s.output_tokens_per_s is None and s.total_tokens_per_s is None
    assert "1 of 3 successful requests have no output token count" in s.unknown["output_tokens_per_s"]
    assert s.output_tokens_incomplete and s.input_tokens_incomplete
    assert {f.kind for f in s.flags} >= {"tokens_unknown", "tokens_estimated"}
    assert s.to_json()["output_tokens_per_s"] is None and s.to_json()["unknown"] == s.unknown
    known = summarize(records[:2])
    assert not known.output_tokens_incomplete and known.output_tokens_per_s == pytest.approx(12.0)


def test_empty_run_summarizes_to_nothing() -> None:
    s = summarize([])
    assert (s.completed, s.failed, s.window_s, s.requests_per_s, s.client_bound) == (0, 0, None, None, False)
    json.dumps(s.to_json())


def test_to_json_has_the_contract_fields() -> None:
    out = json.loads(json.dumps(summarize(_run(), slo=Slo.parse("ttft_ms=200")).to_json()))
    assert out["requests"]["completed"] == 3 and out["requests"]["failed"] == 3
    assert out["requests"]["errors"] == {"http_500": 2, "timeout": 1}
    for key in ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"):
        assert {"mean", "p50", "p90", "p95", "p99", "p999", "std", "min", "max", "count"} <= set(out[key])
    assert out["output_tokens_per_s"] == pytest.approx(12.0)
    assert out["requests_per_s"] == pytest.approx(3.0)
    assert out["goodput_requests_per_s"] == pytest.approx(2.0)
    assert out["total_tokens_per_s"] == pytest.approx(42.0)
    assert out["client_bound"] is False and out["client_bound_reasons"] == []
    assert out["slo"] == {"ttft_ms": 200.0}


def test_absolute_perf_counter_times_give_the_same_summary() -> None:
    shift = 123456.789
    shifted = [
        rec(
            r.request_id,
            r.start_s + shift,
            [t + shift for t in r.token_chunk_s],
            r.end_s + shift,
            r.output_tokens,
            status=r.status,
            warmup=r.warmup,
            error_kind=r.error_kind,
        )
        for r in _run()
    ]
    a, b = summarize(_run()).to_json(), summarize(shifted).to_json()
    assert b["ttft_ms"]["p50"] == pytest.approx(a["ttft_ms"]["p50"], abs=1e-6)
    assert b["requests_per_s"] == pytest.approx(a["requests_per_s"], rel=1e-9)


# Client-bound check ---------------------------------------------------------------------------------


def _lagged(lag_s: float, e2e_s: float, n: int = 20) -> list[RequestRecord]:
    return [
        rec(
            i,
            i + lag_s,
            [i + lag_s + 0.01, i + lag_s + 0.02],
            i + lag_s + e2e_s,
            tokens=2,
            scheduled=float(i),
        )
        for i in range(n)
    ]


def test_client_bound_when_requests_are_sent_late() -> None:
    s = summarize(_lagged(lag_s=0.05, e2e_s=0.2))  # 50 ms late, limit max(10, 5% of 200) = 10 ms
    assert s.client_bound
    assert len(s.client_bound_reasons) == 1 and "scheduling lag" in s.client_bound_reasons[0]
    assert s.sched_lag_ms.p99 == pytest.approx(50.0)


def test_lag_limit_scales_with_e2e_latency() -> None:
    assert not summarize(_lagged(lag_s=0.001, e2e_s=0.2)).client_bound  # 1 ms < 10 ms
    assert not summarize(_lagged(lag_s=0.03, e2e_s=1.0)).client_bound  # 30 ms < 5% of 1 s
    assert summarize(_lagged(lag_s=0.06, e2e_s=1.0)).client_bound


def test_client_bound_when_client_cpu_saturates_one_core() -> None:
    records = _lagged(lag_s=0.0, e2e_s=0.2)
    busy = summarize(records, client=ClientStats(cpu_s=9.5, wall_s=10.0, cores=2))
    assert busy.client_bound and busy.client_cpu_share == pytest.approx(0.95)
    assert "CPU" in busy.client_bound_reasons[0]
    idle = summarize(records, client=ClientStats(cpu_s=3.0, wall_s=10.0, cores=2))
    assert not idle.client_bound
    assert idle.to_json()["client"] == {"cpu_share": 0.3, "cores": 2, "cpu_s": 3.0, "wall_s": 10.0}
    assert ClientStats.from_json(idle.to_json()["client"]) == idle.client
    both = summarize(_lagged(lag_s=0.05, e2e_s=0.2), client=ClientStats(cpu_s=10.0, wall_s=10.0, cores=2))
    assert len(both.client_bound_reasons) == 2
