"""`llmbench bench load --workload FILE` as a user runs it, against the mock (its own process per run):
sessions with cache reads worked out by hand from the mock's rules, shared prefixes with the designed and
measured reuse, trace replay windows, request logs with invalid lines, and the flags a workload refuses."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bench.cli._workload_lines import cache_lines
from bench.loadgen.recompute import recompute
from bench.metrics.workload import cache_measure
from bench.prompts.workloads import SharedPrefixWorkload
from bench.records import Status
from bench.store import Store

REPO = Path(__file__).resolve().parents[2]
LLMBENCH = REPO / ".venv" / "bin" / "llmbench"
OVERLAY = """\
schema: llmbench.models/1
mock:
  fast-mock:
    provider: openai
    model: fast
    latency: {ttft_ms: 2, itl_ms: 0.5}
  steady-mock:
    provider: openai
    model: steady
    latency: {ttft_ms: 50, itl_ms: 1}
"""


@pytest.fixture
def models_file(tmp_path: Path) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(OVERLAY, encoding="utf-8")
    return path


def load(
    models_file: Path, tmp_path: Path, *args: str, target: str = "fast-mock"
) -> subprocess.CompletedProcess[str]:
    argv = [str(LLMBENCH), "--models-file", str(models_file), "bench", "load", "--target", target]
    argv += ["--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "out.json"), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)


def workload(tmp_path: Path, text: str, name: str = "w.yaml") -> Path:
    path = tmp_path / name
    path.write_text("schema: llmbench.workload/1\n" + text, encoding="utf-8")
    return path


def runs(tmp_path: Path) -> list[dict[str, Any]]:
    doc: dict[str, Any] = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    return list(doc["runs"])


@pytest.mark.slow  # about 1.5 s: scripts/test runs it, scripts/check stays under a minute
def test_sessions_read_the_cache_more_every_turn_by_the_mocks_rules(
    models_file: Path, tmp_path: Path
) -> None:
    """The mock's OpenAI cache (no tokenizer: a token is 4 characters) keeps each prompt of ≥ 1,024
    tokens in blocks of 128 tokens = 512 characters, and a later prompt reads its longest cached prefix.

    One shared document of 1,024 tokens (4,096 characters: 8 blocks), user messages of 128 tokens (512
    characters: one block), answers of L < 170 characters; one session at a time. Turn k's prompt is the
    document, k + 1 user messages and k answers:
    - turn 0 (4,608 characters, 9 blocks): session 0 reads nothing; sessions 1 and 2 read the document,
      written by session 0: 8 blocks = 1,024 tokens each. Turn 0 in all: 2,048.
    - turn 1 reads turn 0's whole prompt: 9 blocks = 1,152 tokens (the answer after it is new). × 3: 3,456.
    - turn 2 reads turn 1's prompt, 5,120 + L characters: 10 whole blocks = 1,280 tokens. × 3: 3,840.
    """
    path = workload(
        tmp_path,
        "kind: sessions\nname: doc-chat\nsessions: 3\nconcurrent: 1\nturns: 3\nuser_tokens: 128\n"
        "output_tokens: 16\ndocuments: {count: 1, tokens: 1024}\n",
    )
    done = load(models_file, tmp_path, "--workload", str(path), "--profile", "synchronous")
    assert done.returncode == 0, done.stderr
    [run] = runs(tmp_path)
    with Store.open(tmp_path / "s.sqlite") as store:
        records = store.load_records(run["run_id"])
        info = store.get_run(run["run_id"])
    answers = [len(r.output_text) for r in records]
    assert len(records) == 9 and max(answers) < 170 and min(answers) > 0  # the rule's precondition
    summary = info.load_summary
    assert summary is not None and summary.sessions is not None
    assert [t.cache_read_tokens for t in summary.turns] == [2048, 3456, 3840]
    assert [t.ok for t in summary.turns] == [3, 3, 3]
    assert summary.sessions.completed == 3 and summary.sessions.turns_not_sent == 0
    # Usage and the mock's (vLLM-named) counters agree: every prompt token queried is counted.
    assert summary.cache is not None and summary.cache.read_tokens == 2048 + 3456 + 3840
    assert summary.cache.server_hits == summary.cache.read_tokens
    assert summary.cache.server_queries == summary.cache.prompt_tokens
    # Each turn's history holds the answer the server returned to the turn before.
    by_turn = {(r.session_id, r.turn): r for r in records}
    assert all(by_turn[("session-0", k)].status is Status.OK for k in range(3))
    # Stored and read back: the summary recomputes from the records and the stored inputs.
    assert recompute(records, info.load_profile, summary) == summary
    assert info.load_profile.workload is not None and info.load_profile.workload.kind == "sessions"
    assert "TTFT by turn" in done.stdout and "usage hit rate" in done.stdout


@pytest.mark.slow  # about 1.4 s: scripts/test runs it, scripts/check stays under a minute
def test_shared_prefix_designed_and_measured_reuse_by_hand(models_file: Path, tmp_path: Path) -> None:
    """Two documents of 1,024 tokens (uniform), questions of 32: 8 requests, one at a time.

    Designed: D = 2 (1 − (1/2)^8) = 1.9921875 distinct documents expected, so 8 − D = 6.0078125 repeats;
    share = 1,024 × 6.0078125 ÷ (8 × 1,056) = 6,152 ÷ 8,448. Measured by the mock: a request whose
    document came before reads its 8 blocks (1,024 tokens) of a 1,056-token prompt.
    """
    text = "kind: shared_prefix\nprefixes: {count: 2, tokens: 1024}\nquestion_tokens: 32\noutput_tokens: 8\n"
    path = workload(tmp_path, text)
    done = load(models_file, tmp_path, "--workload", str(path), "--requests", "8")
    assert done.returncode == 0, done.stderr
    [run] = runs(tmp_path)
    doc = run["profile"]["workload"]
    assert doc["designed_reuse"] == pytest.approx(6152 / 8448, abs=1e-12)
    assert doc["sha256"] and doc["paced_by"] == "profile" and run["profile"]["kind"] == "synchronous"
    sent = SharedPrefixWorkload.model_validate({"prefixes": {"count": 2, "tokens": 1024}}).build().take(8)
    systems = [r.messages[0]["content"] for r in sent if r.messages]
    repeats = sum(1 for i, s in enumerate(systems) if s in systems[:i])
    cache = run["summary"]["cache"]
    assert cache["read_tokens"] == 1024 * repeats and cache["prompt_tokens"] == 8 * 1056
    assert cache["hit_rate"] == 1024 * repeats / (8 * 1056)
    assert cache["designed_reuse"] == doc["designed_reuse"]


@pytest.mark.slow  # about 1.6 s: scripts/test runs it, scripts/check stays under a minute
def test_trace_replay_window_from_the_flags(models_file: Path, tmp_path: Path) -> None:
    data = tmp_path / "trace.jsonl"
    rows = [
        {"timestamp": 100 * i, "input_length": 64, "output_length": 4, "hash_ids": [i]} for i in range(30)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = workload(tmp_path, f"kind: trace\nformat: mooncake\nfile: {data}\nwindow: {{max_requests: 5}}\n")
    done = load(
        models_file, tmp_path, "--workload", str(path), "--requests", "10", "--warmup", "2",
        "--time-scale", "0.2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [run] = runs(tmp_path)
    profile = run["profile"]
    # --requests overrides the file's window (5): 2 warm-up + 10 measured, gaps 100 ms × 0.2 = 20 ms.
    assert run["summary"]["requests"]["completed"] == 10 and run["summary"]["requests"]["warmup"] == 2
    assert profile["kind"] == "workload" and profile["rate"] == pytest.approx(50.0)
    assert profile["workload"]["window"]["time_scale"] == 0.2
    assert profile["workload"]["paced_by"] == "workload"


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--profile", "poisson", "--rate", "2"], "--profile"),
        (["--profile", "concurrent", "--concurrency", "2"], "--profile"),
    ],
)
@pytest.mark.slow  # about 1.6 s: scripts/test runs it, scripts/check stays under a minute
def test_a_trace_refuses_profile_flags(
    models_file: Path, tmp_path: Path, flags: list[str], named: str
) -> None:
    data = tmp_path / "trace.jsonl"
    data.write_text('{"timestamp": 0, "input_length": 8, "output_length": 2}\n', encoding="utf-8")
    path = workload(tmp_path, f"kind: trace\nformat: mooncake\nfile: {data}\n")
    done = load(models_file, tmp_path, "--workload", str(path), *flags)
    assert done.returncode == 2, done.stderr
    assert named in done.stderr and "sent at its own times" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_trace_with_unsorted_timestamps_is_refused_naming_file_and_line(
    models_file: Path, tmp_path: Path
) -> None:
    data = tmp_path / "trace.jsonl"
    data.write_text(
        '{"timestamp": 500, "input_length": 8, "output_length": 2}\n'
        '{"timestamp": 100, "input_length": 8, "output_length": 2}\n',
        encoding="utf-8",
    )
    path = workload(tmp_path, f"kind: trace\nformat: mooncake\nfile: {data}\n")
    done = load(models_file, tmp_path, "--workload", str(path))
    assert done.returncode == 2
    assert f"{data}:2" in done.stderr and "before line 1" in done.stderr and "sort" in done.stderr
    assert not (tmp_path / "s.sqlite").exists() or not Store.open(tmp_path / "s.sqlite").list_runs()


@pytest.mark.slow  # about 2.1 s: scripts/test runs it, scripts/check stays under a minute
def test_request_log_invalid_lines_refuse_the_run_or_are_skipped(models_file: Path, tmp_path: Path) -> None:
    data = tmp_path / "log.jsonl"
    good = {"model": "x", "messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 4}
    data.write_text(
        json.dumps(good) + "\n" + '{"model": "x", "prompt": "no messages"}\n' + json.dumps(good) + "\n",
        encoding="utf-8",
    )
    path = workload(tmp_path, f"kind: request_log\nfile: {data}\n")
    refused = load(models_file, tmp_path, "--workload", str(path))
    assert refused.returncode == 2
    assert f"{data}:2: no 'messages'" in refused.stderr and "--skip-invalid" in refused.stderr
    assert not (tmp_path / "s.sqlite").exists() or not Store.open(tmp_path / "s.sqlite").list_runs()
    done = load(models_file, tmp_path, "--workload", str(path), "--skip-invalid")
    assert done.returncode == 0, done.stderr
    [run] = runs(tmp_path)
    assert run["profile"]["workload"]["skipped"] == 1
    # Sent as recorded: no ignore_eos added, max_tokens as logged (not scaled to the target).
    assert (
        run["profile"]["sent"]["ignore_eos_requested"] is False
        and run["profile"]["sent"]["output_scale"] == 1
    )
    assert run["summary"]["requests"]["completed"] == 2  # an untimed log: its two requests, synchronous
    assert "1 input lines skipped" in done.stdout


@pytest.mark.slow  # about 4.8 s: scripts/test runs it, scripts/check stays under a minute
def test_sessions_in_a_sweep_and_a_goodput_search(models_file: Path, tmp_path: Path) -> None:
    """Against a mock of 50 ms TTFT: a closed-loop probe is judged on how late its slots were refilled,
    and the client's own millisecond between turns must be a small share of each request's time."""
    path = workload(
        tmp_path, "kind: sessions\nsessions: 2\nconcurrent: 1\nturns: 2\nuser_tokens: 16\noutput_tokens: 4\n"
    )
    done = load(
        models_file, tmp_path, "--workload", str(path), "--profile", "goodput", "--slo", "ttft_ms=2000",
        "--concurrency", "1", "--max-load", "2", "--search-steps", "0", "--requests", "2",
        target="steady-mock",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = runs(tmp_path)
    assert [r["profile"]["kind"] for r in found] == ["concurrent", "concurrent", "goodput"]
    # A concurrency probe holds at least 4 sessions per slot (GoodputProfile.min_rounds).
    assert [r["summary"]["sessions"]["completed"] for r in found] == [4, 8, 8]
    assert found[-1]["profile"]["operating_point"]["value"] == 2
    sweep = load(
        models_file, tmp_path, "--workload", str(path), "--profile", "sweep", "--sweep-points", "1",
        "--concurrency", "2", "--requests", "2", target="steady-mock",
    )  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr
    stages = [r["profile"]["sweep"]["stage"] for r in runs(tmp_path)]
    assert stages == ["synchronous", "throughput", "rate"]
    rate_run = runs(tmp_path)[-1]
    assert rate_run["summary"]["sessions"]["completed"] == 2  # sessions started at the sweep's rate


def test_a_server_that_reports_no_cached_tokens_is_said_so_never_zero() -> None:
    from bench.records import RequestRecord

    ok = [RequestRecord(0, Status.OK, 0.0, 0.0, 1.0, input_tokens=100, output_tokens=4)]
    lines = cache_lines("run", cache_measure(ok, None, None))
    assert lines[0] == "run: prompt cache: usage hit rate unknown: cached tokens not reported by this server"
    assert "server hit rate unknown" in lines[1] and "0.0%" not in " ".join(lines)


@pytest.mark.slow  # about 1.4 s: scripts/test runs it, scripts/check stays under a minute
def test_the_server_counters_cover_the_measured_requests_only(models_file: Path, tmp_path: Path) -> None:
    """With a warm-up, the counters are read where measuring starts (the runner's measure barrier): their
    Δ is the measured requests' prompt and cached tokens exactly, as usage counts them."""
    text = "kind: shared_prefix\nprefixes: {count: 2, tokens: 1024}\nquestion_tokens: 32\noutput_tokens: 4\n"
    path = workload(tmp_path, text)
    done = load(models_file, tmp_path, "--workload", str(path), "--warmup", "3", "--requests", "5")
    assert done.returncode == 0, done.stderr
    [run] = runs(tmp_path)
    cache = run["summary"]["cache"]
    assert run["summary"]["requests"]["warmup"] == 3 and cache["requests"] == 5
    assert cache["prompt_tokens"] == 5 * 1056 and cache["server_queries"] == 5 * 1056
    assert cache["server_hits"] == cache["read_tokens"] and cache["read_tokens"] % 1024 == 0
    # Designed over the 5 measured requests, the 3 warm-up ones before them: of D(n) = 2 (1 − ½ⁿ) distinct
    # documents, D(8) − D(3) = 2 (⅛ − 1/256) = 0.2421875 are new, so 4.7578125 repeats of 1,024 tokens
    # in 5 prompts of 1,056.
    assert cache["designed_reuse"] == pytest.approx(1024 * 4.7578125 / (5 * 1056), abs=1e-12)


@pytest.mark.slow  # about 1.3 s: scripts/test runs it, scripts/check stays under a minute
def test_workers_refuse_a_session_workload_before_storing_a_run(models_file: Path, tmp_path: Path) -> None:
    """Each turn waits for the answer before it, in this process's session driver: --workers is refused
    (exit 2, naming the flag), and no run is stored."""
    path = workload(tmp_path, "kind: sessions\nsessions: 2\nconcurrent: 1\nturns: 2\noutput_tokens: 4\n")
    done = load(models_file, tmp_path, "--workload", str(path), "--workers", "1")
    assert done.returncode == 2, done.stderr
    assert "--workers does not apply to session workloads" in done.stderr and "Traceback" not in done.stderr
    from bench.store import Store

    store = tmp_path / "s.sqlite"
    assert not store.exists() or Store.open(store).list_runs() == []
