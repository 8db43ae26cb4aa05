"""A workload file (`--workload`, bench.prompts.workloads) as the load session sends it, run by run.

How each kind is paced:

- **Request sequences** (shared_prefix; request logs without timestamps or with `timing: profile`): the
  load profile paces them, every profile alike (synchronous, concurrent, constant, poisson, sweep,
  goodput search), request i of the sequence as the i-th send.
- **Open-loop schedules** (trace; request logs with timestamps; phases): sent at their own offsets. The
  profile flags (--profile, --concurrency, --rate…) are refused; `--time-scale` multiplies the gaps,
  `--window-start` skips the start of a trace or log, and `--requests` / `--duration` cap the measured
  part (overriding the file's window). `--warmup` makes the first requests (or seconds) of the schedule
  the warm-up. Stored as `kind: workload` with the schedule's mean rate.
- **Sessions**: the session driver (bench.loadgen.conversations). With a profile flag the profile paces
  the sessions: synchronous is one session at a time, concurrent c (and a concurrency goodput search)
  c sessions active at once, constant/poisson r (and a rate search) r sessions started per second.
  Without one, the file's own `concurrent` or `arrival_rate` does. Limits count sessions.

Every run builds its own text: the workload seed is offset by the run's prompt seed, so one run's
prefixes never warm the cache for the next (a request log's text is recorded: it repeats). Lengths in a
workload are reference tokens: output budgets are multiplied by the target's tokens per reference token
(bench.prompts.text_output_scale over the first requests' texts, as `output_scale` does for prompt specs),
so every option is asked for the same text; a request log is sent as recorded, unscaled.

**Steady window of a session run**: sessions, not requests, are the load (bench.metrics.load): a closed
run is steady where at least 95% of its session slots are occupied (a session holds its slot from its
first send to its last answer, think times included), an open run from its first to its last session
start.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from bench.errors import ConfigError, UsageError
from bench.loadgen.conversations import ConversationRunner
from bench.loadgen.documents import WorkloadDoc
from bench.loadgen.profiles import (
    ConcurrentProfile,
    Limits,
    Profile,
    RunProfile,
    SynchronousProfile,
)
from bench.loadgen.protocol import StreamingClient
from bench.loadgen.runner import LoadRunner, ProgressSink, RecordSink
from bench.loadgen.schedule import Plan, make_plan
from bench.loadgen.spec import LoadOptions
from bench.prompts import SCALE_SAMPLE, text_output_scale
from bench.prompts.workloads import (
    OpenLoopRequests,
    PlannedSession,
    RequestLogWorkload,
    RequestSequence,
    SessionPlan,
    SessionsWorkload,
    SharedPrefixWorkload,
    TraceWorkload,
    Window,
    Workload,
    load_workload,
)
from bench.records import GenRequest
from bench.tokenizer import TextTokenizer

Pacing = Literal["sequence", "open", "sessions"]
PREFETCH = 2048  # requests built before a run whose count is not known in advance
PREBUILD_MAX = 4096  # at most this many built before a run; the rest as they are sent
_OWN_TIMES = {"trace": "as recorded", "request_log": "as logged", "phases": "its phases"}


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _data_file(workload: Workload) -> Path | None:
    if isinstance(workload, TraceWorkload | RequestLogWorkload):
        return workload.file
    if isinstance(workload, SessionsWorkload):
        return workload.conversations
    return None


@dataclass
class PreparedRun:
    """One run of a workload: its plan and limits, what it sends, and what its profile stores."""

    plan: Plan
    limits: Limits
    label: str
    doc: WorkloadDoc
    output_scale: float
    ignore_eos: bool  # whether the requests ask for ignore_eos (a request log is sent as recorded)
    stored: dict[str, Any] = field(default_factory=dict)  # LoadRunProfile fields (kind, rate…)
    requests: Iterator[GenRequest] | None = None  # request sequences and schedules: the LoadRunner's
    sessions: PlannedSessions | None = None  # session workloads: the session driver's

    def runner(
        self,
        client: StreamingClient,
        *,
        on_record: RecordSink,
        on_progress: ProgressSink,
        stop: asyncio.Event,
        origin_s: float,
        measure_barrier: Any = None,
    ) -> LoadRunner | ConversationRunner:
        """The runner that sends this run: the session driver for sessions, else the LoadRunner."""
        if self.sessions is not None:
            return ConversationRunner(
                client, self.plan, self.sessions, on_record=on_record, on_progress=on_progress, stop=stop,
                origin_s=origin_s, measure_barrier=measure_barrier,
            )  # fmt: skip
        assert self.requests is not None
        return LoadRunner(
            client, self.plan, self.requests, on_record=on_record, on_progress=on_progress, stop=stop,
            origin_s=origin_s, measure_barrier=measure_barrier,
        )  # fmt: skip


class PlannedSessions:
    """The sessions of one run, built as needed (the plan is prefix-stable: session i never changes)."""

    def __init__(self, workload: SessionsWorkload, ignore_eos: bool) -> None:
        self._workload = workload
        self.scale = 1.0  # the target's tokens per reference token (set once the first texts are known)
        self._ignore_eos = ignore_eos
        self._plan: SessionPlan = self._build(max(16, workload.sessions or 0))

    def _build(self, count: int) -> SessionPlan:
        return self._workload.model_copy(update={"sessions": count}).build()

    def session(self, index: int) -> PlannedSession:
        """Session `index`, warm-up sessions first (more are planned when the run needs them)."""
        if index >= len(self._plan.sessions):
            self._plan = self._build(max(index + 1, 2 * len(self._plan.sessions)))
        return self._plan.sessions[index]

    def arrivals(self, count: int) -> list[float]:
        """The start offsets (s) of the first `count` sessions, as the file's arrival_rate spaces them."""
        if count:
            self.session(count - 1)  # plans them
        return [s.arrival_s or 0.0 for s in self._plan.sessions[:count]]

    def request(self, session: PlannedSession, k: int, answers: list[str], request_id: int) -> GenRequest:
        """Turn `k` with the answers so far, its output budget in the target's tokens."""
        request = self._plan.request(session, k, answers, request_id)
        return _scaled(request, self.scale, self._ignore_eos)

    def first_texts(self, n: int) -> list[str]:
        """The first turns' texts (system prompt and user message) of the first `n` sessions."""
        out = []
        for i in range(n):
            s = self.session(i)
            out.append((s.system or "") + (s.turns[0].user if s.turns else ""))
        return out


