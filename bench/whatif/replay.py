"""Replaying a log through a cache with honest timing: an entry is ready only once the request that made it
has completed; a request that matches an entry still in flight is a miss (and is counted as one).

A log without timestamps is replayed in order, each request completing before the next arrives.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from bench.whatif.requestlog import LoggedRequest, Scope, canonical, is_timed, partition

CacheKind = Literal["exact", "semantic"]
UNTIMED_NOTE = (
    "the log has no timestamps: replayed in order, each request completing before the next arrives, "
    "so no duplicate is ever in flight (hit rates are an upper bound)"
)


@dataclass(frozen=True, slots=True)
class Hit:
    """A request answered from the cache with an earlier request's answer."""

    index: int
    source: int
    similarity: float | None  # cosine for semantic hits


@dataclass(frozen=True)
class Replay:
    """What one cache did on the log."""

    kind: CacheKind
    threshold: float | None
    hits: dict[int, Hit]
    in_flight: frozenset[int]  # misses whose match was still in flight


def timeline(log: Sequence[LoggedRequest]) -> tuple[list[int], list[float], list[float], list[str]]:
    """(indices by arrival, arrival s, completion s, notes); untimed logs take their order as the clock."""
    notes: list[str] = []
    if not is_timed(log):
        arrival = [float(i) for i in range(len(log))]
        return list(range(len(log))), arrival, [a + 0.5 for a in arrival], [UNTIMED_NOTE]
    arrival = [r.arrival_s or 0.0 for r in log]
    completion: list[float] = []
    guessed = 0
    for r, a in zip(log, arrival, strict=True):
        if r.completion_s is None:
            guessed += 1
        completion.append(a if r.completion_s is None else max(a, r.completion_s))
    if guessed:
        notes.append(f"{guessed} requests have no completion time or latency: taken as complete on arrival")
    order = sorted(range(len(log)), key=lambda i: (arrival[i], i))
    return order, arrival, completion, notes


class _Index(Protocol):
    """Entries a request can match: added, removed, and the best match of request i (with its cosine)."""

    def add(self, j: int) -> None: ...

    def remove(self, j: int) -> None: ...

    def find(self, i: int) -> tuple[int, float | None] | None: ...


class _ExactIndex:
    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = keys
        self.by_key: dict[str, list[int]] = {}

    def add(self, j: int) -> None:
        self.by_key.setdefault(self.keys[j], []).append(j)

    def remove(self, j: int) -> None:
        self.by_key[self.keys[j]].remove(j)

    def find(self, i: int) -> tuple[int, float | None] | None:
        found = self.by_key.get(self.keys[i])
        return (found[0], None) if found else None


class _SemanticIndex:
    def __init__(self, matrix: Any, groups: Sequence[str], threshold: float) -> None:
        self.matrix = matrix
        self.groups = groups
        self.threshold = threshold
        self.by_group: dict[str, list[int]] = {}

    def add(self, j: int) -> None:
        self.by_group.setdefault(self.groups[j], []).append(j)

    def remove(self, j: int) -> None:
        self.by_group[self.groups[j]].remove(j)

    def find(self, i: int) -> tuple[int, float | None] | None:
        same = self.by_group.get(self.groups[i])
        if not same:
            return None
        sims = self.matrix[same] @ self.matrix[i]
        best = int(sims.argmax())
        sim = float(sims[best])
        return (same[best], sim) if sim >= self.threshold else None


def _replay(
    log: Sequence[LoggedRequest], make: Callable[[], _Index]
) -> tuple[dict[int, Hit], frozenset[int]]:
    """Walk the log by arrival: entries become ready when their request completes; misses start entries."""
    order, arrival, completion, _ = timeline(log)
    ready, flying = make(), make()
    pending: list[tuple[float, int]] = []
    hits: dict[int, Hit] = {}
    in_flight: set[int] = set()
    for i in order:
        while pending and pending[0][0] <= arrival[i]:
            j = heapq.heappop(pending)[1]
            flying.remove(j)
            ready.add(j)
        found = ready.find(i)
        if found is not None:
            hits[i] = Hit(i, found[0], found[1])
            continue
        if flying.find(i) is not None:
            in_flight.add(i)
        if log[i].ok:
            heapq.heappush(pending, (completion[i], i))
            flying.add(i)
    return hits, frozenset(in_flight)


def replay_exact(log: Sequence[LoggedRequest]) -> Replay:
    """The exact cache: the key is the canonical request body."""
    keys = [canonical(r.body) for r in log]
    hits, in_flight = _replay(log, lambda: _ExactIndex(keys))
    return Replay("exact", None, hits, in_flight)


def replay_semantic(
    log: Sequence[LoggedRequest], vectors: Sequence[Sequence[float]], threshold: float, scope: Scope
) -> Replay:
    """The semantic cache at one threshold: the nearest earlier entry with cosine ≥ threshold."""
    import numpy as np

    matrix = np.asarray(vectors, dtype=np.float64)
    groups = [partition(r.body) + (f"\0{r.session_id}" if scope == "session" else "") for r in log]
    hits, in_flight = _replay(log, lambda: _SemanticIndex(matrix, groups, threshold))
    return Replay("semantic", threshold, hits, in_flight)
