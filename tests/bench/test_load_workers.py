"""`llmbench bench load --workers`: runs sent over worker processes, as a user runs them, read back from the
store (the pool itself is tested in test_loadgen_workers.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from waits import wait_for

from bench.errors import UsageError, WorkerStartError
from bench.loadgen.coordinator import worker_stats
from bench.loadgen.spec import LoadSpec
from bench.metrics import ClientStats, RunSummary, WorkerStats, summarize
from bench.records import RequestRecord, Status
from bench.store import Store
from serve.mock.server import running_mock
from serve.specs import LatencyModel, MockSpec

REPO = Path(__file__).resolve().parents[2]
LLMBENCH = REPO / ".venv" / "bin" / "llmbench"
MODEL = "workers-mock"


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    spec = MockSpec(model=MODEL, port=0, strict=False, latency=LatencyModel(ttft_ms=5, itl_ms=1))
    with running_mock(spec) as url:
        yield url + "/v1"


@pytest.fixture(scope="module")
def slow_mock_url() -> Iterator[str]:
    spec = MockSpec(model=MODEL, port=0, strict=False, latency=LatencyModel(ttft_ms=300, itl_ms=20))
    with running_mock(spec) as url:
        yield url + "/v1"


def load(url: str, store: Path, *args: str) -> subprocess.Popen[str]:
    cmd = [str(LLMBENCH), "bench", "load", "--target", url, "--store", str(store), "--output-tokens", "4"]
    return subprocess.Popen([*cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=180)
    return proc.returncode, out, err


def apart_from_timings(r: RequestRecord) -> tuple[Any, ...]:
    return (
        r.request_id, r.status, r.warmup, r.input_tokens, r.output_tokens, r.tokens_from, r.http_status,
        r.error_kind, r.input_bytes, r.output_bytes, len(r.token_chunk_s),
    )  # fmt: skip


def arrivals(records: list[RequestRecord]) -> list[tuple[int, bool, float]]:
    """(request id, warm-up, scheduled time from its phase's first) to the µs: the arrival schedule."""
    first = {w: min(r.scheduled_s for r in records if r.warmup == w) for w in {r.warmup for r in records}}
    return sorted((r.request_id, r.warmup, round(r.scheduled_s - first[r.warmup], 6)) for r in records)


@pytest.mark.slow  # about 5.2 s: scripts/test runs it, scripts/check stays under a minute
def test_one_and_two_workers_store_the_same_schedule_and_records(mock_url: str, tmp_path: Path) -> None:
    stored: dict[str, tuple[str, RunSummary, list[RequestRecord]]] = {}
    for workers in ("none", "1", "2"):
        store = tmp_path / f"{workers}.sqlite"
        args = ["--profile", "poisson", "--rate", "150", "--requests", "60", "--warmup", "6", "--seed", "3"]
        args += [] if workers == "none" else ["--workers", workers]
        code, _, err = finish(load(mock_url, store, *args, "--quiet"))
        assert code == 0, err
        with Store.open(store, create=False) as s:
            (info,) = s.list_runs("load")
            assert info.load_summary is not None
            stored[workers] = (info.status, info.load_summary, s.load_records(info.id))
    for status, summary, records in stored.values():
        assert status == "complete" and len(records) == 66 and summary.completed == 60
        assert all(r.ok and r.output_tokens == 4 for r in records)
    assert arrivals(stored["none"][2]) == arrivals(stored["1"][2]) == arrivals(stored["2"][2])
    same = [sorted(map(apart_from_timings, records)) for _, _, records in stored.values()]
    assert same[0] == same[1] == same[2]
    # Each worker's own figures are stored with the run: none in process, one or two worker processes.
    assert stored["none"][1].workers == []
    assert [(w.index, w.sent, w.assigned) for w in stored["1"][1].workers] == [(0, 66, 66)]
    two = stored["2"][1].workers
    assert [(w.index, w.sent, w.assigned, w.ended) for w in two] == [
        (0, 33, 33, "complete"),
        (1, 33, 33, "complete"),
    ]
    assert all(w.lag_p99_ms is not None and w.client.cpu_s > 0 for w in two)
    assert stored["2"][1].client in [w.client for w in two]  # the run's client is the busiest worker


def worker_pids(home: Path) -> list[int]:
    """The load generator's worker processes started by this test's `llmbench` command."""
    found = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        try:
            env, cmdline = proc.info["environ"] or {}, " ".join(proc.info["cmdline"] or [])
        except psutil.Error:
            continue
        if env.get("LLMBENCH_HOME") == str(home) and "bench.loadgen.worker" in cmdline:
            found.append(proc.pid)
    return found


def stored_records(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with Store.open(store, create=False) as s:
            return sum(info.n_requests for info in s.list_runs("load"))
    except Exception:  # being created by the command
        return 0


@pytest.mark.slow  # about 2.5 s: scripts/test runs it, scripts/check stays under a minute
def test_a_killed_worker_keeps_its_records_and_stores_the_run_partial_with_the_reason(
    slow_mock_url: str, tmp_path: Path, hermetic_env: Path
) -> None:
    store = tmp_path / "killed.sqlite"
    args = ["--profile", "constant", "--rate", "40", "--requests", "200", "--workers", "2", "--out"]
    proc = load(slow_mock_url, store, *args, str(tmp_path / "out.json"), "--quiet")
    try:
        pids = wait_for(lambda: len(worker_pids(hermetic_env)) == 2 and worker_pids(hermetic_env), timeout=60,
                        what="two worker processes")  # fmt: skip
        wait_for(lambda: stored_records(store) >= 20, timeout=60, what="20 records stored")
        os.kill(pids[1], signal.SIGKILL)
        code, _, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 1, err
    assert "SIGKILL" in err and "partial" in err
    with Store.open(store, create=False) as s:
        (info,) = s.list_runs("load")
        records = s.load_records(info.id)
        summary = info.load_summary
    assert info.status == "partial" and info.error is not None and "SIGKILL" in info.error
    assert summary is not None
    lost = next(w for w in summary.workers if w.ended == "lost")
    assert lost.pid == pids[1] and lost.reason is not None and str(pids[1]) in lost.reason
    theirs = [r for r in records if r.request_id % 2 == lost.index]  # round robin: every other request
    # What the dead worker had measured is kept, measured as it was; what it had in flight is marked.
    assert any(r.ok and r.output_tokens == 4 for r in theirs)
    marked = [r for r in records if r.error_kind == "worker_lost"]
    assert marked and all(r.status is Status.CANCELLED and r in theirs for r in marked)
    assert len(records) < 200  # the run stopped at the loss
    assert json.loads((tmp_path / "out.json").read_text())["complete"] is False


# --- what the CLI says, and what is stored per worker, by hand --------------------------------------------


def test_workers_is_checked_as_a_flag() -> None:
    with pytest.raises(UsageError, match="1 or more worker processes, or auto") as info:
        LoadSpec.from_options(target="http://127.0.0.1:1/v1", workers=0)
    assert info.value.flag == "--workers"
    assert LoadSpec.from_options(target="http://127.0.0.1:1/v1", workers="auto").workers == "auto"
    code, _, err = finish(load("http://127.0.0.1:1/v1", Path("x.sqlite"), "--workers", "none"))
    assert code == 2 and "invalid value for --workers" in err and "auto" in err


def test_a_worker_start_failure_names_workers_and_the_fix() -> None:
    from bench.cli._errors import EXIT_FAILURE, describe

    described = describe(WorkerStartError("worker 0 exited with status 1 while starting", workers=4))
    assert described is not None
    code, text = described
    assert code == EXIT_FAILURE
    assert text.startswith("the load generator's worker processes could not start (--workers 4): worker 0")
    assert "fix: run without --workers" in text


def record(i: int, lag_ms: float, e2e_ms: float, *, warmup: bool = False, ok: bool = True) -> RequestRecord:
    start = 10.0 + i
    return RequestRecord(
        request_id=i,
        status=Status.OK if ok else Status.CANCELLED,
        scheduled_s=start - lag_ms / 1000.0,
        start_s=start,
        end_s=start + e2e_ms / 1000.0,
        warmup=warmup,
    )


def test_a_workers_figures_by_hand() -> None:
    # Measured sends 1, 2, 3 and 24 ms late (e2e 100 ms each); a warm-up and a cancelled request left out.
    records = [
        record(0, 50, 100, warmup=True),
        *(record(i, lag, 100) for i, lag in enumerate([1, 2, 3, 24], 1)),
    ]
    records.append(record(5, 90, 100, ok=False))
    stats = worker_stats(
        1, 4242, records, open_loop=True, client=ClientStats(cpu_s=0.3, wall_s=1.0, cores=2), cores=2,
        process_cpu_s=0.35, sent=6, assigned=6, max_in_flight=2, ended="complete", reason=None,
    )  # fmt: skip
    # p50 of 1, 2, 3, 24: 2.5; p99: rank 2.97 → 3 + 0.97 × 21 = 23.37; max 24.
    assert stats.lag_p50_ms == pytest.approx(2.5)
    assert stats.lag_p99_ms == pytest.approx(23.37)
    assert stats.lag_max_ms == pytest.approx(24.0)
    # Late means over max(10 ms, 5% of 100 ms): one of four sends, fewer than two: not client-bound.
    assert stats.client_bound_reasons == []
    late = [*records, record(6, 30, 100)]  # a second late send (and the p99 above 10 ms): sent late
    bound = worker_stats(
        0, 1, late, open_loop=True, client=None, cores=2, process_cpu_s=0.0, sent=7, assigned=7,
        max_in_flight=1, ended="lost", reason="worker 0 died",
    )  # fmt: skip
    assert (
        len(bound.client_bound_reasons) == 1
        and "2 of 5 requests sent more than 10.0 ms late" in (bound.client_bound_reasons[0])
    )
    assert bound.client == ClientStats(0.0, 0.0, 2)  # it never reported: its CPU is unknown, counted 0
    assert WorkerStats.from_json(json.loads(json.dumps(bound.to_json()))) == bound


def test_a_run_is_client_bound_by_one_worker_its_whole_figures_hide() -> None:
    records = [record(i, 1.0, 100) for i in range(200)]  # the whole run: every send 1 ms late
    behind = WorkerStats(
        index=3, pid=1, client=ClientStats(0.2, 1.0, 2), process_cpu_s=0.2, sent=10, assigned=10,
        max_in_flight=1, lag_p50_ms=12.0, lag_p99_ms=40.0, lag_max_ms=41.0,
        client_bound_reasons=["p99 scheduling lag 40.0 ms > 10.0 ms: requests were sent late"],
        ended="complete",
    )  # fmt: skip
    alone = summarize(records)
    assert not alone.client_bound
    summary = summarize(records, workers=[behind])
    assert summary.client_bound
    assert summary.client_bound_reasons == [
        "worker 3: p99 scheduling lag 40.0 ms > 10.0 ms: requests were sent late"
    ]
    assert RunSummary.from_json(json.loads(json.dumps(summary.to_json()))) == summary


def test_a_sweep_load_step_takes_workers_as_bench_load_does(tmp_path: Path) -> None:
    from bench.errors import ConfigError
    from bench.sweep.spec import LoadStep, load_options, read_sweep_file

    step = LoadStep.model_validate({"profile": "poisson", "rate": 50, "workers": "auto"})
    spec = LoadSpec.from_options(**load_options(step.model_dump(mode="json")), target="x")
    assert (step.workers, spec.workers) == ("auto", "auto")
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "schema: llmbench.sweep/1\nname: w\ntargets:\n  - {name: tiny}\n"
        "loads:\n  - {profile: poisson, rate: 50, workers: 0}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        read_sweep_file(path)
    assert f"{path}: loads[0].workers: " in str(err.value) and "1 or more worker processes" in str(err.value)
