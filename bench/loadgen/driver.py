"""`run_load`: the library function behind `llmbench bench load`.

One validated LoadSpec in: resolve the target (serving a mock in-process), check it before any load,
run every profile value as its own stored run, stream each record to the results store as it completes,
sample the server's /metrics, and return the summaries. Progress goes to an injected callback; nothing
here prints. A run that stops early (server gone, Ctrl-C, --max-error-rate) is stored as partial and the
result carries a RunAbortedError for the caller to raise once it has rendered what was measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.clients import ClientConfig, make_client
from bench.errors import InterruptedRunError, RunAbortedError, RunFailedError
from bench.loadgen.goodput import GoodputSearch
from bench.loadgen.profiles import (
    ConcurrentProfile,
    ConstantProfile,
    GoodputProfile,
    Limits,
    PoissonProfile,
    RunProfile,
    SweepProfile,
    SynchronousProfile,
    sweep_rates,
)
from bench.loadgen.protocol import StreamingClient
from bench.loadgen.runner import LoadRunner, Progress, RunOutcome
from bench.loadgen.schedule import make_plan
from bench.loadgen.server_metrics import ServerMetricsSampler, metrics_url
from bench.loadgen.spec import LoadSpec
from bench.metrics import RunSummary, summarize
from bench.metrics.load import LoadTarget
from bench.prompts import PromptSpec, iter_requests, output_scale
from bench.provenance import collect_provenance, target_provenance
from bench.records import GenRequest, RequestRecord
from bench.registry import Registry
from bench.settings import Settings
from bench.store import RunStatus, ServerSample, Store, rebase
from bench.targets import Target, identify_target, resolve_target, serving
from bench.tokenizer import TextTokenizer, load_tokenizer

SCHEMA = "llmbench.load/1"
FLUSH_EVERY_S = 0.25  # records reach the store at most this long after they complete
PREFETCH = 2048  # prompts built before a run whose request count is not known in advance
PREBUILD_MAX = 100_000  # at most this many built before a run; the rest as it goes


@dataclass(frozen=True, slots=True)
class RunStarted:
    """A run is about to send: its position, profile and id in the store."""

    index: int
    total: int | None  # None for a sweep (its rates are known only after two runs)
    label: str
    profile: dict[str, Any]
    run_id: str


@dataclass(frozen=True, slots=True)
class RunProgress:
    """A snapshot of the run in flight."""

    label: str
    progress: Progress


@dataclass(frozen=True, slots=True)
class RunFinished:
    """A run ended; `result` holds its summary and how it ended."""

    result: RunResult


LoadEvent = RunStarted | RunProgress | RunFinished
ProgressCallback = Callable[[LoadEvent], None]


@dataclass(slots=True)
class RunResult:
    """One stored run: its profile, summary and status ('complete' or 'partial')."""

    run_id: str
    label: str
    profile: dict[str, Any]
    summary: RunSummary
    status: str
    ended: str
    reason: str | None
    stored_records: int
    server_samples: int
    max_in_flight: int
    process_cpu_s: float

    def to_json(self) -> dict[str, Any]:
        """One element of `runs` in the llmbench.load/1 contract."""
        return {
            "run_id": self.run_id,
            "profile": self.profile,
            "summary": self.summary.to_json(),
            "status": self.status,
            "ended": self.ended,
            "reason": self.reason,
            "server_samples": self.server_samples,
            "max_in_flight": self.max_in_flight,
            "client_process_cpu_s": self.process_cpu_s,
        }


@dataclass(slots=True)
class LoadResult:
    """Every run of one invocation; `aborted` is set when a run stopped early (raise it after rendering)."""

    target: Target
    store_path: Path
    runs: list[RunResult] = field(default_factory=list)
    group_id: str = field(default_factory=lambda: uuid.uuid4().hex)  # shared by this invocation's runs
    aborted: RunAbortedError | None = None

    def to_json(self) -> dict[str, Any]:
        """The llmbench.load/1 document written by --out (never holds an API key)."""
        return {
            "schema": SCHEMA,
            "target": self.target.to_json(),
            "runs": [r.to_json() for r in self.runs],
            "store": str(self.store_path),
            "group_id": self.group_id,
            "complete": self.aborted is None,
        }


def run_load(
    spec: LoadSpec,
    settings: Settings,
    registry: Registry,
    *,
    progress: ProgressCallback | None = None,
    env: Mapping[str, str] | None = None,
    handle_sigint: bool = True,
) -> LoadResult:
    """Run every profile value of `spec` against its target; see the module docstring."""
    resolved = resolve_target(
        spec.target,
        registry,
        settings,
        url=spec.url,
        model=spec.model,
        api=spec.api,
        tokenizer=spec.tokenizer,
        headers=spec.headers,
        env=env,
    )
    prompts = spec.prompt_spec(resolved.api)
    tokenizer = load_tokenizer(resolved.tokenizer)
    store_path = spec.store or settings.results_path
    if spec.hardware is not None:
        registry.hardware(spec.hardware)  # an unknown profile fails here, before anything starts
    with serving(resolved, settings) as served:
        target = identify_target(served, spec.server_kind)
        provenance = target_provenance(target, registry, hardware=spec.hardware)
        session = _Session(spec, target, prompts, tokenizer, store_path, progress, provenance)
        return _run_async(session.run(handle_sigint))


def _run_async(coro: Any) -> LoadResult:
    """asyncio.run on uvloop when it is installed (a faster loop, steadier send times)."""
    try:
        import uvloop
    except ImportError:
        result: LoadResult = asyncio.run(coro)
        return result
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)  # type: ignore[no-any-return]


class _StoreWriter:
    """Owns the Store on one worker thread, so SQLite never blocks the event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmbench-store")
        self._store: Store | None = None

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def open(self) -> None:
        self._store = await self.call(Store.open, self.path)

    @property
    def store(self) -> Store:
        assert self._store is not None
        return self._store

    async def close(self) -> None:
        if self._store is not None:
            await self.call(self._store.close)
        self._pool.shutdown(wait=True)


