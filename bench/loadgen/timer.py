"""Waking the event loop at an exact `time.perf_counter()` instant, for open-loop sends.

Why not `asyncio.sleep`: uvloop keeps its clock and its timers in whole milliseconds (libuv), and the
standard loop rounds every epoll timeout up to a whole millisecond, so a sleep wakes up to about 1.5 ms off
its mark. Worse, it wakes in the middle of whatever the loop is doing: at 1,000 requests/s the loop is busy
reading a hundred streams, and one loop turn that handles a burst of chunks lasts up to a millisecond.

So `DueTimer.wait_until(t)` arms a Linux timerfd for `t − SPIN_S` (absolute CLOCK_MONOTONIC, which is the
clock behind perf_counter on Linux: the kernel wakes epoll within its timer slack, about 50 µs), then
yields the loop turn by turn (`asyncio.sleep(0)`) until `t`. The short spin keeps loop turns short just
before the send, so the send's own task is not queued behind a long turn; it costs at most SPIN_S of CPU
per send (0.2 ms: a fifth of a core at 1,000 sends/s in the worst case, less when the loop has other
work to do in those turns). Where there is no timerfd (not Linux, or perf_counter is another clock), a
plain sleep wakes COARSE_S earlier and the spin covers the rest.

The loop also waits for the GIL: a thread of the same process (the results store's writer, which builds
rows in Python for a quarter-second of records at a time) keeps it until the interpreter's switch interval
runs out, 5 ms by default, so a send due then goes up to 5 ms late. `prompt_switching()` shortens the
interval to SWITCH_S for the time of a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import sys
import time
from collections.abc import Iterator
from typing import Protocol

SPIN_S = 0.2e-3  # yield-spin this long before a send is due (s)
COARSE_S = 1.5e-3  # without a timerfd: how early a plain sleep may wake, and how late (s)
SWITCH_S = 0.25e-3  # the GIL's switch interval during a run (s; Python's default is 5 ms)
_CLOCK_MONOTONIC = 1
_TFD_TIMER_ABSTIME = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = os.O_CLOEXEC


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


class _Arm(Protocol):
    def __call__(self, fd: int, when_s: float) -> None: ...


def perf_counter_is_monotonic() -> bool:
    """True when perf_counter reads CLOCK_MONOTONIC (Linux): one clock for every process on the machine."""
    return time.get_clock_info("perf_counter").implementation == "clock_gettime(CLOCK_MONOTONIC)"


def _timerfd() -> tuple[int, _Arm] | None:
    """A non-blocking CLOCK_MONOTONIC timerfd and the function that arms it at an absolute time."""
    if not perf_counter_is_monotonic():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        create, settime = libc.timerfd_create, libc.timerfd_settime
    except (OSError, AttributeError):
        return None
    fd = int(create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC))
    if fd < 0:
        return None

    def arm(fd: int, when_s: float) -> None:
        ns = max(1, round(when_s * 1e9))  # an all-zero time would disarm the timer
        value = _Timespec(ns // 1_000_000_000, ns % 1_000_000_000)
        spec = _Itimerspec(_Timespec(0, 0), value)
        if settime(fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")

    return fd, arm


class DueTimer:
    """Waits until a perf_counter time on the running loop, to within about 0.1 ms on an idle loop.

    One waiter at a time (the open loop's producer). `close()` releases the timerfd.
    """

    def __init__(self, *, spin_s: float = SPIN_S, precise: bool = True) -> None:
        self._loop = asyncio.get_running_loop()
        self._spin_s = spin_s
        made = _timerfd() if precise else None
        self._fd: int | None = None
        self._arm: _Arm | None = None
        self._waiter: asyncio.Future[None] | None = None
        if made is not None:
            self._fd, self._arm = made
            self._loop.add_reader(self._fd, self._fired)

    @property
    def precise(self) -> bool:
        """True when a timerfd wakes the loop (else a plain sleep plus a longer spin)."""
        return self._fd is not None

    async def wait_until(self, when_s: float) -> None:
        """Return at perf_counter `when_s` or just after (at once when it has passed)."""
        clock = time.perf_counter
        early = when_s - self._spin_s
        if self._fd is not None and self._arm is not None:
            if early - clock() > 0:
                self._arm(self._fd, early)
                self._waiter = self._loop.create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
        else:
            coarse = early - COARSE_S - clock()
            if coarse > 0:
                await asyncio.sleep(coarse)
        while clock() < when_s:
            await asyncio.sleep(0)  # one loop turn: reads and callbacks go on while we wait

    def _fired(self) -> None:
        assert self._fd is not None
        try:
            os.read(self._fd, 8)
        except BlockingIOError:
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        """Stop watching the timerfd and close it."""
        if self._fd is None:
            return
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = None


@contextlib.contextmanager
def prompt_switching(interval_s: float = SWITCH_S) -> Iterator[None]:
    """Within the block, another thread holding the GIL hands it to the event loop within `interval_s`
    (the interpreter's switch interval, process-wide; put back as it was after)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, interval_s))
    try:
        yield
    finally:
        sys.setswitchinterval(before)
