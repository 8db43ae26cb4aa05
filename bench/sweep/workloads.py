"""The sweep's workload axis: `workloads:` entries, checked, resolved, and sized for the --dry-run estimate.

```yaml
workloads:
  - synthetic                                  # the load steps' own prompts (input_tokens, ...)
  - builtin:chat-over-docs                     # a workload shipped with llmbench (bench/sweep/workloads/)
  - {file: workloads/rag.yaml, name: rag, targets: [mock-mini]}   # relative to the sweep file
```

Every target × workload is a point (a `targets:` list keeps a workload to some targets, e.g. the API
options when a local model's context cannot hold the workload's documents). Without `workloads:` a sweep
runs one workload, `synthetic`: the load steps' own prompts, exactly as before workloads existed. A point
of a file workload passes the file to its load steps (LoadOptions.workload); accuracy suites run once per
serve configuration, at its first workload's point (the same weights answer the same items on any traffic).

A workload's name is its entry's `name`, else the file's own `name:`, else the file's stem. Its sha256 is
that of the workload file's bytes (data files it names, such as traces, are not hashed).
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from bench.errors import ConfigError
from bench.prompts.workloads import (
    OpenLoopRequests,
    RequestSequence,
    SessionPlan,
    Workload,
    load_workload,
)
from bench.records import GenRequest, reference_tokens

SYNTHETIC = "synthetic"  # the load steps' own prompts: the default workload
BUILTIN = "builtin:"
SAMPLE = 200  # requests read to size a long workload's mean lengths


def builtin_workloads_dir() -> Path:
    """Where `builtin:NAME` workloads are: bench/sweep/workloads/NAME.yaml, shipped with llmbench."""
    return Path(__file__).parent / "workloads"


def workload_path(file: str) -> Path:
    """The path of a workload entry's file (`builtin:NAME` or a path already made absolute)."""
    if file.startswith(BUILTIN):
        name = file.removeprefix(BUILTIN)
        path = builtin_workloads_dir() / f"{name}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in builtin_workloads_dir().glob("*.yaml"))
            raise ConfigError(
                f"unknown builtin workload {name!r}",
                key="workloads",
                fix=f"use one of: {', '.join(BUILTIN + k for k in known)}, or a workload file",
            )
        return path
    return Path(file)


