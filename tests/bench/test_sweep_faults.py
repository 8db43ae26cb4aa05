"""Sweep faults without servers: GPU sizing against the cluster, a lost Ray worker, the spend cap reached
mid-sweep (here and on Ray), and Ctrl-C. The points' measuring is replaced; the driver, the store and the
Ray outcome handling are the real ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ray.exceptions import NodeDiedError, RayTaskError, WorkerCrashedError

from bench.documents import PointDetail
from bench.errors import ConfigError, SweepInterrupted
from bench.registry import Registry, RegistryFile, load_registry
from bench.settings import Settings
from bench.store import Store
from bench.sweep import driver, remote
from bench.sweep.execute import PointContext, PointOutcome, Spend, SpendCapReached
from bench.sweep.plan import Point

OVERLAY = """\
schema: llmbench.models/1
api:
  paid-a: &paid
    provider: openai
    base_url: https://api.example.com/v1
    model: paid-model
    api_key_env: PAID_KEY
    prices: {input_per_1m: 10.0, output_per_1m: 30.0, as_of: 2026-11-01, source: test}
  paid-b: *paid
  paid-c: *paid
"""

SWEEP = """\
schema: llmbench.sweep/1
name: faults
max_usd: {cap}
targets: [{{name: paid-a}}, {{name: paid-b}}, {{name: paid-c}}]
loads: [{{profile: concurrent, concurrency: 1, requests: 2, input_tokens: 8, output_tokens: 8, warmup: 0}}]
"""


def point(backend: str = "vllm", kind: str = "local", **engine_args: Any) -> Point:
    return Point(
        point_id=f"p-{backend}-{len(engine_args)}", label=f"m [{engine_args}]", target="m", kind=kind,
        serve_name="m", variant="base", backend=backend, engine_args=engine_args, hardware=None,
        quantize=None, loads=[], suites=[], repetitions=1,
    )  # fmt: skip


def test_a_point_holds_tp_times_pp_gpus_in_one_strict_pack_group() -> None:
    big = point(**{"tensor-parallel-size": 2, "pipeline-parallel-size": 2})
    n, bundles = remote.placement(big, gpu_cluster=True)
    assert n == 4 and bundles == [{"GPU": 1.0, "CPU": 1.0}] * 4
    assert remote.task_options(n) == {"num_cpus": 1, "num_gpus": 4}  # never num_gpus=0 (vllm#19123)
    assert remote.placement(point(), gpu_cluster=True) == (1, [{"GPU": 1.0, "CPU": 1.0}])
    # CPU-only points: the transformers backend, API targets, and any point on a cluster with no GPU
    assert remote.placement(point("hf"), gpu_cluster=True) == (0, [])
    assert remote.placement(point("api", kind="api"), gpu_cluster=True) == (0, [])
    assert remote.placement(big, gpu_cluster=False) == (0, [])
    assert remote.task_options(0) == {"num_cpus": 1, "num_gpus": 0}


def test_a_matrix_that_needs_more_gpus_than_the_cluster_has_is_refused_before_it_starts() -> None:
    points = [point(), point(**{"tensor-parallel-size": 8})]
    remote.check_resources(points, {"CPU": 64.0, "GPU": 8.0})  # fits
    with pytest.raises(ConfigError, match=r"has 4 GPUs; m \[.*tensor-parallel-size.*\] needs 8 GPUs") as err:
        remote.check_resources(points, {"CPU": 64.0, "GPU": 4.0})
    assert "tensor-parallel-size" in (err.value.fix or "")
    remote.check_resources(points, {"CPU": 2.0})  # a CPU-only cluster (vLLM's CPU build) runs them all


class FakeRay:
    """ray.get that raises what a real cluster raises for the ref."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def get(self, _ref: Any) -> Any:
        raise self.exc


