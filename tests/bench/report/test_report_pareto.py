"""The Pareto frontier of cost against accuracy, on hand-made points."""

from __future__ import annotations

from bench.report.analysis import pareto_front


def test_dominated_points_are_dropped_and_the_frontier_runs_cheapest_first() -> None:
    points = [
        ("frontier-api", 20.0, 0.95),
        ("mini-api", 0.9, 0.70),
        ("local", 0.06, 0.72),
        ("local-int8", 0.04, 0.71),
        ("dear-and-weak", 25.0, 0.60),
        ("mid", 5.0, 0.80),
    ]
    # mini-api (0.9, 0.70) is dominated by local (cheaper, more accurate); dear-and-weak by everyone.
    assert pareto_front(points) == ["local-int8", "local", "mid", "frontier-api"]


def test_ties_are_kept_and_equal_cost_keeps_the_more_accurate() -> None:
    assert pareto_front([("a", 1.0, 0.5), ("b", 1.0, 0.5)]) == ["a", "b"]
    assert pareto_front([("a", 1.0, 0.5), ("b", 1.0, 0.6)]) == ["b"]
    assert pareto_front([("a", 1.0, 0.6), ("b", 2.0, 0.6)]) == ["a"]
    assert pareto_front([]) == []
