"""`--fail-on` gates of `llmbench compare`: 'ttft_p95>+10%,accuracy<-2pts,cost_per_correct>+5%'.

A gate is METRIC, '>' or '<', a signed threshold and a unit: '%' (change relative to BASE), 'pts' (accuracy
points) or 'ms' (absolute). A gate *fails* when the measured change crosses the threshold in the gate's
direction AND the change is significant at 5% (its 95% CI excludes 0, or McNemar p < 0.05 for accuracy):
a crossing the noise could explain passes, and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bench.errors import UsageError

Unit = Literal["%", "pts", "ms"]
_GATE = re.compile(r"^\s*([a-z0-9_]+)\s*([<>])\s*([+-]?\d+(?:\.\d+)?)\s*(%|pts?|points|ms)?\s*$")


@dataclass(frozen=True, slots=True)
class Gate:
    """One condition that fails the comparison."""

    metric: str
    op: Literal[">", "<"]
    threshold: float
    unit: Unit

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.threshold:+g}{self.unit}"

    def crossed(self, change: float) -> bool:
        """Whether a change (in this gate's unit) crosses the threshold."""
        return change > self.threshold if self.op == ">" else change < self.threshold


def parse_gates(text: str, metrics: dict[str, str], *, flag: str = "--fail-on") -> list[Gate]:
    """Parse a comma-separated gate list; `metrics` maps each known metric to its natural unit."""
    gates: list[Gate] = []
    for part in (p for p in text.split(",") if p.strip()):
        match = _GATE.match(part.lower())
        if match is None:
            raise UsageError(
                f"{part.strip()!r} is not METRIC>VALUE[%|pts|ms] (e.g. ttft_p95>+10%)", flag=flag
            )
        metric, op, value, unit = match.groups()
        if metric not in metrics:
            raise UsageError(
                f"unknown metric {metric!r}; gates can use {', '.join(sorted(metrics))}", flag=flag
            )
        unit = {"pt": "pts", "points": "pts", None: metrics[metric]}.get(unit, unit)
        natural = metrics[metric]
        if unit == "pts" and natural != "pts":
            raise UsageError(f"{metric} is not an accuracy: use % or {natural}", flag=flag)
        if unit == "ms" and natural != "ms":
            raise UsageError(f"{metric} is not a latency in ms: use %", flag=flag)
        gates.append(Gate(metric, op, float(value), unit))  # type: ignore[arg-type]
    if not gates:
        raise UsageError("no gate given (e.g. ttft_p95>+10%)", flag=flag)
    return gates
