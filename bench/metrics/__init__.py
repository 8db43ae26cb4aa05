"""Metrics as pure functions over RequestRecords: per-request latencies, distributions, run summaries."""

from bench.metrics.distribution import Distribution, percentile
from bench.metrics.request import DEFAULT_ATTAINMENT, SLO_KEYS, RequestMetrics, Slo, request_metrics
from bench.metrics.summary import (
    ClientStats,
    RunSummary,
    WorkerStats,
    client_bound_reasons,
    measured_window,
    summarize,
)

__all__ = [
    "DEFAULT_ATTAINMENT",
    "SLO_KEYS",
    "ClientStats",
    "Distribution",
    "RequestMetrics",
    "RunSummary",
    "Slo",
    "WorkerStats",
    "client_bound_reasons",
    "measured_window",
    "percentile",
    "request_metrics",
    "summarize",
]
