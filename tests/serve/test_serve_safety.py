"""What a server started by llmbench inherits, who may call it, and what it says about itself."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from serve.errors import InvalidServeOption
from serve.lifecycle import stop_detached, write_pid_file
from serve.mock.server import running_mock
from serve.process import EngineProcess, engine_environment
from serve.specs import MockSpec
from serve.vllm.command import VllmEngine, build_launch
from serve.vllm.config import VllmSpec


def test_an_engine_gets_an_allow_listed_environment() -> None:
    parent = {
        "PATH": "/bin",
        "HOME": "/root",
        "HF_TOKEN": "hf_x",
        "VLLM_CPU_KVCACHE_SPACE": "2",
        "CUDA_VISIBLE_DEVICES": "0",
        "OPENAI_API_KEY": "sk-openai",
        "ANTHROPIC_API_KEY": "sk-ant",
        "AWS_SECRET_ACCESS_KEY": "aws",
        "PYTHONPATH": "/somewhere/else",
    }
    env = engine_environment(parent, {"VLLM_API_KEY": "mine"})
    assert env == {
        "PATH": "/bin",
        "HOME": "/root",
        "HF_TOKEN": "hf_x",
        "VLLM_CPU_KVCACHE_SPACE": "2",
        "CUDA_VISIBLE_DEVICES": "0",
        "VLLM_API_KEY": "mine",
    }


def test_the_engine_process_really_runs_without_other_providers_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    log = tmp_path / "env.log"
    code = "import json, os; print(json.dumps(dict(os.environ)))"
    proc = EngineProcess([sys.executable, "-c", code], env_add={"VLLM_X": "1"}, log_file=log)
    proc.start()
    assert proc.proc is not None and proc.proc.wait(30) == 0
    proc.stop(1)
    seen = json.loads(log.read_text().strip().splitlines()[-1])
    assert "OPENAI_API_KEY" not in seen and seen["VLLM_X"] == "1" and "PATH" in seen


def test_the_vllm_launch_serves_the_info_page_through_a_middleware(tmp_path: Path) -> None:
    spec = VllmSpec(
        model="/m", served_model_name="m", device="cpu", info={"backend": "vllm", "model": {"name": "m"}}
    )
    engine = VllmEngine(prefix=("py", "-m", "vllm.entrypoints.openai.api_server"), style="module", source="t")
    launch = build_launch(spec, engine, tmp_path / "run.config.yaml")
    assert "llmbench_vllm_info.info_middleware" in launch.config_text
    assert launch.plugin_dir is not None and launch.env["PYTHONPATH"] == str(launch.plugin_dir)
    assert json.loads(launch.env["LLMBENCH_SERVE_INFO"])["model"] == {"name": "m"}
    launch.write_files()
    assert (launch.plugin_dir / "llmbench_vllm_info.py").is_file()
    # The folder holds only the middleware: nothing else of ours lands on vLLM's import path.
    assert [p.name for p in launch.plugin_dir.iterdir()] == ["llmbench_vllm_info.py"]


def test_a_mock_with_a_key_refuses_calls_without_it_and_says_what_it_is() -> None:
    spec = MockSpec(model="m", port=0, api_key="k-0123456789", strict=False)
    with running_mock(spec) as url:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        anon = httpx.post(url + "/v1/chat/completions", json=body, timeout=10)
        keyed = httpx.post(
            url + "/v1/chat/completions",
            json=body,
            headers={"Authorization": "Bearer k-0123456789"},
            timeout=10,
        )
        anthropic = httpx.post(
            url + "/v1/messages",
            json={"model": "m", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]},
            headers={"x-api-key": "k-0123456789", "anthropic-version": "2023-06-01"},
            timeout=10,
        )
        info = httpx.get(url + "/llmbench/info", timeout=10).json()
    assert anon.status_code == 401 and "k-0123456789" not in anon.text
    assert keyed.status_code == 200 and anthropic.status_code == 200
    assert info["server"] == "llmbench" and info["backend"] == "mock" and info["accepts_extras"] is True
    assert info["schema"] == "llmbench.serve-info/1" and info["accelerators"]
    assert "k-0123456789" not in json.dumps(info)


def test_stop_signals_only_the_process_the_pid_file_recorded(tmp_path: Path) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pid_file = tmp_path / "serve.pid"
        write_pid_file(pid_file, stranger.pid)
        data = json.loads(pid_file.read_text())
        data["create_time"] -= 3600  # the recorded server started an hour earlier: the pid was reused
        pid_file.write_text(json.dumps(data))
        with pytest.raises(InvalidServeOption, match="the pid was reused"):
            stop_detached(pid_file, grace_s=1)
        time.sleep(0.2)
        assert stranger.poll() is None and psutil.pid_exists(stranger.pid)  # not signalled
        pid_file.write_text(f"{stranger.pid}\n")  # a bare pid proves nothing: refused, whatever the command
        with pytest.raises(InvalidServeOption, match="does not record the start time and command line"):
            stop_detached(pid_file, grace_s=1)
        assert stranger.poll() is None
        write_pid_file(pid_file, stranger.pid)  # the right identity: stopped
        assert stop_detached(pid_file, grace_s=5) == f"stopped (pid {stranger.pid})"
        assert stranger.wait(10) is not None and not pid_file.exists()
    finally:
        stranger.kill()
