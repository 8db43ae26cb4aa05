"""The operating point of a target: the load at which its cost and speed are read.

Preferred: a goodput run (`--profile goodput`, which searched for the highest load meeting the SLO).
Otherwise the best stored *valid* load run whose SLO attainment meets the target, flagged "operating point
not searched". Without any SLO there is no operating point ("n/a: no SLO"): saturation is never used
instead. Attainment is the one stored figure (bench.metrics.summary): the share of measured requests that
met every bound, errors and cut-off requests counting as misses. A run is valid when it reached its load,
streamed, and its client was not the bottleneck (bench.metrics.load); an invalid run never stands as an
operating point. A goodput search that stopped at its ceiling or at an invalid probe is *capped*: its
operating point is a lower bound on the load, so a cost read there is an upper bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bench.metrics import DEFAULT_ATTAINMENT, RunSummary
from bench.store import RunInfo

DEFAULT_TARGET_ATTAINMENT = DEFAULT_ATTAINMENT  # defined once, in bench.metrics
OpStatus = Literal["goodput", "not-searched", "slo-unmet", "no-slo", "no-load-run", "no-valid-run"]


def attainment(summary: RunSummary | None) -> float | None:
    """The run's stored SLO attainment (bench.metrics.summary); None without an SLO or measured requests."""
    share = None if summary is None else summary.slo_attainment
    return None if share is None else share.value


def measured_load(summary: RunSummary | None) -> float | None:
    """The load the run really put on the server (mean in flight in its steady window, or its send rate)."""
    return None if summary is None or summary.load is None else summary.load.measured


def invalid_reasons(summary: RunSummary | None) -> list[str]:
    """Why a run cannot stand as an operating point (its stored flags that make a probe invalid)."""
    return [] if summary is None else summary.invalid_reasons


def load_point(run: RunInfo) -> tuple[str, float] | None:
    """The load dimension and value a load run stands for: ('concurrency', 16) or ('rate', 4.0)."""
    return run.load_profile.load_point if run.kind == "load" else None


def describe_point(point: tuple[str, float] | None, measured: float | None = None) -> str:
    """'concurrency 16 (15.8 in flight)' or '4 req/s (3.98 sent/s)': the label and, when known, the load
    that was measured beside it."""
    if point is None:
        return "unknown load"
    dim, value = point
    label = f"concurrency {value:g}" if dim == "concurrency" else f"{value:.3g} req/s"
    if measured is None:
        return label
    return (
        f"{label} ({measured:.3g} in flight)" if dim == "concurrency" else f"{label} ({measured:.3g} sent/s)"
    )


@dataclass(frozen=True)
class OperatingPoint:
    """Which run speed and cost are read from, and why; `display` is the run latency columns show."""

    status: OpStatus
    run: RunInfo | None  # the operating point (None: no cost at an operating point)
    display: RunInfo | None  # the run the latency columns come from (the operating point when there is one)
    attainment: float | None
    target: float
    slo: dict[str, float] | None  # the SLO's bounds (ms) by key
    note: str
    warnings: list[str] = field(default_factory=list)
    capped: str | None = None  # why the operating point is only a lower bound on the load (cost upper bound)

    @property
    def measured(self) -> float | None:
        return None if self.run is None else measured_load(self.run.load_summary)

    @property
    def meets_slo(self) -> bool:
        return self.status in ("goodput", "not-searched")

    @property
    def point(self) -> tuple[str, float] | None:
        return None if self.run is None else load_point(self.run)

    def to_json(self) -> dict[str, Any]:
        point = self.point
        return {
            "status": self.status,
            "run_id": None if self.run is None else self.run.id,
            "display_run_id": None if self.display is None else self.display.id,
            "dimension": None if point is None else point[0],
            "value": None if point is None else point[1],
            "measured": self.measured,
            "capped": self.capped,
            "attainment": self.attainment,
            "target_attainment": self.target,
            "slo": self.slo,
            "note": self.note,
            "warnings": list(self.warnings),
        }


def _usable(run: RunInfo) -> bool:
    return run.kind == "load" and run.load_summary is not None and run.status in ("complete", "partial")


