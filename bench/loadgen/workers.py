"""Multi-process load runs: one Plan's sends spread over worker processes, driven by one schedule.

    async with WorkerPool(client_factory, workers=resolve_workers("auto", plan)) as pool:
        outcome = await pool.run(plan, requests, on_record=sink, on_progress=show, stop=stop, origin_s=t0)

Each worker is a process of its own (`bench.loadgen.worker`) with its own event loop (uvloop where
installed) and connection pool; it builds its client by calling `client_factory`, which must pickle (a
module-level function, or functools.partial of one, with picklable arguments: a ClientConfig whose
tokenizer is None, and the tokenizer's source to load in the worker). Start-up costs each worker an
interpreter and its imports (about half a second, in parallel), so keep one pool for a whole invocation.

One clock: `time.perf_counter()` is CLOCK_MONOTONIC on Linux, one system-wide clock (not per process), so
the parent's origin, the workers' shared start and every record's times are on the same time base
(`perf_counter_is_monotonic()`; checked by tests/bench/test_loadgen_workers.py). The parent sends every
worker the same start instant a little ahead (START_MARGIN_S); open-loop requests keep their plan offsets
(bench.loadgen.shares), so the arrival schedule does not depend on the number of workers.

How the rest flows (bench.loadgen.coordinator): records come back in batches and reach `on_record` one by
one on the caller's loop (the caller's store writer stays the only writer); progress sums the workers;
`stop` (Ctrl-C) halts every worker, which ignore SIGINT themselves and run in sessions of their own. A
worker that dies ends the run as `worker_lost` with its unfinished requests marked. `RunOutcome.client` is
the busiest worker's event loop (the client_bound rule is about one saturated loop), `client_total` the sum,
`workers` each one's stats.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from bench.errors import UsageError, WorkerStartError
from bench.loadgen import wire
from bench.loadgen.coordinator import Inbox, RunCoordinator
from bench.loadgen.protocol import StreamingClient
from bench.loadgen.runner import PROGRESS_EVERY_S, ProgressSink, RecordSink, RunOutcome
from bench.loadgen.schedule import Plan
from bench.loadgen.shares import FEED_CHUNK, SessionKey
from bench.records import GenRequest

ClientFactory = Callable[[], StreamingClient]  # must pickle: see the module docstring
WorkersChoice = int | Literal["auto"]
START_TIMEOUT_S = 60.0  # a worker that is not ready by then fails the pool's start
CLOSE_TIMEOUT_S = 10.0
# What one worker is given under --workers auto: open-loop sends per second it keeps within a p99 lag of
# 2 ms with room to spare (scripts/bench-rate-accuracy), and closed-loop streams.
WORKER_RATE = 1000.0
WORKER_STREAMS = 256
_PATH_ENV = "LLMBENCH_WORKER_SYS_PATH"
_BOOT = (
    f"import json, os, sys; sys.path[:] = json.loads(os.environ.pop({_PATH_ENV!r})); "
    "from bench.loadgen.worker import main; main()"
)


__all__ = [
    "ClientFactory",
    "WorkerPool",
    "WorkerSetup",
    "WorkerStartError",
    "WorkersChoice",
    "parse_workers",
    "resolve_workers",
    "run_in_workers",
    "usable_cores",
]


def parse_workers(text: str, *, flag: str = "--workers") -> WorkersChoice:
    """`auto` or a whole number ≥ 1."""
    raw = text.strip().lower()
    if raw == "auto":
        return "auto"
    try:
        count = int(raw)
    except ValueError:
        count = 0
    if count < 1:
        raise UsageError(f"{text!r}: give a number of worker processes (1 or more) or auto", flag=flag)
    return count


def usable_cores() -> int:
    """CPUs this process may run on (its affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def resolve_workers(choice: WorkersChoice, plan: Plan, *, cores: int | None = None, reserved: int = 1) -> int:
    """The number of worker processes for `plan`: the number given, or for `auto`
    min(cores − reserved, what the load needs), at least 1.

    The load needs ⌈rate ÷ WORKER_RATE⌉ workers for an open loop (its measured rate from the schedule) and
    ⌈concurrency ÷ WORKER_STREAMS⌉ for a closed loop. `reserved` cores are left out: one for the parent
    (the store writer, the display), and the caller adds one for a server on this machine.
    """
    if choice != "auto":
        return choice
    spare = (cores if cores is not None else usable_cores()) - reserved
    if plan.offsets_s is not None:
        measured = plan.offsets_s[plan.warmup_count :]
        span = measured[-1] - measured[0] if len(measured) > 1 else 0.0
        rate = (len(measured) - 1) / span if span > 0 else 0.0
        need = math.ceil(rate / WORKER_RATE)
    else:
        need = math.ceil((plan.concurrency or 1) / WORKER_STREAMS)
    return max(1, min(spare, need))


@dataclass(frozen=True)
class WorkerSetup:
    """How a load session sends over worker processes (`--workers`): the client factory (it must pickle,
    see the module docstring), the count or auto, and for auto the cores it leaves out (`reserved`, of
    `cores`, None: this process's usable cores)."""

    factory: ClientFactory
    choice: WorkersChoice
    reserved: int = 1
    cores: int | None = None

    def count(self, plan: Plan) -> int:
        """Worker processes for `plan` (resolve_workers)."""
        return resolve_workers(self.choice, plan, cores=self.cores, reserved=self.reserved)


class _Link:
    """One worker process and its two pipes."""

    def __init__(self, index: int, inbox: Inbox) -> None:
        self.index = index
        self.pid = 0
        self._inbox = inbox
        self._proc: subprocess.Popen[bytes] | None = None
        self._out: asyncio.WriteTransport | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self.alive = False

    async def start(self, factory_frame: bytes) -> None:
        loop = asyncio.get_running_loop()
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(down_r), str(up_w)],
                pass_fds=(down_r, up_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env={**os.environ, _PATH_ENV: json.dumps(sys.path)},
                # Its own session: Ctrl-C reaches only the parent (which tells the workers), and under
                # autogroup scheduling each worker gets a CPU share of its own.
                start_new_session=True,
            )
        finally:
            os.close(down_r)
            os.close(up_w)
        self.pid = self._proc.pid
        self.alive = True
        reader = asyncio.StreamReader(limit=2**26)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(up_r, "rb", buffering=0)
        )
        self._out, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(down_w, "wb", buffering=0))
        self._reader_task = asyncio.create_task(self._read(reader))
        self._out.write(factory_frame)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            message = await wire.read_message(reader)
            await self._inbox.put((self.index, message))
            if message is None:
                self.alive = False
                return

    def send(self, message: object) -> None:
        if self._out is not None and not self._out.is_closing():
            self._out.write(wire.frame(message))

    async def death(self) -> str:
        """How the process ended, in words."""
        self.alive = False
        code = await asyncio.to_thread(self._wait, 2.0)
        if code is None:
            return "stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"died (killed by {name})"
        return f"exited with status {code}"

    def _wait(self, timeout: float) -> int | None:
        assert self._proc is not None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    async def close(self) -> None:
        self.send(wire.Close())
        if self._out is not None:
            self._out.close()
        if self._proc is not None and await asyncio.to_thread(self._wait, CLOSE_TIMEOUT_S) is None:
            self._proc.kill()
            await asyncio.to_thread(self._wait, CLOSE_TIMEOUT_S)
        if self._reader_task is not None:
            self._reader_task.cancel()
            await asyncio.gather(self._reader_task, return_exceptions=True)
        self.alive = False


