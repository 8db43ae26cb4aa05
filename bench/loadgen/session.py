"""One load invocation: every profile of a LoadSpec in order, through an injected client into a RunSink.

The session builds each run's prompts and plan, sends them with the LoadRunner, samples the server's
/metrics, summarizes, and hands everything to the sink; a sweep profile becomes its synchronous,
throughput and rate runs, a goodput profile its probes and the final run at the operating point. Ctrl-C
(SIGINT) stops the run in flight, and one that comes between runs skips the rest. A run that stops early
(server gone, Ctrl-C, --max-error-rate) is kept as partial, and `aborted` holds the error for the caller to
raise once it has shown what was measured. It knows no store, no registry and no concrete client.
With a workload file (`traffic`, bench.loadgen.traffic) each run sends what the workload prepares for it,
sessions through the session driver. The server's prefix-cache counters are read just before the run and
when measuring starts, so the summary's hit rate covers the measured window.

With `workers` (--workers), each run is sent over worker processes (bench.loadgen.workers) instead of by
this process's LoadRunner: one pool serves the whole invocation (grown when a run needs more), its records
reach the same sink, and the summary keeps each worker's figures. `_send` is the one place that chooses.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.errors import (
    InterruptedRunError,
    NoOperatingPointError,
    RunAbortedError,
    RunFailedError,
    UsageError,
)
from bench.loadgen.conversations import ConversationRunner
from bench.loadgen.documents import (
    GoodputStage,
    LoadRunProfile,
    OperatingPointDoc,
    ProbeDoc,
    Sent,
    SweepStage,
)
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
    worth_retrying,
)
from bench.loadgen.protocol import StreamingClient
from bench.loadgen.results import (
    LoadEvent,
    ProgressCallback,
    RunFinished,
    RunProgress,
    RunResult,
    RunStarted,
    abort_message,
    run_status,
)
from bench.loadgen.runner import LoadRunner, RunOutcome
from bench.loadgen.schedule import Plan, make_plan
from bench.loadgen.server_metrics import ServerMetricsSampler
from bench.loadgen.sink import RunSink
from bench.loadgen.spec import LoadSpec
from bench.loadgen.traffic import PreparedRun, WorkloadTraffic
from bench.loadgen.workers import WorkerPool, WorkerSetup
from bench.metrics import RunSummary, prefix_cache_delta, summarize
from bench.prompts import PromptSpec, iter_requests, output_scale
from bench.records import GenRequest, ServerKind, rebase
from bench.tokenizer import TextTokenizer

PREFETCH = 2048  # prompts built before a run whose request count is not known in advance
PREBUILD_MAX = 100_000  # at most this many built before a run; the rest as it goes


@dataclass(frozen=True)
class Endpoint:
    """What the session must know about the server it measures (the client knows how to reach it)."""

    server_kind: ServerKind
    server_kind_from: str | None = None  # how the kind was found out (None: not asked)
    sends_extras: bool = False  # whether vLLM's extras (ignore_eos) reach the server
    metrics_url: str | None = None  # its Prometheus page; None when it has none worth asking for
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # sent with /metrics requests


class LoadSession:
    """The runs of one invocation, in order; `runs` and `aborted` hold what happened."""

    def __init__(
        self,
        spec: LoadSpec,
        client: StreamingClient,
        sink: RunSink,
        endpoint: Endpoint,
        prompts: PromptSpec,
        tokenizer: TextTokenizer,
        *,
        progress: ProgressCallback | None = None,
        group_id: str | None = None,
        traffic: WorkloadTraffic | None = None,
        workers: WorkerSetup | None = None,
    ) -> None:
        self.spec = spec
        self.client = client
        self.sink = sink
        self.endpoint = endpoint
        self.prompts = prompts
        self.tokenizer = tokenizer
        self.progress = progress
        self.group_id = group_id or uuid.uuid4().hex  # shared by this invocation's runs
        self.runs: list[RunResult] = []
        self.aborted: RunAbortedError | None = None
        self.stop = asyncio.Event()
        self.index = 0
        self.traffic = traffic
        self.workers = workers  # None: every run is sent from this process
        self._pool: WorkerPool | None = None

    async def run(self, handle_sigint: bool = True) -> list[RunResult]:
        """Run every profile in order until one aborts; Ctrl-C is handled here when `handle_sigint`."""
        loop = asyncio.get_running_loop()
        sigint = handle_sigint and threading.current_thread() is threading.main_thread()
        if sigint:
            loop.add_signal_handler(signal.SIGINT, self._on_sigint)
        try:
            profiles = self.spec.profiles()
            if self.traffic is not None:
                profiles = self.traffic.profiles(profiles)
            for profile in profiles:
                if isinstance(profile, SweepProfile):
                    await self._sweep(profile)
                elif isinstance(profile, GoodputProfile):
                    await self._goodput(profile)
                else:
                    await self._run_one(profile, total=len(profiles))
                if self.aborted is not None:
                    break
        finally:
            if sigint:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(signal.SIGINT)
            await self._close_pool()
        return self.runs

    def _emit(self, event: LoadEvent) -> None:
        if self.progress is not None:
            self.progress(event)

    def _interrupted_between_runs(self, label: str) -> None:
        if not self.runs:
            raise KeyboardInterrupt  # nothing measured yet: main() reports a plain interruption
        last = self.runs[-1]
        self.aborted = InterruptedRunError(
            f"interrupted (Ctrl-C) before {label} started; the remaining runs were skipped",
            run_id=last.run_id,
            kept=last.stored_records,
        )

    def _on_sigint(self) -> None:
        self.stop.set()
        # A second Ctrl-C falls through to Python's default handler and stops at once.
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)

    def _limits(self) -> Limits:
        """The run's limits: the flags', a workload's own size when they give none."""
        limits = self.spec.limits()
        return limits if self.traffic is None else self.traffic.limits(limits)

    def _sent(self, prompt_seed: int, prepared: PreparedRun | None = None) -> Sent:
        """What the requests really carry: ignore_eos only reaches servers that accept vLLM's extras."""
        asked = self.prompts.ignore_eos if prepared is None else prepared.ignore_eos
        return Sent(
            length_unit=self.prompts.unit,
            # The target's tokens per reference token: output lengths are asked for in its own tokens.
            output_scale=output_scale(self.prompts, prompt_seed, self.tokenizer)
            if prepared is None
            else prepared.output_scale,
            ignore_eos_requested=asked,
            ignore_eos=asked and self.endpoint.sends_extras,
            server_kind=self.endpoint.server_kind,
            server_kind_from=self.endpoint.server_kind_from,
        )

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

    async def _sweep(self, sweep: SweepProfile) -> None:
        sync = await self._run_one(
            SynchronousProfile(), extra={"sweep": SweepStage(points=sweep.points, stage="synchronous")}
        )
        if sync is None or self.aborted is not None:
            return
        top = ConcurrentProfile(concurrency=sweep.throughput_concurrency)
        peak = await self._run_one(top, extra={"sweep": SweepStage(points=sweep.points, stage="throughput")})
        if peak is None or self.aborted is not None:
            return
        low, high = _rate(sync.summary), _rate(peak.summary)
        if not low or not high:
            self.aborted = RunAbortedError(
                "the sweep could not measure a request rate (every request failed); see the error breakdown",
                run_id=peak.run_id,
                kept=peak.stored_records,
            )
            return
        for i, rate in enumerate(sweep_rates(low, high, sweep.points), start=1):
            profile: RunProfile = (
                PoissonProfile(rate=rate, seed=sweep.seed)
                if sweep.rate_kind == "poisson"
                else ConstantProfile(rate=rate)
            )
            stage = SweepStage(points=sweep.points, stage="rate", sync_rate=low, max_rate=high, point=i)
            await self._run_one(profile, extra={"sweep": stage})
            if self.aborted is not None:
                return

    async def _goodput(self, goodput: GoodputProfile) -> None:
        """Probe by doubling then bisection; then one run at the highest passing load: the operating point.

        Each probe is lengthened until it can hold its load (GoodputProfile.probe_limits). An invalid probe
        that a retry may cure (client-bound, load not reached) is measured again up to `goodput.retries`
        times; one still invalid (or not streamed) ends the search, which is then capped there.
        """
        search = GoodputSearch(
            goodput.dimension, goodput.start, goodput.max_load, goodput.target, goodput.steps
        )
        base = self._limits()
        while (step := search.next_load()) is not None:
            load, stage = step
            probe = goodput.probe(load)
            tag = GoodputStage(
                search=self.group_id, target=goodput.target, dimension=goodput.dimension, stage=stage,
                load=load,
            )  # fmt: skip
            extra = {"goodput": tag, "attainment_target": goodput.target}
            limits = goodput.probe_limits(load, base)
            retried: list[str] = []
            while True:
                run = await self._run_one(probe, extra=extra, limits=limits)
                if run is None or self.aborted is not None:
                    return
                if not run.summary.invalid_reasons or len(retried) >= goodput.retries:
                    break
                if not worth_retrying(run.summary):
                    break
                retried.append(run.run_id)  # spoiled (a stall, a starved client): measured again
            share = run.summary.slo_attainment
            measured = None if run.summary.load is None else run.summary.load.measured
            search.record(
                load, stage, run.run_id, None if share is None else share.value,
                None if share is None else share.ci95,
                measured_load=measured, invalid=tuple(run.summary.invalid_reasons), retried=tuple(retried),
            )  # fmt: skip
        best = search.best
        if best is None:
            first = search.probes[0]
            why = (
                f"was invalid ({'; '.join(first.invalid)})"
                if not first.valid
                else f"met the SLO for only {(first.attainment or 0):.1%} of requests"
            )
            self.aborted = NoOperatingPointError(
                f"{goodput.label}: even the first probe ({first.load:g}) {why}; lower --{goodput.dimension}, "
                "relax --slo, or send more requests per probe",
                run_id=first.run_id,
                kept=0,
            )
            return
        pacing = goodput.probe(best.load)
        point = OperatingPointDoc(
            dimension=goodput.dimension,
            value=best.load,
            measured=best.measured_load,
            target_attainment=goodput.target,
            attainment=best.attainment,
            attainment_ci=best.ci95,
            probes=[p.run_id for p in search.probes],
            search=[ProbeDoc.from_json(p.to_json()) for p in search.probes],
            capped=search.capped,
            warnings=search.warnings(),
        )
        extra = {
            "kind": "goodput",
            "pacing": pacing,
            "operating_point": point,
            "attainment_target": goodput.target,
            "search_profile": goodput,
        }
        limits = goodput.probe_limits(best.load, base)
        await self._run_one(pacing, extra=extra, label=f"goodput @ {pacing.label}", limits=limits)

    async def _run_one(
        self,
        profile: RunProfile,
        *,
        total: int | None = None,
        extra: dict[str, Any] | None = None,
        label: str | None = None,
        limits: Limits | None = None,
    ) -> RunResult | None:
        limits = limits or self._limits()
        prompt_seed = self.spec.seed + self.index  # fresh prompts per run: no prefix-cache hits across runs
        prepared: PreparedRun | None = None
        requests: Iterator[GenRequest]
        if self.traffic is not None:
            prepared = await self.traffic.prepare(profile, limits, prompt_seed)
            plan, requests = prepared.plan, iter(())
        else:
            plan = make_plan(profile, limits)
            requests = await self._requests(plan.planned_requests, prompt_seed)
        if self.workers is not None and prepared is not None and prepared.sessions is not None:
            raise UsageError(
                "--workers does not apply to session workloads: each turn waits for the answer before it, "
                "and the session driver runs in this process; drop --workers",
                flag="--workers",
            )
        workers = await self._workers_for(plan)  # before the run is stored: a failed start stores nothing
        await asyncio.sleep(0)  # let a Ctrl-C that came while prompts were built be seen
        if self.stop.is_set():
            self._interrupted_between_runs(profile.label)
            return None
        label = label or (profile.label if prepared is None else prepared.label)
        stored = LoadRunProfile.model_validate(
            {
                **profile.model_dump(),
                "label": label,
                "limits": limits,
                "prompts": self.prompts,
                "prompt_seed": prompt_seed,
                "slo": self.spec.slo,
                "sent": self._sent(prompt_seed, prepared),
                **({} if prepared is None else {"workload": prepared.doc, **prepared.stored}),
                **(extra or {}),
            }
        )
        sink = self.sink
        run_id = await sink.start_run(label, stored)
        self._emit(RunStarted(self.index, total, label, stored, run_id))
        self.index += 1

        sampler: ServerMetricsSampler | None = None
        if self.endpoint.metrics_url is not None:
            sampler = ServerMetricsSampler(
                self.endpoint.metrics_url,
                time.perf_counter(),
                every_s=self.spec.server_metrics_every_s,
                headers=dict(self.endpoint.headers),
            )
            await sampler.sample_once()  # the counters before the run (prefix-cache hit rate)
        origin = time.perf_counter()
        if sampler is not None:
            sampler.rebase(origin)
        warm = plan.warmup_count or limits.warmup.seconds
        barrier = sampler.barrier if sampler is not None and warm else None  # counters where measuring starts
        kwargs: dict[str, Any] = {
            "on_record": lambda record: sink.add(run_id, record, origin),
            "on_progress": lambda p: self._emit(RunProgress(label, p)),
            "stop": self.stop,
            "origin_s": origin,
            "measure_barrier": barrier,
        }
        runner = (
            LoadRunner(self.client, plan, requests, **kwargs)
            if prepared is None
            else prepared.runner(self.client, **kwargs)
        )
        sampler_task = asyncio.create_task(sampler.run()) if sampler is not None else None
        outcome: RunOutcome | None = None
        measure_start: float | None = None
        try:
            sent = requests if prepared is None else prepared.requests
            outcome, measure_start = await self._send(runner, plan, sent, workers, kwargs)
        finally:
            if sampler_task is not None:
                sampler_task.cancel()
                await asyncio.gather(sampler_task, return_exceptions=True)
            if sampler is not None and outcome is not None:
                await sampler.sample_once()  # the counters after the run
            kept = await sink.flush(run_id)
            if outcome is None:  # the loop itself failed: keep the run's records and mark it
                await sink.finish(run_id, "failed", None, "the load generator stopped")
        samples = sampler.samples if sampler is not None else []
        if samples:
            await sink.add_server_samples(run_id, samples)
        start = (measure_start or origin) - origin
        # Summarized from the times relative to the origin (as a store keeps them), so a recompute matches.
        summary = summarize(
            [rebase(r, origin) for r in outcome.records],
            slo=self.spec.slo_bounds(),
            client=outcome.client,
            fixed_length=stored.sent is not None and stored.sent.ignore_eos,
            attainment_target=stored.attainment_target,
            load_target=stored.target,
            server_cache=prefix_cache_delta(samples, start),
            designed_reuse=None if stored.workload is None else stored.workload.designed_reuse,
            workers=outcome.workers,
        )
        status = run_status(outcome.ended, summary)
        await sink.finish(run_id, status, summary, outcome.reason)
        result = RunResult(
            run_id=run_id,
            label=label,
            profile=stored,
            summary=summary,
            status=status,
            ended=outcome.ended,
            reason=outcome.reason,
            stored_records=kept,
            server_samples=len(samples),
            max_in_flight=outcome.max_in_flight,
            process_cpu_s=outcome.process_cpu_s,
        )
        self.runs.append(result)
        self._emit(RunFinished(result))
        if outcome.ended != "complete":
            error = InterruptedRunError if outcome.ended == "interrupted" else RunAbortedError
            self.aborted = error(abort_message(outcome, label), run_id=run_id, kept=kept)
        elif status == "failed":
            self.aborted = RunFailedError(
                f"{label}: every request failed; see the error breakdown", run_id=run_id, kept=kept
            )
        return result

    # --- where a run is sent: this process, or worker processes ---------------------------------------------

    async def _send(
        self,
        runner: LoadRunner | ConversationRunner,
        plan: Plan,
        requests: Iterator[GenRequest] | None,
        workers: int | None,
        kwargs: dict[str, Any],
    ) -> tuple[RunOutcome, float | None]:
        """Send one run by `runner` in this process, or over `workers` processes of the pool; returns the
        outcome and when measuring started (perf_counter)."""
        if workers is None or self._pool is None:
            outcome = await runner.run()
            return outcome, runner.measure_start_s
        assert requests is not None  # sessions are refused with --workers before the run is stored
        outcome = await self._pool.run(
            plan, requests, on_record=kwargs["on_record"], on_progress=kwargs["on_progress"], stop=self.stop,
            origin_s=kwargs["origin_s"], session_key=_session_of, use=workers,
        )  # fmt: skip
        return outcome, outcome.start_s

    async def _workers_for(self, plan: Plan) -> int | None:
        """How many worker processes send `plan` (None: this process), the pool started or grown to them."""
        if self.workers is None:
            return None
        count = self.workers.count(plan)
        if self._pool is None or self._pool.size < count:
            await self._close_pool()
            pool = WorkerPool(self.workers.factory, count)
            await pool.__aenter__()  # WorkerStartError when they cannot start; nothing is left running
            self._pool = pool
        return count

    async def _close_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.__aexit__(None, None, None)


def _session_of(request: GenRequest) -> str | None:
    """The session a request belongs to: a session's requests stay on one worker process."""
    return request.session_id


def _rate(summary: RunSummary) -> float | None:
    """What a sweep spaces its rates by: requests per second, or sessions per second for sessions."""
    return summary.requests_per_s if summary.sessions is None else summary.sessions.sessions_per_s
