"""The async engine: sends requests through a StreamingClient by a Plan and streams back their records.

One event loop does everything, and per-request work on it is kept to creating one task and appending
one record: storing and rendering happen elsewhere (callbacks hand records on). Every request is its own
task, so a stop can cancel the stragglers and still account for each one (a CANCELLED record).
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from bench.errors import TargetError
from bench.loadgen.protocol import StreamingClient
from bench.loadgen.schedule import Plan
from bench.loadgen.timer import DueTimer, prompt_switching
from bench.metrics import ClientStats, WorkerStats
from bench.records import GenRequest, RequestRecord, Status

# worker_lost: a worker process of a multi-process run died (bench.loadgen.workers); the run is partial.
Ended = Literal["complete", "interrupted", "server_down", "error_rate", "worker_lost"]
Phase = Literal["warmup", "measuring", "cooldown", "done"]
PROGRESS_EVERY_S = 0.5
PROBE_TIMEOUT_S = 5.0
ERROR_RATE_MIN_SAMPLE = 10  # measured requests finished before --max-error-rate is judged
_TTFT_WINDOW = 256  # running TTFT p50 over the latest this many successes
# Why freeze: the records a run keeps are long-lived objects that Python's cyclic GC would scan again and
# again; at 1,000 requests/s a full collection over them stopped the loop for ~30 ms and the middle
# generation for ~3.6 ms (measured), so sends went late. Every this many seconds the run moves what is
# alive out of the collector's sight (gc.freeze; reference counting still frees it), and gives it back
# at the end of the run (gc.unfreeze).
GC_FREEZE_EVERY_S = 0.5


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot of a run in flight, handed to the progress callback about twice a second."""

    phase: Phase
    elapsed_s: float
    sent: int
    ok: int
    failed: int
    cancelled: int
    in_flight: int
    rate_per_s: float | None  # completions per second over the last few seconds
    ttft_p50_ms: float | None  # over the latest successes
    planned: int | None  # requests to send including warm-up, when known
    duration_s: float | None  # measured duration limit (s), when set
    workers: int = 1  # processes sending (a multi-process run sums theirs)


@dataclass(slots=True)
class RunOutcome:
    """What a run produced: every record (warm-up flagged), how it ended, and the client's own cost."""

    records: list[RequestRecord]
    origin_s: float  # perf_counter at the start of the run
    ended: Ended
    reason: str | None
    client: ClientStats  # CPU of the event loop's thread over the run
    max_in_flight: int
    process_cpu_s: float = 0.0  # the whole process (store writer, display, an in-process mock)
    # Multi-process runs (bench.loadgen.workers): `client` is then the busiest worker's event loop (the
    # client_bound rule is about one saturated loop), `client_total` the sum over workers (cores used),
    # `workers` each worker's own figures. An in-process run leaves them empty.
    client_total: ClientStats | None = None
    workers: list[WorkerStats] = field(default_factory=list)
    start_s: float | None = None  # perf_counter when sending began (the workers' shared start)


RecordSink = Callable[[RequestRecord], None]
ProgressSink = Callable[[Progress], None]


