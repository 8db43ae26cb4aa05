"""The operating point of a target: the load at which its cost and speed are read.

Preferred: a goodput run (`--profile goodput`, which searched for the highest load meeting the SLO).
Otherwise the best stored load run whose SLO attainment meets the target, flagged "operating point not
searched". Without any SLO there is no operating point ("n/a: no SLO"): saturation is never used instead.
Attainment is the share of measured requests that met every bound, errors counting as misses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bench.store import RunInfo

DEFAULT_TARGET_ATTAINMENT = 0.99
OpStatus = Literal["goodput", "not-searched", "slo-unmet", "no-slo", "no-load-run"]


def attainment(summary: dict[str, Any] | None) -> float | None:
    """slo_met ÷ (completed + failed); None without an SLO or without measured requests."""
    if not summary or not summary.get("slo"):
        return None
    req = summary.get("requests") or {}
    n = int(req.get("completed") or 0) + int(req.get("failed") or 0)
    return None if n == 0 else float(summary.get("slo_met") or 0) / n


def load_point(profile: dict[str, Any]) -> tuple[str, float] | None:
    """The load dimension and value of a run's profile: ('concurrency', 16) or ('rate', 4.0)."""
    op = profile.get("operating_point")
    if isinstance(op, dict) and op.get("dimension") and op.get("value") is not None:
        return str(op["dimension"]), float(op["value"])
    kind = profile.get("kind")
    if kind == "synchronous":
        return "concurrency", 1.0
    if kind == "concurrent" and profile.get("concurrency") is not None:
        return "concurrency", float(profile["concurrency"])
    if kind in ("constant", "poisson") and profile.get("rate") is not None:
        return "rate", float(profile["rate"])
    return None


def describe_point(point: tuple[str, float] | None) -> str:
    if point is None:
        return "unknown load"
    dim, value = point
    return f"concurrency {value:g}" if dim == "concurrency" else f"{value:.3g} req/s"


@dataclass(frozen=True)
class OperatingPoint:
    """Which run speed and cost are read from, and why; `display` is the run latency columns show."""

    status: OpStatus
    run: RunInfo | None  # the operating point (None: no cost at an operating point)
    display: RunInfo | None  # the run the latency columns come from (the operating point when there is one)
    attainment: float | None
    target: float
    slo: dict[str, float] | None
    note: str
    warnings: list[str] = field(default_factory=list)

    @property
    def meets_slo(self) -> bool:
        return self.status in ("goodput", "not-searched")

    @property
    def point(self) -> tuple[str, float] | None:
        return None if self.run is None else load_point(self.run.profile)

    def to_json(self) -> dict[str, Any]:
        point = self.point
        return {
            "status": self.status,
            "run_id": None if self.run is None else self.run.id,
            "display_run_id": None if self.display is None else self.display.id,
            "dimension": None if point is None else point[0],
            "value": None if point is None else point[1],
            "attainment": self.attainment,
            "target_attainment": self.target,
            "slo": self.slo,
            "note": self.note,
            "warnings": list(self.warnings),
        }


def _usable(run: RunInfo) -> bool:
    return run.kind == "load" and run.summary is not None and run.status in ("complete", "partial")


def _throughput(run: RunInfo) -> float:
    value = (run.summary or {}).get("output_tokens_per_s")
    return float(value) if isinstance(value, int | float) else -1.0


def choose_operating_point(
    runs: Sequence[RunInfo], target: float = DEFAULT_TARGET_ATTAINMENT
) -> OperatingPoint:
    """The operating point among one target's load runs (newest first or in any order)."""
    usable = sorted((r for r in runs if _usable(r)), key=lambda r: r.started_at, reverse=True)
    if not usable:
        return OperatingPoint("no-load-run", None, None, None, target, None, "no load run for this target")
    goodput = [r for r in usable if r.profile.get("kind") == "goodput"]
    if goodput:
        run = next((r for r in goodput if r.status == "complete"), goodput[0])
        op = run.profile.get("operating_point") or {}
        got = op.get("attainment")
        got = float(got) if isinstance(got, int | float) else attainment(run.summary)
        slo = (run.summary or {}).get("slo")
        wanted = float(op.get("target_attainment") or target)
        warnings = [str(w) for w in op.get("warnings") or []]
        if got is not None and got < wanted:
            note = f"the goodput search found no load meeting the SLO (attainment {got:.1%} < {wanted:.0%})"
            return OperatingPoint("slo-unmet", None, run, got, wanted, slo, note, warnings)
        note = f"goodput search: {describe_point(load_point(run.profile))}"
        return OperatingPoint("goodput", run, run, got, wanted, slo, note, warnings)
    with_slo = [(r, a) for r in usable if (a := attainment(r.summary)) is not None]
    if not with_slo:
        latest = next((r for r in usable if r.status == "complete"), usable[0])
        return OperatingPoint("no-slo", None, latest, None, target, None, "n/a: no SLO")
    meeting = [(r, a) for r, a in with_slo if a >= target]
    if not meeting:
        best, got = max(with_slo, key=lambda pair: (pair[1], _throughput(pair[0])))
        slo = (best.summary or {}).get("slo")
        note = (
            f"no load run meets the SLO: best attainment {got:.1%} < {target:.0%} "
            f"({describe_point(load_point(best.profile))})"
        )
        return OperatingPoint("slo-unmet", None, best, got, target, slo, note)
    run, got = max(meeting, key=lambda pair: (_throughput(pair[0]), pair[0].started_at))
    slo = (run.summary or {}).get("slo")
    note = (
        f"operating point not searched: best of {len(with_slo)} load runs meeting the SLO "
        f"({describe_point(load_point(run.profile))})"
    )
    return OperatingPoint("not-searched", run, run, got, target, slo, note)
