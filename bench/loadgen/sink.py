"""Where a load session's runs go: the interface the session needs, and a sink that keeps them in memory.

The session measures; a sink keeps. The results store's sink (bench.runs) writes each run's rows on a
worker thread in batches; `MemorySink` keeps everything in lists, for tests and for library users who want
the records without a store. The interface lives here, with its user: loadgen never imports a store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from bench.loadgen.documents import LoadRunProfile
from bench.loadgen.server_metrics import Sample
from bench.metrics import RunSummary
from bench.records import RequestRecord

RunEnd = Literal["complete", "partial", "failed"]  # how a run ended (the store's run status, less 'running')


class RunSink(Protocol):
    """Keeps the runs of one load session: their profiles, records, server samples and summaries."""

    async def start_run(self, label: str, profile: LoadRunProfile) -> str:
        """Record that a run starts with `profile`; returns the run's id."""
        ...

    def add(self, run_id: str, record: RequestRecord, origin_s: float) -> None:
        """One finished request (perf_counter times; `origin_s` is the run's origin). Called on the event
        loop as each request completes, so it must not block: a slow sink buffers."""
        ...

    async def flush(self, run_id: str) -> int:
        """Return once every record added to the run is kept; how many the run has kept."""
        ...

    async def add_server_samples(self, run_id: str, samples: Sequence[Sample]) -> None:
        """The server's /metrics samples of the run (`t_s`: seconds since the run's origin)."""
        ...

    async def finish(
        self, run_id: str, status: RunEnd, summary: RunSummary | None, reason: str | None
    ) -> None:
        """Close the run: how it ended, its summary (None when the loop itself failed) and why it stopped."""
        ...


@dataclass
class MemoryRun:
    """One run as a MemorySink keeps it."""

    run_id: str
    label: str
    profile: LoadRunProfile
    records: list[RequestRecord] = field(default_factory=list)
    origin_s: float | None = None
    samples: list[Sample] = field(default_factory=list)
    status: RunEnd | None = None  # None while it runs
    summary: RunSummary | None = None
    reason: str | None = None


@dataclass
class MemorySink:
    """A RunSink that keeps every run in `runs` (in start order); ids are 'run-1', 'run-2', ..."""

    runs: list[MemoryRun] = field(default_factory=list)

    def run(self, run_id: str) -> MemoryRun:
        """The run with this id."""
        return next(r for r in self.runs if r.run_id == run_id)

    async def start_run(self, label: str, profile: LoadRunProfile) -> str:
        run = MemoryRun(f"run-{len(self.runs) + 1}", label, profile)
        self.runs.append(run)
        return run.run_id

    def add(self, run_id: str, record: RequestRecord, origin_s: float) -> None:
        run = self.run(run_id)
        run.origin_s = origin_s
        run.records.append(record)

    async def flush(self, run_id: str) -> int:
        return len(self.run(run_id).records)

    async def add_server_samples(self, run_id: str, samples: Sequence[Sample]) -> None:
        self.run(run_id).samples.extend(samples)

    async def finish(
        self, run_id: str, status: RunEnd, summary: RunSummary | None, reason: str | None
    ) -> None:
        run = self.run(run_id)
        run.status, run.summary, run.reason = status, summary, reason
