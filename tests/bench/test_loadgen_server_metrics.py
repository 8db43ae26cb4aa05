"""The Prometheus sampler: parsing, sampling a live page, and skipping a server without one."""

from __future__ import annotations

import asyncio
import contextlib
import time

from timing_server import TimingServer

from bench.loadgen.server_metrics import WANTED, ServerMetricsSampler, metrics_url, parse_prometheus

PAGE = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_waiting{engine="0",model_name="m"} 1.0
vllm:num_requests_waiting_total{model_name="m"} 99.0
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:gpu_cache_usage_perc 0.5
vllm:prompt_tokens_total{model_name="m"} 1234.0
vllm:num_requests_running{engine="1",model_name="m"} NaN
"""


def test_parse_keeps_only_wanted_series() -> None:
    samples = parse_prometheus(PAGE, WANTED, 1.5)
    got = {(s.name, s.labels.get("engine")): s.value for s in samples}
    assert got == {
        ("vllm:num_requests_running", "0"): 3.0,
        ("vllm:num_requests_waiting", "0"): 1.0,
        ("vllm:kv_cache_usage_perc", "0"): 0.25,
        ("vllm:gpu_cache_usage_perc", None): 0.5,
    }
    assert all(s.t_s == 1.5 for s in samples)
    assert samples[0].labels == {"engine": "0", "model_name": "m"}


def test_metrics_url() -> None:
    assert metrics_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/metrics"
    assert metrics_url("http://h:1/v1/") == "http://h:1/metrics"


def _sample_for(url: str, seconds: float) -> ServerMetricsSampler:
    sampler = ServerMetricsSampler(url, time.perf_counter(), every_s=0.1)

    async def go() -> None:
        task = asyncio.create_task(sampler.run())
        await asyncio.sleep(seconds)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(go())
    return sampler


def test_sampler_reads_a_live_page() -> None:
    with TimingServer() as server:
        sampler = _sample_for(metrics_url(server.url), 0.55)
    assert sampler.available is True
    names = {s.name for s in sampler.samples}
    assert names == {"vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"}
    times = sorted({s.t_s for s in sampler.samples})
    assert len(times) >= 3 and times == sorted(times)


def test_sampler_stops_quietly_on_404() -> None:
    with TimingServer() as server:
        sampler = _sample_for(server.url.removesuffix("/v1") + "/no-metrics-here", 0.3)
    assert sampler.available is False and sampler.samples == []
