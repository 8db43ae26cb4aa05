"""What a load session reports: one RunResult per run, and the progress events it sends as it goes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.loadgen.documents import LoadRunProfile
from bench.loadgen.runner import Progress, RunOutcome
from bench.loadgen.sink import RunEnd
from bench.metrics import RunSummary


@dataclass(frozen=True, slots=True)
class RunStarted:
    """A run is about to send: its position, profile and id in the sink."""

    index: int
    total: int | None  # None for a sweep (its rates are known only after two runs)
    label: str
    profile: LoadRunProfile
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
    """One kept run: its profile, summary and status ('complete' or 'partial')."""

    run_id: str
    label: str
    profile: LoadRunProfile
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
            "profile": self.profile.to_json(),
            "summary": self.summary.to_json(),
            "status": self.status,
            "ended": self.ended,
            "reason": self.reason,
            "server_samples": self.server_samples,
            "max_in_flight": self.max_in_flight,
            "client_process_cpu_s": self.process_cpu_s,
        }


def run_status(ended: str, summary: RunSummary) -> RunEnd:
    """'failed' when no request succeeded or the error cap stopped it, 'partial' when it stopped early."""
    if ended == "error_rate" or (summary.completed == 0 and summary.failed > 0):
        return "failed"
    return "complete" if ended == "complete" else "partial"


def abort_message(outcome: RunOutcome, label: str) -> str:
    """Why a run stopped early, and what to do about it."""
    reason = outcome.reason or "the run stopped early"
    if outcome.ended == "server_down":
        return f"{label}: {reason}. Restart the server, then re-run the same command"
    if outcome.ended == "interrupted":
        return f"{label}: {reason}; the remaining runs were skipped"
    return f"{label}: {reason}"