@pytest.mark.parametrize(
    "exc", [WorkerCrashedError(), NodeDiedError("node 1.2.3.4 died")], ids=["worker", "node"]
)
def test_a_worker_or_node_lost_mid_point_fails_that_point_not_the_sweep(
    tmp_path: Path, exc: BaseException
) -> None:
    from ray.exceptions import GetTimeoutError, RayError

    ctx = PointContext(
        Settings(home=tmp_path), Registry(RegistryFile(), []), tmp_path / "r.sqlite", "s", Spend(None)
    )
    out = remote._collect(FakeRay(exc), object(), ctx, RayTaskError, RayError, GetTimeoutError)
    assert out.status == "failed" and out.error is not None
    assert out.error.startswith("Ray worker lost mid-point: " + type(exc).__name__)


def test_spend_counts_api_money_and_mock_simulated_money_apart() -> None:
    spend = Spend(cap=1.0)
    spend.add("mock", 50.0)  # simulated prices never stop a sweep
    spend.add("api", 0.4)
    spend.add("local", 9.0)  # a local point has no per-token price
    spend.add("api", None)
    assert (spend.spent, spend.simulated) == (0.4, 50.0)
    with pytest.raises(SpendCapReached, match=r"spent \$1\.0000 on API targets, at its cap \$1"):
        spend.add("api", 0.6)


def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cap: float) -> tuple[Settings, Registry, Path]:
    monkeypatch.setenv("PAID_KEY", "sk-test")
    (tmp_path / "models.yaml").write_text(OVERLAY, encoding="utf-8")
    (tmp_path / "sweep.yaml").write_text(SWEEP.format(cap=cap), encoding="utf-8")
    return Settings(home=tmp_path), load_registry([tmp_path / "models.yaml"]), tmp_path / "sweep.yaml"


def test_the_spend_cap_reached_mid_sweep_stops_it_and_keeps_what_was_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, registry, file = _settings(tmp_path, monkeypatch, cap=1.0)
    ran: list[str] = []

    def measured(p: Point, ctx: PointContext) -> PointOutcome:
        ran.append(p.target)
        out = PointOutcome(status="complete", run_ids=[f"run-{p.target}"])
        try:
            ctx.spend.add("api", 0.6)  # the estimate was far lower: the cap is what stops it
        except SpendCapReached as exc:
            out.status, out.error = "partial", str(exc)
            raise
        return out

    monkeypatch.setattr(driver, "run_point", measured)
    result = driver.run_sweep(settings, registry, path=file, store_path=tmp_path / "r.sqlite")
    assert ran == ["paid-a", "paid-b"]  # paid-c never started
    assert result.stopped is not None and "at its cap $1" in result.stopped
    with Store.open(tmp_path / "r.sqlite") as store:
        info = store.get_sweep(result.sweep_id)
        points = {p.point_id: p for p in store.list_points(result.sweep_id)}
    assert info.status == "partial"
    statuses = [points[p.point_id].status for p in result.plan.points]
    assert statuses == ["complete", "partial", "pending"]
    assert points[result.plan.points[0].point_id].run_ids == ["run-paid-a"]


def test_ctrl_c_mid_sweep_keeps_the_data_and_says_how_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, registry, file = _settings(tmp_path, monkeypatch, cap=100.0)
    calls: list[str] = []
    interrupt = ["paid-b"]

    def measured(p: Point, _ctx: PointContext) -> PointOutcome:
        calls.append(p.target)
        if p.target in interrupt:
            interrupt.clear()
            raise KeyboardInterrupt
        return PointOutcome(status="complete", run_ids=[f"run-{p.target}"])

    monkeypatch.setattr(driver, "run_point", measured)
    with pytest.raises(
        SweepInterrupted, match=r"finish it with `llmbench sweep --resume [0-9a-f]{8}`"
    ) as err:
        driver.run_sweep(settings, registry, path=file, store_path=tmp_path / "r.sqlite")
    sweep_id = err.value.sweep_id
    with Store.open(tmp_path / "r.sqlite") as store:
        assert store.get_sweep(sweep_id).status == "partial"
        points = [p.status for p in store.list_points(sweep_id)]
    assert sorted(points) == ["complete", "partial", "pending"]
    calls.clear()
    again = driver.run_sweep(settings, registry, resume=sweep_id, store_path=tmp_path / "r.sqlite")
    assert calls == ["paid-b", "paid-c"] and len(again.skipped) == 1 and again.status == "complete"