class WorkloadEntry(BaseModel):
    """One workload of a sweep: a `llmbench.workload/1` file (or `builtin:NAME`), or `synthetic`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str | None = Field(
        None, description="workload file, relative to the sweep file, or builtin:NAME; none: synthetic"
    )
    name: str | None = Field(None, min_length=1, description="label in plans and reports")
    targets: list[str] | None = Field(
        None,
        min_length=1,
        description="the sweep targets it runs on (NAME, or NAME:VARIANT for one variant); default: all",
    )

    @model_validator(mode="before")
    @classmethod
    def _read(cls, data: Any, info: ValidationInfo) -> Any:
        """`- synthetic` is the synthetic workload; `- PATH` (or `- builtin:NAME`) a file. The file must read
        as a workload; a relative path is made absolute from the sweep file's folder; the name is the
        entry's, else the file's own `name:`, else its stem."""
        if isinstance(data, str):
            data = {} if data == SYNTHETIC else {"file": data}
        if not isinstance(data, dict):
            return data
        file = data.get("file")
        if file is None:
            return {**data, "name": data.get("name") or SYNTHETIC}
        if not isinstance(file, str):
            return data  # the field's own check names the problem
        if not file.startswith(BUILTIN):
            base = (info.context or {}).get("base")
            path = Path(file).expanduser()
            file = str(path if path.is_absolute() or base is None else (Path(base) / path).resolve())
        try:
            path = workload_path(file)
            workload = load_workload(path)
        except ConfigError as exc:
            message = f"{exc}" + (f"; {exc.fix}" if exc.fix else "")
            raise PydanticCustomError("workload", "{message}", {"message": message, "key": "file"}) from exc
        return {**data, "file": file, "name": data.get("name") or workload.name or path.stem}

    @property
    def label(self) -> str:
        return self.name or SYNTHETIC

    def runs_on(self, target: str, serve_name: str | None = None) -> bool:
        """Whether it runs on a point of `target` (a name in `targets:`) serving `serve_name` (a NAME:VARIANT
        in `targets:` keeps it to that variant)."""
        if self.targets is None or target in self.targets:
            return True
        return serve_name is not None and serve_name in {served(t) for t in self.targets if ":" in t}


def served(name: str) -> str:
    """The serve name a `targets:` entry NAME:VARIANT stands for (NAME:base is NAME itself)."""
    base, _, variant = name.partition(":")
    return base if variant == "base" else name


@dataclass(frozen=True)
class WorkloadShape:
    """What one run of a workload sends, for the estimate: requests (None: as many as the load step
    asks), mean prompt and output lengths (reference tokens), and how long its own schedule lasts (s; None:
    paced by the load profile)."""

    requests: int | None
    input_tokens: float
    output_tokens: float
    duration_s: float | None
    reuse_share: float | None = None  # designed share of prompt tokens that repeat earlier ones
    chain: float = 1.0  # requests on the schedule's critical path, one after another (a session's turns)


@dataclass(frozen=True)
class ResolvedWorkload:
    """A workload entry with its file read: what a point runs and stores."""

    name: str
    path: Path | None  # None: synthetic
    sha256: str | None
    kind: str
    shape: WorkloadShape | None  # None: synthetic (the load step's own lengths)

    @property
    def synthetic(self) -> bool:
        return self.path is None


def resolve(entry: WorkloadEntry) -> ResolvedWorkload:
    """Read an entry's file: its path, sha256, kind and the shape of its traffic."""
    if entry.file is None:
        return ResolvedWorkload(entry.label, None, None, SYNTHETIC, None)
    path = workload_path(entry.file)
    workload = load_workload(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return ResolvedWorkload(entry.label, path, digest, workload.kind, shape(workload))


def _ref(text: str | None) -> int:
    return reference_tokens(len((text or "").encode()))


def _request_tokens(requests: Sequence[GenRequest]) -> tuple[float, float]:
    if not requests:
        return 0.0, 0.0
    ins = [reference_tokens(r.prompt_bytes()) for r in requests]
    return statistics.fmean(ins), statistics.fmean(r.max_tokens for r in requests)


def shape(workload: Workload) -> WorkloadShape:
    """The traffic of one run of `workload`, sized from its built plan (a long one from a sample).

    A sequence paced by the load profile (shared prefixes) sends what the load step asks; a request log
    without timestamps is sent whole. Sessions: each turn's prompt is the system prompt and the whole
    history, earlier answers taken at their full output budget; the schedule lasts until the last session's
    last pause has passed (arrivals at a rate), or the pauses of every session shared among the active
    slots (a fixed number at once).
    """
    built = workload.build()
    reuse = getattr(built, "reuse_share", None)
    if isinstance(built, SessionPlan):
        ins: list[int] = []
        outs: list[int] = []
        ends: list[float] = []
        for session in built.sessions:
            history = _ref(session.system)
            for turn in session.turns:
                history += _ref(turn.user)
                ins.append(history)
                outs.append(turn.max_tokens)
                history += turn.max_tokens
            ends.append((session.arrival_s or 0.0) + sum(t.think_s for t in session.turns))
        slots = built.concurrent
        turns = [len(session.turns) for session in built.sessions]
        duration = sum(ends) / slots if slots is not None else max(ends, default=0.0)
        chain = sum(turns) / slots if slots is not None else max(turns, default=0)
        return WorkloadShape(
            len(ins),
            statistics.fmean(ins) if ins else 0.0,
            statistics.fmean(outs) if outs else 0.0,
            duration,
            reuse,
            float(chain),
        )
    if isinstance(built, OpenLoopRequests):
        n = len(built)
        step = max(1, n // SAMPLE)
        inp, out = _request_tokens([built[i].request for i in range(0, n, step)])
        return WorkloadShape(n, inp, out, built.duration_s, reuse)
    assert isinstance(built, RequestSequence)
    take = SAMPLE if built.count is None else min(built.count, SAMPLE)
    inp, out = _request_tokens(built.take(take))
    # A request log is sent whole; a pool of prefixes as many times as the load step asks.
    count = built.count if workload.kind == "request_log" else None
    return WorkloadShape(count, inp, out, None, reuse)
