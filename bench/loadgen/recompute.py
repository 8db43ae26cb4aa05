"""Rebuild a stored load run's summary from its raw records and the inputs the run stored with them.

A load run stores, besides its records, everything its summary was computed from: the SLO (profile
`slo`), what was sent (profile `sent`, which decides `fixed_length`), the load it was asked for (its
profile's target), the client's CPU over the run (summary `client`, and `workers` for a run over worker
processes), and the server's prefix-cache counters over the measured window and the designed reuse share
(summary `cache`). `recompute` therefore reproduces the stored summary exactly, field for field.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bench.loadgen.documents import LoadRunProfile
from bench.metrics import RunSummary, Slo, summarize
from bench.records import RequestRecord


def summary_inputs(profile: LoadRunProfile, summary: RunSummary | None) -> dict[str, Any]:
    """The keyword arguments of `summarize` that a run stored (SLO, client stats, fixed length, target,
    server cache counters, designed reuse)."""
    cache = None if summary is None else summary.cache
    return {
        "server_cache": None if cache is None else cache.server,
        "designed_reuse": None if cache is None else cache.designed_reuse,
        "slo": Slo.parse(profile.slo) if profile.slo else None,
        "client": None if summary is None else summary.client,
        "fixed_length": None if profile.sent is None else profile.sent.ignore_eos,
        "attainment_target": profile.attainment_target,
        "load_target": profile.target,
        "workers": [] if summary is None else summary.workers,
    }


def recompute(
    records: Iterable[RequestRecord], profile: LoadRunProfile, summary: RunSummary | None
) -> RunSummary:
    """The run's summary computed again from its stored records (times as stored: since its origin)."""
    return summarize(records, **summary_inputs(profile, summary))
