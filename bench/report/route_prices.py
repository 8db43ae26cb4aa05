"""Prices for `llmbench whatif route` runs whose items carry no cost: a self-hosted target at the report's
own $/1M reference tokens at its operating point (its load runs and hardware profile in the same store),
so a routing analysis and the report cost a self-hosted model with one formula (bench.report.figures)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.report.build import ReportSpec, build_report
from bench.report.options import Pricing, option_kind, target_name
from bench.report.query import resolve_run
from bench.store import Store
from bench.whatif.source import TokenPrice


def route_prices(
    store_path: Path, run_ids: Sequence[str], pricing: Pricing, *, skip: Sequence[str] = ()
) -> tuple[dict[str, TokenPrice], list[str]]:
    """(run id → price, notes) for the self-hosted accuracy runs among `run_ids` (ids or prefixes), except
    those `skip` names (by id prefix: priced by hand); a run whose target has no costed operating point in
    the store gets no price, and a note says why."""
    with Store.open(store_path, create=False) as store:
        runs = [resolve_run(store, r) for r in run_ids]
        wanted = [r for r in runs if r.kind == "accuracy" and option_kind(r) == "self-hosted"
                  and not any(r.id.startswith(s.lower()) for s in skip)]  # fmt: skip
        names = {target_name(r) for r in wanted}
        loads = [r.id for r in store.list_runs(kind="load", limit=None) if target_name(r) in names]
    if not wanted:
        return {}, []
    report = build_report(ReportSpec(run_ids=(*loads, *(r.id for r in wanted))), store_path, pricing)
    prices: dict[str, TokenPrice] = {}
    notes: list[str] = []
    for run in wanted:
        name = target_name(run)
        row = next((r for r in report.rows if r.option.name == name and r.usd_per_1m_total is not None), None)
        if row is None:
            why = next((r.usd_per_1m_blended.reason for r in report.rows if r.option.name == name), None)
            notes.append(f"{name} ({run.id[:8]}) has no price: {why or 'no load run of it in the store'}; "
                         "pass --price RUN=IN,OUT")  # fmt: skip
            continue
        per_1m = row.usd_per_1m_total
        assert per_1m is not None
        prices[run.id] = TokenPrice(per_1m, per_1m, unit="reference")
        notes.append(
            f"{name} ({run.id[:8]}) priced at ${per_1m:.4g}/1M reference tokens: its operating point on "
            f"{row.option.hardware}, as the report costs it"
        )
    return prices, notes
