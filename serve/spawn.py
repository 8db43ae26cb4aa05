"""Start a ServePlan in its own process group for the length of a block, and wait until it answers.

vLLM runs as its engine process (serve.vllm.server). The hf and mock backends run as `python -m serve`,
started from the plan's typed spec serialized into the environment (`model_dump_json` here,
`model_validate_json` there; the key, if any, in a variable of its own): a server never shares its
caller's process, so a load generator measures it over HTTP like any other. The child writes the URL it
bound to a small JSON file once it serves, and readiness is the library's own wait (`GET /health`, then
one real 1-token request). On exit the whole process group is stopped: SIGTERM, a grace period, SIGKILL.
Nothing here prints; messages go to the injected `say`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from serve.errors import ServerStartError
from serve.lifecycle import READY_TIMEOUT_S, Backend, Say, ServePlan, fit_gate, prepare
from serve.process import EngineProcess, read_tail
from serve.specs import MockSpec
from serve.vllm.config import VllmSpec

BACKEND_ENV = "LLMBENCH_SERVE_BACKEND"  # hf or mock
SPEC_ENV = "LLMBENCH_SERVE_SPEC"  # the backend's spec as JSON, without its key
KEY_ENV = "LLMBENCH_SERVE_API_KEY"  # the key the server requires, if any (never in the JSON or argv)
READY_ENV = "LLMBENCH_SERVE_READY_FILE"  # where the child writes {"url": ...} once it serves
STOP_GRACE_S = 30.0  # SIGTERM, then SIGKILL of the group after this long (s)


@dataclass(frozen=True)
class RunningServer:
    """A server started by `running_server`: root URL (http://HOST:PORT, no /v1), model, backend, log."""

    url: str
    model: str
    backend: Backend
    log_file: Path
    process: EngineProcess  # the group's leader: its pid is the process group id

    @property
    def pgid(self) -> int:
        """The server's process group (every process it started is in it)."""
        return self.process.pid

    def alive(self) -> bool:
        """Whether the server process is still running."""
        return self.process.poll() is None


def _quiet(_message: str) -> None:
    return None


@contextmanager
def running_server(
    plan: ServePlan,
    say: Say = _quiet,
    *,
    probe: bool = True,
    skip_fit_check: bool = False,
    ready_timeout_s: float = READY_TIMEOUT_S,
    grace_s: float = STOP_GRACE_S,
) -> Iterator[RunningServer]:
    """Prepare (build, pull), start and wait until `plan` answers; yield it; stop its whole group on exit.

    `probe` False makes the hf and mock wait /health only (no completion is sent: a mock's scripted answers
    and injected errors stay untouched); vLLM is always probed with one completion, within its spec's
    startup_timeout_s. `ready_timeout_s` bounds the hf and mock wait.
    ServerStartError (with the engine's log tail and a hint) when it exits or times out before it is ready.
    """
    prepare(plan, say)
    if isinstance(plan.spec, VllmSpec):
        with _running_vllm(plan, say, skip_fit_check=skip_fit_check) as server:
            yield server
        return
    say(f"starting {plan.name} with the {plan.backend} backend (log: {plan.log_file})")
    process, ready_file = _start_child(plan)
    try:
        url = _wait_for_url(process, ready_file, ready_timeout_s)
        process.wait_ready(
            url,
            plan.served_model_name,
            timeout_s=ready_timeout_s,
            api_key=plan.api_key,
            probe=plan.probe if probe else None,
        )
        yield RunningServer(url, plan.served_model_name, plan.backend, plan.log_file, process)
    finally:
        process.stop(grace_s)
        ready_file.unlink(missing_ok=True)


@contextmanager
def _running_vllm(plan: ServePlan, say: Say, *, skip_fit_check: bool) -> Iterator[RunningServer]:
    from serve.vllm.server import VllmServer

    assert isinstance(plan.spec, VllmSpec)
    fit_gate(plan, say, skip=skip_fit_check)
    say(f"starting {plan.name} with vLLM (log: {plan.log_file})")
    server = VllmServer(plan.spec, launch=plan.launch)
    url = server.start()  # waits for /health and one completion; stops the group itself when it fails
    try:
        yield RunningServer(url, plan.served_model_name, "vllm", server.log_file, server.engine)
    finally:
        server.stop()


def child_environment(plan: ServePlan, ready_file: Path) -> dict[str, str]:
    """What `python -m serve` reads: the backend, its spec as JSON (no key), the key, the ready file."""
    spec = plan.spec
    assert not isinstance(spec, VllmSpec), "vLLM runs as its own engine process"
    env = {
        BACKEND_ENV: plan.backend,
        SPEC_ENV: spec.model_dump_json(exclude={"api_key"}),
        READY_ENV: str(ready_file),
    }
    if plan.api_key:
        env[KEY_ENV] = plan.api_key
    return env


def _start_child(plan: ServePlan) -> tuple[EngineProcess, Path]:
    plan.log_file.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="llmbench-serve-", suffix=".ready.json")
    os.close(fd)
    ready_file = Path(name)
    ready_file.unlink()  # the child creates it once it serves
    # Our own code in the child: it needs this interpreter's environment (PYTHONPATH, the venv).
    process = EngineProcess(
        [sys.executable, "-m", "serve"],
        env_add=child_environment(plan, ready_file),
        log_file=plan.log_file,
        inherit_env=True,
    )
    process.start()
    return process, ready_file


def _wait_for_url(process: EngineProcess, ready_file: Path, timeout_s: float) -> str:
    """The URL the child bound, from its ready file; ServerStartError when it exits or times out first."""
    deadline = time.monotonic() + timeout_s
    while True:
        url = read_ready_file(ready_file)
        if url is not None:
            return url
        process.check_alive()
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"the server did not bind within {timeout_s:.0f} s (log: {process.log_file})",
                log_tail=read_tail(process.log_file),
            )
        time.sleep(0.05)


def write_ready_file(path: Path, url: str) -> None:
    """Write {"url": url} atomically (the parent never reads half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"url": url}), encoding="utf-8")
    os.replace(tmp, path)


def read_ready_file(path: Path) -> str | None:
    """The URL in a ready file; None while there is none."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    url = data.get("url") if isinstance(data, dict) else None
    return url if isinstance(url, str) else None


def child_spec(backend: str, raw: str, api_key: str | None) -> BaseModel:
    """The typed spec `python -m serve` was started with (pydantic ValidationError when it is not one)."""
    if backend == "mock":
        from pydantic import SecretStr

        mock = MockSpec.model_validate_json(raw)
        return mock.model_copy(update={"api_key": SecretStr(api_key)}) if api_key else mock
    if backend == "hf":
        from serve.hf.server import HfServeSpec

        hf = HfServeSpec.model_validate_json(raw)
        return hf.model_copy(update={"api_key": api_key}) if api_key else hf
    raise ValueError(f"{BACKEND_ENV} must be hf or mock, not {backend!r}")
