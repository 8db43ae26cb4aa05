"""The results store behind a load session: one writer thread, records written in batches as they complete.

`StoreWriter` owns the Store on one worker thread, so SQLite never blocks the event loop. `StoreRunSink`
is the loadgen RunSink over it: each run is started with the target and provenance, its records are
buffered on the loop and written every FLUSH_EVERY_S, and the run is finished with its summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from bench.loadgen.documents import LoadRunProfile
from bench.loadgen.server_metrics import Sample
from bench.loadgen.sink import RunEnd
from bench.metrics import RunSummary
from bench.records import RequestRecord
from bench.store import ServerSample, Store

FLUSH_EVERY_S = 0.25  # records reach the store at most this long after they complete


class StoreWriter:
    """Owns the Store on one worker thread, so SQLite never blocks the event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmbench-store")
        self._store: Store | None = None

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` on the writer thread; calls run in the order they were made."""
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
    """Collects one run's records on the loop and hands them to the writer thread in batches."""

    def __init__(self, writer: StoreWriter, run_id: str) -> None:
        self.writer, self.run_id = writer, run_id
        self.origin_s = 0.0
        self.pending: list[RequestRecord] = []
        self.stored = 0
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def add(self, record: RequestRecord, origin_s: float) -> None:
        self.origin_s = origin_s
        self.pending.append(record)

    async def flush(self) -> None:
        """Write what is pending; returns after every earlier batch is written too (one writer thread)."""
        batch, self.pending = self.pending, []
        await self.writer.call(self._write, batch, self.origin_s)

    def _write(self, batch: list[RequestRecord], origin_s: float) -> None:
        # Counted on the writer thread, so a flush cancelled mid-write still counts what it wrote.
        if batch:
            self.writer.store.add_requests(self.run_id, batch, origin_s)
            self.stored += len(batch)

    async def flush_every(self, seconds: float) -> None:
        """Flush every `seconds` until `stop` is set; never cancelled mid-write, so no batch is dropped."""
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), seconds)
            await self.flush()


class StoreRunSink:
    """A RunSink that keeps each run in the results store, with its target and provenance.

    Use as `async with StoreRunSink(...) as sink:`; the store is opened on entry and closed on exit.
    """

    def __init__(
        self,
        path: Path,
        target: Mapping[str, Any],
        provenance: Mapping[str, Any],
        *,
        group_id: str | None = None,
        sweep_id: str | None = None,
        point_id: str | None = None,
    ) -> None:
        self.writer = StoreWriter(path)
        self.target = dict(target)
        self.provenance = dict(provenance)
        self.group_id, self.sweep_id, self.point_id = group_id, sweep_id, point_id
        self._runs: dict[str, _RecordBuffer] = {}

    async def __aenter__(self) -> StoreRunSink:
        await self.writer.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.writer.close()

    async def start_run(self, label: str, profile: LoadRunProfile) -> str:
        store = self.writer.store
        run_id: str = await self.writer.call(
            functools.partial(
                store.start_run,
                "load",
                self.target,
                profile,
                self.provenance,
                group_id=self.group_id,
                sweep_id=self.sweep_id,
                point_id=self.point_id,
            )
        )
        buffer = self._runs[run_id] = _RecordBuffer(self.writer, run_id)
        buffer.task = asyncio.create_task(buffer.flush_every(FLUSH_EVERY_S))
        return run_id

    def add(self, run_id: str, record: RequestRecord, origin_s: float) -> None:
        self._runs[run_id].add(record, origin_s)

    async def flush(self, run_id: str) -> int:
        buffer = self._runs[run_id]
        buffer.stop.set()
        if buffer.task is not None:
            await asyncio.gather(buffer.task, return_exceptions=True)
        await buffer.flush()
        return buffer.stored

    async def add_server_samples(self, run_id: str, samples: Sequence[Sample]) -> None:
        rows = [ServerSample(s.t_s, s.name, s.labels, s.value) for s in samples]
        await self.writer.call(self.writer.store.add_server_samples, run_id, rows, 0.0)

    async def finish(
        self, run_id: str, status: RunEnd, summary: RunSummary | None, reason: str | None
    ) -> None:
        summary_json = None if summary is None else summary.to_json()
        await self.writer.call(self.writer.store.finish_run, run_id, status, summary_json, reason)
