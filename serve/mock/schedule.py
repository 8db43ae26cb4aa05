"""Timing of the mock's answers: the latency plan, the capacity queue and timed delivery of frames.

Frames go out on an absolute schedule (first token at t0 + TTFT, token k at t0 + TTFT + the sum of the
first k gaps), so a late wake-up never shifts later tokens. asyncio's epoll wait rounds timeouts up to whole
milliseconds (0.5 ms late on average, up to 1 ms), so one PreciseTimer for all streams wakes a little early
and sleeps the last fraction of a millisecond: frames leave within about 0.1 ms of their time, and frames due
together leave together from one wake-up.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
import time
from collections import deque
from collections.abc import Callable

from serve.mock.metrics import MockStats
from serve.specs import LatencyModel

# A frame due within this is sent now (below the resolution of any sleep).
_DUE_SLACK_S = 20e-6
# How early the event loop wakes before a frame is due: more than epoll's 1 ms rounding.
_WAKE_EARLY_S = 1.2e-3


class LatencyPlan:
    """Turns a LatencyModel into per-request decisions: injected errors and chunk send offsets."""

    def __init__(self, model: LatencyModel) -> None:
        self.model = model
        self.instant = model.ttft_ms == 0 and model.ttft_per_prompt_token_ms == 0 and model.itl_ms == 0
        self.instant = self.instant and model.itl_jitter_ms == 0
        self._errors = random.Random(model.seed)
        self._inject = model.error_rate_429 + model.error_rate_500 > 0

    def injected_error(self) -> int | None:
        """429, 500 or None for the next request (seeded, in arrival order)."""
        if not self._inject:
            return None
        u = self._errors.random()
        if u < self.model.error_rate_429:
            return 429
        if u < self.model.error_rate_429 + self.model.error_rate_500:
            return 500
        return None

    def ttft_s(self, prompt_tokens: int) -> float:
        """Time to first token once generation starts (s), for `prompt_tokens` uncached prompt tokens."""
        m = self.model
        return (m.ttft_ms + m.ttft_per_prompt_token_ms * prompt_tokens) / 1000.0

    def chunk_offsets(self, tokens: int, prompt_tokens: int, request_no: int) -> list[float]:
        """When each chunk is due, in s after generation starts; one entry even for zero tokens."""
        times = self.token_times(tokens, prompt_tokens, request_no)
        per = self.model.tokens_per_chunk
        return [times[min(c + per, tokens) - 1] for c in range(0, tokens, per)] or [times[0]]

    def token_times(self, tokens: int, prompt_tokens: int, request_no: int) -> list[float]:
        """When each token is due, in s after generation starts (at least one entry: the first token's)."""
        m = self.model
        t = self.ttft_s(prompt_tokens)
        times = [t]
        itl = m.itl_ms / 1000.0
        if m.itl_jitter_ms > 0:
            rng = random.Random(m.seed * 1_000_003 + request_no)
            jitter = m.itl_jitter_ms / 1000.0
            for _ in range(tokens - 1):
                t += max(0.0, rng.gauss(itl, jitter))
                times.append(t)
        else:
            times.extend(t + itl * k for k in range(1, tokens))
        return times


class TimedJob:
    """Sends pre-built frames at t0 + offsets once admitted; `emit(data, last)` does the writing."""

    def __init__(
        self,
        timer: PreciseTimer,
        frames: list[bytes],
        offsets: list[float],
        emit: Callable[[bytes, bool], None],
        on_done: Callable[[TimedJob], None],
    ) -> None:
        self.timer = timer
        self.frames = frames
        self.offsets = offsets
        self.emit = emit
        self.on_done = on_done
        self.t0 = 0.0
        self.sent = 0
        self.started = False
        self.cancelled = False

    def start(self) -> None:
        """Generation begins now: schedule the first frame."""
        self.started = True
        self.t0 = self.timer.loop.time()
        self.timer.schedule(self.t0 + self.offsets[0], self)

    def cancel(self) -> None:
        """Stop sending (the client went away)."""
        self.cancelled = True

    def step(self, now: float) -> None:
        """Send every frame due by `now` (loop time, s), then schedule the next one."""
        if self.cancelled:
            return
        i = j = self.sent
        n = len(self.frames)
        # Frames whose time has passed go out together: a late wake-up never delays later frames.
        while j < n and self.t0 + self.offsets[j] <= now:
            j += 1
        j = max(j, i + 1)
        self.sent = j
        last = j == n
        self.emit(self.frames[i] if j == i + 1 else b"".join(self.frames[i:j]), last)
        if last:
            self.on_done(self)
        else:
            self.timer.schedule(self.t0 + self.offsets[j], self)


class PreciseTimer:
    """Runs TimedJob.step at each job's due time with sub-millisecond accuracy, for every stream at once."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._heap: list[tuple[float, int, TimedJob]] = []
        self._order = itertools.count()
        self._handle: asyncio.TimerHandle | None = None
        self._armed_for = float("inf")
        self._firing = False

    def schedule(self, when: float, job: TimedJob) -> None:
        """Call `job.step` at loop time `when` (s)."""
        heapq.heappush(self._heap, (when, next(self._order), job))
        if when < self._armed_for and not self._firing:
            self._arm()

    def close(self) -> None:
        """Drop every pending job."""
        self._heap.clear()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._armed_for = float("inf")

    def _arm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed_for = self._heap[0][0]
        self._handle = self.loop.call_at(self._armed_for - _WAKE_EARLY_S, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._armed_for = float("inf")
        heap = self._heap
        if not heap:
            return
        wait = heap[0][0] - self.loop.time()
        if wait > _DUE_SLACK_S:
            # Block the loop for under 1.2 ms instead of waking up to 1 ms late.
            time.sleep(wait)
        now = self.loop.time() + _DUE_SLACK_S
        self._firing = True
        try:
            while heap and heap[0][0] <= now:
                _, _, job = heapq.heappop(heap)
                job.step(now)
        finally:
            self._firing = False
        if heap:
            self._arm()


class Capacity:
    """At most `limit` jobs generate at once; the others wait in arrival order (counted in stats)."""

    def __init__(self, limit: int | None, stats: MockStats) -> None:
        self.limit = limit
        self.stats = stats
        self.queue: deque[TimedJob] = deque()

    def admit(self, job: TimedJob) -> None:
        """Start `job` now if a slot is free, else queue it."""
        if self.limit is None or self.stats.running < self.limit:
            self.stats.running += 1
            job.start()
        else:
            self.queue.append(job)
            self.stats.waiting += 1

    def release(self, job: TimedJob) -> None:
        """`job` finished or went away: free its slot or its place in the queue."""
        if not job.started:
            try:
                self.queue.remove(job)
                self.stats.waiting -= 1
            except ValueError:
                pass
            return
        self.stats.running -= 1
        while self.queue and (self.limit is None or self.stats.running < self.limit):
            nxt = self.queue.popleft()
            self.stats.waiting -= 1
            self.stats.running += 1
            nxt.start()
