"""`llmbench compare BASE NEW`: deltas with significance tests, and gates for CI.

Exit codes: 0 when no gate fails (or none is given), 1 when a gate fails with significance, 2 on usage
errors (unknown run ids, a bad gate, runs of different suites or prompts).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from bench.cli._context import AppContext
from bench.cli._errors import EXIT_FAILURE
from bench.cli._tables import folding, table_console
from bench.report.value import PER_CORRECT, Per, fmt_number, fmt_signed, fmt_usd, per_column
from bench.settings import Settings

if TYPE_CHECKING:
    from bench.report.compare import Delta

_PATH = click.Path(dir_okay=False, path_type=Path)
GATES_HELP = (
    'Gates, e.g. "ttft_p95>+10%,accuracy<-2pts,cost_per_correct>+5%,regression<0pts"; units %, pts or ms.'
)


def _amount(x: float, unit: str, per: Per | None = None, *, signed: bool = False) -> str:
    """A delta's figure with its unit: '123 ms', '+1.20 pts', '72.0%', '$0.257 /1k correct', '9.66 req/s'."""
    if unit == "usd" and per is not None:
        sign = ("+" if x > 0 else "-" if x < 0 else "") if signed else ("-" if x < 0 else "")
        return f"{sign}{fmt_usd(per.of(abs(x)))} /{per.heading.removeprefix('$/')}"
    text = fmt_signed(x) if signed else fmt_number(x)
    if unit == "pts":
        return f"{text} pts" if signed else f"{text}%"  # base and new are % right; changes are points
    return f"{text} {unit}"


def delta_cells(d: Delta) -> list[str]:
    """A delta as table cells: metric, base, new, change (relative), 95% CI, p, significant."""
    per = per_column(PER_CORRECT, (d.base, d.new)) if d.unit == "usd" else None
    base = "n/a" if d.base is None else _amount(d.base, d.unit, per)
    new = "n/a" if d.new is None else _amount(d.new, d.unit, per)
    if d.change is None:
        return [d.metric, base, new, f"n/a: {d.reason}", "", "", ""]
    rel = f" ({100 * d.change_rel:+.1f}%)" if d.change_rel is not None else ""
    ci = "" if d.ci is None else f"[{_amount(d.ci[0], d.unit, per, signed=True)}, "
    ci += "" if d.ci is None else f"{_amount(d.ci[1], d.unit, per, signed=True)}]"
    sig = "-" if d.significant is None else ("yes" if d.significant else "no")
    p = "" if d.p_value is None else f"{d.p_value:.2g}"
    return [d.metric, base, new, _amount(d.change, d.unit, per, signed=True) + rel, ci, p, sig]


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

    A gate fails when the change crosses its threshold AND is significant at 5%. Runs over a suite with
    regression items (complaints users filed, `llmbench suite import`) get the gate regression<0pts:
    NEW fails when complaints fixed in BASE come back, significantly (McNemar's exact p). Prompt versions
    (--template) are compared side by side, with the input tokens each adds per item. Exit codes: 0 no
    gate failed, 1 a gate failed with significance, 2 usage error (unknown run, bad gate, runs of
    different suites or load prompts: those are refused, with the reason).
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
            table.add_row(*delta_cells(d))
        console = table_console()
        if result.prompts is not None:
            base_prompt, new_prompt = result.prompts
            console.print(f"prompt versions: BASE {base_prompt}  |  NEW {new_prompt}", markup=False)
        console.print(folding(table))
        for note in result.notes:
            console.print(f"note: {note}")
        for g in result.gates:
            if g.change is None:
                console.print(f"gate {g.gate}: {g.verdict}", markup=False)
                continue
            ci = "" if g.ci is None else f" [95% CI {fmt_signed(g.ci[0])}, {fmt_signed(g.ci[1])}]"
            console.print(
                f"gate {g.gate}: {fmt_signed(g.change)}{g.gate.unit}{ci}: {g.verdict}", markup=False
            )
    if result.failed:
        ctx.exit(EXIT_FAILURE)