def _scaled(request: GenRequest, scale: float, ignore_eos: bool) -> GenRequest:
    return replace(request, max_tokens=max(1, round(request.max_tokens * scale)), ignore_eos=ignore_eos)


def _text(request: GenRequest) -> str:
    if request.prompt is not None:
        return request.prompt
    return "".join(str(m.get("content") or "") for m in request.messages or [])


class WorkloadTraffic:
    """A loaded workload and the flags that shape it; `prepare` gives each run what it sends."""

    def __init__(self, options: LoadOptions, tokenizer: TextTokenizer) -> None:
        assert options.workload is not None
        self.options = options
        self.path = Path(options.workload).expanduser()
        self.workload: Workload = load_workload(self.path, skip_invalid=options.skip_invalid or None)
        self.tokenizer = tokenizer
        self.sha256 = file_sha256(self.path)
        data = _data_file(self.workload)
        self.data_sha256 = file_sha256(data) if data is not None and data.is_file() else None
        self.name = self.workload.name or self.path.stem
        self.pacing = self._pacing()
        self.explicit = bool(options.pacing_flags)
        self.check()

    def _pacing(self) -> Pacing:
        w = self.workload
        if isinstance(w, SessionsWorkload):
            return "sessions"
        if isinstance(w, SharedPrefixWorkload):
            return "sequence"
        if isinstance(w, RequestLogWorkload):
            log = w.read(skip_invalid=self.options.skip_invalid or None)
            return "open" if log.timed and w.timing == "recorded" else "sequence"
        return "open"

    @property
    def paced_by_workload(self) -> bool:
        """True when the workload's own times or concurrency pace the sends (no profile flag given)."""
        return self.pacing == "open" or (self.pacing == "sessions" and not self.explicit)

    def check(self) -> None:
        """Refuse flags that do not apply to this workload (UsageError naming the flag)."""
        o, kind = self.options, self.workload.kind
        if self.pacing == "open" and o.pacing_flags:
            flag = o.pacing_flags[0]
            raise UsageError(
                f"{flag}: the {kind} workload {self.path} is sent at its own times, not by a load profile; "
                "drop the profile flags (use --time-scale to replay faster or slower)",
                flag=flag,
            )
        if o.time_scale is not None and self.pacing != "open":
            raise UsageError(
                f"--time-scale applies to workloads sent at their own times (traces, timed request logs, "
                f"phases), not to {kind} ({self.path}); pace it with --profile instead",
                flag="--time-scale",
            )
        if o.window_start_s is not None and not (
            self.pacing == "open" and isinstance(self.workload, TraceWorkload | RequestLogWorkload)
        ):
            raise UsageError(
                f"--window-start applies to traces and timed request logs, not to {kind} ({self.path})",
                flag="--window-start",
            )
        if o.skip_invalid and not isinstance(self.workload, RequestLogWorkload):
            raise UsageError(
                f"--skip-invalid applies to request logs, not to {kind} ({self.path})", flag="--skip-invalid"
            )

    # --- what the session runs ------------------------------------------------------------------------

    def profiles(self, default: list[Profile]) -> list[Profile]:
        """The runs: the flags' profiles, else the workload's own pacing (one run)."""
        w = self.workload
        if self.paced_by_workload:
            if isinstance(w, SessionsWorkload) and w.concurrent is not None:
                return [ConcurrentProfile(concurrency=w.concurrent)]
            return [SynchronousProfile()]  # a placeholder: `prepare` paces it by the workload
        return default

    def limits(self, base: Limits) -> Limits:
        """The limits of a run: without --requests or --duration, the workload's own size."""
        if self.options.requests is not None or self.options.duration_s is not None:
            return base
        size: int | None = None
        w = self.workload
        if isinstance(w, SessionsWorkload):
            size = w.sessions or len(_conversations(w))
        elif self.pacing == "sequence":
            size = self._sequence(w.seed).count
        return base if size is None else base.model_copy(update={"requests": size})

    def _seeded(self, seed: int) -> Workload:
        update: dict[str, Any] = {"seed": self.workload.seed + seed}
        if isinstance(self.workload, TraceWorkload | RequestLogWorkload):
            update["window"] = self._window(self.workload.window)
        return self.workload.model_copy(update=update)

    def _window(self, window: Window) -> Window:
        """The file's window with the flags' overrides."""
        o = self.options
        update: dict[str, Any] = {}
        if o.time_scale is not None:
            update["time_scale"] = o.time_scale
        if o.window_start_s is not None:
            update["start_s"] = o.window_start_s
        if o.requests is not None or o.duration_s is not None:
            update["max_requests"] = update["duration_s"] = None  # cut after warm-up, below
        return window.model_copy(update=update)

    def _sequence(self, seed: int) -> RequestSequence:
        built = self._seeded(seed).build()
        if isinstance(built, RequestSequence):
            return built
        raise TypeError(f"{self.workload.kind} does not build a request sequence")  # pacing says it does

    async def prepare(self, profile: RunProfile, limits: Limits, seed: int) -> PreparedRun:
        """What one run sends (built on a thread): `profile` paces it unless the workload does."""
        return await asyncio.to_thread(self._prepare, profile, limits, seed)

    def _prepare(self, profile: RunProfile, limits: Limits, seed: int) -> PreparedRun:
        if self.pacing == "sessions":
            return self._sessions(profile, limits, seed)
        if self.pacing == "open":
            return self._open(limits, seed)
        return self._sequenced(profile, limits, seed)

    def _doc(self, seed: int, **fields: Any) -> WorkloadDoc:
        return WorkloadDoc(
            name=self.name, kind=self.workload.kind, file=str(self.path), sha256=self.sha256,
            data_sha256=self.data_sha256, seed=self.workload.seed + seed,
            paced_by="workload" if self.paced_by_workload else "profile", **fields,
        )  # fmt: skip

    @property
    def _scales(self) -> bool:
        """Generated kinds ask for reference-token lengths scaled per target; a request log is as recorded."""
        return not isinstance(self.workload, RequestLogWorkload)

    def _scale_of(self, texts: list[str]) -> float:
        return text_output_scale(texts, self.tokenizer) if self._scales else 1.0

    @property
    def _ignore_eos(self) -> bool:
        return self.options.ignore_eos and self._scales

    def _sequenced(self, profile: RunProfile, limits: Limits, seed: int) -> PreparedRun:
        seq = self._sequence(seed)
        plan = make_plan(profile, limits)
        n = plan.planned_requests
        head = min(SCALE_SAMPLE, seq.count or SCALE_SAMPLE)
        scale = self._scale_of([_text(seq.request(i)) for i in range(head)])
        ignore_eos, scales = self._ignore_eos, self._scales

        def stream() -> Iterator[GenRequest]:
            for i in itertools.count() if n is None else range(n):
                request = _with_id(seq.request(i), i)
                yield _scaled(request, scale, ignore_eos) if scales else request

        made = stream()
        count = PREFETCH if n is None else min(n, PREBUILD_MAX)
        built = list(itertools.islice(made, count))
        requests = iter(built) if n is not None and n <= count else itertools.chain(built, made)
        warm = limits.warmup.requests if not plan.open_loop else plan.warmup_count
        designed = self._designed(seq, warm, None if n is None else n - warm)
        doc = self._doc(seed, designed_reuse=designed, skipped=seq.skipped)
        return PreparedRun(
            plan, limits, f"{profile.label} · {self.name}", doc, scale, ignore_eos, requests=requests
        )

    def _designed(self, seq: RequestSequence, warm: int, measured: int | None) -> float | None:
        """The designed reuse share of the measured requests, those before them (warm-up) included."""
        w = self.workload
        if not isinstance(w, SharedPrefixWorkload) or measured is None or measured <= 0:
            return seq.reuse_share
        if w.requests is not None and warm + measured > w.requests:
            return seq.reuse_share  # the sequence repeats: its own share over one pass
        pool = w.prefixes
        repeats = measured - (pool.expected_distinct(warm + measured) - pool.expected_distinct(warm))
        return pool.tokens * repeats / (measured * (pool.tokens + w.question_tokens.mean))

    def _open(self, limits: Limits, seed: int) -> PreparedRun:
        workload = self._seeded(seed)
        o = self.options
        if isinstance(workload, TraceWorkload | RequestLogWorkload) and (o.requests or o.duration_s):
            warm = limits.warmup
            window = workload.window
            if o.requests is not None and not warm.seconds:
                window = window.model_copy(update={"max_requests": warm.requests + o.requests})
            if o.duration_s is not None:
                span = (o.duration_s + warm.seconds) / window.time_scale
                window = window.model_copy(update={"duration_s": span})
            workload = workload.model_copy(update={"window": window})
        built = workload.build()
        assert isinstance(built, OpenLoopRequests)
        offsets = list(built.offsets_s)
        if o.time_scale is not None and not isinstance(workload, TraceWorkload | RequestLogWorkload):
            offsets = [t * o.time_scale for t in offsets]  # phases: no window of their own
        offsets, warm_count = _cut(offsets, limits, o.requests, o.duration_s)
        measured = len(offsets) - warm_count
        span = offsets[-1] - offsets[warm_count] if measured > 1 else 0.0
        rate = (measured - 1) / span if span > 0 else None
        stored_limits = limits.model_copy(update={"requests": max(1, measured)})
        plan = Plan(concurrency=None, offsets_s=tuple(offsets), warmup_count=warm_count, limits=limits)
        head = [built[i].request for i in range(min(SCALE_SAMPLE, len(offsets)))]
        scale = self._scale_of([_text(r) for r in head])
        ignore_eos, scales = self._ignore_eos, self._scales

        def make(i: int) -> GenRequest:
            request = built[i].request
            return _scaled(request, scale, ignore_eos) if scales else request

        requests = _prebuilt(make, len(offsets))
        replayed = workload.window if isinstance(workload, TraceWorkload | RequestLogWorkload) else None
        doc = self._doc(
            seed,
            designed_reuse=built.reuse_share,
            skipped=built.skipped,
            notes=list(built.notes),
            window=replayed,
        )
        label = f"{self.name} ({_OWN_TIMES.get(self.workload.kind, 'its own times')})"
        stored = {
            "kind": "workload",
            "rate": rate,
            "concurrency": None,
            "seed": None,
            "limits": stored_limits,
        }
        return PreparedRun(plan, limits, label, doc, scale, ignore_eos, stored=stored, requests=requests)

    def _sessions(self, profile: RunProfile, limits: Limits, seed: int) -> PreparedRun:
        workload = self._seeded(seed)
        assert isinstance(workload, SessionsWorkload)
        sessions = PlannedSessions(workload, self._ignore_eos)
        scale = sessions.scale = self._scale_of(sessions.first_texts(SCALE_SAMPLE))
        stored: dict[str, Any] = {}
        own_open = self.paced_by_workload and workload.arrival_rate is not None
        if own_open:
            plan = self._own_arrivals(sessions, limits)
            stored = {"kind": "workload", "rate": workload.arrival_rate, "concurrency": None, "seed": None}
            label = f"{self.name} ({workload.arrival_rate:g} sessions/s)"
        else:
            plan = make_plan(profile, limits)
            label = f"{profile.label} · {self.name}"
        planned = plan.planned_requests
        doc = self._doc(seed, sessions=planned)
        return PreparedRun(
            plan, limits, label, doc, scale, self._ignore_eos, stored=stored, sessions=sessions
        )

    @staticmethod
    def _own_arrivals(sessions: PlannedSessions, limits: Limits) -> Plan:
        """An open-loop plan of session starts at the file's arrival times, cut by the limits."""
        count = 64
        while True:
            offsets, warm = _cut(sessions.arrivals(count), limits, limits.requests, limits.duration_s)
            if len(offsets) < count or count >= 5_000_000:
                break
            count *= 2
        return Plan(concurrency=None, offsets_s=tuple(offsets), warmup_count=warm, limits=limits)


