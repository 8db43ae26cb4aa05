"""`llmbench compare BASE NEW`: deltas with significance tests, and gates for CI.

Exit codes: 0 when no gate fails (or none is given), 1 when a gate fails with significance, 2 on usage
errors (unknown run ids, a bad gate, runs of different suites or prompts).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from bench.cli._context import AppContext
from bench.cli._errors import EXIT_FAILURE
from bench.settings import Settings

_PATH = click.Path(dir_okay=False, path_type=Path)
GATES_HELP = 'Gates, e.g. "ttft_p95>+10%,accuracy<-2pts,cost_per_correct>+5%"; units %, pts or ms.'


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "usd":
        return f"${value:.3g}"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"


@click.command("compare")
@click.argument("base")
@click.argument("new")
@click.option("--fail-on", default=None, help=GATES_HELP)
@click.option(
    "--hardware", multiple=True, help="TARGET=PROFILE for a self-hosted side's $/correct (repeatable)."
)
@click.option("--store", type=_PATH, default=None, help="Results store [LLMBENCH_HOME/results.sqlite].")
@click.option("--json", "as_json", is_flag=True, help="Print the llmbench.compare/1 JSON.")
@click.pass_context
def compare(
    ctx: click.Context,
    base: str,
    new: str,
    fail_on: str | None,
    hardware: tuple[str, ...],
    store: Path | None,
    as_json: bool,
) -> None:
    """Compare run NEW against run BASE: every delta with its significance test; gates fail CI.

    BASE and NEW are run ids (or unique prefixes); give a load run and an accuracy run of one target as
    ID,ID to compare both, and $ per correct answer. Latency percentiles are tested with a bootstrap over
    requests, accuracy with paired tests on the items both runs scored (Newcombe's score CI, exact McNemar).

    A gate fails when the change crosses its threshold AND is significant at 5%. Exit codes: 0 no gate
    failed, 1 a gate failed with significance, 2 usage error (unknown run, bad gate, runs of different
    suites or prompts: those are refused, with the reason).
    """
    from bench.cli.report import parse_pairs
    from bench.report.compare import compare_runs
    from bench.report.jsonout import pricing_from_registry
    from bench.report.options import Pricing

    app = ctx.find_object(AppContext) or AppContext(Settings.from_env())
    pricing = pricing_from_registry(app.registry)
    pricing = Pricing(
        pricing.prices, pricing.providers, pricing.hardware, parse_pairs(hardware, "--hardware")
    )
    result = compare_runs(store or app.settings.results_path, base, new, pricing, fail_on)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        table = Table(
            title=f"{result.new.label} (NEW) against {result.base.label} (BASE)",
            title_justify="left",
            caption="tests: latency, bootstrap over requests; accuracy, paired on items (McNemar p);"
            " $/correct, paired bootstrap over items; throughput, none (one measurement)",
        )
        for col in ("metric", "base", "new", "change", "95% CI", "p", "sig."):
            table.add_column(col, justify="left" if col == "metric" else "right")
        for d in result.deltas:
            if d.change is None:
                table.add_row(d.metric, _num(d.base, d.unit), _num(d.new, d.unit), f"n/a: {d.reason}")
                continue
            rel = f" ({100 * d.change_rel:+.1f}%)" if d.change_rel is not None else ""
            ci = "" if d.ci is None else f"[{d.ci[0]:+.3g}, {d.ci[1]:+.3g}]"
            sig = "-" if d.significant is None else ("yes" if d.significant else "no")
            p = "" if d.p_value is None else f"{d.p_value:.2g}"
            table.add_row(
                d.metric, _num(d.base, d.unit), _num(d.new, d.unit), f"{d.change:+.3g}{rel}", ci, p, sig
            )
        console = Console()
        console.print(table)
        for note in result.notes:
            console.print(f"note: {note}")
        for g in result.gates:
            if g.change is None:
                console.print(f"gate {g.gate}: {g.verdict}", markup=False)
                continue
            ci = "" if g.ci is None else f" [95% CI {g.ci[0]:+.2f}, {g.ci[1]:+.2f}]"
            console.print(f"gate {g.gate}: {g.change:+.2f}{g.gate.unit}{ci}: {g.verdict}", markup=False)
    if result.failed:
        ctx.exit(EXIT_FAILURE)
