"""The parent's side of one multi-process run: ship the shares, start every worker on one clock, gather.

Records arrive in batches from every worker and are handed to `on_record` one by one on the parent's
event loop, so the caller's single store writer stays the only writer. The parent applies the run-wide
rules: the warm-up barrier (every worker measures from the same instant), --max-error-rate over all
records, and the first early end (Ctrl-C, a server that stops answering, a worker that dies) halts every
worker. A worker that dies is reported: its requests that were due (open loop) or launched (closed loop)
and never came back become CANCELLED records with error_kind `worker_lost`; what it already sent back is
kept, and the run ends as `worker_lost` (a partial run) with the reason.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bench.loadgen import wire
from bench.loadgen.runner import (
    ERROR_RATE_MIN_SAMPLE,
    GC_FREEZE_EVERY_S,
    Ended,
    Phase,
    Progress,
    ProgressSink,
    RecordSink,
    RunOutcome,
)
from bench.loadgen.schedule import Plan
from bench.loadgen.shares import FEED_CHUNK, Router, SessionKey, Share, plan_shares
from bench.metrics import ClientStats, Distribution, WorkerStats, client_bound_reasons
from bench.metrics.summary import lag_limit_ms
from bench.records import GenRequest, RequestRecord, Status

START_MARGIN_S = 0.05  # the shared start (and the measured phase's) is this far ahead of the message
_TTFT_WINDOW = 256


class Link(Protocol):
    """One worker process as the coordinator sees it (bench.loadgen.workers._Link)."""

    index: int
    pid: int

    def send(self, message: object) -> None: ...

    async def death(self) -> str:
        """How the process ended, in words (waits briefly for it to be reaped)."""
        ...


Inbox = asyncio.Queue[tuple[int, object | None]]  # (link index, message); None: the pipe closed


@dataclass(slots=True)
class _Part:
    """One worker's part in the run."""

    link: Link
    share: Share
    outstanding: dict[int, tuple[int, GenRequest]]  # request_id -> (position in the run, request)
    order: list[int] = field(default_factory=list)  # request ids in the order the worker sends them
    records: list[RequestRecord] = field(default_factory=list)
    loaded: bool = False
    warm_done: bool = False
    done: wire.Done | None = None
    lost: str | None = None
    sent: int = 0
    snapshot: Progress | None = None

    @property
    def finished(self) -> bool:
        return self.done is not None or self.lost is not None


