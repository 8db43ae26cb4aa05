"""Fold a run's records into a RunSummary: latency distributions, throughput, goodput, client check."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.metrics.distribution import Distribution
from bench.metrics.load import LoadMeasure, LoadTarget, measure_load
from bench.metrics.request import RequestMetrics, Slo, request_metrics
from bench.metrics.workload import (
    CacheMeasure,
    PrefixCounters,
    SessionFigures,
    TurnFigures,
    cache_measure,
    session_figures,
    session_occupancy,
    session_records,
    turn_figures,
)
from bench.records import RequestRecord, Status, reference_tokens
from bench.stats import wilson

# client_bound thresholds (see `client_bound_reasons`).
LAG_FLOOR_MS = 10.0  # p99 scheduling lag above this ...
LAG_E2E_SHARE = 0.05  # ... and above this share of the median e2e latency means the client sent late
CPU_SHARE_LIMIT = 0.9  # of one core: the load generator's event loop is one thread
LATE_SHARE = 0.01  # client-bound when more than this share of the sends were late ...
LATE_MIN = 2  # ... and at least this many (one hiccup in a short run is not a bottleneck)
SLOT_SHARE_LIMIT = 0.05  # closed loop: client-bound when late refills took more than this share of slot time
# coalesced_reads flag: at least this share of ITL gaps are exactly 0 ms (several events in one socket read),
# over at least COALESCED_MIN_GAPS gaps; such gaps pull ITL percentiles down.
COALESCED_SHARE = 0.05
COALESCED_MIN_GAPS = 20
# not_streamed flag: at least this share of multi-token responses arrived in one socket read (every token
# chunk at the same instant): the response was not streamed, so its TTFT is its e2e and ITL means nothing.
# (Many 0 ms gaps alone only mean a fast server's events were read together: coalesced_reads.)
NOT_STREAMED_SHARE = 0.5
# /1: the summaries stored before the schema key; /2 before `cache`, `turns` and `sessions` (all read alike).
SUMMARY_SCHEMA = "llmbench.load-summary/3"
# Flags that make a run's load figure unusable as a goodput probe or an operating point.
INVALID_PROBE = ("client_bound", "not_streamed", "load_not_reached")
ERROR_TEXT_CHARS = 300  # of the first message of each error kind, in the summary


@dataclass(frozen=True, slots=True)
class Flag:
    """Why a figure of the run must be read with care: a stable `kind` and a sentence for people."""

    kind: str  # failed, errors, cut_off, unfixed_length, tokens_unknown, tokens_estimated, coalesced_reads,
    # client_bound
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "detail": self.detail}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Flag:
        return cls(str(data["kind"]), str(data.get("detail") or ""))


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One kind of failure in a run: how many, the first one's HTTP status and message."""

    kind: str
    count: int
    http_status: int | None
    first_message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "http_status": self.http_status,
            "first_message": self.first_message,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ErrorDetail:
        status = data.get("http_status")
        return cls(str(data["kind"]), int(data["count"]), None if status is None else int(status),
                   str(data.get("first_message") or ""))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Attainment:
    """SLO attainment: requests meeting every bound ÷ every measured request (errors and cut-off requests
    are misses), its Wilson 95% interval, and the target it was judged against (if any)."""

    value: float | None
    ci95: tuple[float, float] | None
    met: int
    n: int
    target: float | None = None

    @property
    def below_target(self) -> bool:
        return self.value is not None and self.target is not None and self.value < self.target

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "ci95": None if self.ci95 is None else list(self.ci95),
            "met": self.met,
            "n": self.n,
            "target": self.target,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attainment:
        ci = data.get("ci95")
        return cls(
            value=data.get("value"),
            ci95=None if ci is None else (float(ci[0]), float(ci[1])),
            met=int(data.get("met") or 0),
            n=int(data.get("n") or 0),
            target=data.get("target"),
        )


