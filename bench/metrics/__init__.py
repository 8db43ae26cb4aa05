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
from bench.metrics.workload import (
    CacheMeasure,
    PrefixCounters,
    SessionFigures,
    TurnFigures,
    prefix_cache_delta,
)

__all__ = [
    "DEFAULT_ATTAINMENT",
    "SLO_KEYS",
    "CacheMeasure",
    "ClientStats",
    "Distribution",
    "PrefixCounters",
    "RequestMetrics",
    "RunSummary",
    "SessionFigures",
    "Slo",
    "TurnFigures",
    "WorkerStats",
    "client_bound_reasons",
    "measured_window",
    "percentile",
    "prefix_cache_delta",
    "request_metrics",
    "summarize",
]
