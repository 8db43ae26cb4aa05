"""`llmbench bench load`: measure an endpoint's speed under load (TTFT, ITL, TPOT, throughput, goodput)."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from bench.cli._context import AppContext, check_writable
from bench.cli._defaults import shown
from bench.cli._live import LiveDisplay, PlainProgress, notes_lines, operating_point_lines, runs_table
from bench.cli._workload_lines import workload_lines
from bench.loadgen.profiles import DEFAULT_REQUESTS, PROFILES, GoodputProfile, Warmup, parse_list
from bench.loadgen.results import ProgressCallback
from bench.loadgen.spec import LoadOptions, LoadSpec
from bench.loadgen.workers import parse_workers
from bench.prompts import DEFAULT_OUTPUT_TOKENS
from bench.prompts.templates import load_template
from bench.records import API_KINDS, SERVER_KINDS
from bench.runs import run_load
from bench.runs.targets import key_headers_for, parse_headers


@click.command("load")
@click.option("--target", required=True, help="Registry name (local, api or mock entry) or a base URL.")
@click.option(
    "--url", default=None, help="Base URL of a local entry's running server [http://127.0.0.1:8000/v1]."
)
@click.option("--model", default=None, help="Model id to request [the entry's; a URL's only served model].")
@click.option("--api", type=click.Choice(API_KINDS), default=None, help="API protocol [the entry's].")
@click.option(
    "--profile",
    type=click.Choice(list(PROFILES)),
    default=None,
    help=f"Load profile [{shown(LoadOptions, 'profile')}].",
)
@click.option("--concurrency", default=None, help="Requests in flight, one run per value: 1,4,16,64.")
@click.option("--rate", default=None, help="Requests/s for constant and poisson, one run per value: 1,2,4.")
@click.option(
    "--sweep-points",
    type=int,
    default=None,
    help=f"Rates a sweep measures [{shown(LoadOptions, 'sweep_points')}].",
)
@click.option(
    "--input-tokens",
    default=None,
    help=f"Prompt tokens: 128, uniform:64:256 or normal:512:64 [{shown(LoadOptions, 'input_tokens')}].",
)
@click.option(
    "--output-tokens", default=None, help=f"max_tokens per request, same forms [{DEFAULT_OUTPUT_TOKENS}]."
)
@click.option(
    "--length-unit",
    type=click.Choice(["reference", "model"]),
    default=None,
    help="Unit of --input-tokens/--output-tokens: reference tokens (⌈UTF-8 bytes ÷ 4⌉: the same text for "
    "every target, so options compare on one workload) or the target tokenizer's own "
    f"[{shown(LoadOptions, 'length_unit')}].",
)
@click.option(
    "--dataset", default=None, help="FILE, sharegpt:FILE, jsonl:FILE or prefix:N,P[,S] [synthetic]."
)
@click.option("--tokenizer", default=None, help="Tokenizer folder or tokenizer.json to size prompts.")
@click.option(
    "--requests",
    type=int,
    default=None,
    help=f"Measured requests per run [{DEFAULT_REQUESTS} without --duration].",
)
@click.option("--duration", type=float, default=None, help="Measured seconds per run.")
@click.option(
    "--warmup",
    default=None,
    help=f"Warm-up before measuring: N requests or Ns seconds [{shown(LoadOptions, 'warmup')}].",
)
@click.option(
    "--grace",
    type=float,
    default=None,
    help="Cool-down: seconds to wait for in-flight requests [until they finish, at most --timeout]; "
    "requests cut off are counted and their run's tails marked as lower bounds.",
)
@click.option(
    "--slo",
    default=None,
    help="Goodput bounds, ms: ttft_ms=500,tpot_ms=50 (also ttfa_ms: first answer token, itl_ms, e2e_ms).",
)
@click.option(
    "--workload",
    default=None,
    metavar="FILE",
    help="A llmbench.workload/1 file (sessions, shared_prefix, trace, request_log, phases): the traffic "
    "to send instead of the prompt flags; see examples/workloads/.",
)
@click.option(
    "--skip-invalid",
    is_flag=True,
    default=None,
    help="Request logs: skip lines that are not valid requests (counted in the run) instead of refusing.",
)
@click.option(
    "--time-scale",
    type=float,
    default=None,
    help="Workloads sent at their own times (traces, timed logs, phases): multiply the gaps (0.5: twice "
    "as fast) [the file's window].",
)
@click.option(
    "--window-start",
    "window_start_s",
    type=float,
    default=None,
    help="Traces and timed logs: replay from this many seconds after the first arrival [the file's].",
)
@click.option(
    "--ignore-eos/--no-ignore-eos",
    default=None,
    help=f"Ask for exactly max_tokens where supported [{shown(LoadOptions, 'ignore_eos')}].",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help=f"Seed for prompts and Poisson schedules [{shown(LoadOptions, 'seed')}].",
)
@click.option(
    "--timeout", type=float, default=None, help=f"Per-request timeout, s [{shown(LoadOptions, 'timeout_s')}]."
)
@click.option("--header", "headers", multiple=True, help="Extra request header NAME:VALUE (repeatable).")
@click.option(
    "--api-key-env",
    default=None,
    metavar="VAR",
    help="Send the key held in this environment variable (URL and local targets; api entries name theirs).",
)
@click.option("--max-error-rate", type=float, default=None, help="Stop a run when this share has failed.")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write results JSON."
)
@click.option("--store", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Results store.")
@click.option(
    "--server-kind",
    type=click.Choice(SERVER_KINDS),
    default=None,
    help="What the server is, instead of asking it (vllm and llmbench accept ignore_eos) [detected].",
)
@click.option("--hardware", default=None, help="models.yaml hardware profile the server runs on (for cost).")
@click.option(
    "--attainment",
    type=float,
    default=None,
    help=f"goodput: share of requests that must meet --slo [{shown(LoadOptions, 'attainment')}].",
)
@click.option(
    "--search",
    type=click.Choice(["rate", "concurrency"]),
    default=None,
    help="goodput: vary the request rate or the concurrency [concurrency; rate when --rate is given].",
)
@click.option(
    "--max-load",
    type=float,
    default=None,
    help=f"goodput: stop doubling at this load [{shown(GoodputProfile, 'max_load')}].",
)
@click.option(
    "--search-steps",
    type=int,
    default=None,
    help=f"goodput: bisection steps after doubling [{shown(LoadOptions, 'search_steps')}].",
)
@click.option(
    "--template",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A prompt template file (llmbench.prompt/1) every prompt is asked through (chat); the run "
    "stores it.",
)
@click.option(
    "--workers",
    default=None,
    metavar="N|auto",
    help="Send from N worker processes, each with its own event loop and connections, on one schedule "
    "(auto: one per spare core, as many as the load needs) [this process sends].",
)
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@click.pass_obj
def load(
    app: AppContext,
    /,
    template: Path | None,
    concurrency: str | None,
    rate: str | None,
    warmup: str | None,
    headers: tuple[str, ...],
    api_key_env: str | None,
    duration: float | None,
    grace: float | None,
    timeout: float | None,
    out: Path | None,
    quiet: bool,
    workers: str | None,
    **options: Any,
) -> None:
    """Measure an endpoint under load: TTFT, ITL, TPOT, e2e latency, throughput and goodput.

    Each profile value is a separate run in the results store; records are stored as they complete, so an
    interrupted run keeps what it measured.
    """
    spec = LoadSpec.from_options(
        **options,
        concurrency=None
        if concurrency is None
        else parse_list(concurrency, flag="--concurrency", integer=True),
        rate=None if rate is None else parse_list(rate, flag="--rate", integer=False),
        warmup=None if warmup is None else Warmup.parse(warmup),
        headers=_headers(app, headers, api_key_env, options) or None,
        duration_s=duration,
        grace_s=grace,
        timeout_s=timeout,
        workers=None if workers is None else parse_workers(workers),
    )
    prompt = None if template is None else load_template(template)
    if out is not None:
        check_writable(out, "--out")  # before the run, not after it
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # a log file or pipe: do not squeeze the table into 80 columns
    errors = Console(stderr=True, width=200, soft_wrap=True)
    progress: ProgressCallback | None = None
    display: Any = nullcontext()
    if not quiet:
        if console.is_terminal:
            display = LiveDisplay(console)
            progress = display
        else:
            progress = PlainProgress(errors)
    with display:
        result = run_load(spec, app.settings, app.registry, progress=progress, template=prompt)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    if not quiet and result.runs:
        console.print(runs_table(result, console.width))
        for line in notes_lines(result):
            console.print(line, highlight=False, markup=False)
        for line in operating_point_lines(result):
            console.print(line, highlight=False, markup=False)
        for line in workload_lines(result):
            console.print(line, highlight=False, markup=False)
        where = f"stored in {result.store_path}" + (f"; JSON in {out}" if out else "")
        console.print(where, highlight=False)
    if result.aborted is not None:
        raise result.aborted
    sys.stdout.flush()


def _headers(
    app: AppContext, flags: tuple[str, ...], api_key_env: str | None, options: dict[str, Any]
) -> dict[str, str]:
    """--header values, plus the key from --api-key-env in the protocol's own header."""
    headers = parse_headers(flags)
    if api_key_env is not None:
        target = str(options["target"])
        headers.update(key_headers_for(target, app.registry, api=options.get("api"), api_key_env=api_key_env))
    return headers
