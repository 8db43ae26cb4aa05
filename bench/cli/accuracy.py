"""`llmbench bench accuracy` (score a suite or lm-eval tasks) and `llmbench bench diff` (compare two runs)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.accuracy.documents import AccuracySummary
from bench.accuracy.spec import SuiteOptions
from bench.cli._context import AppContext, check_writable
from bench.cli._defaults import shown
from bench.errors import RunFailedError
from bench.records import API_KINDS, SERVER_KINDS
from bench.report.value import fmt_usd
from bench.settings import Settings
from bench.validation import usage_error

_PATH = click.Path(dir_okay=False, path_type=Path)


def _app(ctx: click.Context) -> AppContext:
    """The root group's context, or one built from the environment when the command runs on its own."""
    obj = ctx.find_object(AppContext)
    return obj if obj is not None else AppContext(Settings.from_env())


@click.command("accuracy")
@click.option("--target", required=True, help="Registry name (local, api or mock entry) or a base URL.")
@click.option(
    "--url", default=None, help="Base URL of a local entry's running server [http://127.0.0.1:8000/v1]."
)
@click.option("--suite", required=True, help="builtin:NAME, a suite JSONL file, or lm-eval:TASK[,TASK].")
@click.option("--judge", default=None, help="Registry name of the judge endpoint (for judge-scored items).")
@click.option(
    "--limit", type=int, default=None, help="Items per area (suites) or samples per task (lm-eval)."
)
@click.option(
    "--concurrency",
    type=int,
    default=None,
    help=f"Requests in flight at once [{shown(SuiteOptions, 'concurrency')}].",
)
@click.option("--model", default=None, help="Model id to request [the entry's; a URL's only served model].")
@click.option("--api", type=click.Choice(API_KINDS), default=None, help="API protocol [the entry's].")
@click.option("--tokenizer", default=None, help="Local tokenizer folder (lm-eval over completions).")
@click.option(
    "--tasks-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of lm-eval task YAML files (with lm-eval:TASK).",
)
@click.option(
    "--chat-template/--no-chat-template",
    default=None,
    help="lm-eval: apply the model's chat template [on for the chat API].",
)
@click.option(
    "--max-tokens",
    type=int,
    default=None,
    help=f"Output budget per item, tokens [{shown(SuiteOptions, 'max_tokens')}].",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=None,
    help=f"Per-request timeout, s [{shown(SuiteOptions, 'timeout_s')}].",
)
@click.option(
    "--api-key-env",
    default=None,
    metavar="VAR",
    help="Send the key held in this environment variable (URL and local targets; api entries name theirs).",
)
@click.option("--similarity", is_flag=True, help="Add advisory embedding similarity to every item.")
@click.option(
    "--logprobs",
    is_flag=True,
    help="Keep a summary of each answer's token logprobs (OpenAI-style servers that return them; "
    "the confidence signal of `whatif route` cascades).",
)
@click.option(
    "--template",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A prompt template file (llmbench.prompt/1) every item is rendered through; the run records its "
    "name, version and hash.",
)
@click.option("--out", type=_PATH, default=None, help="Write the llmbench.accuracy/1 JSON here.")
@click.option("--store", type=_PATH, default=None, help="Results store [LLMBENCH_HOME/results.sqlite].")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON summary instead of a table.")
@click.option(
    "--server-kind",
    type=click.Choice(SERVER_KINDS),
    default=None,
    help="What the server is, instead of asking it [detected].",
)
@click.option("--hardware", default=None, help="models.yaml hardware profile the server runs on (for cost).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def accuracy(ctx: click.Context, /, out: Path | None, as_json: bool, quiet: bool, **options: Any) -> None:
    """Score an endpoint on a suite or lm-eval tasks: accuracy per area with 95% CI, tokens, cost."""
    from bench.accuracy.spec import AccuracySpec
    from bench.runs import run_accuracy

    app = _app(ctx)
    try:
        spec = AccuracySpec.model_validate({k: v for k, v in options.items() if v is not None})
    except ValidationError as exc:
        raise usage_error(exc, {"timeout_s": "--timeout"}, default="--suite", model=AccuracySpec) from exc
    if out is not None:
        check_writable(out, "--out")  # before the run, not after it
    console = Console(stderr=True)
    show_progress = not quiet and not as_json and console.is_terminal
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not show_progress,
        transient=True,
    ) as bar:
        task = bar.add_task(f"{spec.target} on {spec.suite}", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = run_accuracy(spec, app.registry, app.settings, progress)
    text = json.dumps(result.summary.to_json(), indent=2)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    if as_json:
        click.echo(text)
    else:
        Console().print(areas_table(result.summary))
        for line in error_lines(result.summary):
            click.echo(line)
    sys.stdout.flush()
    if result.status == "failed":
        raise RunFailedError(
            f"{spec.target} on {spec.suite}: every item failed; see the error breakdown",
            run_id=result.run_id,
            kept=result.summary.items,
        )
    if result.logprob_items == 0 and result.summary.items:
        click.echo(
            "warning: --logprobs asked, but the server returned no token logprobs: the items carry none "
            "(Anthropic's API and many proxies give none)",
            err=True,
        )
    if result.failed_items:
        details = result.summary.error_details
        first = f"{details[0].kind}: {details[0].first_message}" if details else "unknown"
        click.echo(
            f"warning: {result.failed_items} of {result.summary.items} items failed and are counted "
            f"apart (neither right nor wrong); first error: {first}",
            err=True,
        )


def error_lines(summary: AccuracySummary) -> list[str]:
    """The error breakdown under the table: count, kind, HTTP status and first message of each kind."""
    lines = []
    for d in summary.error_details:
        status = f" HTTP {d.http_status}" if d.http_status else ""
        lines.append(f"{d.count} × {d.kind}{status}: {d.first_message}")
    return lines


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _ci(ci: tuple[float, float] | None) -> str:
    return "-" if not ci else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def areas_table(summary: AccuracySummary) -> Table:
    """Accuracy per area and overall, with CI, failures, tokens and cost."""
    table = Table(title=f"{summary.target} on {summary.suite}  (run {str(summary.run_id)[:12]})")
    for name, justify in (
        ("area", "left"),
        ("score %", "right"),
        ("95% CI", "right"),
        ("n", "right"),
        ("failed", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for area, a in summary.areas.items():
        table.add_row(area, _pct(a.score), _ci(a.ci95), str(a.n), str(a.failed))
    table.add_section()
    table.add_row(
        "[bold]all[/bold]",
        f"[bold]{_pct(summary.score)}[/bold]",
        _ci(summary.ci95),
        str(summary.n),
        str(summary.failed),
    )
    tokens = summary.tokens
    cost = summary.cost_usd
    caption = [f"tokens in {tokens.input or 0:,} / out {tokens.output or 0:,}"]
    caption.append(f"cost {fmt_usd(cost)}" if cost is not None else "cost: n/a")
    if summary.cost_note:
        caption.append(summary.cost_note)
    if summary.failed:
        caption.append(f"{summary.failed} failed requests are counted apart (neither right nor wrong)")
    judge = summary.judge
    if judge:
        jc = judge.cost_usd
        caption.append(
            f"judge: {judge.calls} calls ({judge.cached} cached)"
            + (f", {fmt_usd(jc)}" if jc is not None else "")
        )
    table.caption = "; ".join(caption)
    return table


@click.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--store", type=_PATH, default=None, help="Results store [LLMBENCH_HOME/results.sqlite].")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.pass_context
def diff(ctx: click.Context, run_a: str, run_b: str, store: Path | None, as_json: bool) -> None:
    """Compare two accuracy runs on the items both scored (Newcombe's paired score CI, exact McNemar)."""
    from bench.runs import diff_runs

    app = _app(ctx)
    result = diff_runs(store or app.settings.results_path, run_a, run_b)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    console = Console()
    table = Table(title=f"B = {result.b_id[:12]} vs A = {result.a_id[:12]}")
    for name in ("area", "A %", "B %", "B−A points", "95% CI", "McNemar p", "n"):
        table.add_column(name, justify="left" if name == "area" else "right")
    for area, c in [*result.areas.items(), ("all", result.overall)]:
        lo, hi = c.ci95_points
        table.add_row(
            area,
            _pct(c.a_score),
            _pct(c.b_score),
            f"{c.diff_points:+.1f}",
            f"[{lo:+.1f}, {hi:+.1f}]",
            f"{c.p_value:.3g}",
            str(c.n),
        )
    console.print(table)
    console.print(result.overall.sentence())
    if result.a_failed or result.b_failed:
        console.print(f"failed requests (not compared): A {result.a_failed}, B {result.b_failed}")
    if result.only_a or result.only_b:
        console.print(f"unpaired items (scored in one run only): A {result.only_a}, B {result.only_b}")
    if not result.same_suite:
        console.print(
            "[yellow]warning: the runs used different suite versions; compared on common item ids[/yellow]",
            highlight=False,
        )
    sys.stdout.flush()
