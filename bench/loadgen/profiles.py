"""Load profiles: what to send and when, as validated specs in a registry keyed by `kind`.

A profile says how requests are paced (closed loop: a fixed number in flight; open loop: a precomputed
send schedule that never waits for responses). `Limits` says how much to send (warm-up, a request count
and/or a duration, cool-down grace). `sweep` is a plan over other profiles, expanded by the caller after it
has measured the synchronous and the maximum rate (see `sweep_rates`).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bench.errors import UsageError
from bench.metrics import DEFAULT_ATTAINMENT, RunSummary
from bench.metrics.summary import INVALID_PROBE
from bench.records import DEFAULT_TIMEOUT_S

DEFAULT_REQUESTS = 100  # measured requests when neither a count nor a duration is given
DEFAULT_SWEEP_POINTS = 5  # rates a sweep measures between the synchronous and the maximum rate
DEFAULT_MAX_LOAD = 1024.0  # a goodput search doubles its load up to this (req/s or requests in flight)
DEFAULT_SEARCH_STEPS = 3  # bisection steps of a goodput search after the doubling
MIN_ROUNDS = 4  # a closed-loop probe sends at least this many requests per slot, so its load settles
MIN_PROBE_S = 5.0  # an open-loop probe sends for at least this many seconds
# An invalid probe (the client starved, the load not reached) is measured again up to this many times before
# it ends the search: on a shared machine one stall spoils a run without saying anything about the server.
# Every attempt is stored; the probe records the invalid runs it replaced.
INVALID_RETRIES = 2
# What a retry can cure: a client starved for a moment, a load not held. A stalled client also reads the
# streams that piled up meanwhile in one read (not_streamed beside client_bound); a probe that did not
# stream while its client kept up says something about the server (it buffers its answers) and would say
# it again: it alone is not retried.
RETRIED_INVALID = ("client_bound", "load_not_reached")


def worth_retrying(summary: RunSummary) -> bool:
    """Whether an invalid probe may have been spoiled (by the client, for a moment) rather than be wrong."""
    kinds = {f.kind for f in summary.flags if f.kind in INVALID_PROBE}
    return bool(kinds & set(RETRIED_INVALID))


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SynchronousProfile(_Spec):
    """One request at a time: the next is sent when the previous one completes."""

    kind: Literal["synchronous"] = "synchronous"

    @property
    def concurrency(self) -> int:
        return 1

    @property
    def label(self) -> str:
        return "synchronous"


class ConcurrentProfile(_Spec):
    """Closed loop: `concurrency` requests always in flight; a slot is refilled when a request ends."""

    kind: Literal["concurrent"] = "concurrent"
    concurrency: int = Field(ge=1, le=100_000, description="requests in flight")

    @property
    def label(self) -> str:
        return f"concurrent {self.concurrency}"


class ConstantProfile(_Spec):
    """Open loop: requests sent at evenly spaced times, `rate` per second, whatever the responses do."""

    kind: Literal["constant"] = "constant"
    rate: float = Field(gt=0, le=1_000_000, description="requests per second")

    @property
    def label(self) -> str:
        return f"constant {self.rate:g}/s"


class PoissonProfile(_Spec):
    """Open loop: exponential gaps with mean 1/`rate` s, drawn from `seed`, whatever the responses do."""

    kind: Literal["poisson"] = "poisson"
    rate: float = Field(gt=0, le=1_000_000, description="mean requests per second")
    seed: int = 0

    @property
    def label(self) -> str:
        return f"poisson {self.rate:g}/s"


class SweepProfile(_Spec):
    """Synchronous run, maximum-throughput run, then `points` open-loop rates evenly between the two."""

    kind: Literal["sweep"] = "sweep"
    points: int = Field(
        DEFAULT_SWEEP_POINTS, ge=1, le=100, description="rates measured between the synchronous and max rate"
    )
    throughput_concurrency: int = Field(
        256, ge=1, le=100_000, description="requests in flight for the maximum-throughput run"
    )
    rate_kind: Literal["constant", "poisson"] = "constant"
    seed: int = 0

    @property
    def label(self) -> str:
        return f"sweep {self.points} points"


class GoodputProfile(_Spec):
    """The SLO operating point: the highest load whose SLO attainment is at least `target`.

    Probes double the load from `start` until one misses, then bisect between the last pass and the first
    miss `steps` times; a final run at the highest passing load is the operating point. Attainment is the
    share of measured requests that met every SLO bound (errors and cut-off requests count as misses).
    """

    kind: Literal["goodput"] = "goodput"
    dimension: Literal["rate", "concurrency"] = "concurrency"
    start: float = Field(1.0, gt=0, description="first probe's load (req/s or requests in flight)")
    max_load: float = Field(DEFAULT_MAX_LOAD, gt=0, description="doubling stops here")
    target: float = Field(DEFAULT_ATTAINMENT, gt=0, le=1, description="SLO attainment to meet")
    steps: int = Field(DEFAULT_SEARCH_STEPS, ge=0, le=12, description="bisection steps after the doubling")
    rate_kind: Literal["constant", "poisson"] = "poisson"
    seed: int = 0
    min_rounds: int = Field(
        MIN_ROUNDS,
        ge=1,
        le=1000,
        description="closed loop: a probe sends at least this many requests per slot",
    )
    min_seconds: float = Field(
        MIN_PROBE_S, gt=0, description="open loop: a probe sends for at least this many seconds"
    )
    retries: int = Field(
        INVALID_RETRIES, ge=0, le=5, description="an invalid probe is measured again up to this many times"
    )

    @property
    def label(self) -> str:
        return f"goodput ({self.dimension}, attainment ≥ {self.target:g})"

    def probe_limits(self, load: float, limits: Limits) -> Limits:
        """The limits of one probe at `load`: a request-bound probe is lengthened until it can hold its load
        (`min_rounds` requests per slot, or `min_seconds` of sends), so it measures a steady state, not a
        burst. A duration-bound probe keeps its duration."""
        if limits.requests is None or limits.duration_s is not None:
            return limits
        if self.dimension == "concurrency":
            need = self.min_rounds * max(1, round(load))
        else:
            need = math.ceil(load * self.min_seconds)
        return limits if limits.requests >= need else limits.model_copy(update={"requests": need})

    def probe(self, load: float) -> ConcurrentProfile | ConstantProfile | PoissonProfile:
        """The run profile of one probe at `load`."""
        if self.dimension == "concurrency":
            return ConcurrentProfile(concurrency=max(1, round(load)))
        if self.rate_kind == "poisson":
            return PoissonProfile(rate=load, seed=self.seed)
        return ConstantProfile(rate=load)


Profile = Annotated[
    SynchronousProfile | ConcurrentProfile | ConstantProfile | PoissonProfile | SweepProfile | GoodputProfile,
    Field(discriminator="kind"),
]
RunProfile = SynchronousProfile | ConcurrentProfile | ConstantProfile | PoissonProfile

PROFILES: dict[str, type[_Spec]] = {
    "synchronous": SynchronousProfile,
    "concurrent": ConcurrentProfile,
    "constant": ConstantProfile,
    "poisson": PoissonProfile,
    "sweep": SweepProfile,
    "goodput": GoodputProfile,
}
OPEN_LOOP = ("constant", "poisson")


class Warmup(_Spec):
    """Warm-up before measuring: a number of requests or a number of seconds (excluded from results)."""

    requests: int = Field(0, ge=0)
    seconds: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _one(self) -> Warmup:
        if self.requests and self.seconds:
            raise ValueError("give warm-up as requests or as seconds, not both")
        return self

    @classmethod
    def parse(cls, text: str, *, flag: str = "--warmup") -> Warmup:
        """Parse `10` (requests) or `5s` (seconds)."""
        raw = text.strip().lower()
        try:
            if raw.endswith("s"):
                seconds = float(raw[:-1])
                if not math.isfinite(seconds) or seconds < 0:
                    raise ValueError
                return cls(seconds=seconds)
            count = int(raw)
            if count < 0:
                raise ValueError
            return cls(requests=count)
        except ValueError:
            raise UsageError(
                f"{text!r} is neither a request count (e.g. 10) nor seconds (e.g. 5s)", flag=flag
            ) from None

    def __str__(self) -> str:
        return f"{self.seconds:g}s" if self.seconds else str(self.requests)


class Limits(_Spec):
    """How much one run sends: warm-up, then `requests` measured requests and/or `duration_s` seconds."""

    requests: int | None = Field(None, ge=1, description="measured requests (warm-up not counted)")
    duration_s: float | None = Field(None, gt=0, description="measured seconds after warm-up")
    warmup: Warmup = Warmup()
    grace_s: float = Field(
        DEFAULT_TIMEOUT_S,
        ge=0,
        description="cool-down: wait this long for in-flight requests (s); by default as long as the "
        "request timeout, so every request that can finish does (none is left out of the tails)",
    )
    max_error_rate: float | None = Field(
        None, gt=0, le=1, description="stop the run when this share of measured requests has failed"
    )

    @model_validator(mode="before")
    @classmethod
    def _some_limit(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("requests") is None and data.get("duration_s") is None:
            return {**data, "requests": DEFAULT_REQUESTS}
        return data


def parse_list(text: str, *, flag: str, integer: bool) -> list[float] | list[int]:
    """Parse a comma-separated list of positive numbers, e.g. `1,4,16,64` (UsageError names `flag`)."""
    values: list[float] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise UsageError(
                f"{part!r} is not a number (expected a list such as 1,4,16)", flag=flag
            ) from None
        if not math.isfinite(value) or value <= 0:
            raise UsageError(f"{part} must be a positive number", flag=flag)
        if integer and value != int(value):
            raise UsageError(f"{part} must be a whole number", flag=flag)
        values.append(value)
    if not values:
        raise UsageError("no value given (expected a list such as 1,4,16)", flag=flag)
    return [int(v) for v in values] if integer else values


def sweep_rates(sync_rate: float, max_rate: float, points: int) -> list[float]:
    """`points` rates evenly spaced strictly between the synchronous and the maximum rate (req/s)."""
    low, high = sorted((sync_rate, max_rate))
    step = (high - low) / (points + 1)
    return [low + step * i for i in range(1, points + 1)]