def _conversations(w: SessionsWorkload) -> list[Any]:
    from bench.prompts.workloads.conversations import load_conversations

    return load_conversations(w.conversations) if w.conversations is not None else []


def _with_id(request: GenRequest, request_id: int) -> GenRequest:
    return request if request.request_id == request_id else replace(request, request_id=request_id)


def _cut(
    offsets: list[float], limits: Limits, requests: int | None, duration_s: float | None
) -> tuple[list[float], int]:
    """Offsets cut to the warm-up (first requests, or those before its seconds) and the measured part
    (at most `requests`, and within `duration_s` of the first measured one): (offsets, warm-up count)."""
    warm = limits.warmup
    if warm.seconds:
        warm_count = sum(1 for t in offsets if t < warm.seconds)
    else:
        warm_count = min(warm.requests, len(offsets))
    out = offsets[:warm_count]
    first: float | None = None
    for t in offsets[warm_count:]:
        first = t if first is None else first
        if duration_s is not None and t - first >= duration_s:
            break
        if requests is not None and len(out) - warm_count >= requests:
            break
        out.append(t)
    if len(out) == warm_count:
        raise ConfigError(
            "the workload's schedule leaves no request to measure after the warm-up",
            fix="lower --warmup, or widen the window (--requests, --duration, --window-start)",
        )
    return out, warm_count


def _prebuilt(make: Any, n: int) -> Iterator[GenRequest]:
    """The first PREBUILD_MAX requests built now; any more as they are sent."""
    count = min(n, PREBUILD_MAX)
    built = [make(i) for i in range(count)]
    return itertools.chain(built, (make(i) for i in range(count, n)))
