"""Rebuild a stored load run's summary from its raw records and the inputs the run stored with them.

A load run stores, besides its records, everything its summary was computed from: the SLO (profile
`slo`), what was sent (profile `sent`, which decides `fixed_length`) and the client's CPU over the run
(summary `client`). `recompute` therefore reproduces the stored summary exactly, field for field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bench.metrics import ClientStats, RunSummary, Slo, summarize
from bench.metrics.load import LoadTarget
from bench.records import RequestRecord


def summary_inputs(profile: Mapping[str, Any], summary: Mapping[str, Any] | None) -> dict[str, Any]:
    """The keyword arguments of `summarize` that a run stored (SLO, client stats, fixed length)."""
    sent = profile.get("sent")
    return {
        "slo": Slo.parse(profile["slo"]) if profile.get("slo") else None,
        "client": ClientStats.from_json((summary or {}).get("client")),
        "fixed_length": bool(sent["ignore_eos"]) if isinstance(sent, Mapping) else None,
        "attainment_target": profile.get("attainment_target"),
        "load_target": LoadTarget.from_profile(dict(profile)),
    }


def recompute(
    records: Iterable[RequestRecord], profile: Mapping[str, Any], summary: Mapping[str, Any] | None
) -> RunSummary:
    """The run's summary computed again from its stored records (times as stored: since its origin)."""
    return summarize(records, **summary_inputs(profile, summary))