class LoadRunner:
    """Runs one Plan against one client; `stop` (an asyncio.Event) ends it early as 'interrupted'."""

    def __init__(
        self,
        client: StreamingClient,
        plan: Plan,
        requests: Iterator[GenRequest],
        *,
        on_record: RecordSink | None = None,
        on_progress: ProgressSink | None = None,
        stop: asyncio.Event | None = None,
        progress_every_s: float = PROGRESS_EVERY_S,
        origin_s: float | None = None,
        measure_barrier: Callable[[], Awaitable[float]] | None = None,
        first_measured_offset_s: float | None = None,
    ) -> None:
        """`measure_barrier` (multi-process runs): awaited once the warm-up has finished; returns the
        perf_counter time at which every worker starts measuring. `first_measured_offset_s`: when `plan`
        is one worker's share of an open-loop plan, the whole plan's first measured offset, so that the
        share keeps the plan's absolute spacing."""
        self.client = client
        self.plan = plan
        self._requests = requests
        self._on_record = on_record
        self._on_progress = on_progress
        self._stop = stop or asyncio.Event()
        self._progress_every_s = progress_every_s
        self._halt = asyncio.Event()  # internal: stop sending (limit, server down, error rate)
        self._gate = asyncio.Lock()  # closed loop: one launch at a time, each out before the next
        self._inflight: set[asyncio.Task[RequestRecord]] = set()
        self._meta: dict[asyncio.Task[RequestRecord], tuple[GenRequest, float, float, bool]] = {}
        self.records: list[RequestRecord] = []
        self._origin_given = origin_s is not None
        self._origin = origin_s or 0.0  # perf_counter of the run's start; now, when not given
        self._sending = True
        self._sent = self._ok = self._failed = self._cancelled = 0
        self._measured_sent = self._measured_done = self._measured_failed = 0
        self._max_in_flight = 0
        self._ended: Ended = "complete"
        self._reason: str | None = None
        self._ttfts: deque[float] = deque(maxlen=_TTFT_WINDOW)
        self._done_times: deque[float] = deque(maxlen=4096)
        self._probe: asyncio.Task[None] | None = None
        self._last_probe = 0.0
        self._deadline: float | None = None
        # The warm-up phase runs (and completes) before measuring; a worker of several with no warm-up
        # share of its own still waits in it for the others.
        self._warming = self._has_warmup() or measure_barrier is not None
        self.measure_start_s: float | None = None  # perf_counter when the measured phase began
        self._barrier = measure_barrier
        self._first_measured = first_measured_offset_s

    @property
    def sent(self) -> int:
        """Requests launched so far, warm-up included."""
        return self._sent

    def _has_warmup(self) -> bool:
        warm = self.plan.limits.warmup
        return bool(self.plan.warmup_count if self.plan.open_loop else (warm.requests or warm.seconds))

    async def run(self) -> RunOutcome:
        """Send by the plan, cool down, cancel stragglers; returns every record."""
        # The event loop's own thread: the one that saturates first, and an in-process mock is not in it.
        cpu0, proc0, wall0 = time.thread_time(), time.process_time(), time.perf_counter()
        if not self._origin_given:
            self._origin = wall0
        producer = asyncio.create_task(self._produce())
        ticker = asyncio.create_task(self._tick()) if self._on_progress else None
        freezer = asyncio.create_task(self._freeze_gc())
        waiters = {producer, asyncio.create_task(self._stop.wait()), asyncio.create_task(self._halt.wait())}
        switching = prompt_switching()  # the store writer's thread yields the GIL to sends within 0.25 ms
        switching.__enter__()
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            self._sending = False
            if self._stop.is_set():
                self._end("interrupted", "interrupted (Ctrl-C)")
            for task in waiters - {producer}:
                task.cancel()
            if not producer.done():
                producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
            await self._cool_down()
        finally:
            for straggler in list(self._inflight):
                straggler.cancel()
            if self._inflight:
                await asyncio.gather(*self._inflight, return_exceptions=True)
            if self._probe is not None:
                self._probe.cancel()
                await asyncio.gather(self._probe, return_exceptions=True)
            if ticker is not None:
                ticker.cancel()
                await asyncio.gather(ticker, return_exceptions=True)
            freezer.cancel()
            await asyncio.gather(freezer, return_exceptions=True)
            gc.unfreeze()
            switching.__exit__(None, None, None)
        wall = time.perf_counter() - wall0
        self._emit_progress("done")
        return RunOutcome(
            records=self.records,
            origin_s=self._origin,
            ended=self._ended,
            reason=self._reason,
            client=ClientStats(cpu_s=time.thread_time() - cpu0, wall_s=wall, cores=os.cpu_count() or 1),
            process_cpu_s=time.process_time() - proc0,
            max_in_flight=self._max_in_flight,
        )

    # --- pacing -------------------------------------------------------------------------------------

    async def _produce(self) -> None:
        """The warm-up phase to its end (every warm-up request finished), then the measured phase.

        Warm-up requests never overlap measured ones: they exist to warm the server (caches, compiled
        kernels, connections), and a warm-up sent with the measured burst warms nothing and adds load the
        measurement does not count.
        """
        if self._warming:
            await (self._open_loop(warmup=True) if self.plan.open_loop else self._closed_loop())
            if self._inflight:
                await asyncio.wait(set(self._inflight))
        if self._barrier is not None:
            # One worker of several: every worker measures from the same instant, after all warm-ups.
            start = await self._barrier() if self._sending else time.perf_counter()
            self._warming = False
            self.measure_start_s = start
            if start > time.perf_counter():  # a closed loop must not start before the others
                await asyncio.sleep(start - time.perf_counter())
        elif self._warming:
            self._warming = False
            self.measure_start_s = time.perf_counter()
        else:
            self.measure_start_s = self._origin  # no warm-up: measuring starts with the run
        if not self._sending:
            return
        if self.plan.limits.duration_s is not None:
            self._deadline = self.measure_start_s + self.plan.limits.duration_s
        await (self._open_loop(warmup=False) if self.plan.open_loop else self._closed_loop())

    async def _open_loop(self, *, warmup: bool) -> None:
        """Send the warm-up offsets from the origin, or the measured ones from the measured phase's start.

        Each send waits on a DueTimer (bench.loadgen.timer): a timerfd wake-up just before it is due, then
        a short yield-spin, so the send is neither early nor late by the loop's millisecond timers.
        """
        assert self.plan.offsets_s is not None
        warm = self.plan.warmup_count
        offsets = self.plan.offsets_s[:warm] if warmup else self.plan.offsets_s[warm:]
        if not offsets:
            return
        first = offsets[0] if self._first_measured is None else self._first_measured
        origin = self._origin if warmup else (self.measure_start_s or self._origin) - first
        timer = DueTimer()
        try:
            for offset in offsets:
                request = next(self._requests, None)
                if request is None:
                    return
                target = origin + offset
                await timer.wait_until(target)
                if not self._sending:
                    return
                self._launch(request, target, warmup=warmup)
                await self._let_it_go_out()
        finally:
            timer.close()

    async def _closed_loop(self) -> None:
        assert self.plan.concurrency is not None
        workers = [asyncio.create_task(self._worker()) for _ in range(self.plan.concurrency)]
        try:
            # A worker returns only when sending is over for all (limit, deadline, no more prompts):
            # the cool-down, not the workers, then waits for what is still in flight.
            await asyncio.wait(workers, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _worker(self) -> None:
        limits = self.plan.limits
        while self._sending:
            freed = time.perf_counter()  # the slot is free: this is when the request is due
            async with self._gate:
                task = self._next_closed(freed)
                if task is None:
                    return
                await self._let_it_go_out()
            if not self._warming and limits.requests is not None and self._measured_sent >= limits.requests:
                return  # the last sends: the cool-down (with its grace time) waits for them
            timeout = None if self._deadline is None else max(0.0, self._deadline - time.perf_counter())
            done, _ = await asyncio.wait((task,), timeout=timeout)
            if not done:
                return  # the duration ran out while it was in flight: the cool-down takes it over

    def _next_closed(self, freed: float) -> asyncio.Task[RequestRecord] | None:
        """Launch the next closed-loop request, or None when sending is over."""
        limits = self.plan.limits
        if not self._sending:
            return None
        now = time.perf_counter()
        if self._warming:
            warm = limits.warmup
            if (warm.seconds and now - self._origin >= warm.seconds) or (
                not warm.seconds and self._sent >= warm.requests
            ):
                return None  # the warm-up is sent: its phase waits for it to finish
        else:
            if self._deadline is not None and now >= self._deadline:
                return None
            if limits.requests is not None and self._measured_sent >= limits.requests:
                return None
        request = next(self._requests, None)
        if request is None:
            return None
        return self._launch(request, freed, warmup=self._warming)

    @staticmethod
    async def _let_it_go_out() -> None:
        """Give a just-launched request two loop turns to reach the socket before the next is launched.

        Requests due at the same moment (closed-loop slots freed together, a Poisson burst) would otherwise
        all stamp their send time first and write later: on Python < 3.12 aiohttp writes the body from a
        task of its own, queued behind every other ready task, and that wait would count as server TTFT.
        """
        await asyncio.sleep(0)  # the request's task runs: builds the request, stamps start_s
        await asyncio.sleep(0)  # aiohttp's body-writer task runs: the bytes reach the socket

    # --- one request --------------------------------------------------------------------------------

    def _launch(self, request: GenRequest, scheduled: float, *, warmup: bool) -> asyncio.Task[RequestRecord]:
        task = asyncio.create_task(self.client.send(request, scheduled))
        self._meta[task] = (request, scheduled, time.perf_counter(), warmup)
        self._inflight.add(task)
        self._sent += 1
        if not warmup:
            self._measured_sent += 1
        self._max_in_flight = max(self._max_in_flight, len(self._inflight))
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[RequestRecord]) -> None:
        self._inflight.discard(task)
        request, scheduled, launched, warmup = self._meta.pop(task)
        if task.cancelled():
            now = time.perf_counter()
            record = RequestRecord(
                request_id=request.request_id,
                status=Status.CANCELLED,
                scheduled_s=scheduled,
                start_s=launched,
                end_s=now,
                input_tokens=request.input_tokens,
                error_kind="cancelled",
                error_text="stopped by the run before it completed",
            )
        elif (exc := task.exception()) is not None:
            # The protocol says send() never raises; a bug in a client still must not lose the request.
            record = RequestRecord(
                request_id=request.request_id,
                status=Status.ERROR,
                scheduled_s=scheduled,
                start_s=launched,
                end_s=time.perf_counter(),
                input_tokens=request.input_tokens,
                error_kind="client",
                error_text=f"{type(exc).__name__}: {exc}",
            )
        else:
            record = task.result()
        record.warmup = warmup
        self._account(record)
        if self._on_record is not None:
            self._on_record(record)

    def _account(self, record: RequestRecord) -> None:
        self.records.append(record)
        if record.status is Status.CANCELLED:
            self._cancelled += 1
            return
        self._done_times.append(record.end_s)
        if record.status is Status.OK:
            self._ok += 1
            if record.first_token_s is not None:
                self._ttfts.append((record.first_token_s - record.start_s) * 1000.0)
        else:
            self._failed += 1
            if record.status is Status.ERROR and (
                record.error_kind == "connection" or record.http_status is None
            ):
                self._maybe_probe()
        if record.warmup:
            return
        self._measured_done += 1
        if record.status is not Status.OK:
            self._measured_failed += 1
        cap = self.plan.limits.max_error_rate
        if (
            cap is not None
            and self._measured_done >= ERROR_RATE_MIN_SAMPLE
            and self._measured_failed / self._measured_done > cap
        ):
            share = self._measured_failed / self._measured_done
            self._end("error_rate", f"stopped: {share:.0%} of requests failed (--max-error-rate {cap:g})")

    def halt(self, ended: Ended, reason: str) -> None:
        """End the run from outside (a multi-process run stopping every worker): stop sending, then cool
        down as `ended` says (with the grace time for complete and error_rate, without for the rest)."""
        self._end(ended, reason)

    def _end(self, ended: Ended, reason: str) -> None:
        if self._ended == "complete":
            self._ended, self._reason = ended, reason
        self._sending = False
        self._halt.set()

    # --- a server that stops answering --------------------------------------------------------------

    def _maybe_probe(self) -> None:
        """A connection-level failure: ask the server whether it is still there (one probe at a time)."""
        now = time.perf_counter()
        if self._probe is not None and not self._probe.done():
            return
        if now - self._last_probe < 0.5 or not self._sending:
            return
        self._last_probe = now
        self._probe = asyncio.create_task(self._run_probe())

    async def _run_probe(self) -> None:
        try:
            await asyncio.wait_for(self.client.check(), PROBE_TIMEOUT_S)
        except TargetError as exc:
            self._end("server_down", f"the server stopped answering: {exc}")
        except TimeoutError:
            self._end(
                "server_down", f"the server stopped answering (no reply to a probe in {PROBE_TIMEOUT_S:g} s)"
            )

    # --- end of run ---------------------------------------------------------------------------------

    async def _cool_down(self) -> None:
        if not self._inflight:
            return
        grace = self.plan.limits.grace_s if self._ended in ("complete", "error_rate") else 0.0
        self._emit_progress("cooldown")
        if grace > 0:
            stop = asyncio.create_task(self._stop.wait())
            end = time.perf_counter() + grace
            while self._inflight and not stop.done():
                remaining = end - time.perf_counter()
                if remaining <= 0:
                    break
                await asyncio.wait(
                    {*self._inflight, stop}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
            stop.cancel()
            if self._stop.is_set():
                self._end("interrupted", "interrupted (Ctrl-C) during cool-down")
        for task in list(self._inflight):
            task.cancel()
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    @staticmethod
    async def _freeze_gc() -> None:
        while True:
            await asyncio.sleep(GC_FREEZE_EVERY_S)
            gc.freeze()

    # --- progress -----------------------------------------------------------------------------------

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._progress_every_s)
            self._emit_progress("cooldown" if not self._sending else None)

    def _emit_progress(self, phase: Phase | None) -> None:
        if self._on_progress is None:
            return
        now = time.perf_counter()
        if phase is None:
            phase = "warmup" if self._warming else "measuring"
        recent = [t for t in self._done_times if t > now - 5.0]
        span = min(5.0, now - self._origin)
        ttfts = sorted(self._ttfts)
        self._on_progress(
            Progress(
                phase=phase,
                elapsed_s=now - self._origin,
                sent=self._sent,
                ok=self._ok,
                failed=self._failed,
                cancelled=self._cancelled,
                in_flight=len(self._inflight),
                rate_per_s=len(recent) / span if span > 0 else None,
                ttft_p50_ms=ttfts[len(ttfts) // 2] if ttfts else None,
                planned=self.plan.planned_requests,
                duration_s=self.plan.limits.duration_s,
            )
        )
