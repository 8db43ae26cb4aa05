"""DueTimer: open-loop sends wake at their time, never before it (how close is a benchmark's business)."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from bench.loadgen.profiles import ConstantProfile, Limits
from bench.loadgen.runner import LoadRunner
from bench.loadgen.schedule import make_plan
from bench.loadgen.timer import DueTimer, prompt_switching
from bench.records import GenRequest, RequestRecord, Status


async def _lateness(precise: bool, delays_s: list[float]) -> tuple[bool, list[float]]:
    timer = DueTimer(precise=precise)
    used = timer.precise
    late = []
    try:
        for delay in delays_s:
            due = time.perf_counter() + delay
            await timer.wait_until(due)
            late.append(time.perf_counter() - due)
    finally:
        timer.close()
    return used, late


def _loops() -> list[str]:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return ["asyncio"]
    return ["asyncio", "uvloop"]


@pytest.mark.parametrize("loop", _loops())
@pytest.mark.parametrize("precise", [True, False])
def test_the_timer_never_wakes_early(loop: str, precise: bool) -> None:
    delays = [0.0, -0.01, 0.0001, 0.0003, 0.002, 0.0047, 0.01, 0.0005] * 3
    coro = _lateness(precise, delays)
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            used, late = runner.run(coro)
    else:
        used, late = asyncio.run(coro)
    assert used == (precise and sys.platform == "linux")
    assert min(late) >= 0.0  # a send is never early
    assert len(late) == len(delays)


def test_a_waiter_cancelled_mid_wait_leaves_the_timer_usable() -> None:
    async def go() -> float:
        timer = DueTimer()
        try:
            waiter = asyncio.create_task(timer.wait_until(time.perf_counter() + 10.0))
            await asyncio.sleep(0)  # the waiter runs up to its first wait
            waiter.cancel()
            await asyncio.gather(waiter, return_exceptions=True)
            due = time.perf_counter() + 0.002
            await timer.wait_until(due)
            return time.perf_counter() - due
        finally:
            timer.close()

    assert asyncio.run(go()) >= 0.0


def test_a_run_hands_the_gil_to_the_loop_within_a_quarter_millisecond() -> None:
    before = sys.getswitchinterval()
    with prompt_switching():
        assert sys.getswitchinterval() == pytest.approx(0.25e-3)
        with prompt_switching(0.01):  # never longer than what is already set
            assert sys.getswitchinterval() == pytest.approx(0.25e-3)
    assert sys.getswitchinterval() == before
    seen: list[float] = []

    async def run() -> None:
        plan = make_plan(ConstantProfile(rate=1000.0), Limits(requests=3))
        requests = (GenRequest(i, prompt="x") for i in range(3))
        await LoadRunner(_Client(seen), plan, requests).run()

    asyncio.run(run())
    assert seen and all(s == pytest.approx(0.25e-3) for s in seen)  # while the run sends
    assert sys.getswitchinterval() == before  # and put back after


class _Client:
    """A client that answers at once and notes the switch interval each request was sent under."""

    def __init__(self, seen: list[float]) -> None:
        self.seen = seen

    async def send(self, request: GenRequest, scheduled_s: float) -> RequestRecord:
        self.seen.append(sys.getswitchinterval())
        now = time.perf_counter()
        return RequestRecord(request.request_id, Status.OK, scheduled_s, now, now)

    async def check(self) -> None:
        return None