class WorkerPool:
    """`workers` processes, each with its own client made by `client_factory`; runs plans one at a time."""

    def __init__(
        self,
        client_factory: ClientFactory,
        workers: int,
        *,
        feed_chunk: int = FEED_CHUNK,
        cpus: Sequence[int] | None = None,
    ) -> None:
        """`cpus`: pin worker i to CPU cpus[i % len(cpus)] (Linux; benchmarks that keep a core apart)."""
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self._factory = client_factory
        self._size = workers
        self._inbox: Inbox = asyncio.Queue()
        self._links: list[_Link] = []
        self._runs = 0
        self._feed_chunk = feed_chunk  # requests per shipment to a worker of an open-ended closed loop
        self._cpus = list(cpus or [])

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids, in worker order."""
        return [link.pid for link in self._links]

    @property
    def size(self) -> int:
        """Workers still alive."""
        return sum(1 for link in self._links if link.alive)

    async def __aenter__(self) -> WorkerPool:
        size = self._size
        try:
            factory_frame = wire.frame(self._factory)
        except Exception as exc:  # pickle raises many kinds
            raise WorkerStartError(
                f"the client factory cannot be sent to worker processes ({type(exc).__name__}: {exc}); "
                "pass a module-level function or functools.partial of one, with picklable arguments",
                workers=size,
            ) from exc
        self._links = [_Link(i, self._inbox) for i in range(size)]
        try:
            for link in self._links:
                await link.start(factory_frame)
                if self._cpus:
                    os.sched_setaffinity(link.pid, {self._cpus[link.index % len(self._cpus)]})
            await asyncio.wait_for(self._ready(), START_TIMEOUT_S)
        except BaseException as exc:
            await self.__aexit__(None, None, None)
            if isinstance(exc, TimeoutError):
                raise WorkerStartError(
                    f"the worker processes were not ready within {START_TIMEOUT_S:g} s", workers=size
                ) from exc
            if isinstance(exc, OSError):  # no process, pipe or CPU to be had
                raise WorkerStartError(
                    f"a worker process could not be started ({type(exc).__name__}: {exc})", workers=size
                ) from exc
            raise
        return self

    async def _ready(self) -> None:
        waiting = {link.index for link in self._links}
        while waiting:
            index, message = await self._inbox.get()
            if isinstance(message, wire.Ready):
                waiting.discard(index)
            elif isinstance(message, wire.Failed):
                raise WorkerStartError(
                    f"a worker process failed to start: {message.text}", workers=self._size
                )
            elif message is None:
                how = await self._links[index].death()
                raise WorkerStartError(f"worker {index} {how} while starting", workers=self._size)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(link.close() for link in self._links), return_exceptions=True)

    async def run(
        self,
        plan: Plan,
        requests: Iterator[GenRequest],
        *,
        on_record: RecordSink | None = None,
        on_progress: ProgressSink | None = None,
        stop: asyncio.Event | None = None,
        origin_s: float | None = None,
        session_key: SessionKey | None = None,
        progress_every_s: float = PROGRESS_EVERY_S,
        use: int | None = None,
    ) -> RunOutcome:
        """Run `plan` over the live workers (the first `use` of them when given; the others stay idle);
        see the module docstring for how records, progress and stop flow. `origin_s` is the caller's time
        base (perf_counter); the workers start a little after it."""
        links = [link for link in self._links if link.alive][:use]
        if not links:
            raise WorkerStartError("every worker process of the pool has died", workers=self._size)
        self._drain()
        self._runs += 1
        coordinator = RunCoordinator(
            links,
            self._inbox,
            plan,
            requests,
            on_record=on_record,
            on_progress=on_progress,
            stop=stop,
            origin_s=origin_s,
            session_key=session_key,
            progress_every_s=progress_every_s,
            run_no=self._runs,
            feed_chunk=self._feed_chunk,
        )
        return await coordinator.run()

    def _drain(self) -> None:
        """Forget what idle workers said between runs (an idle worker's end is seen by `alive`)."""
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                self._inbox.get_nowait()


async def run_in_workers(
    plan: Plan,
    requests: Iterator[GenRequest],
    client_factory: ClientFactory,
    workers: int,
    *,
    on_record: RecordSink | None = None,
    on_progress: ProgressSink | None = None,
    stop: asyncio.Event | None = None,
    origin_s: float | None = None,
    session_key: SessionKey | None = None,
) -> RunOutcome:
    """One run in a pool of its own (start-up included): see WorkerPool for invocations of many runs."""
    async with WorkerPool(client_factory, workers) as pool:
        return await pool.run(
            plan,
            requests,
            on_record=on_record,
            on_progress=on_progress,
            stop=stop,
            origin_s=origin_s,
            session_key=session_key,
        )
