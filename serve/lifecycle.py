"""The life of one served model: prepare (port, build, fit), run in the foreground, detach, stop.

A `ServePlan` says what to start (made by the caller from its registry; see bench.serving.plan).
`run_foreground` blocks until SIGINT/SIGTERM; vLLM runs as a process group, the hf and mock backends in
this process with a readiness probe on a thread. (serve.spawn starts a plan in a process group of its own
for a caller that measures it.) `start_detached` runs a given command line in a new
session and returns once it prints its ready line; `stop_detached` stops what a pid file names.
Nothing here prints: messages go to injected callbacks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import psutil
from pydantic import SecretStr

from serve.errors import InvalidServeOption, ModelDoesNotFit, ServerStartError
from serve.fit import FitReport, check_vllm_fit, hub_fit_inputs
from serve.gpus import Gpu
from serve.process import LogFn, ProbeKind, read_tail, wait_ready
from serve.pull import PullSpec, pull_builtin, pull_hub
from serve.specs import MockSpec
from serve.vllm.command import Launch
from serve.vllm.config import VllmSpec

if TYPE_CHECKING:
    from serve.hf.server import HfServeSpec

Backend = Literal["vllm", "hf", "mock"]
Say = Callable[[str], None]
STOP_GRACE_S = 60.0  # `--stop`: SIGTERM, then SIGKILL of the group after this long (s)
READY_TIMEOUT_S = 300.0  # in-process backends: /health and one real completion within this long (s)


@dataclass(frozen=True)
class ServePlan:
    """What `serve` will start: the backend, its spec, the model folder and the exact vLLM launch."""

    name: str
    served_model_name: str
    backend: Backend
    spec: VllmSpec | HfServeSpec | MockSpec
    log_file: Path
    probe: ProbeKind = "completions"
    variant: str | None = None  # this entry's own variant name, if it is one
    model_dir: Path | None = None
    build: str | None = None  # builtin generator to build into model_dir before starting
    pull: PullSpec | None = None  # a hub download to make before starting (`serve --pull`)
    blocker: Exception | None = None  # why it cannot start as planned (a dry run shows it; a start raises it)
    launch: Launch | None = None
    gpus: list[Gpu] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)  # NAME:VARIANT of every variant of the base model
    notes: list[str] = field(default_factory=list)

    @property
    def api_key(self) -> str | None:
        """The key the server requires (for the readiness probe), if any."""
        key = getattr(self.spec, "api_key", None)
        if isinstance(key, SecretStr):
            return key.get_secret_value()
        return key if isinstance(key, str) else None


def prepare(plan: ServePlan, say: Say) -> None:
    """Before starting: the port must be free, and a builtin model is built on first use."""
    from serve.vllm.server import ensure_port_free

    if plan.blocker is not None:
        raise plan.blocker
    spec = plan.spec
    if spec.port:
        ensure_port_free(spec.host, spec.port)
    if plan.build and plan.model_dir is not None:
        say(f"building {plan.name} into {plan.model_dir} (first use)")
        built = pull_builtin(plan.name, plan.build, plan.model_dir, progress=lambda m: say(f"  {m}"))
        for line in built.build.warnings if built.build is not None else []:
            say(f"warning: {line}")  # not the canonical build: its scores differ from the reference
    if plan.pull is not None:
        say(f"pulling {plan.pull.repo}@{plan.pull.revision or 'main'} before serving (--pull)")
        pull_hub(plan.pull, progress=lambda m: say(f"  {m}"))


def fit_gate(
    plan: ServePlan, say: Say, *, skip: bool = False, env: Mapping[str, str] | None = None
) -> FitReport | None:
    """Estimate memory before vLLM loads; ModelDoesNotFit (unless `skip`) when it will not fit."""
    assert isinstance(plan.spec, VllmSpec)
    env = os.environ if env is None else env
    token = env.get("HF_TOKEN")
    hub = None if env.get("HF_HUB_OFFLINE") else (lambda r, v: hub_fit_inputs(r, v, token))
    others = [v for v in plan.variants if not v.endswith(f":{plan.variant}")]
    report = check_vllm_fit(
        plan.spec,
        model_dir=plan.model_dir,
        gpus=plan.gpus,
        variants=others,
        ram_available=psutil.virtual_memory().available,
        hub_inputs=hub,
    )
    if not isinstance(report, FitReport):
        say(report)
        return None
    for line in report.lines():
        say(f"fit: {line}")
    if not report.fits and not skip:
        raise ModelDoesNotFit(
            f"{plan.name} does not fit in the memory available (numbers above); "
            f"{'; '.join(report.ways_out)}; or pass --skip-fit-check to try anyway"
        )
    return report


def run_foreground(
    plan: ServePlan,
    on_ready: Callable[[str], None],
    say: Say,
    *,
    on_log: LogFn | None = None,
    skip_fit_check: bool = False,
) -> None:
    """Prepare, serve, call `on_ready(root_url)` once it answers, block until SIGINT/SIGTERM."""
    prepare(plan, say)
    if isinstance(plan.spec, VllmSpec):
        from serve.vllm.server import serve_vllm

        fit_gate(plan, say, skip=skip_fit_check)
        say(f"starting {plan.name} with vLLM (log: {plan.log_file})")
        serve_vllm(plan.spec, on_ready, on_log=on_log, launch=plan.launch)
        return
    run_in_process(plan, on_ready, say)


def run_in_process(plan: ServePlan, on_ready: Callable[[str], None], say: Say) -> None:
    """hf and mock run in this process: log to the file, probe readiness from a thread, then announce."""
    from serve.hf.server import HfServeSpec, serve_hf
    from serve.mock.launch import serve_mock

    plan.log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(plan.log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(min(root.level or logging.INFO, logging.INFO))
    failure: list[BaseException] = []

    def probe(url: str) -> None:
        try:
            wait_ready(
                url, plan.served_model_name, timeout_s=READY_TIMEOUT_S, api_key=plan.api_key, probe=plan.probe
            )
        except ServerStartError as exc:
            exc.log_tail = exc.log_tail or read_tail(plan.log_file)
            failure.append(exc)
            os.kill(os.getpid(), signal.SIGTERM)  # ends serve_* the way a user's Ctrl-C would
            return
        on_ready(url)

    def bound(url: str) -> None:
        threading.Thread(target=probe, args=(url,), name="readiness", daemon=True).start()

    say(f"starting {plan.name} with the {plan.backend} backend (log: {plan.log_file})")
    try:
        if isinstance(plan.spec, HfServeSpec):
            serve_hf(plan.spec, bound)
        elif isinstance(plan.spec, MockSpec):
            serve_mock(plan.spec, bound)
    finally:
        root.removeHandler(handler)
        handler.close()
    if failure:
        raise failure[0]


def start_detached(argv: Sequence[str], *, output: Path, pid_file: Path, poll_s: float = 0.5) -> str:
    """Run `argv` (a foreground serve command) in a new session; return its ready line once it prints it.

    Its stdout and stderr go to `output`; the pid goes to `pid_file`. ServerStartError (with the output's
    last lines) when it exits before it is ready.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("wb") as out:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    write_pid_file(pid_file, proc.pid)
    try:
        return wait_for_ready_line(output, proc.poll, poll_s=poll_s)
    except ServerStartError:
        pid_file.unlink(missing_ok=True)
        raise


