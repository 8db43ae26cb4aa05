"""`llmbench quantize NAME --method M`: a quantized checkpoint, its manifest, and a registry variant."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from rich.console import Console

from bench.cli._context import AppContext
from bench.errors import ConfigError
from bench.settings import Settings
from bench.validation import usage_error
from bench.variants import DEFAULT_CALIBRATION, QuantizeRequest, VariantResult, plan_variant, quantize_variant
from quantize import method_names


@click.command("quantize")
@click.argument("name")
@click.option("--method", required=True, help=f"One of: {', '.join(method_names())}.")
@click.option(
    "--calibration",
    default=None,
    metavar="SUITE|FILE",
    help="Calibration prompts (w8a8, w4a16): builtin:NAME, a suite .jsonl or a text file "
    f"[{DEFAULT_CALIBRATION}].",
)
@click.option("--samples", type=int, default=None, help="Calibration samples [64].")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output folder [$LLMBENCH_HOME/models/NAME-METHOD].",
)
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
@click.option("--dry-run", is_flag=True, help="Check everything and print the plan; write nothing.")
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="Where to quantize [auto]."
)
@click.option(
    "--group-size", type=int, default=None, help="W4A16 group size [128, else the first of 64, 32 that fits]."
)
@click.option(
    "--quant-python", type=click.Path(path_type=Path), default=None, help="Python of the llm-compressor venv."
)
@click.option(
    "--evaluate", default=None, metavar="SUITE[,SUITE]", help="Then run the recovery report on these suites."
)
@click.pass_obj
def quantize(app: AppContext, /, name: str, **flags: Any) -> None:  # fmt: skip
    """Quantize NAME with bitsandbytes (nf4, int8) or llm-compressor (fp8-dynamic, w8a8, w4a16)."""
    evaluate = flags.pop("evaluate")
    dry_run = flags.pop("dry_run")
    try:
        request = QuantizeRequest(name=name, **{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        raise usage_error(exc, {"name": "NAME"}, model=QuantizeRequest) from exc
    err = Console(stderr=True, highlight=False)

    def say(message: str) -> None:
        err.print(message, markup=False)

    if dry_run:
        planned = plan_variant(request, app.registry, app.settings)
        click.echo("\n".join(["dry run: nothing is written", *planned.lines()]))
        return
    if evaluate:
        _refuse_unservable(app.settings, request)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_file = app.settings.home / "logs" / f"quantize-{name}-{request.method}-{stamp}.log"
    done = quantize_variant(request, app.registry, app.settings, say, log_file=log_file)
    click.echo("\n".join(summary_lines(done)))
    if evaluate:
        from bench.cli.recovery import run_and_print

        # The overlay just written joins the registry the report resolves names from.
        settings = _with_overlay(app.settings, done.overlay)
        run_and_print(settings, done.target.base, done.target.label, evaluate, out=None, threshold=None)


def _refuse_unservable(settings: Settings, request: QuantizeRequest) -> None:
    """--evaluate serves the variant: refuse before quantizing when vLLM here cannot serve the method."""
    from bench.serving.plan import cpu_kernel_problem

    problem = cpu_kernel_problem(settings, f"{request.name}:{request.method}", request.method)
    if problem is not None:
        raise ConfigError(
            f"--evaluate: {problem}",
            key=problem.key,
            fix=f"{problem.fix}; without --evaluate the checkpoint is still made here",
        )


def summary_lines(done: VariantResult) -> list[str]:
    """The lines printed after a quantization."""
    r = done.result
    ratio = f"{r.ratio:.3f}" if r.ratio is not None else "n/a (the source has no safetensors weights)"
    mib = 1024**2
    lines = [
        f"checkpoint: {r.path}",
        f"manifest: {r.path / 'llmbench-quant.json'}",
        f"weights: {r.before.weights_bytes / mib:.2f} MiB -> {r.after.weights_bytes / mib:.2f} MiB "
        f"(ratio {ratio}); on disk {r.before.disk_bytes / mib:.2f} -> {r.after.disk_bytes / mib:.2f} MiB",
        f"took: {r.seconds:.1f} s",
    ]
    if done.overlay is not None:
        lines.append(f"registered: {done.target.label} ({done.target.entry_name}) in {done.overlay}")
    else:
        lines.append(f"registered: {done.target.label} was declared in the registry already")
    lines.append(f"serve it: llmbench serve {done.target.label}")
    return lines


def _with_overlay(settings: Settings, overlay: Path | None) -> Settings:
    """Settings whose overlays include the user file just written (it comes first, as in from_env)."""
    if overlay is None or overlay in settings.overlays:
        return settings
    return replace(settings, overlays=(overlay, *settings.overlays))
