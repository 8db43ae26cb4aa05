"""serve.spawn: a ServePlan started as `python -m serve` from its serialized spec, ready by the library's own
wait, and stopped with its whole process group (only our own groups are looked at)."""

from __future__ import annotations

from pathlib import Path

import httpx
import psutil
import pytest
from pydantic import SecretStr

from serve.errors import ServerStartError
from serve.lifecycle import ServePlan
from serve.process import group_members
from serve.spawn import child_environment, child_spec, running_server
from serve.specs import LatencyModel, MockSpec


def mock_plan(tmp_path: Path, **spec: object) -> ServePlan:
    return ServePlan("m", "m-model", "mock", MockSpec(model="m-model", port=0, **spec), tmp_path / "m.log")  # type: ignore[arg-type]


def gone(pgid: int, leader: psutil.Process) -> bool:
    """No live process left in the group, and its leader has exited."""
    return not group_members(pgid) and not (leader.is_running() and leader.status() != psutil.STATUS_ZOMBIE)


def test_a_mock_runs_in_its_own_process_group_and_the_whole_group_is_stopped(tmp_path: Path) -> None:
    with running_server(mock_plan(tmp_path), probe=True) as server:
        leader = psutil.Process(server.pgid)
        assert server.backend == "mock" and server.model == "m-model" and server.alive()
        assert server.pgid != psutil.Process().pid and server.pgid in group_members(server.pgid)
        assert "-m" in leader.cmdline() and "serve" in leader.cmdline()  # not in this process
        models = httpx.get(f"{server.url}/v1/models", timeout=10, trust_env=False).json()
        assert [m["id"] for m in models["data"]] == ["m-model"]
    assert gone(server.pgid, leader)
    assert not server.alive()


def test_a_key_travels_by_environment_and_the_readiness_probe_sends_it(tmp_path: Path) -> None:
    plan = mock_plan(tmp_path, api_key=SecretStr("sk-spawn-test"))
    env = child_environment(plan, tmp_path / "ready.json")
    assert "sk-spawn-test" not in env["LLMBENCH_SERVE_SPEC"]  # the key is not in the spec's JSON
    with running_server(plan) as server:
        body = {"model": "m-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
        denied = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=10, trust_env=False)
        assert denied.status_code == 401  # the server holds the key; the probe that made it ready sent it
        assert "sk-spawn-test" not in " ".join(psutil.Process(server.pgid).cmdline())


def test_the_typed_specs_round_trip_through_the_child_environment(tmp_path: Path) -> None:
    from serve.hf.server import HfServeSpec

    mock = MockSpec(model="m", port=0, latency=LatencyModel(ttft_ms=5, capacity=2), api_key=SecretStr("k"))
    env = child_environment(ServePlan("m", "m", "mock", mock, tmp_path / "m.log"), tmp_path / "r")
    assert child_spec("mock", env["LLMBENCH_SERVE_SPEC"], env["LLMBENCH_SERVE_API_KEY"]) == mock
    hf = HfServeSpec(model_dir=tmp_path, served_model_name="h", port=0, max_model_len=64, api_key="k2")
    env = child_environment(ServePlan("h", "h", "hf", hf, tmp_path / "h.log"), tmp_path / "r")
    assert env["LLMBENCH_SERVE_API_KEY"] == "k2"
    assert child_spec("hf", env["LLMBENCH_SERVE_SPEC"], "k2") == hf


@pytest.mark.slow  # about 2.6 s: scripts/test runs it, scripts/check stays under a minute
def test_a_server_that_cannot_start_reports_its_own_reason_and_leaves_no_process(tmp_path: Path) -> None:
    from serve.hf.server import HfServeSpec

    spec = HfServeSpec(model_dir=tmp_path / "missing", served_model_name="h", port=0)
    plan = ServePlan("h", "h", "hf", spec, tmp_path / "h.log")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(ServerStartError) as info, running_server(plan):
        pass
    assert "exited with code 1" in str(info.value)
    assert "error: no model at" in info.value.log_tail  # the engine's own reason, from its log
    assert {p.pid for p in psutil.Process().children(recursive=True)} - before == set()
