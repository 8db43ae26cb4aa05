"""Server-level behaviour: /metrics in Prometheus format, capacity queueing, serve_mock's clean shutdown."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from serve.mock.server import running_mock
from serve.specs import LatencyModel, MockSpec


def parse_prometheus(text: str) -> dict[str, dict[str, float]]:
    """{metric name: {label string: value}} from the text exposition format."""
    out: dict[str, dict[str, float]] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        name, _, labels = series.partition("{")
        out.setdefault(name, {})[labels.rstrip("}")] = float(value)
    for name in out:
        base = name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
        assert name in types or base in types, f"{name} has no TYPE line"
    return out


def _total(metrics: dict[str, dict[str, float]], name: str) -> float:
    return sum(metrics[name].values())


def test_metrics_count_requests_and_tokens() -> None:
    with running_mock(MockSpec(model="mock-1", port=0)) as url, httpx.Client(base_url=url) as http:
        body = {"model": "mock-1", "messages": [{"role": "user", "content": "12345678"}], "max_tokens": 10}
        for _ in range(3):
            assert http.post("/v1/chat/completions", json=body).status_code == 200
        assert http.post("/v1/chat/completions", json={**body, "stream": True}).status_code == 200
        assert http.post("/v1/chat/completions", json={"model": "mock-1"}).status_code == 400
        response = http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    metrics = parse_prometheus(response.text)
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:gpu_cache_usage_perc",
    ):
        assert metrics[name] == {'model_name="mock-1"': 0.0}
    assert _total(metrics, "vllm:request_success_total") == 4
    assert metrics["vllm:request_success_total"]['model_name="mock-1",finished_reason="length"'] == 4
    assert _total(metrics, "vllm:prompt_tokens_total") == 8
    assert _total(metrics, "vllm:generation_tokens_total") == 40
    assert metrics["vllm:time_to_first_token_seconds_count"] == {'model_name="mock-1"': 4.0}
    assert metrics["vllm:time_to_first_token_seconds_bucket"]['model_name="mock-1",le="+Inf"'] == 4
    assert _total(metrics, "llmbench_mock_bad_requests_total") == 1
    assert _total(metrics, "llmbench_mock_chunks_total") == 10


def test_capacity_queues_requests_and_shows_waiting() -> None:
    latency = LatencyModel(ttft_ms=250, itl_ms=5, capacity=1)
    with running_mock(MockSpec(model="m", port=0, latency=latency)) as url:
        statuses: list[int] = []

        def call() -> None:
            body = {
                "model": "m",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 4,
                "stream": True,
            }
            with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as response:
                text = "".join(response.iter_text())
            statuses.append(response.status_code if text.endswith("data: [DONE]\n\n") else -1)

        threads = [threading.Thread(target=call) for _ in range(3)]
        for thread in threads:
            thread.start()
        peak = {"waiting": 0.0, "running": 0.0}
        with httpx.Client(base_url=url) as http:
            for _ in range(400):
                metrics = parse_prometheus(http.get("/metrics").text)
                for key in peak:
                    peak[key] = max(peak[key], _total(metrics, f"vllm:num_requests_{key}"))
                if peak["waiting"] >= 1 or not any(t.is_alive() for t in threads):
                    break
                time.sleep(0.005)
        for thread in threads:
            thread.join(timeout=30)
        with httpx.Client(base_url=url) as http:
            final = parse_prometheus(http.get("/metrics").text)
    assert peak["waiting"] >= 1
    assert peak["running"] == 1  # never more than the capacity
    assert statuses == [200, 200, 200]
    assert _total(final, "vllm:num_requests_waiting") == 0
    assert _total(final, "vllm:request_success_total") == 3


def test_serve_mock_stops_cleanly_on_sigterm() -> None:
    code = (
        "from serve.mock.launch import serve_mock\n"
        "from serve.specs import MockSpec\n"
        "serve_mock(MockSpec(model='m', port=0), lambda url: print(url, flush=True))\n"
        "print('stopped', flush=True)\n"
    )
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=root)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert httpx.get(url + "/health").status_code == 200
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert out.strip() == "stopped"


def test_client_going_away_frees_its_slot() -> None:
    latency = LatencyModel(ttft_ms=50, itl_ms=50, capacity=1)
    with running_mock(MockSpec(model="m", port=0, latency=latency)) as url:
        body = {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 200,
            "stream": True,
        }
        with httpx.stream("POST", url + "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            next(response.iter_lines())  # generation has started; now hang up
        # 200 tokens x 50 ms would hold the only slot for 10 s; the next request must not wait for it.
        reply = httpx.post(
            url + "/v1/chat/completions", json={**body, "stream": False, "max_tokens": 2}, timeout=5
        )
        metrics = parse_prometheus(httpx.get(url + "/metrics").text)
    assert reply.json()["usage"]["completion_tokens"] == 2
    assert _total(metrics, "llmbench_mock_cancelled_total") == 1
    assert _total(metrics, "vllm:num_requests_running") == 0
