"""RouteLLM's APGR and CPT on curves small enough to compute by hand, and against numpy's trapz/interp,
which RouteLLM's evals/evaluate.py calls."""

from __future__ import annotations

import numpy as np
import pytest

from bench.whatif.curve import CurvePoint, apgr, cpt, pgr

WEAK, STRONG = 0.5, 0.9
CURVE = [CurvePoint(1.0, 0.9), CurvePoint(0.0, 0.5), CurvePoint(0.5, 0.8)]  # any order: sorted by share


def test_apgr_by_hand() -> None:
    """Points (share, acc): (0, .5), (.5, .8), (1, .9); weak .5, strong .9.
    PGR = 0, .75, 1. Area under PGR = .5·(0 + .75)/2 + .5·(.75 + 1)/2 = .1875 + .4375 = .625.
    RouteLLM's way: AUC = .5·(.5+.8)/2 + .5·(.8+.9)/2 = .325 + .425 = .75; weak AUC .5, strong AUC .9:
    (.75 − .5)/(.9 − .5) = .625."""
    assert apgr(CURVE, WEAK, STRONG) == pytest.approx(0.625, abs=1e-12)
    assert [pgr(p.accuracy, WEAK, STRONG) for p in CURVE] == pytest.approx([1.0, 0.0, 0.75])


def test_cpt50_and_cpt80_by_hand() -> None:
    """CPT(50%): accuracy .5 + .5·.4 = .7, between (0, .5) and (.5, .8): share .5·(.7 − .5)/.3 = 1/3.
    CPT(80%): accuracy .5 + .8·.4 = .82, between (.5, .8) and (1, .9): share .5 + .5·(.02/.1) = .6."""
    assert cpt(CURVE, WEAK, STRONG, 0.5) == pytest.approx(1 / 3, abs=1e-12)
    assert cpt(CURVE, WEAK, STRONG, 0.8) == pytest.approx(0.6, abs=1e-12)


def test_the_same_as_routellms_numpy_calls_on_a_rising_curve() -> None:
    xs = [0.0, 0.1, 0.3, 0.45, 0.7, 1.0]
    ys = [0.42, 0.5, 0.61, 0.66, 0.7, 0.74]
    points = [CurvePoint(x, y) for x, y in zip(xs, ys, strict=True)]
    weak, strong = 0.42, 0.74
    auc = float(np.trapezoid(ys, xs))
    weak_auc = float(np.trapezoid([weak] * len(xs), xs))
    strong_auc = float(np.trapezoid([strong] * len(xs), xs))
    assert apgr(points, weak, strong) == pytest.approx((auc - weak_auc) / (strong_auc - weak_auc), abs=1e-12)
    for share in (0.2, 0.5, 0.8):
        want = float(np.interp(share * (strong - weak) + weak, ys, xs))
        assert cpt(points, weak, strong, share) == pytest.approx(want, abs=1e-12)


def test_cpt_is_the_first_crossing_and_none_when_never_reached() -> None:
    """Accuracy dips after reaching the target: the least share that reached it counts."""
    wavy = [CurvePoint(0.0, 0.5), CurvePoint(0.2, 0.8), CurvePoint(0.4, 0.6), CurvePoint(1.0, 0.9)]
    assert cpt(wavy, WEAK, STRONG, 0.5) == pytest.approx(0.2 * (0.2 / 0.3))
    short = [CurvePoint(0.0, 0.5), CurvePoint(0.5, 0.6)]
    assert cpt(short, WEAK, STRONG, 0.8) is None


def test_no_gap_means_no_apgr_or_cpt() -> None:
    assert apgr(CURVE, 0.9, 0.9) is None and cpt(CURVE, 0.9, 0.5, 0.5) is None
    assert apgr([CurvePoint(0.3, 0.7)], WEAK, STRONG) is None  # one point: no range of shares
