"""`llmbench serve` with the hf and mock backends as a user runs it: ready line, SIGINT, --detach/--stop."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

import httpx
import openai
import psutil
from fixtures_vllm import LLMBENCH, REPO, cli_env, free_port, start_cli_server, stop_cli_server


def test_mock_entry_ready_line_and_sigint(tmp_path: Path) -> None:
    port = free_port()
    proc, line, output = start_cli_server(["mock-openai", "--port", str(port)], tmp_path, timeout_s=60)
    assert line == f"ready: http://127.0.0.1:{port}/v1 model=mock-gpt backend=mock"
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
    resp = client.chat.completions.create(
        model="mock-gpt", messages=[{"role": "user", "content": "hi"}], max_tokens=4
    )
    assert resp.usage is not None and resp.usage.completion_tokens == 4
    code, left = stop_cli_server(proc, signal.SIGINT)
    assert left == [] and code in (0, 130)
    assert sum(ln.startswith("ready: ") for ln in output) == 1


def test_hf_backend_ready_line_and_sigterm(tmp_path: Path, tiny_random_dir: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny-random").symlink_to(tiny_random_dir.resolve())
    port = free_port()
    log = tmp_path / "hf.log"
    proc, line, _ = start_cli_server(
        ["tiny-random", "--backend", "hf", "--port", str(port), "--log-file", str(log)],
        tmp_path,
        timeout_s=180,
    )
    assert line == f"ready: http://127.0.0.1:{port}/v1 model=tiny-random backend=hf"
    resp = httpx.post(f"http://127.0.0.1:{port}/v1/completions",
                      json={"model": "tiny-random", "prompt": "a", "max_tokens": 3}, timeout=60)  # fmt: skip
    assert resp.json()["usage"]["completion_tokens"] == 3
    code, left = stop_cli_server(proc, signal.SIGTERM)
    assert code == 0 and left == []
    assert log.exists()


def test_detach_and_stop(tmp_path: Path) -> None:
    port = free_port()
    pid_file = tmp_path / "serve.pid"
    cli = [*LLMBENCH, "serve"]
    args = ["mock-anthropic", "--port", str(port), "--detach", "--pid-file", str(pid_file)]
    done = subprocess.run(
        [*cli, *args], cwd=REPO, env=cli_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(
        rf"ready: http://127\.0\.0\.1:{port}/v1 model=mock-claude backend=mock\n", done.stdout
    )
    recorded = json.loads(pid_file.read_text())
    pid = recorded["pid"]
    assert recorded["cmdline"] and recorded["create_time"]  # who it is, so --stop signals no stranger
    assert psutil.pid_exists(pid)
    assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
    stopped = subprocess.run([*cli, "--stop", "--pid-file", str(pid_file)], cwd=REPO, env=cli_env(tmp_path),
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert stopped.returncode == 0, stopped.stderr
    assert not pid_file.exists()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
