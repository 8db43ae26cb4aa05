"""The mock's counters and their Prometheus text exposition under vLLM's metric names."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

# vLLM's buckets for vllm:time_to_first_token_seconds and vllm:e2e_request_latency_seconds (s).
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0)


@dataclass
class Histogram:
    """A Prometheus histogram (values in seconds)."""

    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        """Add one observation (s)."""
        self.counts[bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1


@dataclass
class MockStats:
    """What the mock has done since it started (requests, tokens, chunks, errors, queue)."""

    requests: int = 0  # generation requests received (valid or not)
    ok: int = 0  # generation requests answered in full
    bad_requests: int = 0  # 4xx answers to malformed requests or unknown models
    injected_429: int = 0
    injected_500: int = 0
    cancelled: int = 0  # the client went away before the answer ended
    running: int = 0  # generating now
    waiting: int = 0  # queued behind `capacity`
    prompt_tokens: int = 0
    generation_tokens: int = 0
    prefix_cache_queries: int = 0  # prompt tokens looked up in the prompt cache
    prefix_cache_hits: int = 0  # of which served from it
    chunks: int = 0  # streamed content chunks sent
    finished: dict[str, int] = field(default_factory=lambda: {"stop": 0, "length": 0})
    ttft: Histogram = field(default_factory=lambda: Histogram(TTFT_BUCKETS))
    e2e: Histogram = field(default_factory=lambda: Histogram(E2E_BUCKETS))


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_prometheus(stats: MockStats, model: str, capacity: int | None) -> str:
    """Prometheus text format 0.0.4, vLLM's names, every sample labelled with model_name."""
    label = f'model_name="{_label(model)}"'
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, value: float, extra: str = "") -> None:
        if not lines or not lines[-1].startswith(name + "{"):
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
        lines.append(f"{name}{{{label}{extra}}} {float(value)}")

    # Without a capacity nothing ever fills up: report an empty cache.
    usage = min(1.0, stats.running / capacity) if capacity else 0.0
    metric(
        "vllm:num_requests_running", "gauge", "Number of requests in model execution batches.", stats.running
    )
    metric("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", stats.waiting)
    metric("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.", usage)
    metric("vllm:gpu_cache_usage_perc", "gauge", "GPU KV-cache usage (deprecated alias).", usage)
    metric("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.", stats.prompt_tokens)
    metric(
        "vllm:generation_tokens_total",
        "counter",
        "Number of generation tokens processed.",
        stats.generation_tokens,
    )
    metric(
        "vllm:prefix_cache_queries_total",
        "counter",
        "Prefix cache queries, in terms of number of queried tokens.",
        stats.prefix_cache_queries,
    )
    metric(
        "vllm:prefix_cache_hits_total",
        "counter",
        "Prefix cache hits, in terms of number of cached tokens.",
        stats.prefix_cache_hits,
    )
    for reason, count in stats.finished.items():
        help_text = "Count of successfully processed requests."
        metric("vllm:request_success_total", "counter", help_text, count, f',finished_reason="{reason}"')
    for name, hist, help_text in (
        ("vllm:time_to_first_token_seconds", stats.ttft, "Histogram of time to first token in seconds."),
        (
            "vllm:e2e_request_latency_seconds",
            stats.e2e,
            "Histogram of end to end request latency in seconds.",
        ),
    ):
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} histogram")
        running = 0
        for bound, count in zip((*hist.buckets, float("inf")), hist.counts, strict=True):
            running += count
            le = "+Inf" if bound == float("inf") else repr(float(bound))
            lines.append(f'{name}_bucket{{{label},le="{le}"}} {float(running)}')
        lines.append(f"{name}_count{{{label}}} {float(hist.count)}")
        lines.append(f"{name}_sum{{{label}}} {hist.total}")
    for name, value in (
        ("llmbench_mock_injected_429_total", stats.injected_429),
        ("llmbench_mock_injected_500_total", stats.injected_500),
        ("llmbench_mock_bad_requests_total", stats.bad_requests),
        ("llmbench_mock_cancelled_total", stats.cancelled),
        ("llmbench_mock_chunks_total", stats.chunks),
    ):
        metric(name, "counter", "Mock server counter.", value)
    return "\n".join(lines) + "\n"
