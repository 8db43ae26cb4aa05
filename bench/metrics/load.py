"""The load a run really put on the server, and the window of steady load its figures are read in.

A profile's label ("concurrency 64", "poisson 8/s") is what was asked for; what the server saw is measured
here from the records' send and end times:

- **In flight**: the time-weighted mean number of requests in flight over a window, i.e. the sum over
  requests of the time each spent in flight inside the window, divided by the window's length (Little's
  law: mean in flight = arrival rate × mean time in system). Its maximum comes from the step function of
  sends and ends.
- **Steady window**: closed loop (a target concurrency c), from the first moment at least 0.95·c
  requests are in flight to the last moment that is still so, and the mean in flight inside it must be at
  least 0.95·c (slots refilled on time); open loop (a target rate), from the first to the last measured
  send. The window must cover at least half of the measured window, or the run was a burst that never
  settled (`load_not_reached`). An open-loop run also needs its achieved send rate within
  5% of the target and its sends to span at least twice the median end-to-end latency (so requests in
  flight had time to build up).
- **Throughput in the window**: output tokens emitted inside it ÷ its length, each successful request's
  output tokens spread evenly over its token-bearing chunks (a request that streamed no chunk emits all
  its tokens at its end). Requests/s and goodput/s count successful completions inside the window.
- **Noise**: the window is cut into `BATCHES` equal batches; the output tok/s of each batch gives a 95%
  t-interval of the mean (batch means). A figure read from one probe thus states its own noise.
- **Latency in the window**: over successful requests sent inside it; attainment over every measured
  request sent inside it (errors and cut-off requests count as misses).

**Sessions** (multi-turn workloads): the load is sessions, not requests. A session occupies its slot from
its first turn's send to its last answer, think times included (bench.metrics.workload.session_occupancy);
"in flight" then counts sessions active, the steady window of a closed loop (c sessions at once) is where
at least 0.95·c sessions are active, and an open loop's send rate and span are those of session starts.
Throughput, latency and attainment inside the window are still read from the requests.

Everything is a pure function of the records and the target, so a stored summary recomputes exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bench.metrics.distribution import Distribution
from bench.metrics.request import RequestMetrics, Slo
from bench.records import RequestRecord, Status
from bench.stats import mean_ci95

STEADY_SHARE = 0.95  # of the target concurrency: in flight at or above this is steady load
MIN_STEADY_SHARE = 0.5  # the steady window must cover at least this share of the measured window
RATE_TOLERANCE = 0.05  # an open-loop run's achieved send rate may fall this far short of the target
MIN_SPAN_E2E = 2.0  # an open-loop run's sends must span this many median e2e latencies
BATCHES = 5  # batch means over the steady window

Dimension = Literal["concurrency", "rate"]


@dataclass(frozen=True, slots=True)
class LoadTarget:
    """The load a run was asked for: requests in flight (closed loop) or requests per second (open)."""

    dimension: Dimension
    value: float

    def to_json(self) -> dict[str, Any]:
        return {"dimension": self.dimension, "value": self.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadTarget:
        """Inverse of `to_json`."""
        dimension: Dimension = "rate" if data["dimension"] == "rate" else "concurrency"
        return cls(dimension, float(data["value"]))

    @property
    def label(self) -> str:
        return f"concurrency {self.value:g}" if self.dimension == "concurrency" else f"{self.value:g} req/s"


@dataclass(frozen=True, slots=True)
class Steady:
    """Figures read inside the window of steady load (times in the records' base, s; rates per s)."""

    window_s: tuple[float, float]
    in_flight_mean: float
    output_tokens: float | None  # emitted inside the window; None when some count is unknown
    output_tokens_per_s: float | None
    output_tokens_per_s_ci95: tuple[float, float] | None  # batch means
    batch_output_tokens_per_s: list[float]
    requests_per_s: float
    goodput_requests_per_s: float
    ttft_ms: Distribution
    tpot_ms: Distribution
    slo_attainment: float | None  # met ÷ every measured request sent inside the window; None without SLO
    sent: int  # measured requests sent inside the window

    @property
    def duration_s(self) -> float:
        return self.window_s[1] - self.window_s[0]

    @property
    def noise(self) -> float | None:
        """Half-width of the throughput's 95% interval relative to its value (0.05 = ±5%)."""
        ci, tps = self.output_tokens_per_s_ci95, self.output_tokens_per_s
        if ci is None or not tps:
            return None
        return (ci[1] - ci[0]) / 2 / tps

    def to_json(self) -> dict[str, Any]:
        return {
            "window_s": list(self.window_s),
            "duration_s": self.duration_s,
            "in_flight_mean": self.in_flight_mean,
            "output_tokens": self.output_tokens,
            "output_tokens_per_s": self.output_tokens_per_s,
            "output_tokens_per_s_ci95": None
            if self.output_tokens_per_s_ci95 is None
            else list(self.output_tokens_per_s_ci95),
            "batch_output_tokens_per_s": list(self.batch_output_tokens_per_s),
            "noise": self.noise,
            "requests_per_s": self.requests_per_s,
            "goodput_requests_per_s": self.goodput_requests_per_s,
            "ttft_ms": self.ttft_ms.to_json(),
            "tpot_ms": self.tpot_ms.to_json(),
            "slo_attainment": self.slo_attainment,
            "sent": self.sent,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Steady:
        """Inverse of `to_json` (`duration_s` and `noise` are derived, not read)."""
        ci = data.get("output_tokens_per_s_ci95")
        return cls(
            window_s=(float(data["window_s"][0]), float(data["window_s"][1])),
            in_flight_mean=float(data["in_flight_mean"]),
            output_tokens=data.get("output_tokens"),
            output_tokens_per_s=data.get("output_tokens_per_s"),
            output_tokens_per_s_ci95=None if ci is None else (float(ci[0]), float(ci[1])),
            batch_output_tokens_per_s=[float(v) for v in data.get("batch_output_tokens_per_s") or []],
            requests_per_s=float(data["requests_per_s"]),
            goodput_requests_per_s=float(data["goodput_requests_per_s"]),
            ttft_ms=Distribution.from_json(data.get("ttft_ms") or {"count": 0}),
            tpot_ms=Distribution.from_json(data.get("tpot_ms") or {"count": 0}),
            slo_attainment=data.get("slo_attainment"),
            sent=int(data.get("sent") or 0),
        )


@dataclass(frozen=True, slots=True)
class LoadMeasure:
    """What load the run put on the server, whether it reached its target, and its steady window."""

    target: LoadTarget | None
    in_flight_mean: float | None  # over the measured window
    in_flight_max: int
    send_rate_per_s: float | None  # (n − 1) ÷ span of the measured sends
    steady: Steady | None
    reached: bool
    reasons: list[str] = field(default_factory=list)  # why the target load was not reached

    @property
    def measured(self) -> float | None:
        """The load in the target's own unit: mean in flight in the steady window, or the send rate."""
        if self.target is None:
            return None
        if self.target.dimension == "rate":
            return self.send_rate_per_s
        if self.steady is not None:
            return self.steady.in_flight_mean
        return self.in_flight_mean

    def to_json(self) -> dict[str, Any]:
        return {
            "target": None if self.target is None else self.target.to_json(),
            "measured": self.measured,
            "in_flight_mean": self.in_flight_mean,
            "in_flight_max": self.in_flight_max,
            "send_rate_per_s": self.send_rate_per_s,
            "reached": self.reached,
            "reasons": list(self.reasons),
            "steady": None if self.steady is None else self.steady.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadMeasure:
        """Inverse of `to_json` (`measured` is derived, not read)."""
        target, steady = data.get("target"), data.get("steady")
        return cls(
            target=None if target is None else LoadTarget.from_json(target),
            in_flight_mean=data.get("in_flight_mean"),
            in_flight_max=int(data.get("in_flight_max") or 0),
            send_rate_per_s=data.get("send_rate_per_s"),
            steady=None if steady is None else Steady.from_json(steady),
            reached=bool(data.get("reached", True)),
            reasons=[str(r) for r in data.get("reasons") or []],
        )


def mean_in_flight(intervals: Sequence[tuple[float, float]], window: tuple[float, float]) -> float | None:
    """Time-weighted mean requests in flight over `window`: Σ overlap(request, window) ÷ window length."""
    a, b = window
    if b <= a:
        return None
    busy = math.fsum(max(0.0, min(end, b) - max(start, a)) for start, end in intervals)
    return busy / (b - a)


def in_flight_steps(intervals: Sequence[tuple[float, float]]) -> list[tuple[float, int]]:
    """The in-flight step function: (time, requests in flight from then on), one step per distinct time.

    At equal times ends are applied before sends (a slot freed and refilled at once stays one slot).
    """
    events = sorted(
        [(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1])
    )
    steps: list[tuple[float, int]] = []
    level = 0
    for t, delta in events:
        level += delta
        if steps and steps[-1][0] == t:
            steps[-1] = (t, level)
        else:
            steps.append((t, level))
    return steps


def steady_window_closed(
    intervals: Sequence[tuple[float, float]], concurrency: float
) -> tuple[float, float] | None:
    """From the first moment ≥ STEADY_SHARE·c requests are in flight to the last moment that is so."""
    threshold = STEADY_SHARE * concurrency
    steps = in_flight_steps(intervals)
    start: float | None = None
    end: float | None = None
    for i, (t, level) in enumerate(steps):
        if level >= threshold:
            if start is None:
                start = t
            end = steps[i + 1][0] if i + 1 < len(steps) else t
    if start is None or end is None or end <= start:
        return None
    return (start, end)


def _tokens_in(
    ok: Sequence[RequestRecord], window: tuple[float, float], batches: int
) -> tuple[float, list[float]] | None:
    """Output tokens emitted inside `window` in total and per equal batch; None when a count is unknown."""
    a, b = window
    width = (b - a) / batches
    per_batch = [0.0] * batches
    for r in ok:
        if r.output_tokens is None:
            return None
        times = r.token_chunk_s or [r.end_s]
        share = r.output_tokens / len(times)
        for t in times:
            if a <= t <= b:
                per_batch[min(batches - 1, int((t - a) / width))] += share
    return math.fsum(per_batch), per_batch


def measure_load(
    measured: Sequence[RequestRecord],
    metrics: dict[int, RequestMetrics],
    target: LoadTarget | None,
    *,
    window: tuple[float, float] | None,
    send_rate: float | None,
    e2e_p50_ms: float | None,
    slo: Slo | None,
    occupancy: Sequence[tuple[float, float]] | None = None,
) -> LoadMeasure:
    """The load of one run's measured records (warm-up excluded; cancelled included while in flight).

    `metrics` maps a successful record's id() to its RequestMetrics; `window` is the measured window.
    `occupancy` (session runs): the (start, end) of what the load counts, one per session, instead of
    the requests' own; `send_rate` is then sessions started per second.
    """
    intervals = [(r.start_s, r.end_s) for r in measured] if occupancy is None else list(occupancy)
    steps = in_flight_steps(intervals)
    in_flight_max = max((level for _, level in steps), default=0)
    mean = None if window is None else mean_in_flight(intervals, window)
    if target is None:
        return LoadMeasure(None, mean, in_flight_max, send_rate, None, True)
    reasons: list[str] = []
    steady_window: tuple[float, float] | None
    if target.dimension == "concurrency":
        steady_window = steady_window_closed(intervals, target.value)
        if steady_window is None:
            reasons.append(
                f"never {STEADY_SHARE:.0%} of the {target.value:g} requests in flight "
                f"(at most {in_flight_max}): more requests per run, or a lower concurrency"
            )
        else:
            held = mean_in_flight(intervals, steady_window) or 0.0
            if held < STEADY_SHARE * target.value:
                reasons.append(
                    f"{held:.3g} of the {target.value:g} requests in flight on average in its steady window "
                    f"(under {STEADY_SHARE:.0%}): free slots were refilled late"
                )
    else:
        sends = sorted(start for start, _ in intervals)
        steady_window = (sends[0], sends[-1]) if len(sends) >= 2 and sends[-1] > sends[0] else None
        if send_rate is None or send_rate < (1 - RATE_TOLERANCE) * target.value:
            got = "unknown" if send_rate is None else f"{send_rate:.3g}/s"
            reasons.append(f"sent at {got}, short of the target {target.value:g}/s")
        if steady_window is not None and e2e_p50_ms is not None:
            span_ms = (steady_window[1] - steady_window[0]) * 1000.0
            if span_ms < MIN_SPAN_E2E * e2e_p50_ms:
                reasons.append(
                    f"the sends spanned {span_ms:.0f} ms, under {MIN_SPAN_E2E:g}× the median latency "
                    f"({e2e_p50_ms:.0f} ms): in-flight requests never built up; run longer"
                )
    if steady_window is not None and window is not None and window[1] > window[0]:
        share = (steady_window[1] - steady_window[0]) / (window[1] - window[0])
        if share < MIN_STEADY_SHARE:
            reasons.append(
                f"steady load held for {share:.0%} of the measured window (under {MIN_STEADY_SHARE:.0%}): "
                "a burst, not a steady state; more requests per run"
            )
    steady = None if steady_window is None else _steady(measured, metrics, intervals, steady_window, slo)
    return LoadMeasure(target, mean, in_flight_max, send_rate, steady, not reasons, reasons)


def _steady(
    measured: Sequence[RequestRecord],
    metrics: dict[int, RequestMetrics],
    intervals: Sequence[tuple[float, float]],
    window: tuple[float, float],
    slo: Slo | None,
) -> Steady:
    a, b = window
    length = b - a
    ok = [r for r in measured if r.status is Status.OK]
    tokens = _tokens_in(ok, window, BATCHES)
    done_ok = [r for r in ok if a <= r.end_s <= b]
    met_in = sum(1 for r in done_ok if slo is None or slo.met_by(metrics[id(r)], r.output_tokens))
    sent_in = [r for r in measured if a <= r.start_s <= b]
    ok_sent = [r for r in sent_in if r.status is Status.OK]
    met_sent = sum(1 for r in ok_sent if slo is None or slo.met_by(metrics[id(r)], r.output_tokens))
    batch_rates = [] if tokens is None else [t / (length / BATCHES) for t in tokens[1]]
    return Steady(
        window_s=window,
        in_flight_mean=mean_in_flight(intervals, window) or 0.0,
        output_tokens=None if tokens is None else tokens[0],
        output_tokens_per_s=None if tokens is None else tokens[0] / length,
        output_tokens_per_s_ci95=mean_ci95(batch_rates),
        batch_output_tokens_per_s=batch_rates,
        requests_per_s=len(done_ok) / length,
        goodput_requests_per_s=met_in / length,
        ttft_ms=Distribution.of(m.ttft_ms for r in ok_sent if (m := metrics[id(r)]).ttft_ms is not None),
        tpot_ms=Distribution.of(m.tpot_ms for r in ok_sent if (m := metrics[id(r)]).tpot_ms is not None),
        slo_attainment=None if slo is None or not sent_in else met_sent / len(sent_in),
        sent=len(sent_in),
    )
