"""`llmbench serve NAME[:VARIANT]`: serve a registry model with vLLM, transformers or the mock backend."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from rich.console import Console

from bench.cli._context import AppContext
from bench.errors import UsageError
from bench.serving.plan import ServeOptions, parse_engine_args, plan_serve
from bench.validation import usage_error
from serve.lifecycle import ServePlan, run_foreground, start_detached, stop_detached
from serve.process import ready_line
from serve.vllm.config import VllmSpec


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
@click.option(
    "--strict/--no-strict",
    default=None,
    help="Mock backend: reject fields the imitated provider rejects (vLLM extras) [the entry's: strict].",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Mock backend: processes answering on one port (SO_REUSEPORT), counters summed [1].",
)
@click.option(
    "--pull", is_flag=True, help="Pull a hub model that is not in the cache first (as `llmbench pull`)."
)
@click.pass_obj
def serve(app: AppContext, /, name: str | None, **flags: Any) -> None:  # fmt: skip
    """Serve NAME[:VARIANT] from models.yaml until Ctrl-C; prints one `ready:` line when it answers."""
    if flags["stop_"]:
        click.echo(stop_detached(_need_pid_file(flags)))
        return
    if not name:
        raise UsageError("give a model name (see `llmbench models list`)", flag="NAME")
    try:
        options = _options(flags)
    except ValidationError as exc:
        raise usage_error(exc, {"engine_args": "--engine-arg"}, default="serve options") from exc
    plan = plan_serve(app.registry, app.settings, name, options)
    err = Console(stderr=True, highlight=False)
    if options.host in ("0.0.0.0", "::", "") and plan.api_key is None:
        err.print(
            f"warning: --host {options.host} accepts requests from any machine that reaches this one, "
            "and no key is required; pass --api-key-env VAR to require one",
            markup=False,
        )
    if flags["dry_run"]:
        click.echo(render_plan(plan))
        return
    if flags["detach"]:
        argv = _foreground_argv(app, name, flags, plan)
        output = plan.log_file.with_name(plan.log_file.stem + ".detached.out")
        click.echo(start_detached(argv, output=output, pid_file=_need_pid_file(flags)))
        return

    def say(message: str) -> None:
        err.print(message, markup=False)

    def announce(url: str) -> None:
        click.echo(ready_line(url, plan.served_model_name, plan.backend))
        sys.stdout.flush()

    live = isinstance(plan.spec, VllmSpec)
    with _log_status(err) if live else contextlib.nullcontext() as on_log:
        run_foreground(plan, announce, say, on_log=on_log, skip_fit_check=flags["skip_fit_check"])


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
        strict=flags["strict"],
        pull=flags["pull"],
        workers=flags["workers"],
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
    if plan.blocker is not None:
        fix = getattr(plan.blocker, "fix", "")
        head.append(f"note: cannot start as planned: {plan.blocker}" + (f"; {fix}" if fix else ""))
    head.append(f"log file: {plan.log_file}")
    if plan.launch is not None:
        return "\n".join([*head, plan.launch.render()])
    spec = plan.spec.model_dump(mode="json", exclude={"api_key"})
    return "\n".join([*head, "spec:", json.dumps(spec, indent=2)])


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


def _foreground_argv(app: AppContext, name: str, flags: dict[str, Any], plan: ServePlan) -> list[str]:
    """This command again, without --detach, as the detached child runs it."""
    args = [sys.executable, "-c", "from bench.cli import main; main()"]
    for overlay in app.settings.overlays:
        args += ["--models-file", str(overlay)]
    args += ["serve", name, "--log-file", str(plan.log_file)]
    for key, value in flags.items():
        # 0 is a value (--port 0 picks a free port): skip only flags that were not given.
        if key in ("detach", "pid_file", "stop_", "dry_run", "log_file") or value is None or value is False:
            continue
        opt = "--" + key.replace("_", "-")
        if key == "strict":
            args.append("--strict" if value else "--no-strict")
        elif value is True:
            args.append(opt)
        elif key == "engine_args":
            for pair in value:
                args += ["--engine-arg", pair]
        else:
            args += [opt, str(value)]
    return args
