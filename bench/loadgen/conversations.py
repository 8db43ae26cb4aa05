"""The session driver: multi-turn conversations sent through a StreamingClient, turn after turn.

A session sends turn k when turn k − 1 has been answered and its think time has passed; each turn carries
the whole history with the answers the server actually returned (`SessionSource.request`). Sessions are
paced by a Plan, like requests in bench.loadgen.runner: closed loop, `concurrency` sessions active at once
(a slot starts the next session when its session ends), or open loop, each session started at its offset.

Limits count sessions: `requests` is the number of measured sessions (warm-up `requests` the number of
warm-up sessions; warm-up seconds: sessions started before then), `duration_s` the measured seconds after
which no session and no turn starts. Warm-up sessions run to their end before the measured ones start.
A session started before its limit keeps going to its last turn; the cool-down waits `grace_s` for what
is still running (sessions that stop because of a duration, Ctrl-C or a halt, only for requests in flight).

If a turn fails (error or timeout), the session's later turns are recorded as not sent (Status.NOT_SENT,
error_kind `not_sent`, the reason in error_text) and the other sessions go on; turns left when the run
ends are recorded the same way, with that reason. Every planned turn of a started session therefore has
a record, which is what the per-session figures (bench.metrics.workload) are computed from.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from bench.errors import TargetError
from bench.loadgen.protocol import StreamingClient
from bench.loadgen.runner import (
    ERROR_RATE_MIN_SAMPLE,
    GC_FREEZE_EVERY_S,
    PROBE_TIMEOUT_S,
    PROGRESS_EVERY_S,
    Ended,
    Phase,
    Progress,
    ProgressSink,
    RecordSink,
    RunOutcome,
)
from bench.loadgen.schedule import Plan
from bench.loadgen.timer import DueTimer
from bench.metrics import ClientStats
from bench.prompts.workloads import PlannedSession
from bench.records import GenRequest, RequestRecord, Status

NOT_SENT = "not_sent"
RUN_ENDED = "not sent: the run ended before this turn"


class SessionSource(Protocol):
    """The sessions a run plays, in start order, and how each turn's request is built."""

    def session(self, index: int) -> PlannedSession:
        """Session `index` (0-based, warm-up sessions first); the same one every time."""
        ...

    def request(self, session: PlannedSession, k: int, answers: list[str], request_id: int) -> GenRequest:
        """Turn `k` of `session` with the answers returned so far."""
        ...


