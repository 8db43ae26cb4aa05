"""The runner: pacing, limits, warm-up, cool-down and early stops, with a fake client and a real server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from timing_server import Timing, TimingServer

from bench.clients import ClientConfig, make_client
from bench.errors import TargetError
from bench.loadgen.profiles import ConcurrentProfile, ConstantProfile, Limits, PoissonProfile, Warmup
from bench.loadgen.runner import LoadRunner, Progress, RunOutcome
from bench.loadgen.schedule import Plan, make_plan
from bench.records import GenRequest, RequestRecord, Status


class FakeClient:
    """Implements StreamingClient in process: each request takes `latency_s`; counts what is in flight."""

    def __init__(self, latency_s: float = 0.01, *, fail: bool = False, raise_in_send: bool = False) -> None:
        self.latency_s = latency_s
        self.fail = fail
        self.raise_in_send = raise_in_send
        self.in_flight = 0
        self.max_in_flight = 0
        self.sent: list[tuple[int, float, float]] = []  # (request_id, scheduled_s, start_s)
        self.alive = True

    async def __aenter__(self) -> FakeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def check(self) -> None:
        if not self.alive:
            raise TargetError("gone", url="fake://")

    async def send(self, request: GenRequest, scheduled_s: float) -> RequestRecord:
        start = time.perf_counter()
        self.sent.append((request.request_id, scheduled_s, start))
        if self.raise_in_send:
            raise RuntimeError("bug in a client")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.latency_s)
        finally:
            self.in_flight -= 1
        end = time.perf_counter()
        if self.fail or not self.alive:
            return RequestRecord(
                request.request_id,
                Status.ERROR,
                scheduled_s,
                start,
                end,
                error_kind="connection",
                error_text="x",
            )
        return RequestRecord(
            request.request_id,
            Status.OK,
            scheduled_s,
            start,
            end,
            first_token_s=start + self.latency_s / 2,
            token_chunk_s=[start + self.latency_s / 2, end],
            output_tokens=2,
            tokens_from="usage",
        )


def requests() -> Iterator[GenRequest]:
    i = 0
    while True:
        yield GenRequest(request_id=i, prompt="hi", max_tokens=4)
        i += 1


def run(client: object, plan: Plan, stop: asyncio.Event | None = None, **kwargs: object) -> RunOutcome:
    async def go() -> RunOutcome:
        runner = LoadRunner(client, plan, requests(), stop=stop, **kwargs)  # type: ignore[arg-type]
        return await runner.run()

    return asyncio.run(go())


def test_closed_loop_never_exceeds_concurrency_and_flags_warmup() -> None:
    client = FakeClient(latency_s=0.01)
    plan = make_plan(ConcurrentProfile(concurrency=4), Limits(requests=40, warmup=Warmup(requests=6)))
    out = run(client, plan)
    assert out.ended == "complete"
    assert client.max_in_flight == 4 and out.max_in_flight == 4
    assert len(out.records) == 46
    assert sum(r.warmup for r in out.records) == 6
    assert {r.status for r in out.records} == {Status.OK}
    assert sorted(r.request_id for r in out.records) == list(range(46))
    assert out.client.wall_s > 0 and out.client.cpu_s >= 0


@pytest.mark.slow  # about 1.9 s: scripts/test runs it, scripts/check stays under a minute
def test_open_loop_schedule_ignores_a_slow_server() -> None:
    # Each request takes 1 s, far longer than the 50 ms between sends: the sends must not wait.
    client = FakeClient(latency_s=1.0)
    plan = make_plan(ConstantProfile(rate=20), Limits(requests=20))
    out = run(client, plan)
    origin = out.origin_s
    scheduled = sorted(s - origin for _, s, _ in client.sent)
    assert scheduled == pytest.approx([i / 20 for i in range(20)], abs=1e-9)
    starts = sorted(start - origin for _, _, start in client.sent)
    assert all(abs(a - b) < 0.15 for a, b in zip(starts, scheduled, strict=True))  # loose: shared cores
    assert client.max_in_flight >= 15  # they overlapped: the schedule never waited for a response
    assert all(r.ok for r in out.records)


def test_poisson_run_sends_every_scheduled_request() -> None:
    client = FakeClient(latency_s=0.02)
    plan = make_plan(PoissonProfile(rate=100, seed=3), Limits(requests=30, warmup=Warmup(requests=5)))
    assert plan.offsets_s is not None
    out = run(client, plan)
    got = sorted(s - out.origin_s for _, s, _ in client.sent)
    offsets = list(plan.offsets_s)
    assert got[:5] == pytest.approx(offsets[:5], abs=1e-9)  # warm-up on the schedule from the origin
    # The measured schedule keeps its gaps exactly but starts once the warm-up has finished.
    assert [g - got[5] for g in got[5:]] == pytest.approx([o - offsets[5] for o in offsets[5:]], abs=1e-9)
    warm_end = max(r.end_s for r in out.records if r.warmup)
    assert got[5] + out.origin_s >= warm_end
    assert sum(not r.warmup for r in out.records) == 30


@pytest.mark.parametrize("profile", [ConcurrentProfile(concurrency=8), ConstantProfile(rate=200)])
def test_warmup_finishes_before_the_first_measured_send(profile: ConcurrentProfile | ConstantProfile) -> None:
    # Warm-up sent with the measured burst warms nothing: every warm-up request ends before measuring starts.
    client = FakeClient(latency_s=0.05)
    out = run(client, make_plan(profile, Limits(requests=24, warmup=Warmup(requests=3))))
    warm = [r for r in out.records if r.warmup]
    measured = [r for r in out.records if not r.warmup]
    assert len(warm) == 3 and len(measured) == 24
    assert max(r.end_s for r in warm) <= min(r.start_s for r in measured)


def test_duration_limit_stops_sending() -> None:
    client = FakeClient(latency_s=0.02)
    plan = make_plan(ConcurrentProfile(concurrency=2), Limits(duration_s=0.5))
    t0 = time.perf_counter()
    out = run(client, plan)
    assert time.perf_counter() - t0 < 5
    assert out.ended == "complete"
    starts = [r.start_s - out.origin_s for r in out.records]
    assert max(starts) < 0.5 + 0.1
    assert len(out.records) >= 10


def test_cool_down_cancels_stragglers_after_grace() -> None:
    client = FakeClient(latency_s=30.0)
    plan = make_plan(ConcurrentProfile(concurrency=3), Limits(requests=3, grace_s=0.2))
    t0 = time.perf_counter()
    out = run(client, plan)
    assert time.perf_counter() - t0 < 5
    assert [r.status for r in out.records] == [Status.CANCELLED] * 3
    assert all(r.error_kind == "cancelled" for r in out.records)


def test_stop_event_interrupts_and_keeps_records() -> None:
    client = FakeClient(latency_s=0.05)
    plan = make_plan(ConcurrentProfile(concurrency=2), Limits(requests=10_000))

    async def go() -> RunOutcome:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.4, stop.set)
        return await LoadRunner(client, plan, requests(), stop=stop).run()

    out = asyncio.run(go())
    assert out.ended == "interrupted" and out.reason is not None
    ok = [r for r in out.records if r.ok]
    assert 2 <= len(ok) < 10_000
    assert len(out.records) == len(client.sent)  # every request sent has a record


def test_max_error_rate_stops_the_run() -> None:
    client = FakeClient(latency_s=0.001, fail=True)
    plan = make_plan(ConcurrentProfile(concurrency=1), Limits(requests=500, max_error_rate=0.5))
    out = run(client, plan)
    assert out.ended == "error_rate" and "max-error-rate" in (out.reason or "")
    assert 10 <= len(out.records) < 500


def test_errors_without_a_cap_are_data_points() -> None:
    client = FakeClient(latency_s=0.001, fail=True)
    out = run(client, make_plan(ConcurrentProfile(concurrency=2), Limits(requests=30)))
    assert out.ended == "complete" and len(out.records) == 30
    assert all(r.status is Status.ERROR for r in out.records)


def test_a_client_that_raises_still_gives_a_record() -> None:
    client = FakeClient(raise_in_send=True)
    out = run(client, make_plan(ConcurrentProfile(concurrency=1), Limits(requests=3)))
    assert [r.error_kind for r in out.records] == ["client"] * 3
    assert "bug in a client" in (out.records[0].error_text or "")


def test_progress_snapshots() -> None:
    seen: list[Progress] = []
    client = FakeClient(latency_s=0.02)
    plan = make_plan(ConcurrentProfile(concurrency=2), Limits(requests=40))
    run(client, plan, on_progress=seen.append, progress_every_s=0.05)
    assert len(seen) >= 3
    assert seen[-1].phase == "done" and seen[-1].ok == 40 and seen[-1].planned == 40
    assert any(p.ttft_p50_ms is not None for p in seen)


def _real_client(url: str, model: str = "timing-model") -> object:
    return make_client("openai-chat", ClientConfig(base_url=url, model=model, timeout_s=30))


def test_real_server_concurrency_is_never_exceeded() -> None:
    with TimingServer(Timing(ttft_ms=20, itl_ms=2)) as server:

        async def go() -> RunOutcome:
            async with _real_client(server.url) as client:  # type: ignore[attr-defined]
                plan = make_plan(ConcurrentProfile(concurrency=3), Limits(requests=24))
                return await LoadRunner(client, plan, requests()).run()

        out = asyncio.run(go())
    assert out.ended == "complete"
    assert server.stats.max_in_flight == 3 and server.stats.requests == 24
    assert all(r.ok and r.output_tokens == 4 for r in out.records)


def test_real_server_dying_mid_run_ends_the_run_as_server_down() -> None:
    server = TimingServer(Timing(ttft_ms=10, itl_ms=5)).__enter__()

    async def go() -> RunOutcome:
        async with _real_client(server.url) as client:  # type: ignore[attr-defined]
            plan = make_plan(ConcurrentProfile(concurrency=2), Limits(requests=100_000))
            loop = asyncio.get_running_loop()
            loop.call_later(0.5, lambda: loop.run_in_executor(None, server.stop))
            return await LoadRunner(client, plan, requests()).run()

    try:
        out = asyncio.run(go())
    finally:
        server.stop()
    assert out.ended == "server_down" and "stopped answering" in (out.reason or "")
    assert sum(r.ok for r in out.records) >= 5
