"""Quantization recovery from a sweep: each variant point against its base point, on the same items.

A sweep that measures a model and its variants already scored both on the same suite items; this pairs
them into `llmbench.recovery/1` documents (per suite and area, paired 95% CIs, flags under the threshold),
stored with the sweep id so its report shows recovery per area. Speed is not re-measured here: the sweep's
own load runs are on the leaderboard, and the document says so. The two sides may run on different
backends (bitsandbytes on hf, the base on vLLM), which the document also says.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bench.errors import LlmbenchError
from bench.recovery.driver import model_facts, served_dtype
from bench.recovery.report import SCHEMA, SpeedRuns, SuiteRuns, recovery_document
from bench.registry import Registry
from bench.settings import Settings
from bench.store import Store
from bench.sweep.execute import PointOutcome
from bench.sweep.plan import Point

THRESHOLD = 0.95


def store_recoveries(
    points: list[Point],
    outcomes: Mapping[str, PointOutcome],
    store_path: Path,
    sweep_id: str,
    registry: Registry,
    settings: Settings,
) -> list[str]:
    """One recovery document per variant point whose suites ran, against the base point of the same target
    and engine args whose suites ran (each side's complete accuracy runs; the points themselves may have
    failed elsewhere, e.g. a goodput search with no operating point); returns the document ids."""

    # A sweep with workloads serves a configuration once per workload and runs its suites at one of them:
    # the variant pairs with a base point that ran suites, preferably on the same workload.
    def serve_key(p: Point) -> tuple[object, ...]:
        return (p.target, tuple(sorted(p.engine_args.items())))

    bases: dict[tuple[object, ...], list[Point]] = {}
    for p in points:
        if p.variant == "base" and p.suites:
            bases.setdefault(serve_key(p), []).append(p)
    ids: list[str] = []
    with Store.open(store_path) as store:
        for point in points:
            if point.kind != "local" or point.variant == "base" or not point.suites:
                continue
            candidates = bases.get(serve_key(point), [])
            base = next((b for b in candidates if b.workload == point.workload), None)
            base = base or (candidates[0] if candidates else None)
            if base is None:
                continue
            got, base_got = outcomes.get(point.point_id), outcomes.get(base.point_id)
            if got is None or base_got is None:
                continue
            if store.list_documents(SCHEMA, subject=point.serve_name, sweep_id=sweep_id):
                continue  # made already (a resumed sweep)
            suites = _pairs(store, base_got.run_ids, got.run_ids)
            if not suites:
                continue
            try:
                base_name, base_entry = registry.local(base.serve_name)
                var_name, var_entry = registry.local(point.serve_name)
            except LlmbenchError:
                continue
            notes = ["from a sweep: speed is on the sweep's leaderboard, not re-measured here"]
            if base.backend != point.backend:
                notes.append(f"the base ran on {base.backend}, the variant on {point.backend}")
            doc = recovery_document(
                model_facts(
                    settings,
                    base.serve_name,
                    base_name,
                    base_entry,
                    base.backend,
                    served_dtype(store, base_got.run_ids),
                ),
                model_facts(
                    settings,
                    point.serve_name,
                    var_name,
                    var_entry,
                    point.backend,
                    served_dtype(store, got.run_ids),
                ),
                suites,
                SpeedRuns(skipped="measured by the sweep's load runs (see its report)"),
                threshold=THRESHOLD,
                notes=notes,
            )
            ids.append(store.add_document(SCHEMA, doc.to_json(), subject=point.serve_name, sweep_id=sweep_id))
    return ids


def _pairs(store: Store, base_runs: list[str], variant_runs: list[str]) -> dict[str, SuiteRuns]:
    """The latest accuracy run of each suite on both sides, with their items."""

    def accuracy(run_ids: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for run_id in run_ids:
            info = store.get_run(run_id)
            if info.kind == "accuracy" and info.status == "complete":
                out[info.accuracy_profile.suite] = info.id
        return out

    base, variant = accuracy(base_runs), accuracy(variant_runs)
    pairs = {}
    for suite in sorted(base.keys() & variant.keys()):
        a, b = base[suite], variant[suite]
        pairs[suite] = SuiteRuns(a, store.load_items(a), b, store.load_items(b))
    return pairs