def wait_for_ready_line(
    output: Path, poll: Callable[[], int | None], *, timeout_s: float | None = None, poll_s: float = 0.5
) -> str:
    """Block until a serve command writes its `ready:` line to `output`; ServerStartError if it exits first.

    `poll` returns the process's exit code, or None while it runs.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        text = output.read_text(encoding="utf-8", errors="replace") if output.exists() else ""
        line = next((ln for ln in text.splitlines() if ln.startswith("ready: ")), None)
        if line:
            return line
        code = poll()
        if code is not None:
            raise ServerStartError(
                f"the server exited with code {code} before it was ready (output: {output})",
                log_tail="\n".join(text.splitlines()[-30:]),
            )
        if deadline is not None and time.monotonic() > deadline:
            raise ServerStartError(
                f"no ready line after {timeout_s:.0f} s (output: {output})",
                log_tail="\n".join(text.splitlines()[-30:]),
            )
        time.sleep(poll_s)


def write_pid_file(pid_file: Path, pid: int) -> None:
    """Record the process and who it is (start time, command line), so `stop` never signals a stranger."""
    try:
        proc = psutil.Process(pid)
        identity = {"pid": pid, "create_time": proc.create_time(), "cmdline": proc.cmdline()}
    except psutil.Error:
        identity = {"pid": pid, "create_time": None, "cmdline": None}
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(json.dumps(identity) + "\n", encoding="utf-8")


def _read_pid_file(pid_file: Path) -> dict[str, Any]:
    try:
        text = pid_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidServeOption(f"cannot read {pid_file}: {exc.strerror}", option="--pid-file") from exc
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, int):  # a bare pid (older llmbench): identity unknown
        data = {"pid": data, "create_time": None, "cmdline": None}
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
        raise InvalidServeOption(
            f"{pid_file} does not hold a pid written by `serve --detach`", option="--pid-file"
        )
    return data


def _same_process(proc: psutil.Process, recorded: Mapping[str, Any]) -> str | None:
    """None when `proc` is the process the pid file recorded (same start time and command line); else why
    not. A pid file that does not record both names no process llmbench started: nothing matches it."""
    want_time, want_cmd = recorded.get("create_time"), recorded.get("cmdline")
    if not isinstance(want_time, int | float) or not isinstance(want_cmd, list) or not want_cmd:
        return (
            "the pid file does not record the start time and command line of the process `serve --detach` "
            "started, so it cannot show that this process is that server"
        )
    try:
        created, cmdline = proc.create_time(), proc.cmdline()
    except psutil.Error as exc:
        return f"it cannot be inspected ({type(exc).__name__})"
    if abs(created - float(want_time)) > 1.0:
        return f"the pid was reused: it started at another time than the server, and runs `{_cmd(cmdline)}`"
    if [str(part) for part in want_cmd] != cmdline:
        return f"its command line is not the recorded server's: it runs `{_cmd(cmdline)}`"
    return None


def _cmd(cmdline: Sequence[str]) -> str:
    text = " ".join(cmdline)
    return text if len(text) <= 200 else text[:199] + "…"


def stop_detached(pid_file: Path, grace_s: float = STOP_GRACE_S) -> str:
    """SIGTERM the server recorded in pid_file (it stops its engine group), SIGKILL after a grace period.

    The process must still be the one recorded (start time and command line): a reused pid is never
    signalled.
    """
    recorded = _read_pid_file(pid_file)
    pid = int(recorded["pid"])
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        pid_file.unlink(missing_ok=True)
        return f"not running (pid {pid}); removed {pid_file}"
    stranger = _same_process(proc, recorded)
    if stranger is not None:
        raise InvalidServeOption(
            f"refusing to stop pid {pid} from {pid_file}: {stranger}. Nothing was signalled. If that pid is "
            f"a server you started, stop it yourself (`kill {pid}`); then remove {pid_file}",
            option="--pid-file",
        )
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except psutil.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return f"stopped (pid {pid})"