class _RecordBuffer:
    """Collects records on the loop and hands them to the store writer in batches."""

    def __init__(self, writer: _StoreWriter, run_id: str, origin_s: float) -> None:
        self.writer, self.run_id, self.origin_s = writer, run_id, origin_s
        self.pending: list[RequestRecord] = []
        self.stored = 0

    def add(self, record: RequestRecord) -> None:
        self.pending.append(record)

    async def flush(self) -> None:
        """Write what is pending; returns after every earlier batch is written too (one writer thread)."""
        batch, self.pending = self.pending, []
        await self.writer.call(self._write, batch)

    def _write(self, batch: list[RequestRecord]) -> None:
        # Counted on the writer thread, so a flush cancelled mid-write still counts what it wrote.
        if batch:
            self.writer.store.add_requests(self.run_id, batch, self.origin_s)
            self.stored += len(batch)

    async def flush_every(self, seconds: float, stop: asyncio.Event) -> None:
        """Flush every `seconds` until `stop` is set; never cancelled mid-write, so no batch is dropped."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)
            await self.flush()


class _Session:
    """One invocation: the client, the store, and the runs in order."""

    def __init__(
        self,
        spec: LoadSpec,
        target: Target,
        prompts: PromptSpec,
        tokenizer: TextTokenizer,
        store_path: Path,
        progress: ProgressCallback | None,
        server_provenance: dict[str, Any],
    ) -> None:
        self.server_provenance = server_provenance
        self.config: ClientConfig | None = None
        self.spec = spec
        self.target = target
        self.prompts = prompts
        self.tokenizer = tokenizer
        self.progress = progress
        self.writer = _StoreWriter(store_path)
        self.result = LoadResult(target=target, store_path=store_path)
        self.stop = asyncio.Event()
        self.provenance: dict[str, Any] = {}
        self.index = 0

    def _emit(self, event: LoadEvent) -> None:
        if self.progress is not None:
            self.progress(event)

    async def run(self, handle_sigint: bool) -> LoadResult:
        loop = asyncio.get_running_loop()
        config = ClientConfig(
            base_url=self.target.url,
            model=self.target.model,
            api_key=self.target.api_key,
            api_key_env=self.target.api_key_env,
            server_kind=self.target.server_kind,
            headers=dict(self.target.headers),
            timeout_s=self.spec.timeout_s,
            tokenizer=None if self.tokenizer.approximate else self.tokenizer,
            keep_text=False,
        )
        self.config = config
        sigint = handle_sigint and threading.current_thread() is threading.main_thread()
        if sigint:
            loop.add_signal_handler(signal.SIGINT, self._on_sigint)
        try:
            async with make_client(self.target.api, config) as client:
                await client.check()  # unreachable server or unknown model: fail before any load
                self.provenance = await asyncio.to_thread(self._provenance)
                await self.writer.open()
                for profile in self.spec.profiles():
                    if isinstance(profile, SweepProfile):
                        await self._sweep(client, profile)
                    elif isinstance(profile, GoodputProfile):
                        await self._goodput(client, profile)
                    else:
                        await self._run_one(client, profile, total=len(self.spec.profiles()))
                    if self.result.aborted is not None:
                        break
        finally:
            if sigint:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(signal.SIGINT)
            await self.writer.close()
        return self.result

    def _interrupted_between_runs(self, label: str) -> None:
        if not self.result.runs:
            raise KeyboardInterrupt  # nothing measured yet: main() reports a plain interruption
        last = self.result.runs[-1]
        self.result.aborted = InterruptedRunError(
            f"interrupted (Ctrl-C) before {label} started; the remaining runs were skipped",
            run_id=last.run_id,
            kept=last.stored_records,
        )

    def _on_sigint(self) -> None:
        self.stop.set()
        # A second Ctrl-C falls through to Python's default handler and stops at once.
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)

    def _provenance(self) -> dict[str, Any]:
        base = collect_provenance(
            extra={"load_spec": self.spec.redacted(), "prompts": self.prompts.model_dump(mode="json")}
        )
        return {**base, **self.server_provenance}

    def _sent(self, prompt_seed: int) -> dict[str, Any]:
        """What the requests really carry: ignore_eos only reaches servers that accept vLLM's extras."""
        extras = self.config is not None and self.config.sends_extras
        identity = self.target.identity
        return {
            "length_unit": self.prompts.unit,
            # The target's tokens per reference token: output lengths are asked for in its own tokens.
            "output_scale": output_scale(self.prompts, prompt_seed, self.tokenizer),
            "ignore_eos_requested": self.prompts.ignore_eos,
            "ignore_eos": self.prompts.ignore_eos and extras,
            "server_kind": self.target.server_kind,
            "server_kind_from": None if identity is None else identity.detected_by,
        }

    async def _requests(self, n: int | None, seed: int) -> Iterator[GenRequest]:
        """Prompts built (on a thread) before the run starts, so the send loop does no tokenizer work.

        Up to PREBUILD_MAX are built ahead (PREFETCH when the count is unknown, as in a duration-bound
        closed loop); any more are built lazily during the run.
        """
        stream = iter_requests(self.prompts, seed, self.tokenizer)
        count = PREFETCH if n is None else min(n, PREBUILD_MAX)
        built = await asyncio.to_thread(lambda: list(itertools.islice(stream, count)))
        if n is not None and n <= count:
            return iter(built)
        rest = stream if n is None else itertools.islice(stream, n - count)
        return itertools.chain(built, rest)

    async def _sweep(self, client: StreamingClient, sweep: SweepProfile) -> None:
        stages: dict[str, Any] = {"points": sweep.points}
        sync = await self._run_one(client, SynchronousProfile(), sweep={**stages, "stage": "synchronous"})
        if sync is None or self.result.aborted is not None:
            return
        top = ConcurrentProfile(concurrency=sweep.throughput_concurrency)
        peak = await self._run_one(client, top, sweep={**stages, "stage": "throughput"})
        if peak is None or self.result.aborted is not None:
            return
        low, high = sync.summary.requests_per_s, peak.summary.requests_per_s
        if not low or not high:
            self.result.aborted = RunAbortedError(
                "the sweep could not measure a request rate (every request failed); see the error breakdown",
                run_id=peak.run_id,
                kept=peak.stored_records,
            )
            return
        stages.update(sync_rate=low, max_rate=high)
        for i, rate in enumerate(sweep_rates(low, high, sweep.points), start=1):
            profile: RunProfile = (
                PoissonProfile(rate=rate, seed=sweep.seed)
                if sweep.rate_kind == "poisson"
                else ConstantProfile(rate=rate)
            )
            await self._run_one(client, profile, sweep={**stages, "stage": "rate", "point": i})
            if self.result.aborted is not None:
                return

    async def _goodput(self, client: StreamingClient, goodput: GoodputProfile) -> None:
        """Probe by doubling then bisection; then one run at the highest passing load: the operating point.

        Each probe is lengthened until it can hold its load (GoodputProfile.probe_limits); an invalid probe
        (client-bound, not streamed, load not reached) ends the search, which is then capped there.
        """
        search = GoodputSearch(
            goodput.dimension, goodput.start, goodput.max_load, goodput.target, goodput.steps
        )
        common = {"search": self.result.group_id, "target": goodput.target, "dimension": goodput.dimension}
        base = self.spec.limits()
        while (step := search.next_load()) is not None:
            load, stage = step
            probe = goodput.probe(load)
            extra = {"goodput": {**common, "stage": stage, "load": load}, "attainment_target": goodput.target}
            limits = goodput.probe_limits(load, base)
            run = await self._run_one(client, probe, extra=extra, limits=limits)
            if run is None or self.result.aborted is not None:
                return
            share = run.summary.slo_attainment
            measured = None if run.summary.load is None else run.summary.load.measured
            search.record(
                load, stage, run.run_id, None if share is None else share.value,
                None if share is None else share.ci95,
                measured_load=measured, invalid=tuple(run.summary.invalid_reasons),
            )  # fmt: skip
        best = search.best
        if best is None:
            first = search.probes[0]
            why = (
                f"was invalid ({'; '.join(first.invalid)})"
                if not first.valid
                else f"met the SLO for only {(first.attainment or 0):.1%} of requests"
            )
            self.result.aborted = RunFailedError(
                f"{goodput.label}: even the first probe ({first.load:g}) {why}; lower --{goodput.dimension}, "
                "relax --slo, or send more requests per probe",
                run_id=first.run_id,
                kept=0,
            )
            return
        pacing = goodput.probe(best.load)
        point = {
            "dimension": goodput.dimension,
            "value": best.load,
            "measured": best.measured_load,
            "target_attainment": goodput.target,
            "attainment": best.attainment,
            "attainment_ci": None if best.ci95 is None else list(best.ci95),
            "probes": [p.run_id for p in search.probes],
            "search": [p.to_json() for p in search.probes],
            "capped": search.capped,
            "warnings": search.warnings(),
        }
        extra = {
            "kind": "goodput",
            "pacing": pacing.model_dump(mode="json"),
            "operating_point": point,
            "attainment_target": goodput.target,
            "search_profile": goodput.model_dump(mode="json"),
        }
        limits = goodput.probe_limits(best.load, base)
        await self._run_one(client, pacing, extra=extra, label=f"goodput @ {pacing.label}", limits=limits)

    async def _run_one(
        self,
        client: StreamingClient,
        profile: RunProfile,
        *,
        total: int | None = None,
        sweep: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        label: str | None = None,
        limits: Limits | None = None,
    ) -> RunResult | None:
        limits = limits or self.spec.limits()
        plan = make_plan(profile, limits)
        prompt_seed = self.spec.seed + self.index  # fresh prompts per run: no prefix-cache hits across runs
        requests = await self._requests(plan.planned_requests, prompt_seed)
        await asyncio.sleep(0)  # let a Ctrl-C that came while prompts were built be seen
        if self.stop.is_set():
            self._interrupted_between_runs(profile.label)
            return None
        label = label or profile.label
        profile_json: dict[str, Any] = {
            **profile.model_dump(mode="json"),
            "label": label,
            "limits": limits.model_dump(mode="json"),
            "prompts": self.prompts.model_dump(mode="json"),
            "prompt_seed": prompt_seed,
            "slo": self.spec.slo,
            "sent": self._sent(prompt_seed),
        }
        if sweep is not None:
            profile_json["sweep"] = sweep
        profile_json.update(extra or {})
        store = self.writer.store
        run_id: str = await self.writer.call(
            functools.partial(
                store.start_run,
                "load",
                self.target.to_json(),
                profile_json,
                self.provenance,
                group_id=self.result.group_id,
                sweep_id=self.spec.sweep_id,
                point_id=self.spec.point_id,
            )
        )
        self._emit(RunStarted(self.index, total, label, profile_json, run_id))
        self.index += 1

        origin = time.perf_counter()
        buffer = _RecordBuffer(self.writer, run_id, origin)
        runner = LoadRunner(
            client,
            plan,
            requests,
            on_record=buffer.add,
            on_progress=lambda p: self._emit(RunProgress(label, p)),
            stop=self.stop,
            origin_s=origin,
        )
        stop_flushing = asyncio.Event()
        flusher = asyncio.create_task(buffer.flush_every(FLUSH_EVERY_S, stop_flushing))
        sampler: ServerMetricsSampler | None = None
        if self.target.exposes_metrics:
            sampler = ServerMetricsSampler(
                metrics_url(self.target.url),
                origin,
                every_s=self.spec.server_metrics_every_s,
                headers=dict(self.target.headers),
            )
        sampler_task = asyncio.create_task(sampler.run()) if sampler is not None else None
        outcome: RunOutcome | None = None
        try:
            outcome = await runner.run()
        finally:
            if sampler_task is not None:
                sampler_task.cancel()
                await asyncio.gather(sampler_task, return_exceptions=True)
            stop_flushing.set()
            await asyncio.gather(flusher, return_exceptions=True)
            await buffer.flush()
            if outcome is None:  # the loop itself failed: keep the run's records and mark it
                await self.writer.call(store.finish_run, run_id, "failed", None, "the load generator stopped")
        samples = [ServerSample(s.t_s, s.name, s.labels, s.value) for s in sampler.samples] if sampler else []
        if samples:
            await self.writer.call(store.add_server_samples, run_id, samples, 0.0)
        # Summarized from the times as stored (seconds since the origin), so a recompute matches exactly.
        summary = summarize(
            [rebase(r, origin) for r in runner.records],
            slo=self.spec.slo_bounds(),
            client=outcome.client,
            fixed_length=bool(profile_json["sent"]["ignore_eos"]),
            attainment_target=profile_json.get("attainment_target"),
            load_target=LoadTarget.from_profile(profile_json),
        )
        status = run_status(outcome.ended, summary)
        summary_json = summary.to_json()
        await self.writer.call(store.finish_run, run_id, status, summary_json, outcome.reason)
        result = RunResult(
            run_id=run_id,
            label=label,
            profile=profile_json,
            summary=summary,
            status=status,
            ended=outcome.ended,
            reason=outcome.reason,
            stored_records=buffer.stored,
            server_samples=len(samples),
            max_in_flight=outcome.max_in_flight,
            process_cpu_s=outcome.process_cpu_s,
        )
        self.result.runs.append(result)
        self._emit(RunFinished(result))
        if outcome.ended != "complete":
            error = InterruptedRunError if outcome.ended == "interrupted" else RunAbortedError
            self.result.aborted = error(_abort_message(outcome, label), run_id=run_id, kept=buffer.stored)
        elif status == "failed":
            self.result.aborted = RunFailedError(
                f"{label}: every request failed; see the error breakdown", run_id=run_id, kept=buffer.stored
            )
        return result


def run_status(ended: str, summary: RunSummary) -> RunStatus:
    """'failed' when no request succeeded or the error cap stopped it, 'partial' when it stopped early."""
    if ended == "error_rate" or (summary.completed == 0 and summary.failed > 0):
        return "failed"
    return "complete" if ended == "complete" else "partial"


def _abort_message(outcome: RunOutcome, label: str) -> str:
    reason = outcome.reason or "the run stopped early"
    if outcome.ended == "server_down":
        return f"{label}: {reason}. Restart the server, then re-run the same command"
    if outcome.ended == "interrupted":
        return f"{label}: {reason}; the remaining runs were skipped"
    return f"{label}: {reason}"
