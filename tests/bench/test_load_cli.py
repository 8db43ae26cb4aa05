"""`llmbench bench load` as a user runs it: a subprocess, exit codes, messages, --out JSON, the store."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from test_serving import run_cli

from bench.cli._live import LiveDisplay, runs_table
from bench.loadgen.results import RunFinished, RunProgress, RunResult, RunStarted
from bench.loadgen.runner import Progress
from bench.metrics import summarize
from bench.records import RequestRecord, Status
from bench.runs import LoadResult
from bench.runs.targets import Target
from bench.store import Store

REPO = Path(__file__).resolve().parents[2]
LLMBENCH = REPO / ".venv" / "bin" / "llmbench"
TIMING_SERVER = REPO / "tests" / "timing_server.py"
OVERLAY = """\
schema: llmbench.models/1
mock:
  fast-mock:
    provider: openai
    model: fast
    latency: {ttft_ms: 5, itl_ms: 1}
api:
  keyed:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model: gpt-x
    api_key_env: LLMBENCH_TEST_KEY
    prices: {input_per_1m: 1, output_per_1m: 2, as_of: 2026-01-01, source: test}
"""


@pytest.fixture
def models_file(tmp_path: Path) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(OVERLAY, encoding="utf-8")
    return path


def cli(
    *args: str, models_file: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    head = [str(LLMBENCH)] + (["--models-file", str(models_file)] if models_file else [])
    return subprocess.run(
        [*head, "bench", "load", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def timing_server() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The timing server in its own process, so a test can kill it mid-run."""
    proc = subprocess.Popen(
        [sys.executable, str(TIMING_SERVER), "--ttft-ms", "5", "--itl-ms", "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("URL "), line
    try:
        yield proc, line.split()[1]
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--profile", "constant", "--rate", "0"], "--rate"),
        (["--profile", "constant", "--rate", "fast"], "--rate"),
        (["--profile", "concurrent"], "--concurrency"),
        (["--profile", "synchronous", "--concurrency", "4"], "--concurrency"),
        (["--warmup", "soon"], "--warmup"),
        (["--requests", "0"], "--requests"),
        (["--requests", "many"], "--requests"),
        (["--input-tokens", "normal:5"], "--input-tokens"),
        (["--slo", "ttft_ms=-1"], "--slo"),
        (["--profile", "bursty"], "--profile"),
        (["--header", "novalue"], "--header"),
    ],
)
def test_bad_flags_exit_2_and_name_the_flag(
    args: list[str], flag: str, models_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # In-process (the console script's own main): the subprocess tests below cover the entry point.
    code = run_cli(["--models-file", str(models_file), "bench", "load", "--target", "fast-mock", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert flag in err
    assert "Traceback" not in err


@pytest.mark.slow  # about 1.6 s: scripts/test runs it, scripts/check stays under a minute
def test_unknown_target_and_missing_key(models_file: Path) -> None:
    done = cli("--target", "fast-mok", models_file=models_file)
    assert done.returncode == 2 and "fast-mock" in done.stderr  # suggests the close match
    done = cli("--target", "keyed", models_file=models_file)
    assert done.returncode == 2 and "LLMBENCH_TEST_KEY" in done.stderr


def test_unreachable_target_fails_before_load(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    done = cli("--target", "http://127.0.0.1:9/v1", "--model", "m", "--store", str(store))
    assert done.returncode == 1 and "cannot reach" in done.stderr
    assert not store.exists() or not Store.open(store).list_runs()


@pytest.mark.slow  # about 1.3 s: scripts/test runs it, scripts/check stays under a minute
def test_wrong_model_fails_before_load(models_file: Path, tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    done = cli("--target", "fast-mock", "--model", "nope", "--store", str(store), models_file=models_file)
    assert done.returncode == 1 and "nope" in done.stderr
    assert not store.exists() or not Store.open(store).list_runs()


@pytest.mark.slow  # about 1.6 s: scripts/test runs it, scripts/check stays under a minute
def test_run_writes_json_and_store(models_file: Path, tmp_path: Path) -> None:
    out, store = tmp_path / "out.json", tmp_path / "s.sqlite"
    done = cli(
        "--target", "fast-mock", "--profile", "concurrent", "--concurrency", "1,2", "--requests", "6",
        "--warmup", "2", "--output-tokens", "8", "--input-tokens", "16", "--slo", "ttft_ms=500",
        "--out", str(out), "--store", str(store),
        models_file=models_file,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "concurrent 1" in done.stdout and "concurrent 2" in done.stdout  # the final table
    assert "run 1/2" in done.stderr and "run 2/2" in done.stderr  # plain progress (not a terminal)
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["schema"] == "llmbench.load/1" and doc["target"]["name"] == "fast-mock"
    assert [r["profile"]["concurrency"] for r in doc["runs"]] == [1, 2]
    with Store.open(store) as s:
        for run in doc["runs"]:
            assert run["summary"]["requests"]["completed"] == 6
            assert s.get_run(run["run_id"]).status == "complete"
            assert len(s.load_records(run["run_id"])) == 8


@pytest.mark.slow  # about 1.4 s: scripts/test runs it, scripts/check stays under a minute
def test_quiet_prints_nothing(models_file: Path, tmp_path: Path) -> None:
    done = cli(
        "--target", "fast-mock", "--requests", "3", "--output-tokens", "4", "--quiet",
        "--store", str(tmp_path / "s.sqlite"),
        models_file=models_file,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""


@pytest.mark.slow  # about 1.4 s: scripts/test runs it, scripts/check stays under a minute
def test_server_killed_mid_run(timing_server: tuple[subprocess.Popen[str], str], tmp_path: Path) -> None:
    server, url = timing_server
    store = tmp_path / "s.sqlite"
    run = subprocess.Popen(
        [str(LLMBENCH), "bench", "load", "--target", url, "--profile", "concurrent", "--concurrency", "2",
         "--duration", "60", "--output-tokens", "4", "--store", str(store)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_for_records(store, 10)
    server.kill()
    _stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 1, stderr
    assert "stopped answering" in stderr and "partial" in stderr and "re-run" in stderr
    with Store.open(store) as s:
        (info,) = s.list_runs()
        assert info.status == "partial"
        assert sum(r.ok for r in s.load_records(info.id)) >= 10


@pytest.mark.slow  # about 1.5 s: scripts/test runs it, scripts/check stays under a minute
def test_ctrl_c_stops_cleanly_and_keeps_data(
    timing_server: tuple[subprocess.Popen[str], str], tmp_path: Path
) -> None:
    _, url = timing_server
    store, out = tmp_path / "s.sqlite", tmp_path / "out.json"
    run = subprocess.Popen(
        [str(LLMBENCH), "bench", "load", "--target", url, "--profile", "concurrent", "--concurrency", "2,4",
         "--duration", "60", "--output-tokens", "4", "--store", str(store), "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_for_records(store, 10)
    run.send_signal(signal.SIGINT)
    _stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 130  # the conventional exit code for Ctrl-C
    assert "interrupted" in stderr and "Traceback" not in stderr
    with Store.open(store) as s:
        (info,) = s.list_runs()  # the second value never started
        assert info.status == "partial"
        assert sum(r.ok for r in s.load_records(info.id)) >= 10
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["complete"] is False and doc["runs"][0]["summary"]["requests"]["completed"] >= 10


def _wait_for_records(store: Path, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if store.exists():
            try:
                with Store.open(store) as s:
                    runs = s.list_runs()
                    if runs and len(s.load_records(runs[0].id)) >= n:
                        return
            except Exception:  # the writer may hold the file for a moment
                pass
        time.sleep(0.2)
    raise AssertionError(f"no {n} records in {store} after {timeout} s")


def _result() -> LoadResult:
    records = [
        RequestRecord(i, Status.OK, 0.0, i * 0.1, i * 0.1 + 0.05, first_token_s=i * 0.1 + 0.01,
                      token_chunk_s=[i * 0.1 + 0.01, i * 0.1 + 0.05], output_tokens=2)
        for i in range(5)
    ]  # fmt: skip
    run = RunResult("abcdef0123456789", "concurrent 2", {"kind": "concurrent"}, summarize(records),
                    "complete", "complete", None, 5, 0, 2, 0.1)  # fmt: skip
    target = Target(name="t", kind="url", url="http://x/v1", api="openai-chat", model="m")
    return LoadResult(target=target, store_path=Path("s.sqlite"), runs=[run])


def test_live_display_and_table_render() -> None:
    result = _result()
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=160)
    progress = Progress("measuring", 1.0, 5, 4, 1, 0, 1, 4.0, 10.0, 10, None)
    with LiveDisplay(console) as live:
        live(RunStarted(0, 1, "concurrent 2", {}, "abcdef0123456789"))
        live(RunProgress("concurrent 2", progress))
        shown = Console(file=io.StringIO(), width=160)
        shown.print(live._render())
        text = shown.file.getvalue()  # type: ignore[attr-defined]
        assert "run 1/1: concurrent 2" in text and "TTFT p50 10.0 ms" in text and "errors 1" in text
        live(RunFinished(result.runs[0]))
    assert "done: complete, 5 ok" in buffer.getvalue()
    table = Console(file=io.StringIO(), width=200)
    table.print(runs_table(result, 200))
    rendered = table.file.getvalue()  # type: ignore[attr-defined]
    assert "abcdef01" in rendered and "concurrent 2" in rendered and "10.0" in rendered
    narrow = Console(file=io.StringIO(), width=80)
    narrow.print(runs_table(result, 80))
    lines = narrow.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert "concurrent 2" in "\n".join(lines) and max(len(line) for line in lines) <= 80
