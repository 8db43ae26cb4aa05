"""`run_sweep`: a sweep file (or a stored sweep to resume) run point by point, everything stored.

New sweeps are validated whole (file and registry) and refused when the API estimate is above `max_usd`;
then each point runs here one after another, or on a Ray cluster (bench.sweep.remote). A point's status
is stored as it changes, so a sweep killed at any moment resumes with `--resume`: complete points are
skipped, and points that were running, partial or failed are run again (earlier records stay stored).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bench.errors import ConfigError, InterruptedRunError, SweepInterrupted
from bench.registry import Registry
from bench.settings import Settings
from bench.store import PointInfo, Store
from bench.sweep.execute import PointContext, PointOutcome, Spend, SpendCapReached, run_point
from bench.sweep.plan import Point, ServableFn, SweepPlan, expand
from bench.sweep.spec import SweepFile, read_sweep_file
from bench.validation import config_error

RESUME_FIX = "put back what moved (a suite file, a prompt file) and resume again from the same folder"

Say = Callable[[str], None]


@dataclass
class SweepResult:
    """What a sweep did: its id, every point's outcome, and why it stopped early (if it did)."""

    sweep_id: str
    store_path: Path
    plan: SweepPlan
    outcomes: dict[str, PointOutcome] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # point ids complete before a resume
    stopped: str | None = None  # spend cap reached, or interrupted
    status: str = "complete"


def plan_sweep(
    path: Path, registry: Registry, *, check_keys: bool = True, settings: Settings | None = None
) -> tuple[SweepFile, SweepPlan]:
    """Read, validate and expand a sweep file; nothing starts (settings: also check what vLLM serves here)."""
    sweep = read_sweep_file(path)
    servable = servable_here(settings) if settings is not None else None
    return sweep, expand(sweep, registry, check_keys=check_keys, file=str(path), servable=servable)


def servable_here(settings: Settings) -> ServableFn:
    """The sweep's check that vLLM on this machine can serve a quantized variant (as `serve` checks)."""
    from bench.serving.plan import cpu_kernel_problem

    def check(serve_name: str, method: str, backend: str) -> str | None:
        problem = cpu_kernel_problem(settings, serve_name, method, backend)
        return None if problem is None else f"{problem}; {problem.fix}"

    return check


def check_budget(sweep: SweepFile, plan: SweepPlan) -> None:
    """ConfigError when the API spend estimate is above the sweep's cap."""
    if sweep.max_usd is not None and plan.estimate_usd > sweep.max_usd:
        raise ConfigError(
            f"the sweep's estimated API spend ${plan.estimate_usd:.4f} is above max_usd ${sweep.max_usd:g}",
            key="max_usd",
            fix="raise max_usd, or measure fewer API requests (requests, limit, repetitions)",
        )


def run_sweep(
    settings: Settings,
    registry: Registry,
    *,
    path: Path | None = None,
    resume: str | None = None,
    only: str | None = None,
    ray_address: str | None = None,
    store_path: Path | None = None,
    say: Say = lambda _m: None,
) -> SweepResult:
    """Run a new sweep from `path`, or resume the stored sweep `resume`; see the module docstring."""
    store_file = store_path or settings.results_path
    with Store.open(store_file) as store:
        if resume is not None:
            info = store.resume_sweep(resume)
            try:
                sweep = SweepFile.model_validate(info.spec)
            except ValidationError as exc:  # e.g. a suite file moved since the sweep started
                raise config_error(
                    exc, file=f"sweep {info.id[:8]} (as stored)", model=SweepFile, fix=RESUME_FIX
                ) from exc
            plan = SweepPlan(info.name or sweep.name, list(info.plan))
            done = {p.point_id for p in store.list_points(info.id) if p.status == "complete"}
            sweep_id = info.id
        else:
            assert path is not None
            sweep, plan = plan_sweep(path, registry, settings=settings)
            check_budget(sweep, plan)
            spec = sweep.model_dump(mode="json", by_alias=True)
            sweep_id = store.start_sweep(spec, plan.points, name=sweep.name)
            done = set()
    result = SweepResult(sweep_id, store_file, plan)
    chosen = plan.only(only)
    if only is not None and not chosen:
        raise ConfigError(f"--only {only!r} matches no point", fix="see the points with --dry-run")
    todo = [p for p in chosen if p.point_id not in done]
    result.skipped = [p.point_id for p in chosen if p.point_id in done]
    ctx = PointContext(settings, registry, store_file, sweep_id, Spend(sweep.max_usd), say)
    try:
        if ray_address is not None:
            from bench.sweep.remote import run_on_ray

            run_on_ray(todo, ctx, ray_address, result.outcomes, _recorder(store_file, sweep_id))
        else:
            _run_here(todo, ctx, result)
    except SpendCapReached as exc:
        result.stopped = str(exc)
    except (InterruptedRunError, KeyboardInterrupt) as exc:
        result.stopped = "interrupted (Ctrl-C)"
        _finish(store_file, sweep_id, result, "partial")
        raise SweepInterrupted(sweep_id) from exc
    _recoveries(plan, store_file, sweep_id, ctx.registry, settings, say)
    _finish(store_file, sweep_id, result, None)
    return result


