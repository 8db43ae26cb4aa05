"""What a policy costs and scores on each item, from each item's measured cost and latency, and the figures
of a set of items (accuracy with its Wilson CI, $ per 1k items, $ per correct answer, p95 latency).

Cost model (per item):
- a single option, and the oracle, pay the option that answers: its cost and its latency;
- a router pays the model it picked, plus its signal's own cost and time (spent before generation);
- a cascade pays the cheap model on every item and its signal (a judge call, say) on every item, and the
  strong model on the items it escalates; an escalated item waits for the cheap answer, the signal and then
  the strong answer, so their latencies add.
A cost or latency that any part lacks makes the item's figure unknown (None), never zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bench.metrics.distribution import percentile
from bench.stats import Proportion, wilson
from bench.whatif.model import ItemOutcome


@dataclass(frozen=True, slots=True)
class SignalCost:
    """What computing a signal costs for one item: USD and milliseconds."""

    usd: float | None = 0.0  # None: the signal's cost is unknown (a judge without a price)
    ms: float = 0.0


FREE = SignalCost()


@dataclass(frozen=True, slots=True)
class ItemResult:
    """One item under one policy: right or wrong, what it cost and took, and whether the strong model ran."""

    item_id: str
    area: str
    correct: bool
    cost_usd: float | None
    latency_ms: float | None
    strong_call: bool


def _add(*parts: float | None) -> float | None:
    return None if any(p is None for p in parts) else sum(p for p in parts if p is not None)


def single(outcome: ItemOutcome, *, strong_call: bool = False) -> ItemResult:
    """The option itself answers the item."""
    o = outcome
    return ItemResult(o.item_id, o.area, o.correct, o.cost_usd, o.latency_ms, strong_call)


def routed(cheap: ItemOutcome, strong: ItemOutcome, to_strong: bool, signal: SignalCost = FREE) -> ItemResult:
    """A router's item: the model it chose, plus the signal's cost and time before generation."""
    chosen = strong if to_strong else cheap
    return ItemResult(
        chosen.item_id,
        chosen.area,
        chosen.correct,
        _add(chosen.cost_usd, signal.usd),
        _add(chosen.latency_ms, signal.ms),
        to_strong,
    )


def cascaded(
    cheap: ItemOutcome, strong: ItemOutcome, escalate: bool, signal: SignalCost = FREE
) -> ItemResult:
    """A cascade's item: the cheap model and the signal always; the strong model too when it escalates."""
    cost = _add(cheap.cost_usd, signal.usd, strong.cost_usd if escalate else 0.0)
    latency = _add(cheap.latency_ms, signal.ms, strong.latency_ms if escalate else 0.0)
    correct = strong.correct if escalate else cheap.correct
    return ItemResult(cheap.item_id, cheap.area, correct, cost, latency, escalate)


def oracle(outcomes: Sequence[ItemOutcome], strong_index: int) -> ItemResult:
    """The cheapest option that answers right (the cheapest of all when none does); unknown costs last."""

    def key(i: int) -> tuple[bool, bool, float, int]:
        o = outcomes[i]
        return (not o.correct, o.cost_usd is None, o.cost_usd or 0.0, i)

    best = min(range(len(outcomes)), key=key)
    return single(outcomes[best], strong_call=best == strong_index)


@dataclass(frozen=True)
class Figures:
    """A policy's figures over a set of items."""

    n: int
    correct: int
    accuracy: Proportion  # share right with its 95% Wilson interval
    strong_share: float  # share of items on which the strong model ran
    cost_usd: float | None  # total; None when any item's cost is unknown
    usd_per_1k_items: float | None
    usd_per_correct: float | None  # None also when nothing is right
    latency_p95_ms: float | None  # None when any item's latency is unknown
    latency_mean_ms: float | None

    def to_json(self) -> dict[str, object]:
        return {
            "n": self.n,
            "correct": self.correct,
            "accuracy": self.accuracy.score,
            "accuracy_ci95": self.accuracy.ci95,
            "strong_share": self.strong_share,
            "cost_usd": self.cost_usd,
            "usd_per_1k_items": self.usd_per_1k_items,
            "usd_per_correct": self.usd_per_correct,
            "latency_p95_ms": self.latency_p95_ms,
            "latency_mean_ms": self.latency_mean_ms,
        }


def figures(results: Iterable[ItemResult]) -> Figures:
    """Accuracy, strong share, cost and latency of a policy over `results` (p95 by linear interpolation)."""
    rows = list(results)
    n = len(rows)
    if n == 0:
        raise ValueError("no items to summarize")
    correct = sum(r.correct for r in rows)
    costs = [r.cost_usd for r in rows]
    total = None if any(c is None for c in costs) else sum(c for c in costs if c is not None)
    latencies = [r.latency_ms for r in rows]
    known = sorted(x for x in latencies if x is not None)
    complete = len(known) == n
    return Figures(
        n=n,
        correct=correct,
        accuracy=wilson(correct, n),
        strong_share=sum(r.strong_call for r in rows) / n,
        cost_usd=total,
        usd_per_1k_items=None if total is None else total / n * 1000,
        usd_per_correct=None if total is None or correct == 0 else total / correct,
        latency_p95_ms=percentile(known, 95) if complete else None,
        latency_mean_ms=sum(known) / n if complete else None,
    )


def by_area(results: Iterable[ItemResult]) -> dict[str, Figures]:
    """`figures` of each area, areas sorted."""
    groups: dict[str, list[ItemResult]] = {}
    for r in results:
        groups.setdefault(r.area, []).append(r)
    return {area: figures(groups[area]) for area in sorted(groups)}