def test_on_ray_the_cap_counts_every_finished_point_and_stops_the_rest(tmp_path: Path) -> None:
    ctx = PointContext(
        Settings(home=tmp_path), Registry(RegistryFile(), []), tmp_path / "r.sqlite", "s", Spend(1.0)
    )
    remote._count_spend(
        ctx, PointOutcome("complete", detail=PointDetail(spend_usd=0.5, simulated_spend_usd=3.0))
    )
    assert (ctx.spend.spent, ctx.spend.simulated) == (0.5, 3.0)
    with pytest.raises(SpendCapReached):  # two points in parallel, each under the cap, together at it
        remote._count_spend(ctx, PointOutcome("complete", detail=PointDetail(spend_usd=0.5)))
    fresh = PointContext(
        Settings(home=tmp_path), Registry(RegistryFile(), []), tmp_path / "r.sqlite", "s", Spend(9.0)
    )
    with pytest.raises(SpendCapReached, match="reached in its task"):  # one point reached it in its task
        remote._count_spend(
            fresh, PointOutcome("partial", detail=PointDetail(cap_reached="reached in its task"))
        )


def test_the_spend_cap_prices_cache_reads_and_writes_as_bench_cost_does() -> None:
    # 1,000 prompt tokens of which 600 were cache reads and 100 cache writes, 200 output tokens, at
    # mock-frontier's $3 in / $0.30 cached / $3.75 write / $15 out per 1M: 300 × 3 + 600 × 0.3 + 100 × 3.75
    # + 200 × 15 = 4,455 µ$ (the old cap billed all 1,000 prompt tokens at $3: 6,000 µ$).
    from bench.metrics import summarize
    from bench.records import RequestRecord, Status
    from bench.sweep.execute import _load_cost
    from bench.sweep.plan import Point

    rec = RequestRecord(0, Status.OK, 0.0, 0.0, 1.0, first_token_s=0.5, token_chunk_s=[0.5, 1.0],
                        input_tokens=1000, output_tokens=200, cached_input_tokens=600,
                        cache_write_tokens=100)  # fmt: skip
    point = Point(point_id="p", label="mock-frontier", target="mock-frontier", kind="mock",
                  serve_name="mock-frontier", variant="base", backend="mock")  # fmt: skip
    from bench.registry import load_registry

    assert _load_cost(load_registry(), point, summarize([rec])) == pytest.approx(4455 / 1e6)


@pytest.mark.slow  # about 2.1 s: scripts/test runs it, scripts/check stays under a minute
def test_a_search_with_no_operating_point_still_runs_the_points_suites(tmp_path: Path) -> None:
    """A goodput search whose first probe misses the SLO ends the load step with no operating point; the
    server answered, so the point's suite still runs (the point is failed, with the search's reason)."""
    overlay = tmp_path / "models.yaml"
    overlay.write_text(
        "schema: llmbench.models/1\nmock:\n  slow:\n    provider: openai\n    model: slow\n"
        "    latency: {ttft_ms: 80, itl_ms: 1}\n"
        "    answers: {kind: oracle, oracle_file: 'builtin:tiny-skills', accuracy: 1.0}\n",
        encoding="utf-8",
    )
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "schema: llmbench.sweep/1\nname: no-op\nslo: ttft_ms=20\ntargets: [{name: slow}]\n"
        "loads: [{profile: goodput, concurrency: 1, requests: 8, input_tokens: 8, output_tokens: 4}]\n"
        "suites: [{suite: 'builtin:tiny-skills', limit: 2, concurrency: 2, max_tokens: 8}]\n",
        encoding="utf-8",
    )
    store = tmp_path / "r.sqlite"
    result = driver.run_sweep(Settings(home=tmp_path), load_registry([overlay]), path=sweep, store_path=store)
    with Store.open(store) as s:
        (info,) = s.list_points(result.sweep_id)
        kinds = [s.get_run(r).kind for r in info.run_ids]
    assert info.status == "failed" and "even the first probe" in (info.error or "")
    assert kinds.count("accuracy") == 1 and "load" in kinds
