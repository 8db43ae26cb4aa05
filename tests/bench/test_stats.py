"""Wilson intervals, exact McNemar, Newcombe's paired score interval and the t-interval of a mean, against
hand-checked values."""

from __future__ import annotations

import pytest

from bench.stats import mcnemar_exact, mean_ci95, paired_compare, paired_interval, t95, wilson


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


def _runs(both: int, a_only: int, b_only: int, neither: int) -> tuple[dict[str, bool], dict[str, bool]]:
    cells = [(True, True)] * both + [(True, False)] * a_only + [(False, True)] * b_only
    cells += [(False, False)] * neither
    return ({f"q{i}": x for i, (x, _) in enumerate(cells)}, {f"q{i}": y for i, (_, y) in enumerate(cells)})


def test_no_discordant_pair_gives_a_real_interval_not_zero_width() -> None:
    """n = 10, 7 right on both sides, 3 wrong on both (0 discordant pairs); by hand, z = 1.959964:

    Wilson 7/10: centre (0.7 + z²/20) / (1 + z²/10) = 0.89207 / 1.38415 = 0.64450, half-width
    z·sqrt(0.021 + z²/400) / 1.38415 = 0.24772, so [0.39678, 0.89221]: down 0.30322, up 0.19221.
    ψ = (ad − bc − n/2) / sqrt(7·3·7·3) = (21 − 0 − 5) / 21 = 0.76190.
    Half-width of B − A = sqrt(0.30322² + 0.19221² − 2·0.76190·0.30322·0.19221)
                        = sqrt(0.091942 + 0.036945 − 0.088810) = sqrt(0.040077) = 0.20019 on either side.
    The paired bootstrap gave [0.0, 0.0] here: every resample has the same items right on both sides.
    """
    a, b = _runs(7, 0, 0, 3)
    c = paired_compare(a, b)
    assert c.diff_points == 0.0 and c.p_value == 1.0
    assert c.ci95_points == pytest.approx((-20.02, 20.02), abs=0.005)
    lo, hi = paired_interval(7, 0, 0, 3)
    assert round(lo, 4) == -0.2002 and round(hi, 4) == 0.2002


def test_three_against_one_discordant_pairs() -> None:
    """n = 20: 12 right on both, A alone right on 3 (b), B alone right on 1 (c), 4 wrong on both.

    p_A = 15/20 = 0.75, p_B = 13/20 = 0.65, B − A = −0.10; exact McNemar p = 2·(C(4,0) + C(4,1)) / 2⁴ = 0.625.
    Wilson 15/20: centre 0.84604 / 1.19207 = 0.70972, half 1.96·0.108517 / 1.19207 = 0.17842
      → [0.53130, 0.88814].
    Wilson 13/20: centre 0.74604 / 1.19207 = 0.62583, half 1.96·0.117371 / 1.19207 = 0.19298
      → [0.43285, 0.81881].
    ψ = (12·4 − 3·1 − 20/2) / sqrt(15·5·13·7) = 35 / 82.6136 = 0.42366.
    Lower: −0.10 − sqrt(0.21715² + 0.13814² − 2·0.42366·0.21715·0.13814)
         = −0.10 − sqrt(0.047154 + 0.019083 − 0.025417) = −0.10 − 0.20204 = −0.30204.
    Upper: −0.10 + sqrt(0.16881² + 0.21870² − 2·0.42366·0.16881·0.21870)
         = −0.10 + sqrt(0.028496 + 0.047830 − 0.031282) = −0.10 + 0.21224 = +0.11224.
    """
    a, b = _runs(12, 3, 1, 4)
    c = paired_compare(a, b)
    assert (c.a_only, c.b_only, c.n) == (3, 1, 20)
    assert c.diff_points == pytest.approx(-10.0) and c.p_value == pytest.approx(0.625)
    lo, hi = paired_interval(12, 3, 1, 4)
    assert (round(lo, 4), round(hi, 4)) == (-0.3020, 0.1122)
    assert c.ci95_points == pytest.approx((100 * lo, 100 * hi))


def test_the_interval_holds_the_estimate_and_stays_in_bounds() -> None:
    for cells in ((10, 0, 0, 0), (0, 0, 0, 10), (0, 5, 5, 0), (0, 10, 0, 0), (1, 0, 0, 0), (40, 1, 0, 59)):
        lo, hi = paired_interval(*cells)
        n = sum(cells)
        d = (cells[2] - cells[1]) / n
        assert -1.0 <= lo <= d <= hi <= 1.0 and lo < hi, (cells, lo, hi)
    with pytest.raises(ValueError, match="no paired items"):
        paired_interval(0, 0, 0, 0)


def test_t_quantiles_and_the_interval_of_a_mean() -> None:
    assert t95(1) == 12.706 and t95(4) == 2.776 and t95(100) == 1.96
    assert mean_ci95([1.0]) is None
    lo, hi = mean_ci95([1.0, 3.0]) or (0.0, 0.0)  # mean 2, s = sqrt(2), half = 12.706 × sqrt(2) / sqrt(2)
    assert (lo, hi) == pytest.approx((2 - 12.706, 2 + 12.706))
