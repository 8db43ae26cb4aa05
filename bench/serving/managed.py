"""A registry entry served in its own process group for the length of a run, through the typed serve plan.

`managed_server` plans NAME[:VARIANT] with typed ServeOptions (`plan_serve`, as `llmbench serve` does)
and starts the plan with the serve library (`serve.spawn.running_server`): vLLM as its engine process, the
hf and mock backends as `python -m serve` from the serialized spec. `managed_mock` does the same for the
mock server a `--target` mock entry resolves to. A target server never shares the load generator's process
(its CPU would hide in the client's and the two would share one GIL): it is measured over HTTP like any
other server, and stopped with its whole process group.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.registry import Registry
from bench.serving.plan import ServeOptions, default_log_file, plan_serve
from bench.settings import Settings
from serve.lifecycle import Say, ServePlan
from serve.process import EngineProcess
from serve.spawn import RunningServer, running_server
from serve.specs import MockSpec


@dataclass(frozen=True)
class ManagedServer:
    """A server this process started: its base URL (…/v1), the served model name, backend and log."""

    name: str
    url: str
    model: str
    backend: str
    log_file: Path
    process: EngineProcess  # the leader of the server's process group

    def alive(self) -> bool:
        """Whether the server process is still running."""
        return self.process.poll() is None


def _managed(name: str, server: RunningServer) -> ManagedServer:
    url = server.url.rstrip("/").removesuffix("/v1") + "/v1"
    return ManagedServer(name, url, server.model, server.backend, server.log_file, server.process)


def log_say(log_file: Path) -> Say:
    """Messages of the start (building, pulling, the fit estimate) appended to the server's log file."""

    def say(message: str) -> None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("a", encoding="utf-8") as fh:
            fh.write(message.rstrip("\n") + "\n")

    return say


@contextmanager
def managed_server(
    registry: Registry,
    settings: Settings,
    name: str,
    options: ServeOptions | None = None,
    *,
    say: Say | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[ManagedServer]:
    """Serve NAME[:VARIANT] with `options` (a free port and a log file of its own unless they say
    otherwise); yield once it answers; stop its whole process group on exit. `say` gets the start's
    messages (default: the server's log file)."""
    options = options or ServeOptions()
    own: dict[str, object] = {}
    if options.port is None:
        own["port"] = 0
    if options.log_file is None:
        own["log_file"] = default_log_file(settings, f"{name}-{uuid.uuid4().hex[:8]}")
    plan = plan_serve(registry, settings, name, options.model_copy(update=own), env=env)
    with running_server(plan, say or log_say(plan.log_file)) as server:
        yield _managed(name, server)


@contextmanager
def managed_mock(
    settings: Settings, name: str, spec: MockSpec, *, log_file: Path | None = None
) -> Iterator[ManagedServer]:
    """Run one mock server from a resolved spec; ready once it answers /health (no request is sent, so
    its scripted answers and injected errors are the run's alone)."""
    log = log_file or default_log_file(settings, f"{name}-{uuid.uuid4().hex[:8]}")
    plan = ServePlan(name, spec.model, "mock", spec, log)
    with running_server(plan, probe=False) as server:
        yield _managed(name, server)
