"""`llmbench report`: one page from the results store (HTML, Markdown or JSON)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from pydantic import ValidationError

from bench.cli._context import AppContext, check_writable
from bench.errors import UsageError
from bench.settings import Settings
from bench.validation import usage_error

_PATH = click.Path(dir_okay=False, path_type=Path)


def parse_pairs(values: tuple[str, ...], flag: str) -> dict[str, str]:
    """Repeated TARGET=VALUE flags as a mapping (the last one of a target wins)."""
    out: dict[str, str] = {}
    for raw in values:
        key, sep, value = raw.rpartition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"{raw!r} is not TARGET=PROFILE (e.g. tiny-skills=cpu-2vcpu)", flag=flag)
        out[key.strip()] = value.strip()
    return out


@click.command("report")
@click.argument("run_ids", nargs=-1)
@click.option("--last", type=click.IntRange(min=1), default=None, help="Report on the newest N runs.")
@click.option("--sweep", default=None, help="Report on every run of this sweep (id or prefix).")
@click.option("--format", "fmt", type=click.Choice(["html", "md", "json"]), default="html", show_default=True)
@click.option(
    "--out", type=_PATH, default=None, help="Output file ['-' or unset: stdout for md/json; report.html]."
)
@click.option(
    "--max-drop", type=float, default=None, help="Accuracy points an option may lose to the best [2]."
)
@click.option(
    "--utilization",
    type=float,
    default=None,
    help="Share of time a self-hosted box is busy (0-1] [allocation basis].",
)
@click.option(
    "--hardware", multiple=True, help="TARGET=PROFILE: the hardware a self-hosted target ran on (repeatable)."
)
@click.option("--store", type=_PATH, default=None, help="Results store [LLMBENCH_HOME/results.sqlite].")
@click.pass_context
def report(
    ctx: click.Context,
    run_ids: tuple[str, ...],
    last: int | None,
    sweep: str | None,
    fmt: str,
    out: Path | None,
    max_drop: float | None,
    utilization: float | None,
    hardware: tuple[str, ...],
    store: Path | None,
) -> None:
    """Report on stored runs: the recommendation, leaderboard, charts, cost at the operating point,
    downgrade and break-even. Runs: the given RUN_IDs, --last N, --sweep ID, or every stored run."""
    from bench.report.build import ReportSpec, build_report
    from bench.report.jsonout import pricing_from_registry
    from bench.report.render import RENDERERS

    app = ctx.find_object(AppContext) or AppContext(Settings.from_env())
    if sum(bool(x) for x in (run_ids, last, sweep)) > 1:
        raise UsageError("give RUN_IDs, --last or --sweep, not several", flag="--last")
    values = {"run_ids": run_ids, "last": last, "sweep": sweep, "max_drop": max_drop,
              "utilization": utilization, "hardware": parse_pairs(hardware, "--hardware")}  # fmt: skip
    try:
        spec = ReportSpec.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise usage_error(exc, {"run_ids": "RUN_IDS"}, default="--last", model=ReportSpec) from exc
    path = store or app.settings.results_path
    if not path.is_file():
        raise UsageError(
            f"no results store at {path}; run `llmbench bench load` or pass --store", flag="--store"
        )
    if out is None and fmt == "html":
        out = Path("report.html")
    to_file = out is not None and str(out) != "-"
    if to_file and out is not None:
        check_writable(out, "--out")  # before the report is built, not after
    result = build_report(spec, path, pricing_from_registry(app.registry))
    text = RENDERERS[fmt](result)
    if not to_file or out is None:
        sys.stdout.write(text)
        return
    out.write_text(text, encoding="utf-8")
    pick = result.headline.recommended or "none"
    click.echo(
        f"wrote {out} ({len(text.encode()) / 1e6:.1f} MB, {result.n_runs} runs; recommendation: {pick})",
        err=True,
    )
