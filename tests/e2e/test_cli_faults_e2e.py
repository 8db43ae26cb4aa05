"""The console script as a new user meets it: a failing server, a stranger's pid, a broken sweep file and a
URL that is no LLM server each end with the right exit code and a message that says what to do, never a
traceback. (tests/bench/test_cli_faults.py covers every case in-process.)"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from fixtures_vllm import LLMBENCH, REPO, cli_env

from bench.store import Store


def llmbench(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*LLMBENCH, *args], cwd=REPO, env=cli_env(home), capture_output=True, text=True, timeout=timeout
    )
    assert "Traceback" not in done.stdout + done.stderr
    return done


@pytest.fixture
def web_server() -> Iterator[tuple[str, int]]:
    """`python -m http.server` on port 0: (its URL, its pid)."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    match = re.search(r"port (\d+)", proc.stdout.readline())
    assert match
    try:
        yield f"http://127.0.0.1:{match[1]}", proc.pid
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()


def test_accuracy_against_a_server_that_answers_500_fails_with_the_breakdown(tmp_path: Path) -> None:
    overlay = tmp_path / "m.yaml"
    overlay.write_text(
        "schema: llmbench.models/1\nmock:\n  broken:\n    provider: openai\n    model: b\n"
        "    latency: {ttft_ms: 1, itl_ms: 1, error_rate_500: 1.0}\n",
        encoding="utf-8",
    )
    done = llmbench(
        tmp_path, "--models-file", str(overlay), "bench", "accuracy", "--target", "broken",
        "--suite", "builtin:tiny-skills", "--limit", "1",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "4 × http_500 HTTP 500: server_error:" in done.stdout
    assert "every item failed; see the error breakdown" in done.stderr
    with Store.open(tmp_path / "results.sqlite", create=False) as store:
        assert [r.status for r in store.list_runs("accuracy")] == ["failed"]


def test_serve_stop_never_signals_a_process_it_did_not_start(
    tmp_path: Path, web_server: tuple[str, int]
) -> None:
    _, pid = web_server
    pid_file = tmp_path / "serve.pid"
    pid_file.write_text(f"{pid}\n", encoding="utf-8")  # the pid of `python -m http.server`
    done = llmbench(tmp_path, "serve", "--stop", "--pid-file", str(pid_file))
    assert done.returncode == 2, done.stderr
    assert f"refusing to stop pid {pid}" in done.stderr and "Nothing was signalled" in done.stderr
    assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    stranger = psutil.Process(pid)
    recorded = {"pid": pid, "create_time": stranger.create_time(), "cmdline": ["llmbench", "serve", "x"]}
    pid_file.write_text(json.dumps(recorded), encoding="utf-8")
    done = llmbench(tmp_path, "serve", "--stop", "--pid-file", str(pid_file))
    assert done.returncode == 2 and "its command line is not the recorded server's" in done.stderr
    assert stranger.is_running() and stranger.status() != psutil.STATUS_ZOMBIE


def test_a_broken_sweep_file_lists_every_problem_before_anything_runs(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(
        "schema: llmbench.sweep/1\nname: x\ntargets: [{name: mock-mini}]\n"
        "loads: [{profile: concurrent, concurrency: -4}, {profile: constant, rate: 0}]\n"
        "suites: [{suite: 'builtin:tiny-skils'}]\n",
        encoding="utf-8",
    )
    done = llmbench(tmp_path, "sweep", str(path), "--dry-run")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "min" not in done.stdout  # no estimate for a plan that cannot run
    for key in ("loads[0].concurrency: must be ≥ 1", "loads[1].rate: must be > 0", "suites[0].suite: "):
        assert f"{path}: {key}" in done.stderr
    assert not (tmp_path / "results.sqlite").exists()


def test_a_url_that_is_not_an_llm_server_is_named_without_its_page(
    tmp_path: Path, web_server: tuple[str, int]
) -> None:
    url, _ = web_server
    done = llmbench(tmp_path, "bench", "load", "--target", url, "--model", "m", "--requests", "2")
    assert done.returncode == 2, done.stderr
    assert (
        "does not look like an OpenAI-compatible server (GET /v1/models answered 404 text/html" in done.stderr
    )
    assert "<html" not in done.stderr.lower() and "fix: give the base URL" in done.stderr
