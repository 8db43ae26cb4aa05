"""Workloads: what traffic a run sends and when, read from a versioned file (`llmbench.workload/1`).

    workload = load_workload(Path("examples/workloads/sessions.yaml"))  # typed; ConfigError if invalid
    built = workload.build()       # SessionPlan | OpenLoopRequests | RequestSequence, by kind

Kinds (a registry keyed by `kind`, one module each):

- `sessions` (sessions.py): multi-turn conversations → `SessionPlan`; turn k is built by
  `plan.request(session, k, answers, request_id)` from the answers the server returned.
- `shared_prefix` (shared_prefix.py): a pool of prefixes plus a question each → `RequestSequence`, paced by
  the run's load profile; `workload.designed_reuse_share(n)` is the designed cache reuse.
- `trace` (trace.py, trace_formats.py): Mooncake, Azure or BurstGPT traces → `OpenLoopRequests` with the
  block-reuse share.
- `request_log` (request_log.py): recorded OpenAI request bodies → `OpenLoopRequests` at the logged times,
  or a `RequestSequence` when the log has none (or `timing: profile`).
- `phases` (phases.py, arrivals.py): a rate profile of steps, ramps and bursts → `OpenLoopRequests`.

Everything is pure: no store, no registry, no clients. Lengths are reference tokens (⌈bytes ÷ 4⌉);
max_tokens are given in those units too (scale them per target as bench.prompts.output_scale does).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bench.errors import ConfigError
from bench.prompts.workloads.arrivals import ArrivalProcess, Phase, arrival_times
from bench.prompts.workloads.base import (
    SCHEMA,
    OpenLoopRequests,
    RequestSequence,
    TimedRequest,
    Window,
    WorkloadBase,
)
from bench.prompts.workloads.phases import PhasesWorkload
from bench.prompts.workloads.request_log import RequestLogWorkload
from bench.prompts.workloads.sessions import PlannedSession, PlannedTurn, SessionPlan, SessionsWorkload
from bench.prompts.workloads.shared_prefix import PrefixPool, SharedPrefixWorkload, designed_reuse_share
from bench.prompts.workloads.text import TextSource
from bench.prompts.workloads.trace import TraceWorkload, block_reuse_share
from bench.validation import Problem, config_error, problems, read_text

__all__ = [
    "SCHEMA",
    "WORKLOADS",
    "ArrivalProcess",
    "Built",
    "OpenLoopRequests",
    "Phase",
    "PhasesWorkload",
    "PlannedSession",
    "PlannedTurn",
    "PrefixPool",
    "RequestLogWorkload",
    "RequestSequence",
    "SessionPlan",
    "SessionsWorkload",
    "SharedPrefixWorkload",
    "TextSource",
    "TimedRequest",
    "TraceWorkload",
    "Window",
    "Workload",
    "WorkloadBase",
    "arrival_times",
    "block_reuse_share",
    "designed_reuse_share",
    "load_workload",
    "parse_workload",
]

Workload = SessionsWorkload | SharedPrefixWorkload | TraceWorkload | RequestLogWorkload | PhasesWorkload
Built = SessionPlan | OpenLoopRequests | RequestSequence
WORKLOADS: dict[str, type[Workload]] = {
    "sessions": SessionsWorkload,
    "shared_prefix": SharedPrefixWorkload,
    "trace": TraceWorkload,
    "request_log": RequestLogWorkload,
    "phases": PhasesWorkload,
}
_FIX = f"start the file with `schema: {SCHEMA}` and `kind:` one of {', '.join(WORKLOADS)}"


def load_workload(path: Path, *, skip_invalid: bool | None = None) -> Workload:
    """Read and check a workload file, its data files (traces, logs, conversations) included.

    Every problem is a ConfigError naming the file, the line or key, and the fix. `skip_invalid` (the
    --skip-invalid flag) overrides a request log's own setting.
    """
    try:
        text = read_text(path, what="workload file")
    except FileNotFoundError as exc:
        raise ConfigError(f"workload file not found: {path}", file=str(path), fix="check the path") from exc
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})",
            file=str(path),
            key=f"line {mark.line + 1}" if mark is not None else None,
            fix="fix the YAML syntax",
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a workload file holds a mapping", file=str(path), fix=_FIX)
    if skip_invalid is not None and data.get("kind") == "request_log":
        data = {**data, "skip_invalid": skip_invalid}
    return parse_workload(data, file=str(path), base=path.parent, node=node)


def parse_workload(
    data: Mapping[str, Any], *, file: str, base: Path, node: yaml.Node | None = None
) -> Workload:
    """A workload from already-read data (e.g. an entry of a sweep file), relative paths under `base`;
    `node` (yaml.compose of the file) lets errors name lines."""
    if "schema" not in data:
        raise ConfigError(f"{file}: schema: required key is missing", file=file, key="schema", fix=_FIX)
    kind = data.get("kind")
    cls = WORKLOADS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        close = difflib.get_close_matches(str(kind), WORKLOADS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(WORKLOADS)}"
        raise ConfigError(f"{file}: kind: unknown workload kind {kind!r}", file=file, key="kind", fix=hint)
    try:
        workload = cls.model_validate(data, context={"base": base})
    except ValidationError as exc:

        def where(problem: Problem) -> str:
            line = _line_of(node, problem.loc)
            return f"{file}:{line}" if line else file

        error = config_error(
            problems(exc, cls), file=where, fix=f"see examples/workloads/ for a {kind} workload"
        )
        error.file = file  # the message names each line; the attribute names the file
        raise error from exc
    workload.check()
    return workload


def _line_of(node: yaml.Node | None, loc: tuple[str | int, ...]) -> int | None:
    """The line (1-based) of the YAML node at key path `loc`, or of the deepest node found on the way."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if child is None:  # an unknown key: point at the key itself
                key = next((k for k, _ in node.value if getattr(k, "value", None) == part), None)
                return key.start_mark.line + 1 if key is not None else line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            return line
        node, line = child, child.start_mark.line + 1
    return line
