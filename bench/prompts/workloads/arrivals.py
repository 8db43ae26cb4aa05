"""Arrival times under a rate that changes over time: steps, ramps and bursts, Poisson or gamma arrivals.

The rate is piecewise: each phase holds a rate, or ramps linearly from `rate` to `rate_to`, for its
duration. Arrivals come by time rescaling: a renewal process of unit rate runs in "operational time"
s = Λ(t) = ∫₀ᵗ rate(u) du, and each of its points s is sent at t = Λ⁻¹(s). Its gaps are

- `constant`: exactly 1, so the counts are exact: a step from 2/s to 10/s at t = 5 s sends arrivals at
  s = 0, 1, 2, …: 10 in the first 5 s (s < 10) and 50 in the next 5 s (10 ≤ s < 60);
- `poisson`: exponential with mean 1 (a Poisson process of the given rate);
- `gamma`: gamma with mean 1 and shape k = 1/b², so the coefficient of variation of the gaps is the
  burstiness b (b = 1 is Poisson; b > 1 burstier, b < 1 more regular).

The first arrival is at t = 0 (s = 0), as in the load generator's own schedules.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ArrivalKind = Literal["poisson", "gamma", "constant"]
MAX_ARRIVALS = 5_000_000  # a schedule is precomputed: keep it within memory


class Phase(BaseModel):
    """One stretch of a rate profile: a steady rate (a step or a burst), or a linear ramp."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    duration_s: float = Field(gt=0, description="how long the phase lasts (s)")
    rate: float = Field(ge=0, description="requests per second (at the start, for a ramp)")
    rate_to: float | None = Field(None, ge=0, description="a ramp: the rate at the end of the phase (req/s)")

    @property
    def end_rate(self) -> float:
        return self.rate if self.rate_to is None else self.rate_to

    @property
    def expected(self) -> float:
        """Requests the phase is expected to send: the area under its rate."""
        return (self.rate + self.end_rate) / 2 * self.duration_s

    def time_at(self, u: float) -> float:
        """The time into the phase (s) at which its cumulative rate reaches `u` (0 ≤ u ≤ expected)."""
        r0, r1, d = self.rate, self.end_rate, self.duration_s
        if r1 == r0:
            return u / r0
        if u <= 0:
            return 0.0
        a = (r1 - r0) / (2 * d)  # Λ(τ) = r0 τ + a τ²; the stable root of a τ² + r0 τ − u = 0
        return 2 * u / (r0 + math.sqrt(max(0.0, r0 * r0 + 4 * a * u)))


class ArrivalProcess(BaseModel):
    """How arrivals are spaced around the rate: Poisson, gamma with a burstiness, or evenly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ArrivalKind = "poisson"
    burstiness: float = Field(
        1.0, gt=0, description="gamma: coefficient of variation of the gaps (shape = 1/burstiness²)"
    )

    @model_validator(mode="after")
    def _burstiness_for_gamma(self) -> ArrivalProcess:
        if self.kind != "gamma" and self.burstiness != 1.0:
            raise ValueError(f"burstiness applies to gamma arrivals, not {self.kind!r}; set kind: gamma")
        return self

    def unit_gaps(self, rng: random.Random) -> float:
        """One gap of a renewal process of rate 1."""
        if self.kind == "constant":
            return 1.0
        if self.kind == "poisson":
            return rng.expovariate(1.0)
        shape = 1.0 / self.burstiness**2
        return rng.gammavariate(shape, 1.0 / shape)


def arrival_times(phases: Sequence[Phase], process: ArrivalProcess, seed: int) -> list[float]:
    """Every arrival (s from the start) over `phases`, deterministic from `seed`."""
    total = sum(p.expected for p in phases)
    if total > MAX_ARRIVALS:
        raise ValueError(f"the phases ask for about {total:,.0f} requests; at most {MAX_ARRIVALS:,} fit")
    rng = random.Random(f"{seed}:arrivals")
    times: list[float] = []
    s = 0.0
    start_t = start_s = 0.0  # where the current phase starts, in time and in operational time
    phase = 0
    while phase < len(phases):
        p = phases[phase]
        if s < start_s + p.expected:
            times.append(start_t + min(p.time_at(s - start_s), p.duration_s))
            s += process.unit_gaps(rng)
            continue
        start_t += p.duration_s
        start_s += p.expected
        phase += 1
    return times


def steady(rate: float, duration_s: float) -> list[Phase]:
    """One phase at a steady rate."""
    return [Phase(duration_s=duration_s, rate=rate)]
