"""The goodput search as a pure state machine: which load to probe next, and the operating point.

Doubling from `start` until a probe misses the attainment target (or `max_load` is reached), then
`steps` bisections between the highest passing and the lowest missing load. A probe passes when it is
valid and its attainment point estimate meets the target; its Wilson interval is kept, and a probe whose
interval straddles the target is named in the warnings (more requests per probe would decide it).
Concurrency is a whole number, so bisection stops when the two bounds are adjacent.

A probe is **invalid** when it measured something other than the server at its load: the client was the
bottleneck, the responses were not streamed, or the load was never reached (see bench.metrics.load). An
invalid probe neither passes nor misses: the search cannot see beyond it, so it stops there. The operating
point is then the highest valid pass below it, and is **capped**: the true operating point may be higher,
so a cost read there is an upper bound. A search whose every probe passed up to `max_load` is capped the
same way, at its ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Stage = Literal["double", "bisect"]


@dataclass(frozen=True)
class Probe:
    """One measured load: its run, attainment with its 95% interval, and whether it passed."""

    load: float
    stage: Stage
    run_id: str
    attainment: float | None
    ci95: tuple[float, float] | None
    passed: bool
    measured_load: float | None = None  # mean in flight in the steady window, or the achieved rate
    invalid: tuple[str, ...] = ()  # why the probe measured something else than the server at its load
    retried: tuple[str, ...] = ()  # runs of this probe that were invalid and measured again (oldest first)

    @property
    def valid(self) -> bool:
        return not self.invalid

    @property
    def verdict(self) -> str:
        """'pass', 'miss' or 'invalid'."""
        return "invalid" if self.invalid else ("pass" if self.passed else "miss")

    def to_json(self) -> dict[str, Any]:
        return {
            "load": self.load,
            "stage": self.stage,
            "run_id": self.run_id,
            "attainment": self.attainment,
            "ci95": None if self.ci95 is None else list(self.ci95),
            "passed": self.passed,
            "measured_load": self.measured_load,
            "valid": self.valid,
            "invalid": list(self.invalid),
            "verdict": self.verdict,
            "retried": list(self.retried),
        }


@dataclass
class GoodputSearch:
    """Feed it each probe's attainment; it says the next load, and at the end the operating point."""

    dimension: Literal["rate", "concurrency"]
    start: float
    max_load: float
    target: float
    steps: int
    probes: list[Probe] = field(default_factory=list)
    _bisections: int = 0

    def _round(self, load: float) -> float:
        return float(max(1, round(load))) if self.dimension == "concurrency" else load

    @property
    def best(self) -> Probe | None:
        """The highest passing probe."""
        passed = [p for p in self.probes if p.passed]
        return max(passed, key=lambda p: p.load) if passed else None

    @property
    def lowest_miss(self) -> Probe | None:
        misses = [p for p in self.probes if p.valid and not p.passed]
        return min(misses, key=lambda p: p.load) if misses else None

    @property
    def blocked_by(self) -> Probe | None:
        """The invalid probe that ended the search, if one did."""
        return next((p for p in self.probes if not p.valid), None)

    @property
    def capped(self) -> str | None:
        """Why the operating point is only a lower bound on the load the server can take; None if it is not.

        The search stopped at an invalid probe above the best pass, or every probe passed up to the ceiling.
        """
        best = self.best
        if best is None:
            return None
        blocked = self.blocked_by
        if blocked is not None and (self.lowest_miss is None or blocked.load < self.lowest_miss.load):
            return (
                f"the probe at {blocked.load:g} was invalid ({'; '.join(blocked.invalid)}): the search "
                f"could not measure above {best.load:g}, so the operating point is at least {best.load:g}"
            )
        if self.lowest_miss is None and best.load >= self.max_load:
            return (
                f"every probe up to the ceiling {self.max_load:g} met the SLO: the operating point is at "
                f"least {best.load:g} (raise max_load)"
            )
        return None

    def next_load(self) -> tuple[float, Stage] | None:
        """The next load to probe, or None when the search is over."""
        if not self.probes:
            return self._round(self.start), "double"
        if not self.probes[-1].valid:
            return None  # nothing beyond an invalid probe can be measured
        best, miss = self.best, self.lowest_miss
        if miss is None:
            assert best is not None
            if best.load >= self.max_load:
                return None
            return self._round(min(best.load * 2, self.max_load)), "double"
        if best is None:
            return None  # even the first probe missed: no operating point at or above `start`
        if self._bisections >= self.steps:
            return None
        middle = self._round((best.load + miss.load) / 2)
        if middle <= best.load or middle >= miss.load:
            return None  # adjacent whole numbers: nothing left to bisect
        return middle, "bisect"

    def record(
        self,
        load: float,
        stage: Stage,
        run_id: str,
        attainment: float | None,
        ci95: tuple[float, float] | None,
        *,
        measured_load: float | None = None,
        invalid: tuple[str, ...] = (),
        retried: tuple[str, ...] = (),
    ) -> Probe:
        """Add one probe's outcome (attainment None: nothing could be measured, a miss; `invalid`: the
        reasons it measured something else than the server at its load, so it can neither pass nor miss)."""
        passed = not invalid and attainment is not None and attainment >= self.target
        probe = Probe(
            load, stage, run_id, attainment, ci95, passed, measured_load, tuple(invalid), tuple(retried)
        )
        self.probes.append(probe)
        if stage == "bisect":
            self._bisections += 1
        return probe

    def warnings(self) -> list[str]:
        """Probes whose interval straddles the target, and a search that was capped (see `capped`)."""
        out = []
        straddling = [
            p
            for p in self.probes
            if p.valid
            and p.attainment is not None
            and p.ci95 is not None
            and p.ci95[0] < self.target <= p.ci95[1]
        ]
        if straddling:
            loads = ", ".join(f"{p.load:g} ({'pass' if p.passed else 'miss'})" for p in straddling)
            out.append(
                f"{len(straddling)} of {len(self.probes)} probes were judged on their point estimate while "
                f"their 95% interval straddles the target {self.target:.1%}: {loads}; more requests per "
                "probe would decide them"
            )
        capped = self.capped
        if capped is not None:
            out.append(capped)
        return out
