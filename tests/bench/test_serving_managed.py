"""Serving a registry entry for a run through the typed serve plan (bench.serving.managed), and a sweep point
served that way: typed engine arguments, the engine's reason when it cannot start, no process left."""

from __future__ import annotations

from pathlib import Path

import httpx
import psutil
import pytest
from fixtures_vllm import require_vllm

from bench.errors import UsageError
from bench.registry import Registry, load_registry
from bench.serving.managed import managed_server
from bench.serving.plan import ServeOptions, engine_args_from
from bench.settings import Settings
from bench.store import Store
from bench.sweep.execute import PointContext, Spend, run_point
from bench.sweep.plan import Point
from serve.process import group_members

LOAD = {"profile": "concurrent", "concurrency": [2], "requests": 6, "warmup": 0, "input_tokens": "16",
        "output_tokens": "8", "seed": 0}  # fmt: skip


@pytest.fixture
def registry() -> Registry:
    return load_registry([])


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


def point(backend: str, engine_args: dict[str, object], loads: list[dict[str, object]]) -> Point:
    name = "tiny-random"
    return Point(
        point_id="p0", label=name, target=name, kind="local", serve_name=name, variant="base",
        backend=backend, engine_args=dict(engine_args), loads=loads,
    )  # fmt: skip


def our_children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def test_typed_engine_arguments_are_named_and_checked_as_the_flag_does() -> None:
    args = engine_args_from({"max_num_seqs": 4, "--enforce-eager": True, "kv-cache-dtype": "fp8"})
    assert args == {"max-num-seqs": 4, "enforce-eager": True, "kv-cache-dtype": "fp8"}
    for bad in ({"max-model-len": 0}, {"gpu_memory_utilization": 1.5}, {"max-model-len": "long"}):
        with pytest.raises(UsageError) as info:
            engine_args_from(bad)  # type: ignore[arg-type]
        assert info.value.flag == "--engine-arg"


def test_a_local_entry_is_served_through_its_plan_in_a_process_group_of_its_own(
    registry: Registry, settings: Settings
) -> None:
    with managed_server(registry, settings, "tiny-random", ServeOptions(backend="mock")) as server:
        pgid = server.process.pid
        assert server.url.endswith("/v1") and server.backend == "mock" and server.model == "tiny-random"
        assert pgid in group_members(pgid) and pgid != psutil.Process().pid
        models = httpx.get(f"{server.url}/models", timeout=10, trust_env=False).json()
        assert [m["id"] for m in models["data"]] == ["tiny-random"]
        assert server.log_file.is_file()
    assert group_members(pgid) == [] and not server.alive()


def test_a_point_whose_backend_refuses_an_engine_argument_did_not_start_and_says_why(
    registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    before = our_children()
    ctx = PointContext(settings, registry, tmp_path / "r.sqlite", "sweep-1", Spend(None))
    outcome = run_point(point("hf", {"max-num-seqs": 4}, [LOAD]), ctx)
    assert outcome.status == "failed" and outcome.run_ids == []
    assert (outcome.error or "").startswith("the server did not start: ")
    assert "max-num-seqs" in (outcome.error or "")
    assert our_children() - before == set()


def test_a_point_is_measured_against_its_served_plan_and_its_server_is_stopped(
    registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    said: list[str] = []
    before = our_children()  # the session's shared servers are children too: only new ones count
    store_path = tmp_path / "r.sqlite"
    ctx = PointContext(settings, registry, store_path, "sweep-1", Spend(None), said.append)
    outcome = run_point(point("mock", {}, [LOAD]), ctx)
    assert outcome.status == "complete", outcome.error
    url = outcome.detail.url or ""
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
    assert "  serving tiny-random (mock)" in said and any(s.startswith("  ready: http://") for s in said)
    with Store.open(store_path) as store:
        (run_id,) = outcome.run_ids
        info = store.get_run(run_id)
    assert info.status == "complete" and info.point_id == "p0" and info.target.url == outcome.detail.url
    assert info.provenance.server.backend == "mock"
    assert our_children() - before == set()


@pytest.mark.vllm
def test_a_point_on_vllm_gets_its_typed_engine_arguments_and_no_engine_process_outlives_it(
    registry: Registry, settings: Settings, tiny_random_dir: Path, tmp_path: Path
) -> None:
    require_vllm()
    settings.models_dir.mkdir(parents=True)
    (settings.models_dir / "tiny-random").symlink_to(tiny_random_dir.resolve())
    before = our_children()
    store_path = tmp_path / "r.sqlite"
    ctx = PointContext(settings, registry, store_path, "sweep-1", Spend(None))
    outcome = run_point(point("vllm", {"max_num_seqs": 4, "enable-prefix-caching": False}, [LOAD]), ctx)
    assert outcome.status == "complete", outcome.error
    with Store.open(store_path) as store:
        info = store.get_run(outcome.run_ids[0])
    args = info.provenance.engine_args or {}
    assert args["max-num-seqs"] == 4 and args["enable-prefix-caching"] is False  # typed, not text
    assert info.provenance.engine.name == "vllm"
    assert our_children() - before == set()  # no engine process outlives the point