def _recoveries(
    plan: SweepPlan, store_file: Path, sweep_id: str, registry: Registry, settings: Settings, say: Say
) -> None:
    """Recovery documents for the sweep's quantized variants (from every point's stored outcome)."""
    from bench.sweep.recovery import store_recoveries

    with Store.open(store_file) as store:
        stored = {p.point_id: PointOutcome(p.status, p.run_ids) for p in store.list_points(sweep_id)}
    ids = store_recoveries(plan.points, stored, store_file, sweep_id, registry, settings)
    if ids:
        say(f"recovery: {len(ids)} quantized variants against their base, stored for the report")


def _recorder(store_file: Path, sweep_id: str) -> Callable[[Point, str, PointOutcome | None], None]:
    """Store a point's status as it changes ('running' at start, then its outcome)."""

    def record(point: Point, status: str, outcome: PointOutcome | None) -> None:
        with Store.open(store_file) as store:
            if outcome is None:
                store.set_point(sweep_id, point.point_id, "running")
            else:
                store.set_point(sweep_id, point.point_id, outcome.status, run_ids=outcome.run_ids,
                                error=outcome.error, detail=outcome.detail)  # fmt: skip

    return record


def _run_here(points: list[Point], ctx: PointContext, result: SweepResult) -> None:
    """Points one after another on this machine."""
    record = _recorder(ctx.store_path, ctx.sweep_id)
    for i, point in enumerate(points, start=1):
        ctx.say(f"point {i}/{len(points)}: {point.label} ({point.point_id})")
        record(point, "running", None)
        outcome = PointOutcome(status="partial")
        try:
            outcome = run_point(point, ctx)
        finally:
            result.outcomes[point.point_id] = outcome
            record(point, outcome.status, outcome)
        ctx.say(f"  {outcome.status}" + (f": {outcome.error.splitlines()[0]}" if outcome.error else ""))


def _finish(store_file: Path, sweep_id: str, result: SweepResult, status: str | None) -> None:
    with Store.open(store_file) as store:
        points = store.list_points(sweep_id)
        final = status or _sweep_status(points, result)
        result.status = final
        store.finish_sweep(sweep_id, final, note=result.stopped)  # type: ignore[arg-type]


def _sweep_status(points: list[PointInfo], result: SweepResult) -> str:
    statuses = {p.status for p in points}
    if result.stopped is not None or statuses & {"pending", "running", "partial"}:
        return "partial"
    if statuses == {"failed"}:
        return "failed"
    return "complete" if statuses <= {"complete", "skipped"} else "partial"


def _point_line(p: Point) -> str:
    runs = len(p.loads) * p.repetitions, len(p.suites) * p.repetitions
    return (
        f"  {p.point_id}  {p.label:<40} {p.kind:<5} backend={p.backend:<5} hardware={p.hardware or '-'}  "
        f"{runs[0]} load + {runs[1]} accuracy runs  ~{p.estimate_s / 60:.1f} min"
        + (f"  ~${p.estimate_usd:.4f}" if p.estimate_usd else "")
        + (f"  (simulated ~${p.estimate_simulated_usd:.4f})" if p.estimate_simulated_usd else "")
        + (f"  quantize {p.quantize['method']} first" if p.quantize else "")
    )


def plan_lines(plan: SweepPlan, only: str | None = None) -> list[str]:
    """What --dry-run prints: every point (under its workload when there are several), the runs it makes,
    and the estimates (labelled as such)."""
    chosen = plan.only(only)
    names = list(dict.fromkeys(p.workload for p in plan.points))
    several = len(names) > 1
    head = f"sweep {plan.name}: {len(plan.points)} points"
    lines = [head + (f" ({len(names)} workloads × their targets)" if several else "")]
    for name in names:
        mine = [p for p in chosen if p.workload == name]
        if several and mine:
            first = mine[0]
            sha = f", sha256 {first.workload_sha256[:12]}" if first.workload_sha256 else ""
            minutes = sum(p.estimate_s for p in mine) / 60
            count = f"{len(mine)} point" + ("s" if len(mine) != 1 else "")
            lines.append(f"workload {name} ({first.workload_kind}{sha}): {count}, ~{minutes:.1f} min")
        for p in mine:
            lines.append(_point_line(p))
            lines.extend(f"      note: {note}" for note in p.notes)
    lines.append(
        f"estimate (rough): {plan.estimate_s / 60:.1f} min wall time; API spend ${plan.estimate_usd:.4f}"
        + (
            f"; simulated mock spend ${plan.estimate_simulated_usd:.4f}"
            if plan.estimate_simulated_usd
            else ""
        )
    )
    return lines


def outcome_json(result: SweepResult) -> dict[str, Any]:
    """The sweep's result as JSON (`llmbench.sweep-result/1`)."""
    return {
        "schema": "llmbench.sweep-result/1",
        "sweep_id": result.sweep_id,
        "status": result.status,
        "stopped": result.stopped,
        "skipped": result.skipped,
        "points": [
            {
                "point_id": pid,
                "status": o.status,
                "runs": o.run_ids,
                "error": o.error,
                "detail": o.detail.to_json(),
            }
            for pid, o in result.outcomes.items()
        ],
    }
