"""RouteLLM's router metrics over an accuracy-against-strong-calls curve: PGR, APGR and CPT.

Definitions follow lm-sys/RouteLLM `routellm/evals/evaluate.py` exactly:

- PGR (performance gap recovered) of a point = (acc − acc_weak) / (acc_strong − acc_weak).
- APGR = (AUC − weak_AUC) / (strong_AUC − weak_AUC), where AUC is the trapezoid area under accuracy against
  the share of strong calls (points sorted by that share) and weak_AUC / strong_AUC are the areas under the
  constant weak / strong accuracies over the same range. Over shares 0..1 it is the area under PGR.
- CPT(x) (call-performance threshold) = the share of strong calls at which the curve first reaches
  acc_weak + x·(acc_strong − acc_weak), by linear interpolation between points (RouteLLM: `np.interp` of
  that accuracy on the curve). Where the accuracies rise with the share this is `np.interp`; where they do
  not, the first crossing is the minimum share the definition asks for. None when the curve never gets there.

Shares are fractions (0..1); RouteLLM prints them as percentages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One point of a routing curve: the share of calls that went to the strong model and the accuracy."""

    strong_share: float  # 0..1
    accuracy: float  # 0..1


def _sorted(points: Sequence[CurvePoint]) -> list[CurvePoint]:
    return sorted(points, key=lambda p: p.strong_share)


def pgr(accuracy: float, weak: float, strong: float) -> float | None:
    """Performance gap recovered by `accuracy`; None when the strong model is not better than the weak."""
    if strong <= weak:
        return None
    return (accuracy - weak) / (strong - weak)


def _trapezoid(xs: Sequence[float], ys: Sequence[float]) -> float:
    return sum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(len(xs) - 1))


def apgr(points: Sequence[CurvePoint], weak: float, strong: float) -> float | None:
    """Average performance gap recovered (RouteLLM APGR); None without a gap or a range of shares."""
    ordered = _sorted(points)
    if strong <= weak or len(ordered) < 2:
        return None
    xs = [p.strong_share for p in ordered]
    span = xs[-1] - xs[0]
    if span <= 0:
        return None
    auc = _trapezoid(xs, [p.accuracy for p in ordered])
    weak_auc, strong_auc = weak * span, strong * span
    return (auc - weak_auc) / (strong_auc - weak_auc)


def cpt(points: Sequence[CurvePoint], weak: float, strong: float, share_of_gap: float) -> float | None:
    """Call-performance threshold: the least share of strong calls that reaches `share_of_gap` PGR."""
    ordered = _sorted(points)
    if strong <= weak or not ordered:
        return None
    want = weak + share_of_gap * (strong - weak)
    for i, point in enumerate(ordered):
        if point.accuracy >= want:
            if i == 0:
                return point.strong_share
            before = ordered[i - 1]
            rise = point.accuracy - before.accuracy
            return (
                before.strong_share
                + (want - before.accuracy) * (point.strong_share - before.strong_share) / rise
            )
    return None
