"""Multi-process runs: one schedule over worker processes, the real mock on loopback, a worker killed."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from loadgen_fakes import broken_client, mock_client

from bench.loadgen.profiles import ConcurrentProfile, ConstantProfile, Limits, PoissonProfile, Warmup
from bench.loadgen.runner import LoadRunner, Progress, RunOutcome
from bench.loadgen.schedule import Plan, make_plan
from bench.loadgen.shares import plan_shares, split_counts
from bench.loadgen.timer import perf_counter_is_monotonic
from bench.loadgen.workers import (
    WorkerPool,
    WorkerStartError,
    parse_workers,
    resolve_workers,
    run_in_workers,
)
from bench.records import GenRequest, RequestRecord, Status
from serve.mock.server import running_mock
from serve.specs import LatencyModel, MockSpec

MODEL = "workers-mock"


def requests(sessions: int | None = None) -> Iterator[GenRequest]:
    i = 0
    while True:
        extra = {} if sessions is None else {"user": f"s{i % sessions}"}
        yield GenRequest(request_id=i, prompt=f"hello {i}", max_tokens=4, ignore_eos=True, extra_body=extra)
        i += 1


def session_of(request: GenRequest) -> str | None:
    return request.extra_body.get("user")


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    spec = MockSpec(model=MODEL, port=0, strict=False, latency=LatencyModel(ttft_ms=5, itl_ms=1))
    with running_mock(spec) as url:
        yield url


@pytest.fixture(scope="module")
def slow_mock_url() -> Iterator[str]:
    spec = MockSpec(model=MODEL, port=0, strict=False, latency=LatencyModel(ttft_ms=300, itl_ms=20))
    with running_mock(spec) as url:
        yield url


def served(url: str) -> float:
    """Generation requests the mock has received, from its /metrics."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith("vllm:request_success_total{")
    )


def factory(url: str) -> Callable[[], Any]:
    return functools.partial(mock_client, url, MODEL)


def same_apart_from_timings(record: RequestRecord) -> tuple[Any, ...]:
    return (
        record.request_id,
        record.status,
        record.warmup,
        record.input_tokens,
        record.output_tokens,
        record.tokens_from,
        record.http_status,
        record.error_kind,
        record.input_bytes,
        record.output_bytes,
    )


def arrivals(outcome: RunOutcome) -> list[tuple[int, bool, float]]:
    """(request id, warm-up, scheduled time) with each phase's times counted from its first send."""
    firsts = {
        warm: min(r.scheduled_s for r in outcome.records if r.warmup == warm)
        for warm in {r.warmup for r in outcome.records}
    }
    rows = [(r.request_id, r.warmup, round(r.scheduled_s - firsts[r.warmup], 9)) for r in outcome.records]
    return sorted(rows)


# --- one clock, the split (no processes) ------------------------------------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="CLOCK_MONOTONIC behind perf_counter is Linux's")
def test_perf_counter_is_one_clock_for_every_process() -> None:
    assert perf_counter_is_monotonic()  # CLOCK_MONOTONIC: one system-wide clock
    before = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", "import time; print(repr(time.perf_counter()))"],
        capture_output=True,
        text=True,
        check=True,
    )
    after = time.perf_counter()
    assert before < float(out.stdout) < after


def test_closed_loop_concurrency_and_counts_are_split_evenly() -> None:
    assert split_counts(10, 3) == [4, 3, 3]
    plan = make_plan(ConcurrentProfile(concurrency=10), Limits(requests=30, warmup=Warmup(requests=4)))
    shares, _ = plan_shares(plan, requests(), 3)
    assert [s.plan.concurrency for s in shares] == [4, 3, 3]
    assert [s.plan.limits.requests for s in shares] == [10, 10, 10]
    assert [s.plan.limits.warmup.requests for s in shares] == [2, 1, 1]
    sent = sorted(r.request_id for s in shares for _, r in s.items)
    assert sent == list(range(34))  # the same requests as one process sends
    two = make_plan(ConcurrentProfile(concurrency=2), Limits(requests=30))
    assert len(plan_shares(two, requests(), 3)[0]) == 2  # never more workers than slots


@pytest.mark.parametrize("profile", [ConstantProfile(rate=50.0), PoissonProfile(rate=50.0, seed=7)])
def test_the_open_loop_schedule_is_the_same_for_any_worker_count(
    profile: ConstantProfile | PoissonProfile,
) -> None:
    plan = make_plan(profile, Limits(requests=40, warmup=Warmup(requests=5)))
    assert plan.offsets_s is not None
    for workers in (1, 2, 3, 8):
        shares, _ = plan_shares(plan, requests(), workers)
        paired = sorted(
            (j, off) for s in shares for (j, _), off in zip(s.items, s.plan.offsets_s or (), strict=True)
        )
        assert [off for _, off in paired] == list(plan.offsets_s)
        assert [j for j, _ in paired] == list(range(len(plan.offsets_s)))
        assert sum(s.plan.warmup_count for s in shares) == plan.warmup_count


