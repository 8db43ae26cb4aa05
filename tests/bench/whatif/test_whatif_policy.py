"""What a route and a cascade cost, per item, from measured costs and latencies: hand-computed cases."""

from __future__ import annotations

import pytest

from bench.whatif.model import ItemOutcome
from bench.whatif.policy import SignalCost, by_area, cascaded, figures, oracle, routed, single

# Four items. Cheap: $0.001 and 100 ms each, right on 1 and 2. Strong: $0.010 and 400 ms, right on 1, 2, 4.
CHEAP = [ItemOutcome(f"i{n}", "a" if n < 3 else "b", n in (1, 2), 0.001, 100.0) for n in (1, 2, 3, 4)]
STRONG = [ItemOutcome(f"i{n}", "a" if n < 3 else "b", n != 3, 0.010, 400.0) for n in (1, 2, 3, 4)]
TO_STRONG = [False, True, False, True]  # items 2 and 4 go to the strong model


def test_cost_of_a_route_by_hand() -> None:
    """A router sends items 2 and 4 to strong, with a $0.0002, 5 ms signal per item.
    Cost: cheap on 1, 3 (2 × .001) + strong on 2, 4 (2 × .010) + signal 4 × .0002 = .0228 $;
    per 1k items .0228 / 4 × 1000 = 5.7 $. Right: 1 (cheap), 2 (strong), 4 (strong); 3 wrong → 3 of 4;
    $ per correct .0228 / 3 = .0076. Latencies 105, 405, 105, 405 ms: mean 255; p95 at rank 3·.95 = 2.85
    of the sorted 105, 105, 405, 405 → 405. Strong share 2/4."""
    signal = SignalCost(usd=0.0002, ms=5.0)
    results = [routed(c, s, go, signal) for c, s, go in zip(CHEAP, STRONG, TO_STRONG, strict=True)]
    fig = figures(results)
    assert [r.cost_usd for r in results] == pytest.approx([0.0012, 0.0102, 0.0012, 0.0102])
    assert [r.latency_ms for r in results] == [105.0, 405.0, 105.0, 405.0]
    assert (fig.n, fig.correct, fig.strong_share) == (4, 3, 0.5)
    assert fig.cost_usd == pytest.approx(0.0228)
    assert fig.usd_per_1k_items == pytest.approx(5.7)
    assert fig.usd_per_correct == pytest.approx(0.0076)
    assert (fig.latency_mean_ms, fig.latency_p95_ms) == (255.0, 405.0)


def test_cost_of_a_cascade_by_hand() -> None:
    """A cascade with a judge signal ($0.0005 and 50 ms per item) escalates items 2 and 4.
    Cost: cheap on all 4 (.004) + judge on all 4 (.002) + strong on 2 and 4 (.020) = .026 $;
    per 1k 6.5 $. Latency: kept items 100 + 50 = 150 ms; escalated 100 + 50 + 400 = 550 ms (the cheap
    answer and the judge come first). Right: 1 (cheap), 2 (strong), 4 (strong) → 3 of 4; $ per correct
    .026 / 3 = .0086667."""
    judge = SignalCost(usd=0.0005, ms=50.0)
    results = [cascaded(c, s, go, judge) for c, s, go in zip(CHEAP, STRONG, TO_STRONG, strict=True)]
    fig = figures(results)
    assert [r.cost_usd for r in results] == pytest.approx([0.0015, 0.0115, 0.0015, 0.0115])
    assert [r.latency_ms for r in results] == [150.0, 550.0, 150.0, 550.0]
    assert fig.cost_usd == pytest.approx(0.026)
    assert fig.usd_per_1k_items == pytest.approx(6.5)
    assert fig.usd_per_correct == pytest.approx(0.026 / 3)
    assert fig.correct == 3 and fig.latency_p95_ms == 550.0


def test_a_cascade_that_never_escalates_still_pays_its_signal() -> None:
    results = [cascaded(c, s, False, SignalCost(0.0005)) for c, s in zip(CHEAP, STRONG, strict=True)]
    assert figures(results).cost_usd == pytest.approx(4 * 0.0015)


def test_unknown_cost_is_unknown_not_zero() -> None:
    free = ItemOutcome("i1", "a", True, None, 100.0)
    assert routed(free, STRONG[0], False).cost_usd is None
    assert cascaded(free, STRONG[0], False).cost_usd is None
    assert cascaded(CHEAP[0], STRONG[0], False, SignalCost(usd=None)).cost_usd is None
    fig = figures([single(free), single(CHEAP[1])])
    assert fig.cost_usd is None and fig.usd_per_1k_items is None and fig.usd_per_correct is None


def test_oracle_takes_the_cheapest_right_answer() -> None:
    """Item 1: both right → cheap ($.001). Item 3: both wrong → the cheapest, cheap. Item 4: strong only."""
    picks = [oracle([c, s], strong_index=1) for c, s in zip(CHEAP, STRONG, strict=True)]
    assert [p.strong_call for p in picks] == [False, False, False, True]
    fig = figures(picks)
    assert fig.correct == 3 and fig.cost_usd == pytest.approx(0.013)


def test_by_area() -> None:
    results = [routed(c, s, go) for c, s, go in zip(CHEAP, STRONG, TO_STRONG, strict=True)]
    areas = by_area(results)
    assert list(areas) == ["a", "b"]
    assert (areas["a"].correct, areas["b"].correct, areas["b"].strong_share) == (2, 1, 0.5)
