"""Splitting one Plan over worker processes: who sends which request, at which of the plan's times.

The plan stays the one deterministic schedule the parent computed: an open loop's offsets are never
recomputed per worker, each worker gets the offsets of its own requests (request j keeps offset j), so the
run's arrival times are the same for any number of workers. A closed loop's concurrency and request
counts are split as evenly as they go (10 over 3 → 4, 3, 3). Requests go round-robin by position, except
that every request of one session (the optional `session_key`) goes to the worker its session went to
first, so a conversation stays on one connection pool and in order.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bench.loadgen.profiles import Warmup
from bench.loadgen.schedule import Plan
from bench.records import GenRequest

SessionKey = Callable[[GenRequest], str | None]
FEED_CHUNK = 4096  # requests shipped at a time to a worker of a run whose request count is open-ended


def split_counts(total: int, parts: int) -> list[int]:
    """`total` split into `parts` counts that differ by at most one, larger first (10, 3 → 4, 3, 3)."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class Router:
    """Draws requests from one iterator in order and routes each to a worker (see the module docstring)."""

    def __init__(self, requests: Iterator[GenRequest], workers: int, session_key: SessionKey | None) -> None:
        self._requests = requests
        self._workers = workers
        self._key = session_key
        self._sessions: dict[str, int] = {}
        self._next = itertools.count()
        self._queued: list[deque[tuple[int, GenRequest]]] = [deque() for _ in range(workers)]
        self.exhausted = False

    def worker_of(self, position: int, request: GenRequest) -> int:
        """The worker request number `position` goes to."""
        key = None if self._key is None else self._key(request)
        if key is None:
            return position % self._workers
        if key not in self._sessions:
            self._sessions[key] = len(self._sessions) % self._workers
        return self._sessions[key]

    def draw(self, limit: int | None) -> None:
        """Route up to `limit` more requests (all that are left when None)."""
        for request in self._requests if limit is None else itertools.islice(self._requests, limit):
            position = next(self._next)
            self._queued[self.worker_of(position, request)].append((position, request))
        else:
            if limit is None:
                self.exhausted = True

    def take(self, worker: int, n: int) -> list[tuple[int, GenRequest]]:
        """Up to `n` requests for `worker` as (position in the run, request), drawing more as needed."""
        queue = self._queued[worker]
        while len(queue) < n and not self.exhausted:
            before = sum(len(q) for q in self._queued)
            self.draw(max(n - len(queue), 1) * self._workers)
            if sum(len(q) for q in self._queued) == before:
                self.exhausted = True
        return [queue.popleft() for _ in range(min(n, len(queue)))]

    def take_all(self, worker: int) -> list[tuple[int, GenRequest]]:
        """Everything routed to `worker` (call `draw(n)` first)."""
        queue = self._queued[worker]
        out = list(queue)
        queue.clear()
        return out


@dataclass(frozen=True, slots=True)
class Share:
    """One worker's part of a run: its plan, its requests (positions in the run kept) and how it is fed."""

    worker: int
    plan: Plan
    items: list[tuple[int, GenRequest]]  # (position in the run, request), in send order
    more: bool  # fed on demand: more requests follow (the run's request count is open-ended)


def plan_shares(
    plan: Plan,
    requests: Iterator[GenRequest],
    workers: int,
    session_key: SessionKey | None = None,
    *,
    feed_chunk: int = FEED_CHUNK,
) -> tuple[list[Share], Router]:
    """The shares of at most `workers` workers (fewer when the run has fewer slots or requests).

    Builds (draws) every request a finite run sends; an open-ended closed loop (a duration, or a warm-up
    in seconds, without a known count) gets a first chunk each, and the returned Router feeds the rest.
    """
    limits = plan.limits.model_copy(update={"max_error_rate": None})  # the parent applies the cap
    if plan.offsets_s is not None:
        n = len(plan.offsets_s)
        k = max(1, min(workers, n))
        router = Router(requests, k, session_key)
        router.draw(n)
        shares = []
        for w in range(k):
            items = router.take_all(w)
            offsets = tuple(plan.offsets_s[j] for j, _ in items)
            warm = sum(1 for j, _ in items if j < plan.warmup_count)
            shares.append(Share(w, Plan(None, offsets, warm, limits), items, more=False))
        return [s for s in shares if s.items], router
    assert plan.concurrency is not None
    total = plan.planned_requests
    if total is None:  # open-ended: split the slots and the counts, feed requests on demand
        k = max(1, min(workers, plan.concurrency, plan.limits.requests or workers))
        router = Router(requests, k, session_key)
        slots = split_counts(plan.concurrency, k)
        budget: list[int | None] = (
            list(split_counts(plan.limits.requests, k)) if plan.limits.requests is not None else [None] * k
        )
        warmup = plan.limits.warmup
        warm_split = split_counts(warmup.requests, k) if warmup.requests else [0] * k
        shares = []
        for w in range(k):
            update: dict[str, object] = {
                "requests": budget[w],
                "warmup": warmup if warmup.seconds else Warmup(requests=warm_split[w]),
            }
            share_plan = Plan(slots[w], None, warm_split[w], limits.model_copy(update=update))
            shares.append(Share(w, share_plan, router.take(w, feed_chunk), more=True))
        return shares, router
    k = max(1, min(workers, plan.concurrency, plan.limits.requests or 1))
    router = Router(requests, k, session_key)
    router.draw(total)
    routed = [router.take_all(w) for w in range(k)]
    warm_n = plan.limits.warmup.requests
    # A worker whose requests are all warm-up (sessions routed that way) hands them to the first one.
    measured = [sum(1 for j, _ in items if j >= warm_n) for items in routed]
    keep = [w for w in range(k) if measured[w]] or [0]
    for w in range(k):
        if w not in keep:
            routed[keep[0]] = sorted(routed[keep[0]] + routed[w], key=lambda item: item[0])
    slots = split_counts(plan.concurrency, len(keep))
    shares = []
    for slot, w in zip(slots, keep, strict=True):
        items = routed[w]
        warm_count = sum(1 for j, _ in items if j < warm_n)
        fixed: dict[str, object] = {
            "requests": max(1, len(items) - warm_count),
            "warmup": Warmup(requests=warm_count),
        }
        share_plan = Plan(slot, None, warm_count, limits.model_copy(update=fixed))
        shares.append(Share(len(shares), share_plan, items, more=False))
    return shares, router