def test_a_session_stays_on_one_worker() -> None:
    plan = make_plan(ConstantProfile(rate=100.0), Limits(requests=60))
    shares, _ = plan_shares(plan, requests(sessions=5), 2, session_of)
    homes: dict[str | None, set[int]] = {}
    for share in shares:
        for _, request in share.items:
            homes.setdefault(session_of(request), set()).add(share.worker)
    assert len(homes) == 5 and all(len(workers) == 1 for workers in homes.values())
    assert {len(s.items) for s in shares} == {36, 24}  # sessions 0, 2, 4 and 1, 3


def test_workers_auto_is_cores_minus_one_capped_by_the_load() -> None:
    assert parse_workers("auto") == "auto" and parse_workers("3") == 3
    with pytest.raises(Exception, match="worker processes"):
        parse_workers("0")
    slow = make_plan(ConstantProfile(rate=100.0), Limits(duration_s=5))
    fast = make_plan(ConstantProfile(rate=3500.0), Limits(duration_s=2))
    assert resolve_workers("auto", slow, cores=16) == 1
    assert resolve_workers("auto", fast, cores=16) == 4
    assert resolve_workers("auto", fast, cores=2) == 1
    assert resolve_workers("auto", make_plan(ConcurrentProfile(concurrency=1000), Limits()), cores=8) == 4
    assert resolve_workers(6, fast, cores=2) == 6  # a number given is a number kept


# --- real processes against the real mock -------------------------------------------------------------------


def run_pool(url: str, workers: int, plan: Plan, **kwargs: Any) -> tuple[RunOutcome, list[int]]:
    async def go() -> tuple[RunOutcome, list[int]]:
        async with WorkerPool(factory(url), workers, feed_chunk=kwargs.pop("feed_chunk", 4096)) as pool:
            return await pool.run(plan, kwargs.pop("reqs", requests()), **kwargs), pool.pids

    return asyncio.run(go())


def run_in_process(url: str, plan: Plan) -> RunOutcome:
    async def go() -> RunOutcome:
        async with mock_client(url, MODEL) as client:
            return await LoadRunner(client, plan, requests()).run()

    return asyncio.run(go())


@pytest.mark.slow  # about 2.5 s: scripts/test runs it, scripts/check stays under a minute
def test_one_and_two_workers_send_the_same_schedule_and_the_same_records(mock_url: str) -> None:
    plan = make_plan(PoissonProfile(rate=150.0, seed=3), Limits(requests=60, warmup=Warmup(requests=6)))
    progress: list[Progress] = []
    one, _ = run_pool(mock_url, 1, plan)
    two, pids = run_pool(mock_url, 2, plan, on_progress=progress.append, progress_every_s=0.1)
    alone = run_in_process(mock_url, plan)
    for outcome in (one, two, alone):
        assert outcome.ended == "complete" and len(outcome.records) == 66
    assert arrivals(one) == arrivals(two) == arrivals(alone)
    assert (
        sorted(map(same_apart_from_timings, one.records))
        == sorted(map(same_apart_from_timings, two.records))
        == sorted(map(same_apart_from_timings, alone.records))
    )
    assert all(r.ok and r.output_tokens == 4 for r in two.records)
    assert [w.pid for w in two.workers] == pids and [w.sent for w in two.workers] == [33, 33]
    assert two.client_total is not None and two.client_total.cpu_s >= max(w.client.cpu_s for w in two.workers)
    assert two.client in [w.client for w in two.workers]  # the busiest worker's loop
    last = progress[-1]
    assert last.phase == "done" and last.workers == 2 and last.sent == 66 and last.ok == 66
    # Every worker starts measuring at the same instant, after every warm-up request has ended.
    last_warm = max(r.end_s for r in two.records if r.warmup)
    assert min(r.start_s for r in two.records if not r.warmup) >= last_warm


@pytest.mark.slow  # about 1.0 s: scripts/test runs it, scripts/check stays under a minute
def test_a_closed_loop_splits_its_slots_over_the_workers(mock_url: str) -> None:
    plan = make_plan(ConcurrentProfile(concurrency=10), Limits(requests=60, warmup=Warmup(requests=6)))
    outcome, _ = run_pool(mock_url, 3, plan)
    assert outcome.ended == "complete" and len(outcome.records) == 66
    assert sorted(r.request_id for r in outcome.records) == list(range(66))
    assert [w.max_in_flight for w in outcome.workers] == [4, 3, 3]
    assert outcome.max_in_flight <= 10
    last_warm = max(r.end_s for r in outcome.records if r.warmup)
    assert min(r.start_s for r in outcome.records if not r.warmup) >= last_warm


@pytest.mark.slow  # about 1.6 s: scripts/test runs it, scripts/check stays under a minute
def test_an_open_ended_closed_loop_is_fed_on_demand(mock_url: str) -> None:
    plan = make_plan(ConcurrentProfile(concurrency=4), Limits(duration_s=1.0, grace_s=5))
    outcome, _ = run_pool(mock_url, 2, plan, feed_chunk=16)
    ids = [r.request_id for r in outcome.records]
    assert outcome.ended == "complete" and len(ids) == len(set(ids)) > 40  # far more than 2 chunks each
    assert all(w.reason is None for w in outcome.workers)  # neither ran out of requests


