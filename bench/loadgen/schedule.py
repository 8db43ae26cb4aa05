"""Send plans: the precomputed open-loop schedule, and the pacing of a closed loop.

An open-loop schedule is fixed before the first request goes out (deterministic from the seed): send
times never depend on responses, so a slow server cannot slow the offered load.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from bench.loadgen.profiles import Limits, RunProfile

# Cap on a precomputed schedule; protects memory against e.g. --rate 1e6 --duration 3600.
MAX_SCHEDULED = 5_000_000


@dataclass(frozen=True, slots=True)
class Plan:
    """How the runner paces one run: closed loop (`concurrency` set) or open loop (`offsets_s` set)."""

    concurrency: int | None  # closed loop: requests in flight
    offsets_s: tuple[float, ...] | None  # open loop: send times relative to the run's origin (s)
    warmup_count: int  # open loop: the first this many offsets are warm-up; closed loop: first sends
    limits: Limits

    @property
    def open_loop(self) -> bool:
        return self.offsets_s is not None

    @property
    def planned_requests(self) -> int | None:
        """Requests to send including warm-up, when known in advance."""
        if self.offsets_s is not None:
            return len(self.offsets_s)
        if self.limits.requests is not None and not self.limits.warmup.seconds:
            return self.limits.requests + self.limits.warmup.requests
        return None


def arrival_offsets(kind: str, rate: float, seed: int) -> Iterator[float]:
    """Endless send times (s from origin) at `rate` per second: evenly spaced, or Poisson from `seed`."""
    if kind == "constant":
        i = 0
        while True:
            yield i / rate
            i += 1
    rng = random.Random(seed)
    t = 0.0
    while True:
        yield t
        t += rng.expovariate(rate)


def open_schedule(kind: str, rate: float, seed: int, limits: Limits) -> tuple[tuple[float, ...], int]:
    """The whole open-loop schedule under `limits`: (offsets in s, number of warm-up requests first)."""
    if kind == "poisson":
        return _poisson_schedule(rate, seed, limits)
    offsets: list[float] = []
    warmup = 0
    measure_start: float | None = None
    measured = 0
    for t in arrival_offsets(kind, rate, seed):
        if len(offsets) >= MAX_SCHEDULED:
            break
        if _is_warmup(limits, len(offsets), t):
            offsets.append(t)
            warmup += 1
            continue
        if measure_start is None:
            measure_start = t
        if limits.duration_s is not None and t - measure_start >= limits.duration_s:
            break
        if limits.requests is not None and measured >= limits.requests:
            break
        offsets.append(t)
        measured += 1
    return tuple(offsets), warmup


def _is_warmup(limits: Limits, index: int, t: float) -> bool:
    return index < limits.warmup.requests if limits.warmup.requests else t < limits.warmup.seconds


def _poisson_schedule(rate: float, seed: int, limits: Limits) -> tuple[tuple[float, ...], int]:
    """Poisson arrivals; the measured part is conditioned on its count so it offers exactly `rate`.

    Given N arrivals of a Poisson process in a window, their times are N uniform points in it. The measured
    sends are drawn that way: the first and last fixed (N − 1)/rate s apart, N − 2 uniform points between.
    A free-running process would miss the target by sampling noise alone (±1.8% at 1σ for 3,000 sends),
    which would hide what the client's own timing does. Warm-up sends are plain exponential gaps.
    """
    rng = random.Random(seed)
    offsets: list[float] = []
    t = 0.0
    while _is_warmup(limits, len(offsets), t) and len(offsets) < MAX_SCHEDULED:
        offsets.append(t)
        t += rng.expovariate(rate)
    warmup = len(offsets)
    start = max(t, limits.warmup.seconds)
    counts = [limits.requests] if limits.requests is not None else []
    if limits.duration_s is not None:
        counts.append(max(1, math.ceil(rate * limits.duration_s - 1e-9)))
    n = min([*counts, MAX_SCHEDULED - warmup])
    span = (n - 1) / rate
    inner = sorted(rng.uniform(0.0, span) for _ in range(max(0, n - 2)))
    measured = [start] + [start + u for u in inner] + ([start + span] if n > 1 else [])
    return tuple(offsets + measured), warmup


def make_plan(profile: RunProfile, limits: Limits) -> Plan:
    """Turn a runnable profile (not a sweep) and its limits into a Plan."""
    if profile.kind == "constant" or profile.kind == "poisson":
        seed = profile.seed if profile.kind == "poisson" else 0
        offsets, warmup = open_schedule(profile.kind, profile.rate, seed, limits)
        return Plan(concurrency=None, offsets_s=offsets, warmup_count=warmup, limits=limits)
    return Plan(
        concurrency=profile.concurrency, offsets_s=None, warmup_count=limits.warmup.requests, limits=limits
    )