@dataclass(frozen=True, slots=True)
class ClientStats:
    """The load generator's own resource use over the run: process CPU seconds, wall seconds, cores."""

    cpu_s: float  # user + system CPU time of the client process (s)
    wall_s: float  # wall time over which cpu_s was taken (s)
    cores: int  # logical cores on the client machine

    @property
    def cpu_share(self) -> float | None:
        """CPU use in cores (1.0 = one core fully busy); None when wall_s is not positive."""
        return self.cpu_s / self.wall_s if self.wall_s > 0 else None

    def to_json(self) -> dict[str, Any]:
        """As stored in the summary (`client`): enough to rebuild it exactly."""
        return {"cpu_share": self.cpu_share, "cores": self.cores, "cpu_s": self.cpu_s, "wall_s": self.wall_s}

    @classmethod
    def from_json(cls, data: Any) -> ClientStats | None:
        """The stats a stored summary kept, or None when it kept none (older runs: cpu_share only)."""
        if not isinstance(data, dict) or data.get("cpu_s") is None or data.get("wall_s") is None:
            return None
        return cls(cpu_s=float(data["cpu_s"]), wall_s=float(data["wall_s"]), cores=int(data["cores"]))


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """One worker process of a multi-process run (`--workers`): its event loop's CPU, its sends and their
    scheduling lag (ms), and the client_bound rule applied to it alone."""

    index: int
    pid: int
    client: ClientStats  # CPU of the worker's event-loop thread over its run
    process_cpu_s: float
    sent: int  # requests it launched, warm-up included
    assigned: int | None  # requests it was given (None: fed on demand)
    max_in_flight: int
    lag_p50_ms: float | None  # scheduling lag of its measured sends (start − scheduled)
    lag_p99_ms: float | None
    lag_max_ms: float | None
    client_bound_reasons: list[str]  # the client_bound rule applied to this worker alone
    ended: str  # how its own runner ended ("lost" when the process died)
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """As stored in the summary's `workers` list."""
        return {
            "index": self.index,
            "pid": self.pid,
            "client": self.client.to_json(),
            "process_cpu_s": self.process_cpu_s,
            "sent": self.sent,
            "assigned": self.assigned,
            "max_in_flight": self.max_in_flight,
            "lag_ms": {"p50": self.lag_p50_ms, "p99": self.lag_p99_ms, "max": self.lag_max_ms},
            "client_bound_reasons": list(self.client_bound_reasons),
            "ended": self.ended,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkerStats:
        """The inverse of `to_json`."""
        lag = data.get("lag_ms") or {}
        client = ClientStats.from_json(data.get("client")) or ClientStats(0.0, 0.0, 1)
        assigned = data.get("assigned")
        return cls(
            index=int(data["index"]),
            pid=int(data.get("pid") or 0),
            client=client,
            process_cpu_s=float(data.get("process_cpu_s") or 0.0),
            sent=int(data.get("sent") or 0),
            assigned=None if assigned is None else int(assigned),
            max_in_flight=int(data.get("max_in_flight") or 0),
            lag_p50_ms=_opt_float(lag.get("p50")),
            lag_p99_ms=_opt_float(lag.get("p99")),
            lag_max_ms=_opt_float(lag.get("max")),
            client_bound_reasons=[str(r) for r in data.get("client_bound_reasons") or []],
            ended=str(data.get("ended") or ""),
            reason=None if data.get("reason") is None else str(data["reason"]),
        )


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a run measured, over its measured (non-warm-up) records. Latencies ms, rates per second."""

    completed: int  # successful requests
    failed: int  # error or timeout
    cancelled: int  # stopped by the run (duration end, Ctrl-C); excluded from everything else
    warmup: int  # warm-up records, excluded from everything
    errors: dict[str, int]  # failed requests by error_kind (status when no kind)
    error_details: list[ErrorDetail]  # per kind: count, HTTP status and the first message
    ttft_ms: Distribution
    ttfb_ms: Distribution
    ttfc_ms: Distribution
    itl_ms: Distribution  # pooled over every gap of every successful request
    itl_mean_ms: Distribution  # one mean ITL per successful request
    tpot_ms: Distribution
    e2e_ms: Distribution
    sched_lag_ms: Distribution  # over all measured requests, failed ones included
    window_s: tuple[float, float] | None  # (start, end) in the records' time base
    input_tokens: int  # successful requests, known counts only
    output_tokens: int  # successful requests, known counts only
    tokens_from: dict[str, int]  # successful requests by where output_tokens came from
    output_tokens_incomplete: bool  # some successful request has no output token count
    input_tokens_incomplete: bool  # some successful request has no input token count
    output_tokens_per_s: float | None  # None when some successful request has no output count
    total_tokens_per_s: float | None
    coalesced_gaps: int  # ITL gaps of exactly 0 ms: events that arrived in one read
    fixed_length: bool | None  # whether the output length was fixed (ignore_eos sent); None: not known
    requests_per_s: float | None
    send_rate_per_s: float | None  # measured sends per second between the first and last send
    slo: Slo | None
    slo_met: int  # successful requests meeting every bound (all of them without an SLO)
    slo_attainment: Attainment | None  # share of measured requests meeting the SLO, Wilson CI, target
    goodput_requests_per_s: float | None
    client: ClientStats | None  # the load generator's own CPU over the run
    client_bound: bool
    client_bound_reasons: list[str] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    unknown: dict[str, str] = field(default_factory=dict)  # figure -> why it could not be measured
    load: LoadMeasure | None = None  # the load really put on the server, and the steady window
    # Successful requests' prompt and output text in reference tokens (⌈UTF-8 bytes ÷ 4⌉, the same count
    # for the same text on every option); None when some request did not record its text's bytes.
    reference_tokens: tuple[int, int] | None = None
    cache_read_tokens: int = 0  # successful requests' prompt tokens read from a cache (part of input)
    cache_write_tokens: int = 0  # successful requests' prompt tokens written to a cache (part of input)
    reasoning_tokens: int = 0  # successful requests' reasoning tokens (part of output)
    # Prompt caching from usage and from the server's counters, beside the designed reuse share
    # (bench.metrics.workload); None for summaries stored before it and runs with nothing to measure.
    cache: CacheMeasure | None = None
    turns: list[TurnFigures] = field(default_factory=list)  # per turn index (session workloads)
    sessions: SessionFigures | None = None  # per-session counts (session workloads)
    # A multi-process run (`--workers`): each worker process's own figures; `client` is then the busiest
    # worker's event loop. Empty for a run sent from one process.
    workers: list[WorkerStats] = field(default_factory=list)

    @property
    def invalid_reasons(self) -> list[str]:
        """Why this run cannot stand as a probe or an operating point (client-bound, not streamed, load
        not reached); empty when it can."""
        return [f"{f.kind}: {f.detail}" for f in self.flags if f.kind in INVALID_PROBE]

    @property
    def client_cpu_share(self) -> float | None:
        """Cores used by the client's event loop (1.0 = one core)."""
        return None if self.client is None else self.client.cpu_share

    @property
    def coalesced_share(self) -> float | None:
        """Share of ITL gaps that are exactly 0 ms; None without gaps."""
        return self.coalesced_gaps / self.itl_ms.count if self.itl_ms.count else None

    @property
    def duration_s(self) -> float | None:
        """Length of the measured window (s)."""
        return None if self.window_s is None else self.window_s[1] - self.window_s[0]

    def to_json(self) -> dict[str, Any]:
        """The `summary` object of the llmbench.load/1 contract, plus extra fields."""
        return {
            "requests": {
                "completed": self.completed,
                "failed": self.failed,
                "cancelled": self.cancelled,
                "warmup": self.warmup,
                "errors": dict(self.errors),
                "error_details": [d.to_json() for d in self.error_details],
            },
            "ttft_ms": self.ttft_ms.to_json(),
            "itl_ms": self.itl_ms.to_json(),
            "tpot_ms": self.tpot_ms.to_json(),
            "e2e_ms": self.e2e_ms.to_json(),
            "itl_mean_ms": self.itl_mean_ms.to_json(),
            "ttfb_ms": self.ttfb_ms.to_json(),
            "ttfc_ms": self.ttfc_ms.to_json(),
            "output_tokens_per_s": self.output_tokens_per_s,
            "total_tokens_per_s": self.total_tokens_per_s,
            "requests_per_s": self.requests_per_s,
            "goodput_requests_per_s": self.goodput_requests_per_s,
            "client_bound": self.client_bound,
            "client_bound_reasons": list(self.client_bound_reasons),
            "flags": [f.to_json() for f in self.flags],
            "unknown": dict(self.unknown),
            "fixed_length": self.fixed_length,
            "coalesced": {
                "gaps": self.coalesced_gaps,
                "of": self.itl_ms.count,
                "share": self.coalesced_share,
            },
            "slo": None if self.slo is None else self.slo.to_json(),
            "slo_met": self.slo_met,
            "slo_attainment": None if self.slo_attainment is None else self.slo_attainment.to_json(),
            "send_rate_per_s": self.send_rate_per_s,
            "duration_s": self.duration_s,
            "window_s": None if self.window_s is None else list(self.window_s),
            "tokens": {
                "input": self.input_tokens,
                "output": self.output_tokens,
                "from": dict(self.tokens_from),
                "output_incomplete": self.output_tokens_incomplete,
                "input_incomplete": self.input_tokens_incomplete,
                "reference": None
                if self.reference_tokens is None
                else {"input": self.reference_tokens[0], "output": self.reference_tokens[1]},
                "cache_read": self.cache_read_tokens,
                "cache_write": self.cache_write_tokens,
                "reasoning": self.reasoning_tokens,
            },
            "sched_lag_ms": self.sched_lag_ms.to_json(),
            "client": None if self.client is None else self.client.to_json(),
            "load": None if self.load is None else self.load.to_json(),
            "workers": [w.to_json() for w in self.workers],
            "valid": not self.invalid_reasons,
            "cache": None if self.cache is None else self.cache.to_json(),
            "turns": [t.to_json() for t in self.turns],
            "sessions": None if self.sessions is None else self.sessions.to_json(),
            "schema": SUMMARY_SCHEMA,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSummary:
        """The summary a run stored, as this type: the inverse of `to_json` (figures derived from other
        fields there, such as `duration_s` or `coalesced.share`, are derived again, not read). A summary
        stored before a field existed reads it as that field's empty value."""
        req = data.get("requests") or {}
        tokens = data.get("tokens") or {}
        window, ref = data.get("window_s"), tokens.get("reference")
        slo, share, load = data.get("slo"), data.get("slo_attainment"), data.get("load")
        cache, sessions = data.get("cache"), data.get("sessions")

        def dist(key: str) -> Distribution:
            return Distribution.from_json(data.get(key) or {"count": 0})

        return cls(
            completed=int(req.get("completed") or 0),
            failed=int(req.get("failed") or 0),
            cancelled=int(req.get("cancelled") or 0),
            warmup=int(req.get("warmup") or 0),
            errors={str(k): int(v) for k, v in (req.get("errors") or {}).items()},
            error_details=[ErrorDetail.from_json(d) for d in req.get("error_details") or []],
            ttft_ms=dist("ttft_ms"),
            ttfb_ms=dist("ttfb_ms"),
            ttfc_ms=dist("ttfc_ms"),
            itl_ms=dist("itl_ms"),
            itl_mean_ms=dist("itl_mean_ms"),
            tpot_ms=dist("tpot_ms"),
            e2e_ms=dist("e2e_ms"),
            sched_lag_ms=dist("sched_lag_ms"),
            window_s=None if window is None else (float(window[0]), float(window[1])),
            input_tokens=int(tokens.get("input") or 0),
            output_tokens=int(tokens.get("output") or 0),
            tokens_from={str(k): int(v) for k, v in (tokens.get("from") or {}).items()},
            output_tokens_incomplete=bool(tokens.get("output_incomplete")),
            input_tokens_incomplete=bool(tokens.get("input_incomplete")),
            output_tokens_per_s=data.get("output_tokens_per_s"),
            total_tokens_per_s=data.get("total_tokens_per_s"),
            coalesced_gaps=int((data.get("coalesced") or {}).get("gaps") or 0),
            fixed_length=data.get("fixed_length"),
            requests_per_s=data.get("requests_per_s"),
            send_rate_per_s=data.get("send_rate_per_s"),
            slo=None if not slo else Slo.from_json(slo),
            slo_met=int(data.get("slo_met") or 0),
            slo_attainment=None if share is None else Attainment.from_json(share),
            goodput_requests_per_s=data.get("goodput_requests_per_s"),
            client=ClientStats.from_json(data.get("client")),
            client_bound=bool(data.get("client_bound")),
            client_bound_reasons=[str(r) for r in data.get("client_bound_reasons") or []],
            flags=[Flag.from_json(f) for f in data.get("flags") or []],
            unknown={str(k): str(v) for k, v in (data.get("unknown") or {}).items()},
            load=None if load is None else LoadMeasure.from_json(load),
            reference_tokens=None if ref is None else (int(ref["input"]), int(ref["output"])),
            cache_read_tokens=int(tokens.get("cache_read") or 0),
            cache_write_tokens=int(tokens.get("cache_write") or 0),
            reasoning_tokens=int(tokens.get("reasoning") or 0),
            cache=None if cache is None else CacheMeasure.from_json(cache),
            turns=[TurnFigures.from_json(t) for t in data.get("turns") or []],
            sessions=None if sessions is None else SessionFigures.from_json(sessions),
            workers=[WorkerStats.from_json(w) for w in data.get("workers") or []],
        )


def _rate(count: float, seconds: float | None) -> float | None:
    return count / seconds if seconds is not None and seconds > 0 else None


def measured_window(records: Iterable[RequestRecord]) -> tuple[float, float] | None:
    """From the first measured send to the last measured completion (s; warm-up, cancelled and turns not
    sent excluded)."""
    starts, ends = [], []
    for r in records:
        if not r.warmup and r.status is not Status.CANCELLED and r.status is not Status.NOT_SENT:
            starts.append(r.start_s)
            ends.append(r.end_s)
    return (min(starts), max(ends)) if starts else None


def lag_limit_ms(e2e_ms: Distribution) -> float:
    """A send later than this (ms) is late: max(10 ms, 5% of the median e2e latency)."""
    return max(LAG_FLOOR_MS, LAG_E2E_SHARE * (e2e_ms.p50 or 0.0))


def client_bound_reasons(
    sched_lag_ms: Distribution,
    e2e_ms: Distribution,
    client: ClientStats | None,
    late: int | None = None,
    slot_share: float | None = None,
) -> list[str]:
    """Why the client, not the server, limited the run; empty when it did not.

    Two tests. (1) The client sent late. Open loop: more than 1% of the measured requests (and at least
    two) were sent later than `lag_limit_ms` after they were due, i.e. the p99 scheduling lag (start −
    scheduled) is above that limit over a sample where one hiccup is not the whole percentile: the event
    loop could not keep the schedule. Closed loop (`slot_share` given): refilling free slots late took more
    than 5% of the slots' time (Σ lag ÷ Σ (lag + e2e)): the load was held short by the client, not by the
    server; a burst of refills a few ms late costs a closed loop nothing worth flagging. (2) The client was
    busy: its process used ≥ 0.9 of one core over the run, and its event loop is a single thread.
    `late` is the number of late sends (None: judge on the p99 alone).
    """
    reasons: list[str] = []
    if slot_share is not None:
        if slot_share > SLOT_SHARE_LIMIT:
            reasons.append(
                f"free slots were refilled late: {slot_share:.1%} of the slots' time went to scheduling lag "
                f"(p99 {sched_lag_ms.p99 or 0.0:.1f} ms, over {SLOT_SHARE_LIMIT:.0%})"
            )
    elif sched_lag_ms.p99 is not None:
        limit = lag_limit_ms(e2e_ms)
        n = sched_lag_ms.count
        many = late is None or (late >= LATE_MIN and late > LATE_SHARE * n)
        if sched_lag_ms.p99 > limit and many:
            count = "" if late is None else f"; {late} of {n} requests sent more than {limit:.1f} ms late"
            lag = f"p99 scheduling lag {sched_lag_ms.p99:.1f} ms > {limit:.1f} ms"
            reasons.append(f"{lag}{count}: requests were sent late")
    share = None if client is None else client.cpu_share
    if share is not None and share >= CPU_SHARE_LIMIT:
        reasons.append(
            f"client CPU {share:.2f} cores ≥ {CPU_SHARE_LIMIT} of one core: the event loop was saturated"
        )
    return reasons


def summarize(
    records: Iterable[RequestRecord],
    *,
    window: tuple[float, float] | None = None,
    slo: Slo | None = None,
    client: ClientStats | None = None,
    fixed_length: bool | None = None,
    attainment_target: float | None = None,
    load_target: LoadTarget | None = None,
    server_cache: PrefixCounters | None = None,
    designed_reuse: float | None = None,
    workers: Sequence[WorkerStats] = (),
) -> RunSummary:
    """Summarize a run's records: warm-up excluded, distributions over successful requests only.

    Rates are over the measured window: by default from the first measured send to the last measured
    completion (`measured_window`); pass `window` (start_s, end_s, the records' time base) to override.
    requests_per_s counts successful requests; goodput counts those that also meet every `slo` bound.
    Output tokens/s counts only known output counts and flags the run when some are missing. Cancelled
    requests are counted apart and take no part in errors, distributions or the window; when there are
    any, the run is flagged `cut_off` (its tails are lower bounds). `fixed_length` says whether the output
    length was fixed (ignore_eos was sent); False flags the run. Everything here is a function of its
    arguments, so a summary recomputed from the stored records and the stored inputs is the same.

    Session turns that were never sent (Status.NOT_SENT) count only in the session figures. Records with a
    session and a turn make a session run: its load is sessions (bench.metrics.load) and it gets per-turn
    and per-session figures. `server_cache` (the server's prefix-cache counters over the measured window)
    and `designed_reuse` (the workload's designed reuse share) go into the cache figures.
    `workers` (a multi-process run) are kept on the summary; when the whole run's sends and CPU pass the
    client_bound rule but some worker's own do not, the run is client-bound by that worker.
    """
    all_records = list(records)
    with_unsent = [r for r in all_records if not r.warmup]
    measured = [r for r in with_unsent if r.status is not Status.NOT_SENT]
    in_sessions = session_records(with_unsent)
    ok: list[tuple[RequestRecord, RequestMetrics]] = []
    errors: Counter[str] = Counter()
    lags: list[float] = []
    first_error: dict[str, RequestRecord] = {}
    failed = cancelled = 0
    for r in measured:
        if r.status is Status.CANCELLED:
            cancelled += 1
            continue
        lags.append((r.start_s - r.scheduled_s) * 1000.0)
        if r.status is Status.OK:
            ok.append((r, request_metrics(r)))
        else:
            failed += 1
            kind = r.error_kind or r.status.value
            errors[kind] += 1
            first_error.setdefault(kind, r)

    win = window if window is not None else measured_window(measured)
    seconds = None if win is None else win[1] - win[0]
    metrics = [m for _, m in ok]
    out_known = [r.output_tokens for r, _ in ok if r.output_tokens is not None]
    in_known = [r.input_tokens for r, _ in ok if r.input_tokens is not None]
    out_tokens, in_tokens = sum(out_known), sum(in_known)
    slo_met = sum(1 for r, m in ok if slo is None or slo.met_by(m, r.output_tokens))

    e2e = Distribution.of(m.e2e_ms for m in metrics)
    lag = Distribution.of(lags)
    limit = lag_limit_ms(e2e)
    slot_share = None
    if load_target is not None and load_target.dimension == "concurrency":
        busy = math.fsum(max(0.0, x) for x in lags) / 1000.0 + math.fsum(
            r.end_s - r.start_s for r in measured if r.status is not Status.CANCELLED
        )
        slot_share = math.fsum(max(0.0, x) for x in lags) / 1000.0 / busy if busy > 0 else None
    reasons = client_bound_reasons(lag, e2e, client, sum(1 for x in lags if x > limit), slot_share)
    if not reasons:  # one worker behind its share of the schedule, hidden in the whole run's figures
        reasons = [f"worker {w.index}: {r}" for w in workers for r in w.client_bound_reasons]
    itl = Distribution.of(g for m in metrics for g in m.itl_ms)
    zero_gaps = sum(1 for m in metrics for g in m.itl_ms if g == 0.0)
    tokens_from: dict[str, int] = dict(sorted(Counter(str(r.tokens_from) for r, _ in ok).items()))
    details = [
        ErrorDetail(
            kind,
            count,
            first_error[kind].http_status,
            (first_error[kind].error_text or "")[:ERROR_TEXT_CHARS],
        )
        for kind, count in sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    unknown: dict[str, str] = {}
    if len(out_known) < len(ok):
        why = (
            f"{len(ok) - len(out_known)} of {len(ok)} successful requests have no output token count "
            "(the server sent no usage and no tokenizer was given)"
        )
        unknown["output_tokens_per_s"] = unknown["total_tokens_per_s"] = why
    elif len(in_known) < len(ok):
        unknown["total_tokens_per_s"] = f"{len(ok) - len(in_known)} successful requests have no input count"
    attainment = _attainment(slo, slo_met, len(ok) + failed + cancelled, attainment_target)
    send_rate = _send_rate(measured)
    by_id = {id(r): m for r, m in ok}
    occupancy = session_occupancy(in_sessions) if in_sessions else None
    load = measure_load(
        measured, by_id, load_target, window=win,
        send_rate=send_rate if occupancy is None else _starts_rate([a for a, _ in occupancy]),
        e2e_p50_ms=e2e.p50, slo=slo, occupancy=occupancy,
    )  # fmt: skip
    single = sum(1 for r, _ in ok if (r.output_tokens or 0) > 1 and len(set(r.token_chunk_s)) <= 1)
    multi = sum(1 for r, _ in ok if (r.output_tokens or 0) > 1)
    flags = _flags(
        completed=len(ok), failed=failed, cancelled=cancelled, details=details, fixed_length=fixed_length,
        unknown=unknown, tokens_from=tokens_from, zero_gaps=zero_gaps, gaps=itl.count, reasons=reasons,
        attainment=attainment, load=load, single_chunk=(single, multi),
    )  # fmt: skip
    return RunSummary(
        completed=len(ok),
        failed=failed,
        cancelled=cancelled,
        warmup=sum(1 for r in all_records if r.warmup and r.status is not Status.NOT_SENT),
        errors=dict(sorted(errors.items())),
        error_details=details,
        ttft_ms=Distribution.of(m.ttft_ms for m in metrics if m.ttft_ms is not None),
        ttfb_ms=Distribution.of(m.ttfb_ms for m in metrics if m.ttfb_ms is not None),
        ttfc_ms=Distribution.of(m.ttfc_ms for m in metrics if m.ttfc_ms is not None),
        itl_ms=itl,
        itl_mean_ms=Distribution.of(m.mean_itl_ms for m in metrics if m.mean_itl_ms is not None),
        tpot_ms=Distribution.of(m.tpot_ms for m in metrics if m.tpot_ms is not None),
        e2e_ms=e2e,
        sched_lag_ms=lag,
        window_s=win,
        input_tokens=in_tokens,
        output_tokens=out_tokens,
        tokens_from=tokens_from,
        output_tokens_incomplete=len(out_known) < len(ok),
        input_tokens_incomplete=len(in_known) < len(ok),
        output_tokens_per_s=None if "output_tokens_per_s" in unknown else _rate(out_tokens, seconds),
        total_tokens_per_s=None
        if "total_tokens_per_s" in unknown
        else _rate(in_tokens + out_tokens, seconds),
        coalesced_gaps=zero_gaps,
        fixed_length=fixed_length,
        requests_per_s=_rate(len(ok), seconds),
        send_rate_per_s=send_rate,
        slo=slo,
        slo_met=slo_met,
        slo_attainment=attainment,
        goodput_requests_per_s=_rate(slo_met, seconds),
        client=client,
        client_bound=bool(reasons),
        client_bound_reasons=reasons,
        flags=flags,
        unknown=unknown,
        load=load,
        reference_tokens=_reference_tokens([r for r, _ in ok]),
        cache_read_tokens=sum(r.cached_input_tokens or 0 for r, _ in ok),
        cache_write_tokens=sum(r.cache_write_tokens or 0 for r, _ in ok),
        reasoning_tokens=sum(r.reasoning_tokens or 0 for r, _ in ok),
        cache=None
        if not ok and server_cache is None and designed_reuse is None
        else cache_measure([r for r, _ in ok], server_cache, designed_reuse),
        turns=turn_figures(in_sessions, by_id) if in_sessions else [],
        sessions=session_figures(in_sessions, seconds) if in_sessions else None,
        workers=list(workers),
    )


def _reference_tokens(ok: list[RequestRecord]) -> tuple[int, int] | None:
    """(input, output) reference tokens of the successful requests; None if one lacks its byte counts."""
    if not ok or any(r.input_bytes is None or r.output_bytes is None for r in ok):
        return None
    return (
        sum(reference_tokens(r.input_bytes or 0) for r in ok),
        sum(reference_tokens(r.output_bytes or 0) for r in ok),
    )


def _attainment(slo: Slo | None, met: int, measured: int, target: float | None) -> Attainment | None:
    """SLO attainment over every measured request (errors and cut-off requests are misses), Wilson 95% CI."""
    if slo is None:
        return None
    share = wilson(met, measured)
    return Attainment(share.score, share.ci95, met, measured, target)


def _flags(
    *,
    completed: int,
    failed: int,
    cancelled: int,
    details: list[ErrorDetail],
    fixed_length: bool | None,
    unknown: dict[str, str],
    tokens_from: dict[str, int],
    zero_gaps: int,
    gaps: int,
    reasons: list[str],
    attainment: Attainment | None = None,
    load: LoadMeasure | None = None,
    single_chunk: tuple[int, int] = (0, 0),
) -> list[Flag]:
    """Every caveat of a run, in a stable order (see Flag.kind)."""
    out: list[Flag] = []
    if failed:
        top = details[0]
        status = f" (HTTP {top.http_status})" if top.http_status else ""
        first = f"{top.kind}{status}: {top.first_message}"
        if completed == 0:
            out.append(Flag("failed", f"every request failed ({failed}); first: {first}"))
        else:
            out.append(Flag("errors", f"{failed} of {failed + completed} requests failed; first: {first}"))
    if cancelled:
        out.append(
            Flag(
                "cut_off",
                f"{cancelled} requests were cut off before they finished: e2e, TPOT and ITL tails are lower "
                "bounds and the slowest requests are missing",
            )
        )
    if fixed_length is False:
        out.append(Flag("unfixed_length", "output length was not fixed (ignore_eos was not sent)"))
    if "output_tokens_per_s" in unknown:
        out.append(Flag("tokens_unknown", unknown["output_tokens_per_s"]))
    if tokens_from.get("tokenizer"):
        out.append(
            Flag(
                "tokens_estimated",
                f"{tokens_from['tokenizer']} output counts come from a local tokenizer, not server usage",
            )
        )
    if gaps >= COALESCED_MIN_GAPS and zero_gaps / gaps >= COALESCED_SHARE:
        out.append(
            Flag(
                "coalesced_reads",
                f"{zero_gaps / gaps:.0%} of ITL gaps are 0 ms (events that arrived in one socket read): "
                "ITL percentiles are biased low",
            )
        )
    single, multi = single_chunk
    if multi and single / multi >= NOT_STREAMED_SHARE:
        out.append(
            Flag(
                "not_streamed",
                f"{single} of {multi} multi-token responses arrived in one read: TTFT, ITL and TPOT were "
                "not measured on a stream",
            )
        )
    out.extend(Flag("client_bound", r) for r in reasons)
    if load is not None and not load.reached:
        out.append(Flag("load_not_reached", f"{load.target.label if load.target else 'the load'}: "
                        + "; ".join(load.reasons)))  # fmt: skip
    if attainment is not None and attainment.below_target:
        value, target = attainment.value or 0.0, attainment.target or 0.0
        out.append(Flag("below_target", f"SLO attainment {value:.1%} is below the target {target:.1%}"))
    return out


def _send_rate(measured: list[RequestRecord]) -> float | None:
    """Sends per second: (n − 1) intervals over the span from the first to the last actual send."""
    return _starts_rate([r.start_s for r in measured if r.status is not Status.CANCELLED])


def _starts_rate(times: list[float]) -> float | None:
    """(n − 1) intervals over the span from the first to the last of `times`, per second."""
    starts = sorted(times)
    if len(starts) < 2:
        return None
    return _rate(len(starts) - 1, starts[-1] - starts[0])
