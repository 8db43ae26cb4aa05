"""Sweep points on a Ray cluster: one Ray task per point, holding the GPUs its engine needs.

Ray is the scheduler; llmbench only sizes each point. A point that serves with tensor parallel × pipeline
parallel = N gets a placement group of N {GPU: 1, CPU: 1} bundles, STRICT_PACK (one node), and its task
asks for `num_gpus=N` itself: a task with num_gpus=0 has CUDA_VISIBLE_DEVICES emptied by Ray, and the vLLM
engine it starts would see no GPU (vllm#19123). A CPU-only point asks for one CPU. The matrix is checked
against the cluster's resources before anything starts.

The task runs the whole point on its node (server and client together) into a store of its own, and
returns that store's rows; this process imports them into the local store. Every task stops its server
in a `finally`, so success, failure and cancellation (Ctrl-C here cancels every task) leave no engine
behind. A worker lost mid-point marks that point failed, not the sweep.
"""

from __future__ import annotations

import contextlib
import importlib
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.documents import PointDetail
from bench.errors import ConfigError, InterruptedRunError
from bench.registry import load_registry
from bench.settings import Settings
from bench.store import Store
from bench.sweep.execute import PointContext, PointOutcome, Spend, SpendCapReached, run_point
from bench.sweep.plan import Point

Record = Callable[[Point, str, PointOutcome | None], None]
_TABLES = ("runs", "requests", "items", "server_metrics")


def gpus_needed(point: Point, gpu_cluster: bool) -> int:
    """GPUs the point's engine uses: tensor parallel × pipeline parallel; 0 for a CPU-only point, and on a
    cluster without GPUs (vLLM's CPU build)."""
    if not gpu_cluster or point.kind != "local" or point.backend in ("hf", "mock"):
        return 0
    args = point.engine_args
    return int(args.get("tensor-parallel-size", 1)) * int(args.get("pipeline-parallel-size", 1))


def check_resources(points: list[Point], resources: dict[str, float]) -> None:
    """ConfigError before anything starts when a point needs more GPUs than the cluster has in all."""
    have = int(resources.get("GPU", 0))
    if not have:
        return  # CPU-only cluster: every point runs on CPUs
    needs = {p.point_id: gpus_needed(p, True) for p in points}
    too_big = [f"{p.label} needs {needs[p.point_id]} GPUs" for p in points if needs[p.point_id] > have]
    if too_big:
        raise ConfigError(
            f"the Ray cluster has {have} GPUs; " + "; ".join(too_big),
            fix="lower tensor-parallel-size × pipeline-parallel-size, or add GPU nodes to the cluster",
        )


def import_store(worker_store: bytes, into: Path) -> list[str]:
    """Copy every run (and its requests, items, server samples) of a worker's store file into `into`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "worker.sqlite"
        path.write_bytes(worker_store)
        Store.open(into).close()  # migrated to the same schema as the worker's
        conn = sqlite3.connect(into, timeout=30)
        try:
            conn.execute("ATTACH DATABASE ? AS w", (str(path),))
            with conn:
                for table in _TABLES:
                    cols = [r[1] for r in conn.execute(f"PRAGMA main.table_info({table})")]
                    names = ", ".join(cols)
                    verb = "INSERT OR IGNORE" if table == "runs" else "INSERT"
                    conn.execute(f"{verb} INTO main.{table} ({names}) SELECT {names} FROM w.{table}")
                # A run that was still running when its worker stopped is partial here.
                conn.execute(
                    "UPDATE main.runs SET status = 'partial' WHERE status = 'running' AND id IN "
                    "(SELECT id FROM w.runs)"
                )
            ids = [r[0] for r in conn.execute("SELECT id FROM w.runs ORDER BY rowid")]
            conn.execute("DETACH DATABASE w")
        finally:
            conn.close()
    return ids


def _point_task(
    point_json: dict[str, Any], home: str, overlays: list[str], sweep_id: str, cap_usd: float | None
) -> dict[str, Any]:
    """What runs in the Ray worker: the point into a private store; returns the outcome and the rows.

    The point alone stops at the sweep's spend cap; what it measured up to there comes back all the same.
    """
    settings = Settings(home=Path(home), overlays=tuple(Path(p) for p in overlays))
    registry = load_registry(settings.overlays)
    point = Point.from_json(point_json)
    with tempfile.TemporaryDirectory(prefix="llmbench-point-") as tmp:
        store = Path(tmp) / "point.sqlite"
        ctx = PointContext(settings, registry, store, sweep_id, Spend(cap_usd))
        cap_reached = None
        try:
            outcome = run_point(point, ctx)
        except SpendCapReached as exc:
            outcome = PointOutcome(status="partial", error=str(exc))
            cap_reached = str(exc)
        except (InterruptedRunError, KeyboardInterrupt):  # cancelled: what it measured goes back all the same
            outcome = PointOutcome(status="partial", error="cancelled")
        Store.open(store).close()
        return {
            "status": outcome.status,
            "run_ids": outcome.run_ids,
            "error": outcome.error,
            "detail": outcome.detail.to_json(),
            "spend_usd": ctx.spend.spent,
            "simulated_spend_usd": ctx.spend.simulated,
            "cap_reached": cap_reached,
            "store": store.read_bytes(),
        }


def placement(point: Point, gpu_cluster: bool) -> tuple[int, list[dict[str, float]]]:
    """A point's GPU count and its placement group's bundles (one {GPU, CPU} per GPU, to be STRICT_PACKed);
    no bundles for a CPU-only point."""
    n = gpus_needed(point, gpu_cluster)
    return n, [{"GPU": 1.0, "CPU": 1.0} for _ in range(n)]


def task_options(n_gpus: int) -> dict[str, Any]:
    """The Ray task's own resources: the engine's process holds all of its GPUs (num_gpus=0 would empty
    CUDA_VISIBLE_DEVICES for vLLM's engine, vllm#19123)."""
    return {"num_cpus": 1, "num_gpus": n_gpus}


def run_on_ray(
    points: list[Point], ctx: PointContext, address: str, outcomes: dict[str, PointOutcome], record: Record
) -> None:
    """Run `points` as Ray tasks (in parallel, as the cluster's resources allow); see the module docstring."""
    ray: Any = importlib.import_module("ray")
    from ray.exceptions import GetTimeoutError, RayError, RayTaskError
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    owned = address == "local"
    if not ray.is_initialized():
        ray.init(
            address=None if owned else address,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    try:
        resources = ray.cluster_resources()
        gpu_cluster = resources.get("GPU", 0) > 0
        check_resources(points, resources)
        task = ray.remote(max_retries=0)(_point_task)
        pending: dict[Any, tuple[Point, Any]] = {}
        for point in points:
            n, bundles = placement(point, gpu_cluster)
            options = task_options(n)
            group = None
            if bundles:
                group = placement_group(bundles, strategy="STRICT_PACK")
                ray.get(group.ready())
                options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                    placement_group=group, placement_group_capture_child_tasks=True
                )
            ref = task.options(**options).remote(
                point.to_json(),
                str(ctx.settings.home),
                [str(p) for p in ctx.settings.overlays],
                ctx.sweep_id,
                ctx.spend.cap,
            )
            record(point, "running", None)
            ctx.say(f"point {point.label} ({point.point_id}): submitted to Ray ({n} GPUs)")
            pending[ref] = (point, group)
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                point, group = pending.pop(ready[0])
                outcome = _collect(ray, ready[0], ctx, RayTaskError, RayError, GetTimeoutError)
                outcomes[point.point_id] = outcome
                record(point, outcome.status, outcome)
                ctx.say(
                    f"point {point.label}: {outcome.status}" + (f": {outcome.error}" if outcome.error else "")
                )
                if group is not None:
                    remove_placement_group(group)
                _count_spend(ctx, outcome)  # at the cap: SpendCapReached cancels the points still running
        except BaseException as exc:
            why = "cancelled: " + (str(exc) if isinstance(exc, SpendCapReached) else "interrupted (Ctrl-C)")
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=False)  # KeyboardInterrupt in the task: it stops its server
            _keep_cancelled(ray, pending, ctx, outcomes, record, why)
            for _point, group in pending.values():
                if group is not None:  # a cluster that outlives this sweep keeps no reservation of ours
                    with contextlib.suppress(Exception):
                        remove_placement_group(group)
            raise
    finally:
        if owned:
            ray.shutdown()