def test_a_session_stays_on_one_worker_process(mock_url: str) -> None:
    plan = make_plan(ConstantProfile(rate=200.0), Limits(requests=30))

    async def go() -> RunOutcome:
        async with WorkerPool(factory(mock_url), 2) as pool:
            return await pool.run(plan, requests(sessions=3), session_key=session_of)

    outcome = asyncio.run(go())
    assert outcome.ended == "complete" and len(outcome.records) == 30
    # Sessions s0 and s2 went to the first worker, s1 to the second (by first appearance), whole.
    assert [(w.assigned, w.sent) for w in outcome.workers] == [(20, 20), (10, 10)]


@pytest.mark.slow  # about 1.6 s: scripts/test runs it, scripts/check stays under a minute
def test_a_killed_worker_keeps_what_it_sent_back_and_marks_the_run_partial(slow_mock_url: str) -> None:
    plan = make_plan(ConstantProfile(rate=40.0), Limits(requests=200))  # 5 s; 320 ms per request
    seen: list[RequestRecord] = []
    pids: list[int] = []
    killed: list[float] = []

    def on_record(record: RequestRecord) -> None:
        seen.append(record)
        if len(seen) == 20 and not killed:  # a condition, not a sleep: 20 records back, then kill
            os.kill(pids[1], signal.SIGKILL)
            killed.append(time.perf_counter())

    async def go() -> RunOutcome:
        async with WorkerPool(factory(slow_mock_url), 2) as pool:
            pids.extend(pool.pids)
            return await pool.run(plan, requests(), on_record=on_record)

    outcome = asyncio.run(go())
    assert killed and outcome.ended == "worker_lost"
    assert outcome.reason is not None and "SIGKILL" in outcome.reason and str(pids[1]) in outcome.reason
    ids = [r.request_id for r in outcome.records]
    assert len(ids) == len(set(ids)) and outcome.records == seen  # every record reached on_record once
    lost = [r for r in outcome.records if r.error_kind == "worker_lost"]
    assert lost and all(r.status is Status.CANCELLED and r.request_id % 2 == 1 for r in lost)
    # What the dead worker sent back before it died is kept, measured as it was.
    assert any(r.ok and r.request_id % 2 == 1 for r in outcome.records)
    lost_worker = outcome.workers[1]
    assert lost_worker.ended == "lost" and lost_worker.reason == outcome.reason
    assert outcome.workers[0].ended != "lost"
    assert len(outcome.records) < 200  # the run stopped: nothing due after the loss was sent


@pytest.mark.slow  # about 1.4 s: scripts/test runs it, scripts/check stays under a minute
def test_stop_halts_every_worker_and_keeps_the_records(slow_mock_url: str) -> None:
    plan = make_plan(ConstantProfile(rate=40.0), Limits(requests=200))
    stop_at = 10

    async def go() -> RunOutcome:
        stop = asyncio.Event()
        seen: list[RequestRecord] = []

        def on_record(record: RequestRecord) -> None:
            seen.append(record)
            if len(seen) >= stop_at:
                stop.set()

        return await run_in_workers(
            plan, requests(), factory(slow_mock_url), 2, on_record=on_record, stop=stop
        )

    outcome = asyncio.run(go())
    assert outcome.ended == "interrupted" and outcome.reason == "interrupted (Ctrl-C)"
    assert sum(r.ok for r in outcome.records) >= stop_at
    assert any(r.status is Status.CANCELLED and r.error_kind == "cancelled" for r in outcome.records)
    assert all(w.ended == "interrupted" for w in outcome.workers)


def test_a_worker_that_cannot_start_fails_the_pool(mock_url: str) -> None:
    async def start(make: Callable[[], Any]) -> None:
        async with WorkerPool(make, 2):
            pass

    with pytest.raises(WorkerStartError, match="no client here"):
        asyncio.run(start(broken_client))
    with pytest.raises(WorkerStartError, match="cannot be sent to worker processes"):
        asyncio.run(start(lambda: mock_client(mock_url, MODEL)))


@pytest.mark.slow  # about 1.1 s: scripts/test runs it, scripts/check stays under a minute
def test_a_caller_that_fails_mid_run_stops_every_worker(slow_mock_url: str) -> None:
    plan = make_plan(ConstantProfile(rate=40.0), Limits(requests=2000))  # 50 s if nobody stopped it
    pids: list[int] = []

    def on_record(record: RequestRecord) -> None:
        raise RuntimeError("the store is gone")

    async def go() -> None:
        async with WorkerPool(factory(slow_mock_url), 2) as pool:
            pids.extend(pool.pids)
            await pool.run(plan, requests(), on_record=on_record)

    before = served(slow_mock_url)
    with pytest.raises(RuntimeError, match="the store is gone"):
        asyncio.run(go())
    assert served(slow_mock_url) - before < 100  # halted: nowhere near the 2,000 planned were sent
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
