"""`llmbench sweep FILE`: models × variants × engine settings × load profiles × suites, then the answer page.

Exit codes: 0 every point complete; 1 a point failed, the sweep stopped early (spend cap), or a gate
against --baseline failed (a fixed complaint came back, significantly), with the reasons printed; 2 the
sweep file (or a flag) is invalid, before anything started; 130 Ctrl-C (the server
is stopped, the data kept; the message says how to resume).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from bench.cli._context import AppContext, check_writable
from bench.errors import LlmbenchError, UsageError

_PATH = click.Path(dir_okay=False, path_type=Path)


@click.command("sweep")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--resume", default=None, metavar="SWEEP_ID", help="Finish a stored sweep (id or prefix).")
@click.option(
    "--only", default=None, metavar="PATTERN", help="Run only the points whose label matches (glob)."
)
@click.option("--dry-run", is_flag=True, help="Print the points with estimated wall time and API spend.")
@click.option(
    "--ray-address",
    default=None,
    metavar="ADDR|auto|local",
    help="Run points as Ray tasks: a cluster address, auto (the running one) or local (start one).",
)
@click.option("--store", type=_PATH, default=None, help="Results store [LLMBENCH_HOME/results.sqlite].")
@click.option(
    "--report", "report_out", type=_PATH, default=None, help="HTML report [LLMBENCH_HOME/reports/]."
)
@click.option(
    "--baseline",
    default=None,
    metavar="RUN_ID",
    help="Compare every accuracy run of the sweep with this accuracy run, as `llmbench compare` does "
    "(the regression gate is on for suites with regression items).",
)
@click.option("--fail-on", default=None, help="Gates against --baseline, as `llmbench compare --fail-on`.")
@click.option("--json", "as_json", is_flag=True, help="Print the sweep's result as JSON at the end.")
@click.pass_obj
def sweep(
    app: AppContext,
    file: Path | None,
    resume: str | None,
    only: str | None,
    dry_run: bool,
    ray_address: str | None,
    store: Path | None,
    report_out: Path | None,
    baseline: str | None,
    fail_on: str | None,
    as_json: bool,
) -> None:
    """Run a sweep file: serve each configuration once, run its loads and suites, store everything under a
    sweep id, and end on the leaderboard and the HTML report."""
    from bench.sweep.driver import outcome_json, plan_lines, plan_sweep, run_sweep

    if file is None and resume is None:
        raise UsageError("give a sweep FILE, or --resume SWEEP_ID", flag="FILE")
    err = Console(stderr=True, highlight=False, soft_wrap=True)

    def say(message: str) -> None:
        err.print(message, markup=False)

    if dry_run:
        if file is None:
            raise UsageError("--dry-run plans a sweep FILE", flag="--dry-run")
        spec, plan = plan_sweep(file, app.registry, check_keys=False, settings=app.settings)
        click.echo("\n".join(plan_lines(plan, only)))
        if spec.max_usd is not None and plan.estimate_usd > spec.max_usd:
            click.echo(f"the API estimate is above max_usd ${spec.max_usd:g}: a run would be refused")
        return
    store_path = store or app.settings.results_path
    if fail_on is not None and baseline is None:
        raise UsageError("--fail-on gates the sweep's runs against a --baseline RUN_ID", flag="--fail-on")
    if baseline is not None:
        from bench.sweep.gates import check_baseline

        check_baseline(store_path, baseline, fail_on)  # before anything starts
    html = report_out or app.settings.home / "reports" / "sweep-{id}.html"
    if report_out is not None:
        check_writable(report_out, "--report")
    result = run_sweep(
        app.settings, app.registry, path=None if resume else file, resume=resume, only=only,
        ray_address=ray_address, store_path=store_path, say=say,
    )  # fmt: skip
    out_path = Path(str(html).format(id=result.sweep_id[:8]))
    leaderboard = _report(app, result.sweep_id, store_path, out_path, err)
    failed = {pid: o for pid, o in result.outcomes.items() if o.status != "complete"}
    for point in result.plan.points:
        o = result.outcomes.get(point.point_id)
        if o is not None and o.status != "complete":
            first = (o.error or "").splitlines()[0] if o.error else ""
            err.print(f"point {point.label}: {o.status}: {first}", markup=False)
    if as_json:
        click.echo(json.dumps(outcome_json(result), indent=2))
    else:
        click.echo(leaderboard)  # the report's Markdown, with the figures over repetitions
        click.echo(f"sweep {result.sweep_id} ({result.status}); report: {out_path}")
    if result.stopped:
        err.print(f"stopped early: {result.stopped}; `llmbench sweep --resume {result.sweep_id[:8]}` goes on",
                  markup=False)  # fmt: skip
    gate_failed = False if baseline is None else _gates(app, store_path, result.sweep_id, baseline, fail_on)
    sys.stdout.flush()
    if failed or result.stopped or gate_failed:
        sys.exit(1)


def _gates(app: AppContext, store_path: Path, sweep_id: str, baseline: str, fail_on: str | None) -> bool:
    """Print every accuracy run's gates against the baseline; True when one failed."""
    from bench.report.jsonout import pricing_from_registry
    from bench.sweep.gates import gate_sweep

    found = gate_sweep(store_path, sweep_id, baseline, pricing_from_registry(app.registry), fail_on)
    for gate in found:
        if gate.comparison is None:
            click.echo(f"gates {gate.label} ({gate.run_id[:8]}): not compared: {gate.skipped}")
            continue
        if not gate.comparison.gates:
            click.echo(f"gates {gate.label} ({gate.run_id[:8]}): no gate applies")
        for g in gate.comparison.gates:
            click.echo(f"gate {g.gate} {gate.label} ({gate.run_id[:8]}): {g.verdict}")
    return any(g.failed for g in found)


def _report(app: AppContext, sweep_id: str, store_path: Path, out: Path, err: Console) -> str:
    """Write the sweep's HTML report; return its Markdown leaderboard (or why there is none)."""
    from bench.report.build import ReportSpec, build_report
    from bench.report.jsonout import pricing_from_registry
    from bench.report.render import RENDERERS

    try:
        report = build_report(ReportSpec(sweep=sweep_id), store_path, pricing_from_registry(app.registry))
    except LlmbenchError as exc:
        return f"(no report: {exc})"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(RENDERERS["html"](report), encoding="utf-8")
    return RENDERERS["md"](report)
