"""`llmbench serve NAME[:VARIANT]`: serve a registry model with vLLM, transformers or the mock backend."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import psutil
from pydantic import ValidationError
from rich.console import Console

from bench.cli._context import AppContext
from bench.errors import UsageError
from bench.serving.plan import ServeOptions, ServePlan, parse_engine_args, plan_serve
from serve.errors import ModelDoesNotFit, ServerStartError
from serve.fit import FitReport, check_vllm_fit, hub_fit_inputs
from serve.process import read_tail, wait_ready
from serve.pull import pull_builtin
from serve.specs import MockSpec
from serve.vllm.config import VllmSpec
from serve.vllm.server import ensure_port_free, serve_vllm

STOP_GRACE_S = 60.0


def ready_line(url: str, model: str, backend: str) -> str:
    """The one line printed once the server answers: `ready: http://HOST:PORT/v1 model=NAME backend=B`."""
    return f"ready: {url.rstrip('/').removesuffix('/v1')}/v1 model={model} backend={backend}"


@click.command("serve")
@click.argument("name", required=False)
@click.option(
    "--backend",
    type=click.Choice(["auto", "vllm", "hf", "mock"]),
    default=None,
    help="auto = vLLM where its venv exists, else hf; mock = simulated answers.",
)
@click.option("--host", default=None, help="Interface to listen on [127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [8000]; 0 picks a free one.")
@click.option("--api-key-env", default=None, metavar="VAR", help="Require the key held in this env variable.")
@click.option("--gpus", default=None, metavar="0,1", help="GPU indices (sets CUDA_VISIBLE_DEVICES).")
@click.option("--tp", type=int, default=None, help="Tensor-parallel size.")
@click.option("--pp", type=int, default=None, help="Pipeline-parallel size.")
@click.option("--nodes", type=int, default=None, help="Nodes of a Ray cluster to spread over.")
@click.option("--ray-address", default=None, metavar="ADDR", help="Address of the existing Ray cluster.")
@click.option("--max-model-len", type=int, default=None, help="Context length served, tokens.")
@click.option("--gpu-memory-utilization", type=float, default=None, help="Share of GPU memory vLLM may use.")
@click.option(
    "--engine-arg",
    "engine_args",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any vLLM option by its flag name (repeatable); wins over the registry.",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cuda", "cpu"]),
    default=None,
    help="Target device for vLLM [auto: cuda when nvidia-smi sees a GPU].",
)
@click.option(
    "--dry-run", is_flag=True, help="Print the exact command, environment and config; start nothing."
)
@click.option("--log-file", type=click.Path(path_type=Path), default=None, help="Engine log file.")
@click.option("--detach", is_flag=True, help="Start in the background, wait until ready, then exit.")
@click.option(
    "--pid-file", type=click.Path(path_type=Path), default=None, help="PID file for --detach/--stop."
)
@click.option("--stop", "stop_", is_flag=True, help="Stop the server recorded in --pid-file.")
@click.option("--vllm-python", type=click.Path(path_type=Path), default=None, help="Python of the vLLM venv.")
@click.option("--skip-fit-check", is_flag=True, help="Start even if the memory estimate says it won't fit.")
@click.pass_obj
def serve(app: AppContext, /, name: str | None, **flags: Any) -> None:  # fmt: skip
    """Serve NAME[:VARIANT] from models.yaml until Ctrl-C; prints one `ready:` line when it answers."""
    if flags["stop_"]:
        stop_detached(_need_pid_file(flags))
        return
    if not name:
        raise UsageError("give a model name (see `llmbench models list`)", flag="NAME")
    try:
        options = _options(flags)
    except ValidationError as exc:
        first = exc.errors()[0]
        flag = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "serve options"
        raise UsageError(str(first["msg"]), flag=flag) from exc
    plan = plan_serve(app.registry, app.settings, name, options)
    if flags["dry_run"]:
        click.echo(render_plan(plan))
        return
    if flags["detach"]:
        start_detached(app, name, flags, plan, _need_pid_file(flags))
        return
    run_foreground(plan, skip_fit_check=flags["skip_fit_check"])


def _options(flags: dict[str, Any]) -> ServeOptions:
    return ServeOptions(
        backend=flags["backend"] or "auto",
        host=flags["host"],
        port=flags["port"],
        api_key_env=flags["api_key_env"],
        gpus=flags["gpus"],
        tp=flags["tp"],
        pp=flags["pp"],
        nodes=flags["nodes"],
        ray_address=flags["ray_address"],
        max_model_len=flags["max_model_len"],
        gpu_memory_utilization=flags["gpu_memory_utilization"],
        engine_args=parse_engine_args(flags["engine_args"]),
        log_file=flags["log_file"],
        vllm_python=flags["vllm_python"],
        device=flags["device"] or "auto",
    )


def _need_pid_file(flags: dict[str, Any]) -> Path:
    pid_file = flags["pid_file"]
    if pid_file is None:
        raise UsageError("--detach and --stop need --pid-file FILE", flag="--pid-file")
    return Path(pid_file)


def render_plan(plan: ServePlan) -> str:
    """The dry-run text: backend, model folder, notes, and the exact launch (key redacted)."""
    head = [f"model: {plan.served_model_name} ({plan.name})", f"backend: {plan.backend}"]
    if plan.model_dir is not None:
        state = "to be built first" if plan.build else "local folder"
        head.append(f"model folder: {plan.model_dir} ({state})")
    head.extend(f"note: {n}" for n in plan.notes)
    head.append(f"log file: {plan.log_file}")
    if plan.launch is not None:
        return "\n".join([*head, plan.launch.render()])
    spec = plan.spec.model_dump(mode="json", exclude={"api_key"})
    return "\n".join([*head, "spec:", json.dumps(spec, indent=2)])


def run_foreground(plan: ServePlan, *, skip_fit_check: bool = False) -> None:
    """Prepare (port, build, fit check), serve, print the ready line, block until SIGINT/SIGTERM."""
    spec = plan.spec
    if spec.port:
        ensure_port_free(spec.host, spec.port)
    err = Console(stderr=True, highlight=False)
    if plan.build and plan.model_dir is not None:
        err.print(f"building {plan.name} into {plan.model_dir} (first use)")
        pull_builtin(plan.name, plan.build, plan.model_dir, progress=lambda m: err.print(f"  {m}"))
    if isinstance(spec, VllmSpec):
        _fit_gate(plan, spec, err, skip=skip_fit_check)
        err.print(f"starting {plan.name} with vLLM (log: {plan.log_file})")
        with _log_status(err) as on_log:
            serve_vllm(spec, lambda url: _announce(url, plan), on_log=on_log, launch=plan.launch)
        return
    _run_in_process(plan, err)


def _fit_gate(plan: ServePlan, spec: VllmSpec, err: Console, *, skip: bool) -> None:
    token = os.environ.get("HF_TOKEN")
    hub = None if os.environ.get("HF_HUB_OFFLINE") else (lambda r, v: hub_fit_inputs(r, v, token))
    variants = [v for v in plan.variants if not v.endswith(f":{getattr(plan.entry, 'variant', None)}")]
    report = check_vllm_fit(
        spec,
        model_dir=plan.model_dir,
        gpus=plan.gpus,
        variants=variants,
        ram_available=psutil.virtual_memory().available,
        hub_inputs=hub,
    )
    if not isinstance(report, FitReport):
        err.print(report)
        return
    for line in report.lines():
        err.print(f"fit: {line}", markup=False)
    if not report.fits and not skip:
        raise ModelDoesNotFit(
            f"{plan.name} does not fit in the memory available (numbers above); "
            f"{'; '.join(report.ways_out)}; or pass --skip-fit-check to try anyway"
        )


def _announce(url: str, plan: ServePlan) -> None:
    click.echo(ready_line(url, plan.served_model_name, plan.backend))
    sys.stdout.flush()


@contextlib.contextmanager
def _log_status(err: Console) -> Iterator[Any]:
    """A one-line live tail of the engine log while it starts (only on a terminal)."""
    if not err.is_terminal:
        yield None
        return
    with err.status("starting…") as status:

        def on_log(line: str) -> None:
            if line.strip():
                status.update(f"[dim]{line.strip()[:150]}[/dim]")

        yield on_log


def _run_in_process(plan: ServePlan, err: Console) -> None:
    """hf and mock run in this process: log to the file, probe readiness from a thread, then announce."""
    from serve.hf.server import HfServeSpec, serve_hf
    from serve.mock.server import serve_mock

    plan.log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(plan.log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(min(root.level or logging.INFO, logging.INFO))
    failure: list[BaseException] = []

    def probe(url: str) -> None:
        try:
            wait_ready(url, plan.served_model_name, timeout_s=300, api_key=plan.api_key, probe=plan.probe)
        except ServerStartError as exc:
            exc.log_tail = exc.log_tail or read_tail(plan.log_file)
            failure.append(exc)
            os.kill(os.getpid(), signal.SIGTERM)  # ends serve_* the way a user's Ctrl-C would
            return
        _announce(url, plan)

    def on_ready(url: str) -> None:
        threading.Thread(target=probe, args=(url,), name="readiness", daemon=True).start()

    err.print(f"starting {plan.name} with the {plan.backend} backend (log: {plan.log_file})")
    try:
        if isinstance(plan.spec, HfServeSpec):
            serve_hf(plan.spec, on_ready)
        elif isinstance(plan.spec, MockSpec):
            serve_mock(plan.spec, on_ready)
    finally:
        root.removeHandler(handler)
        handler.close()
    if failure:
        raise failure[0]


def start_detached(
    app: AppContext, name: str, flags: dict[str, Any], plan: ServePlan, pid_file: Path
) -> None:
    """Re-run this command in a new session without --detach; wait for its ready line; leave the pid file."""
    args = [sys.executable, "-c", "from bench.cli import main; main()"]
    for overlay in app.settings.overlays:
        args += ["--models-file", str(overlay)]
    args += ["serve", name, "--log-file", str(plan.log_file)]
    for key, value in flags.items():
        if key in ("detach", "pid_file", "stop_", "dry_run", "log_file") or value in (None, False, ()):
            continue
        opt = "--" + key.replace("_", "-")
        if value is True:
            args.append(opt)
        elif key == "engine_args":
            for pair in value:
                args += ["--engine-arg", pair]
        else:
            args += [opt, str(value)]
    out_file = plan.log_file.with_name(plan.log_file.stem + ".detached.out")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with out_file.open("wb") as out:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{proc.pid}\n", encoding="utf-8")
    while True:
        text = out_file.read_text(encoding="utf-8", errors="replace")
        line = next((ln for ln in text.splitlines() if ln.startswith("ready: ")), None)
        if line:
            click.echo(line)
            return
        if proc.poll() is not None:
            pid_file.unlink(missing_ok=True)
            raise ServerStartError(
                f"the detached server exited with code {proc.returncode} before it was ready "
                f"(output: {out_file})",
                log_tail="\n".join(text.splitlines()[-30:]),
            )
        time.sleep(0.5)


def stop_detached(pid_file: Path) -> None:
    """SIGTERM the server recorded in pid_file (it stops its engine group), SIGKILL after a grace period."""
    try:
        pid = int(pid_file.read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError) as exc:
        raise UsageError(f"cannot read a pid from {pid_file}", flag="--pid-file") from exc
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        pid_file.unlink(missing_ok=True)
        click.echo(f"not running (pid {pid}); removed {pid_file}")
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_GRACE_S)
    except psutil.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    click.echo(f"stopped (pid {pid})")
