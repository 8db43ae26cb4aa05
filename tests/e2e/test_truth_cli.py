"""The CLI as a user runs it: a run whose requests all fail exits non-zero with the reason; detached
servers keep --port 0; risky or impossible options are refused or warned about before anything starts."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from fixtures_vllm import LLMBENCH, REPO, cli_env, free_port, start_cli_server, stop_cli_server

from bench.store import Store

pytestmark = pytest.mark.slow


def llmbench(home: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LLMBENCH, *args], cwd=REPO, env=cli_env(home), capture_output=True, text=True, timeout=timeout
    )


def test_a_local_entry_served_by_the_strict_mock(tmp_path: Path) -> None:
    port = free_port()
    proc, _, _ = start_cli_server(["tiny-skills", "--backend", "mock", "--port", str(port)], tmp_path, 60)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        # Told it is vLLM, llmbench sends ignore_eos; the strict mock rejects every request: a failure,
        # exit 1, the reason under the table, the run stored as failed.
        load = ["bench", "load", "--target", "tiny-skills", "--url", url, "--requests", "10"]
        forced = llmbench(tmp_path, *load, "--server-kind", "vllm", "--output-tokens", "8")
        assert forced.returncode == 1, forced.stdout + forced.stderr
        assert "FAILED" in forced.stdout or "failed" in forced.stdout
        assert "10 × http_400 HTTP 400" in forced.stdout and "ignore_eos" in forced.stdout
        assert "every request failed" in forced.stderr and "Traceback" not in forced.stderr
        # Asked, the server says what it is: no ignore_eos is sent, and the table says length was not fixed.
        asked = llmbench(tmp_path, *load, "--output-tokens", "8")
        assert asked.returncode == 0, asked.stdout + asked.stderr
        assert "unfixed_length" in asked.stdout and "output length was not fixed" in asked.stdout
    finally:
        stop_cli_server(proc, signal.SIGINT)
    with Store.open(tmp_path / "results.sqlite") as store:
        runs = store.list_runs("load")
    assert sorted(r.status for r in runs) == ["complete", "failed"]
    done = next(r for r in runs if r.status == "complete")
    sent = done.load_profile.sent
    assert sent is not None and sent.ignore_eos is False and done.provenance.server.backend == "mock"


def test_detach_keeps_port_0_and_reports_the_real_port(tmp_path: Path) -> None:
    pid_file = tmp_path / "serve.pid"
    started = llmbench(
        tmp_path, "serve", "mock-openai", "--port", "0", "--detach", "--pid-file", str(pid_file)
    )
    assert started.returncode == 0, started.stderr
    match = re.fullmatch(r"ready: http://127\.0\.0\.1:(\d+)/v1 model=mock-gpt backend=mock\n", started.stdout)
    assert match and int(match[1]) not in (0, 8000)
    try:
        assert httpx.get(f"http://127.0.0.1:{match[1]}/health", timeout=10).status_code == 200
    finally:
        stopped = llmbench(tmp_path, "serve", "--stop", "--pid-file", str(pid_file))
    assert stopped.returncode == 0, stopped.stderr


def test_listening_on_every_interface_without_a_key_warns(tmp_path: Path) -> None:
    out = llmbench(tmp_path, "serve", "mock-openai", "--host", "0.0.0.0", "--dry-run")
    assert out.returncode == 0 and "warning: --host 0.0.0.0" in out.stderr and "--api-key-env" in out.stderr
    keyed = subprocess.run(
        [*LLMBENCH, "serve", "mock-openai", "--host", "0.0.0.0", "--api-key-env", "K", "--dry-run"],
        cwd=REPO, env={**cli_env(tmp_path), "K": "secret-value"}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert keyed.returncode == 0 and "warning" not in keyed.stderr and "secret-value" not in keyed.stdout


def test_an_unwritable_out_is_refused_before_the_run(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = llmbench(tmp_path, "bench", "load", "--target", "http://127.0.0.1:9/v1", "--model", "m",
                   "--out", str(blocker / "out.json"))  # fmt: skip
    assert out.returncode == 2 and "invalid value for --out" in out.stderr
    assert "cannot reach" not in out.stderr  # refused before any server was contacted
