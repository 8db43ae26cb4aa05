"""A registry entry served in its own process for the length of a run: `llmbench serve NAME --port 0`.

A target server never shares the load generator's process (its CPU would hide in the client's and the
two would share one GIL): mock entries named as `--target`, and the local targets of a sweep, are started
this way, measured over HTTP like any other server, and stopped with their whole process group.
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.serving.plan import default_log_file
from bench.settings import Settings
from serve.lifecycle import wait_for_ready_line
from serve.mock.__main__ import KEY_ENV, SPEC_ENV
from serve.process import EngineProcess
from serve.specs import MockSpec

READY_TIMEOUT_S = 900.0  # a vLLM engine on 2 cores, a first build of a tiny model included (s)
STOP_GRACE_S = 30.0
_READY = re.compile(r"^ready: (?P<url>\S+) model=(?P<model>\S+) backend=(?P<backend>\S+)")


@dataclass(frozen=True)
class ManagedServer:
    """A server this process started: its base URL (…/v1), the served model name, backend and log."""

    name: str
    url: str
    model: str
    backend: str
    log_file: Path
    process: EngineProcess

    def alive(self) -> bool:
        """Whether the server process is still running."""
        return self.process.poll() is None


def serve_argv(settings: Settings, name: str, args: Sequence[str] = ()) -> list[str]:
    """The `llmbench serve` command line for `name`, with this invocation's registry overlays."""
    argv = [sys.executable, "-m", "bench"]
    for overlay in settings.overlays:
        argv += ["--models-file", str(overlay)]
    return [*argv, "serve", name, "--port", "0", *args]


@contextmanager
def managed_server(
    settings: Settings,
    name: str,
    args: Sequence[str] = (),
    *,
    log_file: Path | None = None,
    timeout_s: float = READY_TIMEOUT_S,
) -> Iterator[ManagedServer]:
    """Start `llmbench serve NAME --port 0 ARGS` in a new session; yield once it is ready; stop its group."""
    log = log_file or default_log_file(settings, f"{name}-{uuid.uuid4().hex[:8]}")
    with _managed(name, serve_argv(settings, name, args), {}, log, timeout_s) as server:
        yield server


@contextmanager
def managed_mock(
    settings: Settings, name: str, spec: MockSpec, *, log_file: Path | None = None
) -> Iterator[ManagedServer]:
    """Run one mock server (`python -m serve.mock`) from a resolved spec; its key goes by environment."""
    log = log_file or default_log_file(settings, f"{name}-{uuid.uuid4().hex[:8]}")
    env = {SPEC_ENV: spec.model_dump_json(exclude={"api_key"})}
    if spec.api_key is not None:
        env[KEY_ENV] = spec.api_key.get_secret_value()
    with _managed(name, [sys.executable, "-m", "serve.mock"], env, log, READY_TIMEOUT_S) as server:
        yield server


@contextmanager
def _managed(
    name: str, argv: list[str], env: dict[str, str], log: Path, timeout_s: float
) -> Iterator[ManagedServer]:
    log.unlink(missing_ok=True)  # the ready line must be this server's, not an earlier one's
    process = EngineProcess(argv, env_add=env, log_file=log, inherit_env=True)
    process.start()
    try:
        line = wait_for_ready_line(log, process.poll, timeout_s=timeout_s, poll_s=0.1)
        match = _READY.match(line)
        assert match is not None, line
        yield ManagedServer(name, match["url"], match["model"], match["backend"], log, process)
    finally:
        process.stop(STOP_GRACE_S)
