"""One worker process of a multi-process load run (started by bench.loadgen.workers, never by hand).

The parent writes frames (bench.loadgen.wire) on one pipe and reads this process's on another. The worker
builds its own client from the parent's picklable factory, then runs each Job through a LoadRunner of its
own (its own event loop, uvloop where installed, and connection pool): records go back in batches every
FLUSH_EVERY_S, progress every half second. Ctrl-C is the parent's to handle (the terminal sends SIGINT to
the whole process group): this process ignores it and stops when the parent says so, or when the parent's
pipe closes (the parent is gone).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, cast

from bench.loadgen import wire
from bench.loadgen.protocol import StreamingClient
from bench.loadgen.runner import LoadRunner, Progress, RunOutcome
from bench.records import GenRequest, RequestRecord

FLUSH_EVERY_S = 0.05  # records reach the parent at most this long after they finish
FLUSH_ROWS = 256  # ... or as soon as this many are waiting


class _Outbox(asyncio.Protocol):
    """The pipe to the parent: writes never block; `closed` resolves once everything is written."""

    def __init__(self) -> None:
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, message: object) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(wire.frame(message))

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.close()  # after the buffered frames are written
        await self.closed


class _JobRun:
    """One job on this worker: its request queue, the Start / Measure / Halt it waits for, its records."""

    def __init__(self, job: wire.Job, out: _Outbox) -> None:
        loop = asyncio.get_running_loop()
        self.job = job
        self.out = out
        self.queue: deque[GenRequest] = deque(job.requests)
        self.more = job.more
        self.asked = False
        self.starved = False
        self.started: asyncio.Future[float | None] = loop.create_future()
        self.measure: asyncio.Future[float] = loop.create_future()
        self.stop = asyncio.Event()  # Ctrl-C in the parent: cancel in-flight requests at once
        self.halted: wire.Halt | None = None
        self.runner: LoadRunner | None = None
        self.rows: list[tuple[Any, ...]] = []

    # messages from the parent while the job runs
    def handle(self, message: object) -> None:
        if isinstance(message, wire.Start) and not self.started.done():
            self.started.set_result(message.at_s)
        elif isinstance(message, wire.Measure) and not self.measure.done():
            self.measure.set_result(message.at_s)
        elif isinstance(message, wire.Feed):
            self.queue.extend(message.requests)
            self.more = message.more
            self.asked = False
        elif isinstance(message, wire.Halt):
            self.halt(message)

    def halt(self, message: wire.Halt) -> None:
        if self.halted is None:
            self.halted = message
        if message.ended == "interrupted":
            self.stop.set()
        elif self.runner is not None:
            self.runner.halt(message.ended, message.reason)
        if not self.started.done():
            self.started.set_result(None)
        if not self.measure.done():
            self.measure.set_result(time.perf_counter())

    def requests(self) -> Iterator[GenRequest]:
        queue = self.queue
        while True:
            if self.more and not self.asked and len(queue) < self.job.low_water:
                self.asked = True
                self.out.send(wire.Hungry())
            if not queue:
                self.starved = self.more
                return
            yield queue.popleft()

    async def barrier(self) -> float:
        self.flush()
        self.out.send(wire.WarmDone())
        return await self.measure

    def add(self, record: RequestRecord) -> None:
        self.rows.append(wire.pack_record(record))
        if len(self.rows) >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        sent = self.runner.sent if self.runner is not None else 0
        if self.rows:
            rows, self.rows = self.rows, []
            self.out.send(wire.Records(rows, sent))

    def progress(self, snapshot: Progress) -> None:
        self.out.send(wire.Snapshot(snapshot))

    async def flush_every(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            self.flush()

    async def run(self, client: StreamingClient) -> None:
        self.out.send(wire.Loaded())
        at = await self.started
        if at is None:  # halted before the start: nothing was sent
            self._done(None)
            return
        job = self.job
        self.runner = LoadRunner(
            client,
            job.plan,
            self.requests(),
            on_record=self.add,
            on_progress=self.progress,
            stop=self.stop,
            progress_every_s=job.progress_every_s,
            origin_s=at,
            measure_barrier=self.barrier if job.barrier else None,
            first_measured_offset_s=job.first_measured_offset_s,
        )
        if self.halted is not None:
            self.halt(self.halted)
        if at > time.perf_counter():
            await asyncio.sleep(at - time.perf_counter())  # the shared start
        flusher = asyncio.create_task(self.flush_every())
        try:
            outcome = await self.runner.run()
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
        self.flush()
        self._done(outcome)

    def _done(self, outcome: RunOutcome | None) -> None:
        from bench.metrics import ClientStats

        if outcome is None:
            halted = self.halted
            self.out.send(
                wire.Done(
                    ended=halted.ended if halted else "interrupted",
                    reason=halted.reason if halted else None,
                    client=ClientStats(0.0, 0.0, os.cpu_count() or 1),
                    process_cpu_s=0.0,
                    sent=0,
                    max_in_flight=0,
                    starved=False,
                )
            )
            return
        self.out.send(
            wire.Done(
                ended=outcome.ended,
                reason=outcome.reason,
                client=outcome.client,
                process_cpu_s=outcome.process_cpu_s,
                sent=self.runner.sent if self.runner is not None else 0,
                max_in_flight=outcome.max_in_flight,
                starved=self.starved,
            )
        )


async def _serve(down_fd: int, up_fd: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(down_fd, "rb", buffering=0)
    )
    _, out = await loop.connect_write_pipe(_Outbox, os.fdopen(up_fd, "wb", buffering=0))
    try:
        setup = await wire.read_message(reader)
        if setup is None:
            return
        factory: Callable[[], StreamingClient] = setup  # type: ignore[assignment]
        client = factory()
        async with client:
            out.send(wire.Ready(os.getpid()))
            await _jobs(reader, out, client)
    except Exception as exc:  # reported to the parent, which fails the run with it
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        out.send(wire.Failed(f"worker {os.getpid()}: {last}"))
    finally:
        await out.close()


async def _jobs(reader: asyncio.StreamReader, out: _Outbox, client: StreamingClient) -> None:
    """Run jobs one after another until Close or the end of the parent's pipe."""
    current: list[_JobRun] = []
    inbox: asyncio.Queue[object] = asyncio.Queue()

    async def route() -> None:
        while True:
            message = await wire.read_message(reader)
            if message is None:  # the parent is gone: stop what runs, then leave
                for job in current:
                    job.halt(wire.Halt("interrupted", "the parent process went away"))
                await inbox.put(wire.Close())
                return
            if isinstance(message, wire.Close):  # leave now, even in the middle of a run
                for job in current:
                    job.halt(wire.Halt("interrupted", "the parent closed the pool"))
                await inbox.put(message)
            elif isinstance(message, wire.Job):
                await inbox.put(message)
            elif current:
                current[-1].handle(message)

    router = asyncio.create_task(route())
    try:
        while True:
            message = await inbox.get()
            if not isinstance(message, wire.Job):
                return
            job = _JobRun(message, out)
            current.append(job)
            try:
                await job.run(client)
            finally:
                current.remove(job)
    finally:
        router.cancel()
        await asyncio.gather(router, return_exceptions=True)


def main() -> None:
    """Entry point: `bench.loadgen.worker.main()` with argv DOWN_FD UP_FD (see bench.loadgen.workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and tells us
    down_fd, up_fd = int(sys.argv[1]), int(sys.argv[2])
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(down_fd, up_fd))
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(down_fd, up_fd))