class ConversationRunner:
    """Runs one Plan of sessions against one client; `stop` ends it early as 'interrupted'.

    The same interface as LoadRunner (`run()`, `records`, `measure_start_s`, `sent`), so the load session
    stores, samples and summarizes it alike.
    """

    def __init__(
        self,
        client: StreamingClient,
        plan: Plan,
        sessions: SessionSource,
        *,
        on_record: RecordSink | None = None,
        on_progress: ProgressSink | None = None,
        stop: asyncio.Event | None = None,
        progress_every_s: float = PROGRESS_EVERY_S,
        origin_s: float | None = None,
        measure_barrier: Callable[[], Awaitable[float]] | None = None,
    ) -> None:
        """`measure_barrier`: awaited once the warm-up sessions have ended; returns the perf_counter time
        at which measuring starts (the session samples the server's counters there)."""
        self.client = client
        self.plan = plan
        self._source = sessions
        self._on_record = on_record
        self._on_progress = on_progress
        self._stop = stop or asyncio.Event()
        self._progress_every_s = progress_every_s
        self._origin_given = origin_s is not None
        self._origin = origin_s or 0.0
        self._barrier = measure_barrier
        self.records: list[RequestRecord] = []
        self.measure_start_s: float | None = None
        self._over = asyncio.Event()  # sending is over (a halt, or the duration ran out)
        self._starting = True  # new sessions may start
        self._sending = True  # new turns may be sent
        self._warming = self._has_warmup()
        self._deadline: float | None = None
        self._next_session = 0
        self._next_id = 0
        self._sessions: set[asyncio.Task[None]] = set()
        self._thinking: set[asyncio.Task[None]] = set()
        self._in_flight = self._max_in_flight = 0
        self._sent = self._ok = self._failed = self._cancelled = 0
        self._measured_sessions = 0
        self._measured_done = self._measured_failed = 0
        self._ended: Ended = "complete"
        self._reason: str | None = None
        self._ttfts: deque[float] = deque(maxlen=256)
        self._done_times: deque[float] = deque(maxlen=4096)
        self._probe: asyncio.Task[None] | None = None
        self._last_probe = 0.0

    @property
    def sent(self) -> int:
        """Requests (turns) sent so far, warm-up included."""
        return self._sent

    def _has_warmup(self) -> bool:
        warm = self.plan.limits.warmup
        return bool(self.plan.warmup_count if self.plan.open_loop else (warm.requests or warm.seconds))

    async def run(self) -> RunOutcome:
        """Play the sessions by the plan, cool down, cancel what is left; returns every record."""
        cpu0, proc0, wall0 = time.thread_time(), time.process_time(), time.perf_counter()
        if not self._origin_given:
            self._origin = wall0
        producer = asyncio.create_task(self._produce())
        ticker = asyncio.create_task(self._tick()) if self._on_progress else None
        freezer = asyncio.create_task(_freeze_gc())
        waiters = {producer, asyncio.create_task(self._stop.wait()), asyncio.create_task(self._over.wait())}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if self._stop.is_set():
                self._end("interrupted", "interrupted (Ctrl-C)")
            self._starting = False
            for task in waiters - {producer}:
                task.cancel()
            if not producer.done():
                producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
            await self._cool_down()
        finally:
            for session in list(self._sessions):
                session.cancel()
            if self._sessions:
                await asyncio.gather(*self._sessions, return_exceptions=True)
            helpers: list[asyncio.Task[None]] = [freezer]
            helpers += [t for t in (self._probe, ticker) if t is not None]
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            gc.unfreeze()
        self._emit_progress("done")
        return RunOutcome(
            records=self.records,
            origin_s=self._origin,
            ended=self._ended,
            reason=self._reason,
            client=ClientStats(
                cpu_s=time.thread_time() - cpu0, wall_s=time.perf_counter() - wall0, cores=os.cpu_count() or 1
            ),
            process_cpu_s=time.process_time() - proc0,
            max_in_flight=self._max_in_flight,
        )

    # --- pacing -------------------------------------------------------------------------------------

    async def _produce(self) -> None:
        """The warm-up sessions to their end, then the measured ones (see the module docstring)."""
        if self._warming:
            await (self._open_loop(warmup=True) if self.plan.open_loop else self._closed_loop())
            if self._sessions:
                await asyncio.wait(set(self._sessions))
            self._warming = False
        if self._barrier is not None and self._sending:
            self.measure_start_s = await self._barrier()
        else:
            self.measure_start_s = time.perf_counter() if self._has_warmup() else self._origin
        if not self._sending:
            return
        self._starting = True
        if self.plan.limits.duration_s is not None:
            self._deadline = self.measure_start_s + self.plan.limits.duration_s
            asyncio.get_running_loop().call_at(
                asyncio.get_running_loop().time() + max(0.0, self._deadline - time.perf_counter()),
                self._duration_over,
            )
        await (self._open_loop(warmup=False) if self.plan.open_loop else self._closed_loop())
        # Started sessions keep going to their last turn; the run waits for them here, not in the cool-down.
        while self._sessions and self._sending:
            await asyncio.wait(set(self._sessions))

    async def _open_loop(self, *, warmup: bool) -> None:
        assert self.plan.offsets_s is not None
        warm = self.plan.warmup_count
        offsets = self.plan.offsets_s[:warm] if warmup else self.plan.offsets_s[warm:]
        if not offsets:
            return
        origin = self._origin if warmup else (self.measure_start_s or self._origin) - offsets[0]
        timer = DueTimer()
        try:
            for offset in offsets:
                due = origin + offset
                await timer.wait_until(due)
                if not self._may_start(warmup):
                    return
                self._start_session(due, warmup)
        finally:
            timer.close()

    async def _closed_loop(self) -> None:
        assert self.plan.concurrency is not None
        slots = [asyncio.create_task(self._slot()) for _ in range(self.plan.concurrency)]
        try:
            await asyncio.gather(*slots)
        finally:
            for slot in slots:
                slot.cancel()
            await asyncio.gather(*slots, return_exceptions=True)

    async def _slot(self) -> None:
        warmup = self._warming
        while self._may_start(warmup):
            task = self._start_session(time.perf_counter(), warmup)
            await asyncio.wait((task,))  # never cancels the session when the slot is cancelled

    def _may_start(self, warmup: bool) -> bool:
        if not (self._starting and self._sending):
            return False
        limits = self.plan.limits
        if warmup:
            if self.plan.open_loop:
                return True
            warm = limits.warmup
            if warm.seconds:
                return time.perf_counter() - self._origin < warm.seconds
            return self._next_session < warm.requests
        if self._deadline is not None and time.perf_counter() >= self._deadline:
            return False
        if limits.requests is not None and not self.plan.open_loop:
            return self._measured_sessions < limits.requests
        return True

    def _duration_over(self) -> None:
        self._stop_sending()
        self._over.set()

    def _stop_sending(self) -> None:
        """No new session and no new turn from now on; sessions in their think time end at once."""
        self._starting = self._sending = False
        for task in list(self._thinking):
            task.cancel()

    # --- one session --------------------------------------------------------------------------------

    def _start_session(self, due: float, warmup: bool) -> asyncio.Task[None]:
        index = self._next_session
        self._next_session += 1
        if not warmup:
            self._measured_sessions += 1
        task = asyncio.create_task(self._session(self._source.session(index), due, warmup))
        self._sessions.add(task)
        task.add_done_callback(self._sessions.discard)
        return task

    async def _session(self, session: PlannedSession, due: float, warmup: bool) -> None:
        answers: list[str] = []
        last_end = due
        for k, turn in enumerate(session.turns):
            if k > 0:
                due = last_end + turn.think_s
                if not await self._think(due):
                    return self._not_sent(session, k, due, warmup, RUN_ENDED)
            if not self._sending:
                return self._not_sent(session, k, due, warmup, RUN_ENDED)
            request = self._source.request(session, k, answers, self._take_id())
            record = await self._send(request, due, warmup)
            if record.status in (Status.ERROR, Status.TIMEOUT):
                kind = record.error_kind or record.status.value
                why = f"not sent: turn {k} failed ({kind}), so the session ended"
                return self._not_sent(session, k + 1, due, warmup, why)
            if record.status is not Status.OK:  # cancelled: the run ended while it was in flight
                return self._not_sent(session, k + 1, due, warmup, RUN_ENDED)
            answers.append(record.output_text)
            last_end = record.end_s
        return None

    async def _think(self, due: float) -> bool:
        """Wait until `due`; False when sending stopped meanwhile (the think time was cut short)."""
        delay = due - time.perf_counter()
        if delay <= 0:
            return self._sending
        task = asyncio.current_task()
        assert task is not None
        self._thinking.add(task)
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            if self._sending:  # not cut short by the run: a real cancellation
                raise
            task.uncancel()
            return False
        finally:
            self._thinking.discard(task)
        return self._sending

    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    async def _send(self, request: GenRequest, due: float, warmup: bool) -> RequestRecord:
        self._sent += 1
        self._in_flight += 1
        self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            record = await self.client.send(request, due)
        except Exception as exc:  # the protocol says send() never raises; a client bug must not lose it
            now = time.perf_counter()
            record = RequestRecord(
                request.request_id, Status.ERROR, due, now, now, error_kind="client",
                error_text=f"{type(exc).__name__}: {exc}",
            )  # fmt: skip
        finally:
            self._in_flight -= 1
        record.warmup = warmup
        record.session_id, record.turn = request.session_id, request.turn
        self._account(record)
        return record

    def _not_sent(self, session: PlannedSession, start: int, at: float, warmup: bool, why: str) -> None:
        """Records for turns `start`… of `session`, never sent."""
        now = max(at, time.perf_counter())
        for k in range(start, len(session.turns)):
            record = RequestRecord(
                self._take_id(), Status.NOT_SENT, now, now, now, error_kind=NOT_SENT, error_text=why,
                warmup=warmup, session_id=session.session_id, turn=k,
            )  # fmt: skip
            self.records.append(record)
            if self._on_record is not None:
                self._on_record(record)

    def _account(self, record: RequestRecord) -> None:
        self.records.append(record)
        if self._on_record is not None:
            self._on_record(record)
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
        self._measured_failed += record.status is not Status.OK
        cap = self.plan.limits.max_error_rate
        if (
            cap is not None
            and self._measured_done >= ERROR_RATE_MIN_SAMPLE
            and self._measured_failed / self._measured_done > cap
        ):
            share = self._measured_failed / self._measured_done
            self._end("error_rate", f"stopped: {share:.0%} of requests failed (--max-error-rate {cap:g})")

    def halt(self, ended: Ended, reason: str) -> None:
        """End the run from outside: stop sending, then cool down as `ended` says."""
        self._end(ended, reason)

    def _end(self, ended: Ended, reason: str) -> None:
        if self._ended == "complete":
            self._ended, self._reason = ended, reason
        self._stop_sending()
        self._over.set()

    def _maybe_probe(self) -> None:
        now = time.perf_counter()
        if (self._probe is not None and not self._probe.done()) or now - self._last_probe < 0.5:
            return
        if not self._sending:
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
        """Wait up to the grace time for what is still running (none after Ctrl-C or a lost server)."""
        if not self._sessions:
            return
        grace = self.plan.limits.grace_s if self._ended in ("complete", "error_rate") else 0.0
        self._emit_progress("cooldown")
        if grace > 0:
            stop = asyncio.create_task(self._stop.wait())
            end = time.perf_counter() + grace
            while self._sessions and not stop.done():
                remaining = end - time.perf_counter()
                if remaining <= 0:
                    break
                await asyncio.wait(
                    {*self._sessions, stop}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
            stop.cancel()
            if self._stop.is_set():
                self._end("interrupted", "interrupted (Ctrl-C) during cool-down")
        self._stop_sending()
        for task in list(self._sessions):
            task.cancel()
        if self._sessions:
            await asyncio.gather(*self._sessions, return_exceptions=True)

    # --- progress -----------------------------------------------------------------------------------

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._progress_every_s)
            self._emit_progress("cooldown" if not self._starting else None)

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
                in_flight=self._in_flight,
                rate_per_s=len(recent) / span if span > 0 else None,
                ttft_p50_ms=ttfts[len(ttfts) // 2] if ttfts else None,
                planned=None,
                duration_s=self.plan.limits.duration_s,
            )
        )


async def _freeze_gc() -> None:
    """As the LoadRunner does (bench.loadgen.runner.GC_FREEZE_EVERY_S): keep the cyclic GC off the records."""
    while True:
        await asyncio.sleep(GC_FREEZE_EVERY_S)
        gc.freeze()