class RunCoordinator:
    """Runs one Plan over `links` (the first of them, as many as the plan has use for)."""

    def __init__(
        self,
        links: Sequence[Link],
        inbox: Inbox,
        plan: Plan,
        requests: Iterator[GenRequest],
        *,
        on_record: RecordSink | None,
        on_progress: ProgressSink | None,
        stop: asyncio.Event | None,
        origin_s: float | None,
        session_key: SessionKey | None,
        progress_every_s: float,
        run_no: int,
        feed_chunk: int = FEED_CHUNK,
    ) -> None:
        self.links, self.inbox, self.plan = links, inbox, plan
        self._requests = requests
        self._on_record, self._on_progress = on_record, on_progress
        self._stop = stop or asyncio.Event()
        self._origin = origin_s
        self._session_key = session_key
        self._every = progress_every_s
        self._run_no = run_no
        self._chunk = feed_chunk
        self.parts: dict[int, _Part] = {}
        self.records: list[RequestRecord] = []
        self._router: Router | None = None
        self._feeding = asyncio.Lock()
        self._ended: Ended = "complete"
        self._reason: str | None = None
        self._start: float | None = None
        self._measure_at: float | None = None
        self._ok = self._failed = self._cancelled = 0
        self._measured_done = self._measured_failed = 0
        self._ttfts: deque[float] = deque(maxlen=_TTFT_WINDOW)
        self._done_times: deque[float] = deque(maxlen=4096)

    # --- the run --------------------------------------------------------------------------------------

    async def run(self) -> RunOutcome:
        proc0 = time.process_time()
        shares, self._router = await asyncio.to_thread(
            functools.partial(plan_shares, feed_chunk=self._chunk),
            self.plan,
            self._requests,
            len(self.links),
            self._session_key,
        )
        warm = self.plan.warmup_count if self.plan.open_loop else 0
        first = None
        if self.plan.offsets_s is not None and len(self.plan.offsets_s) > warm:
            first = self.plan.offsets_s[warm]
        barrier = bool(
            self.plan.warmup_count
            if self.plan.open_loop
            else (self.plan.limits.warmup.requests or self.plan.limits.warmup.seconds)
        )
        low = max(1, self._chunk // 2)  # a worker asks for more with half a chunk left
        for share in shares:
            link = self.links[share.worker]
            part = _Part(link, share, {r.request_id: (j, r) for j, r in share.items})
            part.order.extend(r.request_id for _, r in share.items)
            self.parts[link.index] = part
            requests = [r for _, r in share.items]
            job = wire.Job(self._run_no, share.plan, requests, share.more, low, first, barrier, self._every)
            link.send(job)
        watcher = asyncio.create_task(self._watch_stop())
        ticker = asyncio.create_task(self._tick()) if self._on_progress else None
        # The parent keeps every record too: a full GC over them would stall its intake (and, on a small
        # box, the core it shares with a worker), as in the runner.
        freezer = asyncio.create_task(self._freeze_gc())
        try:
            await self._until(lambda: all(p.loaded or p.finished for p in self.parts.values()))
            self._start = time.perf_counter() + START_MARGIN_S
            for part in self._live():
                part.link.send(wire.Start(self._start))
            await self._until(lambda: all(p.finished for p in self.parts.values()))
        except BaseException:  # the caller's task was cancelled, or its callback raised: stop the workers
            self._halt_all("interrupted", "the run was stopped by its caller")
            raise
        finally:
            for task in (watcher, ticker, freezer):
                if task is not None:
                    task.cancel()
            await asyncio.gather(watcher, freezer, *([ticker] if ticker else []), return_exceptions=True)
            gc.unfreeze()
        self._emit("done")
        return self._outcome(time.process_time() - proc0)

    async def _until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            index, message = await self.inbox.get()
            part = self.parts.get(index)
            if part is None or part.finished:
                continue  # an idle worker's end is the pool's business; a finished part has said all
            await self._handle(part, message)

    async def _handle(self, part: _Part, message: object) -> None:
        if isinstance(message, wire.Records):
            part.sent = max(part.sent, message.sent)
            for row in message.rows:
                self._take(part, wire.unpack_record(row))
        elif isinstance(message, wire.Snapshot):
            part.snapshot = message.progress
            part.sent = max(part.sent, message.progress.sent)
        elif isinstance(message, wire.Loaded):
            part.loaded = True
        elif isinstance(message, wire.WarmDone):
            part.warm_done = True
            self._maybe_measure()
        elif isinstance(message, wire.Hungry):
            await self._feed(part)
        elif isinstance(message, wire.Done):
            part.done = message
            part.sent = max(part.sent, message.sent)
            if message.ended != "complete" and self._ended == "complete":
                self._halt_all(message.ended, message.reason or "a worker stopped early")
        elif isinstance(message, wire.Failed):
            await self._lose(part, message.text)
        elif message is None:
            await self._lose(part, await part.link.death())

    def _live(self) -> list[_Part]:
        return [p for p in self.parts.values() if not p.finished]

    # --- records, the error cap ------------------------------------------------------------------------

    def _take(self, part: _Part, record: RequestRecord) -> None:
        part.outstanding.pop(record.request_id, None)
        part.records.append(record)
        self.records.append(record)
        self._account(record)
        if self._on_record is not None:
            self._on_record(record)

    def _account(self, record: RequestRecord) -> None:
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
        if record.warmup:
            return
        self._measured_done += 1
        self._measured_failed += record.status is not Status.OK
        cap = self.plan.limits.max_error_rate
        if (
            cap is not None
            and self._measured_done >= ERROR_RATE_MIN_SAMPLE
            and self._measured_failed / self._measured_done > cap
            and self._ended == "complete"
        ):
            share = self._measured_failed / self._measured_done
            self._halt_all(
                "error_rate", f"stopped: {share:.0%} of requests failed (--max-error-rate {cap:g})"
            )

    # --- phases, feeding, stopping -----------------------------------------------------------------------

    def _maybe_measure(self) -> None:
        live = self._live()
        if self._measure_at is None and live and all(p.warm_done for p in live):
            self._measure_at = time.perf_counter() + START_MARGIN_S
            for part in live:
                part.link.send(wire.Measure(self._measure_at))

    async def _feed(self, part: _Part) -> None:
        router = self._router
        if router is None or not part.share.more:
            return
        async with self._feeding:  # one thread at a time draws from the caller's iterator
            items = await asyncio.to_thread(router.take, part.share.worker, self._chunk)
        for j, request in items:
            part.outstanding[request.request_id] = (j, request)
            part.order.append(request.request_id)
        more = not router.exhausted or bool(items)
        part.link.send(wire.Feed([r for _, r in items], more))

    def _halt_all(self, ended: Ended, reason: str) -> None:
        if self._ended == "complete":
            self._ended, self._reason = ended, reason
        for part in self._live():
            part.link.send(wire.Halt(ended, reason))

    async def _watch_stop(self) -> None:
        await self._stop.wait()
        self._halt_all("interrupted", "interrupted (Ctrl-C)")

    async def _lose(self, part: _Part, how: str) -> None:
        """The worker died: mark what it had due or in flight, keep the rest, halt the others."""
        died = time.perf_counter()
        reason = f"worker {part.link.index} (pid {part.link.pid}) {how}; its unfinished requests are lost"
        part.lost = reason
        for nth, request_id in enumerate(part.order):
            item = part.outstanding.pop(request_id, None)
            if item is None:
                continue
            scheduled, warmup = self._due(part, item[0], nth, died)
            if scheduled is None or scheduled > died:
                continue  # never due: never sent
            record = RequestRecord(
                request_id=request_id,
                status=Status.CANCELLED,
                scheduled_s=scheduled,
                start_s=scheduled,
                end_s=died,
                input_tokens=item[1].input_tokens,
                error_kind="worker_lost",
                error_text=f"worker {part.link.index} (pid {part.link.pid}) {how} before this request ended",
                warmup=warmup,
            )
            self._take(part, record)
        if self._ended == "complete" or self._ended == "interrupted":
            self._ended, self._reason = "worker_lost", reason
        for other in self._live():
            other.link.send(wire.Halt("worker_lost", reason))
        self._maybe_measure()  # a worker lost in its warm-up must not hold the others at the barrier

    def _due(self, part: _Part, position: int, nth: int, died: float) -> tuple[float | None, bool]:
        """When request number `position` (the worker's `nth`) was due, and whether it was a warm-up;
        None when it was not due before the worker died (so never sent)."""
        plan, start = self.plan, self._start
        if start is None:
            return None, False
        if plan.offsets_s is not None:
            warm = plan.warmup_count
            if position < warm:
                return start + plan.offsets_s[position], True
            base = self._measure_at if warm else start
            if base is None:
                return None, False
            return base - plan.offsets_s[warm] + plan.offsets_s[position], False
        if nth >= part.sent:  # a closed loop: only what the worker said it had launched
            return None, False
        if plan.limits.warmup.seconds:
            warmup = self._measure_at is None or self._measure_at > died
        else:
            warmup = nth < part.share.plan.warmup_count
        return died, warmup  # a closed loop's send time is not planned: the loss is stamped when seen

    @staticmethod
    async def _freeze_gc() -> None:
        while True:
            await asyncio.sleep(GC_FREEZE_EVERY_S)
            gc.freeze()

    # --- progress ----------------------------------------------------------------------------------------

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            self._emit(None)

    def _emit(self, phase: Phase | None) -> None:
        if self._on_progress is None:
            return
        now = time.perf_counter()
        origin = self._origin if self._origin is not None else (self._start or now)
        snaps = [p.snapshot for p in self.parts.values() if p.snapshot is not None]
        if phase is None:
            phases = {s.phase for s in snaps}
            phase = "warmup" if "warmup" in phases else "measuring" if "measuring" in phases else "cooldown"
            if not snaps:
                phase = "warmup" if self._start is None else "measuring"
        recent = [t for t in self._done_times if t > now - 5.0]
        span = min(5.0, now - origin)
        ttfts = sorted(self._ttfts)
        self._on_progress(
            Progress(
                phase=phase,
                elapsed_s=now - origin,
                sent=sum(p.sent for p in self.parts.values()),
                ok=self._ok,
                failed=self._failed,
                cancelled=self._cancelled,
                in_flight=sum(s.in_flight for s in snaps) if phase != "done" else 0,
                rate_per_s=len(recent) / span if span > 0 else None,
                ttft_p50_ms=ttfts[len(ttfts) // 2] if ttfts else None,
                planned=self.plan.planned_requests,
                duration_s=self.plan.limits.duration_s,
                workers=len(self.parts),
            )
        )

    # --- the outcome -------------------------------------------------------------------------------------

    def _outcome(self, parent_cpu_s: float) -> RunOutcome:
        cores = os.cpu_count() or 1
        start = self._start or time.perf_counter()
        wall = time.perf_counter() - start
        stats = [self._worker_stats(p) for p in self.parts.values()]
        clients = [s.client for s in stats if s.client.wall_s > 0]
        busiest = max(clients, key=lambda c: c.cpu_share or 0.0, default=ClientStats(0.0, 0.0, cores))
        total = ClientStats(cpu_s=math.fsum(c.cpu_s for c in clients), wall_s=wall, cores=cores)
        return RunOutcome(
            records=self.records,
            origin_s=self._origin if self._origin is not None else start,
            ended=self._ended,
            reason=self._reason,
            client=busiest,
            max_in_flight=max_in_flight(self.records),
            process_cpu_s=parent_cpu_s + math.fsum(s.process_cpu_s for s in stats),
            client_total=total,
            workers=stats,
            start_s=self._start,
        )

    def _worker_stats(self, part: _Part) -> WorkerStats:
        done = part.done
        cores = os.cpu_count() or 1
        starved = "ran out of requests while more were due" if done is not None and done.starved else None
        return worker_stats(
            part.link.index,
            part.link.pid,
            part.records,
            open_loop=self.plan.open_loop,
            client=done.client if done is not None else None,
            cores=cores,
            process_cpu_s=done.process_cpu_s if done is not None else 0.0,
            sent=part.sent,
            assigned=None if part.share.more else len(part.share.items),
            max_in_flight=done.max_in_flight if done is not None else 0,
            ended="lost" if part.lost is not None or done is None else done.ended,
            reason=part.lost or (done.reason if done is not None else None) or starved,
        )


def worker_stats(
    index: int,
    pid: int,
    records: Sequence[RequestRecord],
    *,
    open_loop: bool,
    client: ClientStats | None,
    cores: int,
    process_cpu_s: float,
    sent: int,
    assigned: int | None,
    max_in_flight: int,
    ended: str,
    reason: str | None,
) -> WorkerStats:
    """One worker's figures from the records it sent back: the scheduling lag of its measured sends (ms;
    warm-up and cancelled left out, as the run's summary does) and the client_bound rule applied to it
    alone (its lag, its loop's CPU, for a closed loop the share of its slots' time lost to late refills).
    `client` is None when the worker never reported (it died): its CPU is then unknown, counted 0."""
    measured = [r for r in records if not r.warmup and r.status is not Status.CANCELLED]
    lags = [(r.start_s - r.scheduled_s) * 1000.0 for r in measured]
    lag = Distribution.of(lags)
    e2e = Distribution.of((r.end_s - r.start_s) * 1000.0 for r in measured if r.ok)
    slot_share = None
    if not open_loop:
        late = math.fsum(max(0.0, x) for x in lags) / 1000.0
        busy = late + math.fsum(r.end_s - r.start_s for r in measured)
        slot_share = late / busy if busy > 0 else None
    limit = lag_limit_ms(e2e)
    reasons = client_bound_reasons(lag, e2e, client, sum(1 for x in lags if x > limit), slot_share)
    return WorkerStats(
        index=index,
        pid=pid,
        client=client if client is not None else ClientStats(0.0, 0.0, cores),
        process_cpu_s=process_cpu_s,
        sent=sent,
        assigned=assigned,
        max_in_flight=max_in_flight,
        lag_p50_ms=lag.p50,
        lag_p99_ms=lag.p99,
        lag_max_ms=lag.max,
        client_bound_reasons=reasons,
        ended=ended,
        reason=reason,
    )


def max_in_flight(records: Sequence[RequestRecord]) -> int:
    """The most requests open at one instant, from their send and end times."""
    events = sorted([(r.start_s, 1) for r in records] + [(r.end_s, -1) for r in records])
    # At equal times an end sorts before a start (-1 < 1): back-to-back requests do not overlap.
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most