def _throughput(run: RunInfo) -> float:
    value = steady_output_tokens_per_s(run.load_summary)
    return -1.0 if value is None else value


def steady_output_tokens_per_s(summary: RunSummary | None) -> float | None:
    """Output tok/s in the run's steady window; the whole run's for runs stored before steady windows."""
    if summary is None:
        return None
    if summary.load is not None and summary.load.steady is not None:
        return summary.load.steady.output_tokens_per_s
    return summary.output_tokens_per_s


def _slo(run: RunInfo) -> dict[str, float] | None:
    summary = run.load_summary
    return None if summary is None or summary.slo is None else summary.slo.to_json()


def choose_operating_point(
    runs: Sequence[RunInfo], target: float = DEFAULT_TARGET_ATTAINMENT
) -> OperatingPoint:
    """The operating point among one target's load runs (newest first or in any order)."""
    usable = sorted((r for r in runs if _usable(r)), key=lambda r: r.started_at, reverse=True)
    if not usable:
        return OperatingPoint("no-load-run", None, None, None, target, None, "no load run for this target")
    goodput = [r for r in usable if r.load_profile.kind == "goodput"]
    if goodput:
        run = next((r for r in goodput if r.status == "complete"), goodput[0])
        op = run.load_profile.operating_point
        got = op.attainment if op is not None and op.attainment is not None else attainment(run.load_summary)
        wanted = op.target_attainment if op is not None else target
        warnings = list(op.warnings) if op is not None else []
        if got is not None and got < wanted:
            note = f"the goodput search found no load meeting the SLO (attainment {got:.1%} < {wanted:.0%})"
            return OperatingPoint("slo-unmet", None, run, got, wanted, _slo(run), note, warnings)
        capped = None if op is None else op.capped
        invalid = invalid_reasons(run.load_summary)
        if invalid:
            # The final run at the operating point did not hold its load: its throughput is not the
            # server's at that load, so the cost read from it can only be an upper bound.
            why = "; ".join(invalid)
            capped = f"the run at the operating point is invalid ({why})" + (f"; {capped}" if capped else "")
            warnings.append(f"the run at the operating point is invalid: {why}")
        point = describe_point(load_point(run), measured_load(run.load_summary))
        bound = " — capped, cost is an upper bound"
        if run.target.kind in ("api", "mock"):  # billed per token: the load reached does not change the cost
            bound = " — capped: the load it holds is at least this"
        note = f"goodput search: {point}" + (bound if capped else "")
        return OperatingPoint("goodput", run, run, got, wanted, _slo(run), note, warnings, capped)
    all_slo = [(r, a) for r in usable if (a := attainment(r.load_summary)) is not None]
    if not all_slo:
        latest = next((r for r in usable if r.status == "complete"), usable[0])
        return OperatingPoint("no-slo", None, latest, None, target, None, "n/a: no SLO")
    with_slo = [(r, a) for r, a in all_slo if not invalid_reasons(r.load_summary)]
    if not with_slo:
        latest, got = all_slo[0]
        why = "; ".join(invalid_reasons(latest.load_summary))
        note = f"no valid load run: every run with an SLO is invalid (newest: {why})"
        return OperatingPoint("no-valid-run", None, latest, got, target, _slo(latest), note)
    meeting = [(r, a) for r, a in with_slo if a >= target]
    if not meeting:
        best, got = max(with_slo, key=lambda pair: (pair[1], _throughput(pair[0])))
        note = (
            f"no valid load run meets the SLO: best attainment {got:.1%} < {target:.0%} "
            f"({describe_point(load_point(best), measured_load(best.load_summary))})"
        )
        return OperatingPoint("slo-unmet", None, best, got, target, _slo(best), note)
    run, got = max(meeting, key=lambda pair: (_throughput(pair[0]), pair[0].started_at))
    note = (
        f"operating point not searched: best of {len(with_slo)} valid load runs meeting the SLO "
        f"({describe_point(load_point(run), measured_load(run.load_summary))})"
    )
    return OperatingPoint("not-searched", run, run, got, target, _slo(run), note)
