"""`llmbench runs`: list stored runs, show one, recompute its summary, export runs as CSV or Parquet, and
list stored sweeps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from bench.cli._context import AppContext, check_writable
from bench.cli._tables import folding, table_console
from bench.loadgen.documents import LoadRunProfile
from bench.loadgen.recompute import recompute as recompute_summary
from bench.store import RunInfo, Store

_STORE = click.Path(dir_okay=False, path_type=Path)


@click.group()
def runs() -> None:
    """Inspect the results store: every load and accuracy run with its raw records and provenance, and
    the sweeps that grouped them."""


@runs.command("list")
@click.option("--kind", type=click.Choice(["load", "accuracy"]), default=None, help="Only runs of this kind.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many runs.")
@click.option("--all", "show_all", is_flag=True, help="Every run (no --limit).")
@click.option("--store", type=_STORE, default=None, help="Results store [LLMBENCH_HOME/results.sqlite].")
@click.option("--json", "as_json", is_flag=True, help="Print runs as JSON.")
@click.pass_obj
def list_(
    app: AppContext, kind: str | None, limit: int, show_all: bool, store: Path | None, as_json: bool
) -> None:
    """List runs, newest first; says how many more there are when --limit cuts the list."""
    if store is None and not app.settings.results_path.exists():
        click.echo("[]" if as_json else f"no runs yet ({app.settings.results_path} does not exist)")
        return
    with Store.open(store or app.settings.results_path, create=False) as db:
        infos = db.list_runs(kind, limit=None if show_all else limit)  # type: ignore[arg-type]
        total = db.count_runs(kind)  # type: ignore[arg-type]
    if as_json:
        click.echo(json.dumps([_brief(i) for i in infos], indent=2))
        return
    table = Table(title=f"runs in {store or app.settings.results_path}", title_justify="left")
    for col in ("id", "kind", "status", "started (UTC)", "target", "profile", "records"):
        table.add_column(col)
    for info in infos:
        b = _brief(info)
        table.add_row(b["id"][:12], b["kind"], b["status"], b["started_at"][:19], b["target"], b["profile"],
                      str(b["records"]))  # fmt: skip
    if len(infos) < total:
        table.caption = f"showing the newest {len(infos)} of {total} runs; --limit N or --all for more"
    table_console().print(folding(table))


@runs.command("show")
@click.argument("run_id")
@click.option("--store", type=_STORE, default=None, help="Results store [LLMBENCH_HOME/results.sqlite].")
@click.option("--recompute", is_flag=True, help="Recompute the load summary from the stored raw records.")
@click.pass_obj
def show(app: AppContext, run_id: str, store: Path | None, recompute: bool) -> None:
    """Show one run (id or unique prefix) as JSON: target, profile, provenance, summary."""
    with Store.open(store or app.settings.results_path, create=False) as db:
        info = db.get_run(run_id)
        data: dict[str, Any] = {**info.to_json(), "records": info.n_requests, "items": info.n_items}
        if recompute and info.kind == "load":
            again = recompute_summary(db.load_records(info.id), info.load_profile, info.load_summary)
            data["summary_recomputed"] = again.to_json()
            data["recompute_matches"] = again == info.summary
    click.echo(json.dumps(data, indent=2, default=str))


def _brief(info: RunInfo) -> dict[str, Any]:
    target = info.target.name or info.target.url
    profile = info.profile.label if isinstance(info.profile, LoadRunProfile) else info.profile.suite
    return {
        "id": info.id,
        "kind": info.kind,
        "status": info.status,
        "started_at": info.started_at,
        "target": str(target),
        "profile": str(profile),
        "records": info.n_requests or info.n_items,
    }


@runs.command("export")
@click.option("--csv", "fmt", flag_value="csv", help="Write CSV.")
@click.option("--parquet", "fmt", flag_value="parquet", help="Write Parquet (pyarrow).")
@click.option("--out", type=_STORE, required=True, help="Output file.")
@click.option(
    "--what",
    type=click.Choice(["runs", "requests", "items"]),
    default="runs",
    show_default=True,
    help="One row per run (key figures and provenance), or the raw request or item rows.",
)
@click.option("--kind", type=click.Choice(["load", "accuracy"]), default=None, help="Only runs of this kind.")
@click.option("--last", type=click.IntRange(min=1), default=None, help="Only the newest N runs [all].")
@click.option("--sweep", default=None, help="Only the runs of this sweep.")
@click.option("--store", type=_STORE, default=None, help="Results store [LLMBENCH_HOME/results.sqlite].")
@click.argument("run_ids", nargs=-1)
@click.pass_obj
def export(
    app: AppContext,
    fmt: str | None,
    out: Path,
    what: str,
    kind: str | None,
    last: int | None,
    sweep: str | None,
    store: Path | None,
    run_ids: tuple[str, ...],
) -> None:
    """Export stored runs (all, RUN_IDs, --last N or --sweep ID) as --csv or --parquet."""
    from bench.errors import UsageError
    from bench.report.export import export as write_export
    from bench.report.jsonout import pricing_from_registry
    from bench.report.query import select_runs

    if fmt is None:
        raise UsageError("choose a format: --csv or --parquet", flag="--csv")
    check_writable(out, "--out")  # before the rows are read, not after
    path = store or app.settings.results_path
    with Store.open(path, create=False) as db:
        infos = [
            i for i in select_runs(db, run_ids, last=last, sweep=sweep) if kind is None or i.kind == kind
        ]
    n = write_export(infos, path, out, fmt, what, pricing_from_registry(app.registry))
    click.echo(
        f"wrote {n:,} {what if what != 'runs' else 'run'} rows of {len(infos)} runs to {out}", err=True
    )


@runs.command("sweeps")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many sweeps.")
@click.option("--store", type=_STORE, default=None, help="Results store [LLMBENCH_HOME/results.sqlite].")
@click.option("--json", "as_json", is_flag=True, help="Print sweeps as JSON.")
@click.pass_obj
def sweeps(app: AppContext, limit: int, store: Path | None, as_json: bool) -> None:
    """List stored sweeps, newest first: the ids `report --sweep`, `runs export --sweep` and
    `sweep --resume` take."""
    path = store or app.settings.results_path
    if store is None and not path.exists():
        click.echo("[]" if as_json else f"no sweeps yet ({path} does not exist)")
        return
    with Store.open(path, create=False) as db:
        found = db.list_sweeps(limit=limit + 1)
        rows = [_sweep_row(db, info) for info in found[:limit]]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no sweeps in {path}; run one with `llmbench sweep FILE`")
        return
    table = Table(title=f"sweeps in {path}", title_justify="left")
    for col in ("id", "name", "status", "started (UTC)", "points done"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["id"][:12], r["name"] or "", r["status"], r["started_at"][:19],
                      f"{r['points_complete']}/{r['points']}")  # fmt: skip
    table_console().print(folding(table))
    if len(found) > limit:
        click.echo(f"(older sweeps not shown: raise --limit above {limit})")


def _sweep_row(db: Store, info: Any) -> dict[str, Any]:
    points = db.list_points(info.id)
    return {
        "id": info.id,
        "name": info.name,
        "status": info.status,
        "started_at": info.started_at,
        "ended_at": info.ended_at,
        "points": len(points),
        "points_complete": sum(p.status == "complete" for p in points),
    }