def _collect(
    ray: Any,
    ref: Any,
    ctx: PointContext,
    task_error: type[BaseException],
    ray_error: type[BaseException],
    timeout: type[BaseException],
) -> PointOutcome:
    """The outcome of one finished task: its rows imported here, or why it failed."""
    try:
        done = ray.get(ref)
    except task_error as exc:  # the point raised inside its task
        return PointOutcome(status="failed", error=f"the point failed in its Ray task: {exc}"[:2000])
    except (ray_error, timeout) as exc:  # the worker or its node was lost
        return PointOutcome(
            status="failed", error=f"Ray worker lost mid-point: {type(exc).__name__}: {exc}"[:2000]
        )
    imported = import_store(done["store"], ctx.store_path)
    detail = PointDetail.from_json(done["detail"]).model_copy(
        update={
            "imported_runs": len(imported),
            "spend_usd": done["spend_usd"],
            "simulated_spend_usd": done["simulated_spend_usd"],
            "cap_reached": done["cap_reached"] or None,
        }
    )
    return PointOutcome(status=done["status"], run_ids=done["run_ids"], error=done["error"], detail=detail)


def _keep_cancelled(
    ray: Any,
    pending: dict[Any, tuple[Point, Any]],
    ctx: PointContext,
    outcomes: dict[str, PointOutcome],
    record: Record,
    why: str,
    wait_s: float = 60.0,
) -> None:
    """After cancelling `pending`: import what each task measured before it stopped (a task interrupted
    while running returns its store), and record every such point as partial."""
    deadline = time.monotonic() + wait_s
    for ref, (point, _group) in pending.items():
        outcome = PointOutcome(status="partial", error=why)
        try:
            done = ray.get(ref, timeout=max(1.0, deadline - time.monotonic()))
        except Exception:  # cancelled before it started, or gone: nothing came back
            done = None
        if isinstance(done, dict) and done.get("store"):
            imported = import_store(done["store"], ctx.store_path)
            outcome.run_ids = list(done.get("run_ids") or imported)
            sent = PointDetail.from_json(done.get("detail") or {})
            outcome.detail = sent.model_copy(update={"imported_runs": len(imported)})
        outcomes[point.point_id] = outcome
        record(point, "partial", outcome)


def _count_spend(ctx: PointContext, outcome: PointOutcome) -> None:
    """Add a finished point's spend to the sweep's; SpendCapReached once the sweep is at its cap."""
    ctx.spend.simulated += outcome.detail.simulated_spend_usd
    ctx.spend.add("api", outcome.detail.spend_usd)
    if outcome.detail.cap_reached:
        raise SpendCapReached(outcome.detail.cap_reached)
