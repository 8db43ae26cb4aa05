"""Wilson intervals, exact McNemar and the paired bootstrap, against hand-checked values."""

from __future__ import annotations

import pytest

from bench.accuracy.stats import mcnemar_exact, paired_compare, wilson


def test_wilson_known_values() -> None:
    p = wilson(70, 100)
    assert p.score == 0.7
    # Wilson score interval for 70/100 at z = 1.96: [0.6041, 0.7810]
    assert p.ci95[0] == pytest.approx(0.6041, abs=1e-4)
    assert p.ci95[1] == pytest.approx(0.7810, abs=1e-4)
    assert wilson(0, 10).ci95[0] == 0.0 and wilson(0, 10).ci95[1] == pytest.approx(0.2775, abs=1e-4)
    assert wilson(10, 10).ci95[1] == pytest.approx(1.0)
    assert wilson(0, 0).ci95 is None and wilson(0, 0).score is None  # nothing scored: no score


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 50, 101, 400, 1000, 12345])
def test_wilson_bounds_hold_the_estimate(n: int) -> None:
    for correct in {0, 1, n // 3, n // 2, n - 1, n}:
        p = wilson(correct, n)
        assert p.score is not None and p.ci95 is not None
        lo, hi = p.ci95
        assert 0.0 <= lo <= p.score <= hi <= 1.0
    assert wilson(0, n).ci95[0] == 0.0 and wilson(n, n).ci95[1] == 1.0  # type: ignore[index]


def test_mcnemar_exact() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0
    # 10 discordant pairs all one way: 2 * 0.5**10
    assert mcnemar_exact(10, 0) == pytest.approx(2 / 1024)
    assert mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024)


def test_paired_compare_b_below_a() -> None:
    ids = [f"q{i}" for i in range(200)]
    a = {i: True for i in ids}
    b = {i: n % 5 != 0 for n, i in enumerate(ids)}  # B misses every fifth item
    c = paired_compare(a, b)
    assert c.n == 200 and c.a_only == 40 and c.b_only == 0
    assert c.diff_points == pytest.approx(-20.0)
    lo, hi = c.ci95_points
    assert lo < -20.0 < hi < 0
    assert c.p_value < 1e-6
    text = c.sentence("base", "quantized")
    assert text.startswith("quantized is 20.0 points below base")
    assert "95% CI [" in text and "significant at 5%" in text


def test_paired_compare_uses_common_items_and_is_deterministic() -> None:
    a = {"x": True, "y": False, "z": True}
    b = {"y": False, "z": True, "w": True}
    c = paired_compare(a, b)
    assert c.n == 2 and c.diff_points == 0.0
    assert "scores the same" in c.sentence()
    assert "not significant" in c.sentence()
    assert paired_compare(a, b) == c
    with pytest.raises(ValueError, match="share no scored items"):
        paired_compare({"a": True}, {"b": True})
