"""Levers side by side, for the report's "levers" section: for each router, cascade and cache, what it
would save and what it would cost in accuracy, with CIs, and which one the measurements favour.

- A route or cascade: saved = 1 − its held-out $ ÷ the strong model's on the same items; the accuracy
  change is the paired held-out difference against the strong model (Newcombe 95% CI).
- A cache: saved = net $ saved ÷ spend on the measured part; the accuracy change is −(false hits ÷
  measured requests), with the Wilson 95% interval of that share (a served wrong answer counts against the
  cache even where the model itself would have been wrong too: an upper bound on the harm).
The favoured lever saves the largest share among those whose accuracy change is within `max_drop_points`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bench.stats import wilson
from bench.whatif.cache import CacheReport, CacheRun
from bench.whatif.route import PolicyResult, RouteReport


@dataclass(frozen=True)
class Lever:
    """One lever's saving and accuracy cost."""

    name: str
    kind: Literal["route", "cache"]
    saved_share: float | None  # of spend; None when costs are unknown
    accuracy_points: float  # change (negative: lost)
    accuracy_ci95_points: tuple[float, float]
    items: int  # items (held out) or requests (measured) it was measured on


def _route_lever(p: PolicyResult, strong_usd: float | None) -> Lever:
    cost = p.figures.cost_usd
    saved = None if cost is None or not strong_usd else 1 - cost / strong_usd
    return Lever(p.name, "route", saved, p.vs_strong.diff_points, p.vs_strong.ci95_points, p.figures.n)


def _cache_lever(run: CacheRun) -> Lever:
    m = run.measured
    name = "exact cache" if run.threshold is None else f"semantic cache ≥ {run.threshold:g}"
    saved = None if m.net_saved_usd is None or not m.spend_usd else m.net_saved_usd / m.spend_usd
    share = wilson(m.false_hits, m.requests)
    lo, hi = share.ci95 or (0.0, 0.0)
    return Lever(name, "cache", saved, -100 * (share.score or 0.0), (-100 * hi, -100 * lo), m.requests)


def levers(route: RouteReport | None = None, cache: CacheReport | None = None) -> list[Lever]:
    """Every lever measured, the largest saving first (unknown savings last)."""
    found: list[Lever] = []
    if route is not None:
        strong = next(o for o in route.options if o.name == route.strong)
        found += [_route_lever(p, strong.figures.cost_usd) for p in route.policies]
    if cache is not None:
        found += [_cache_lever(r) for r in [cache.exact, *cache.semantic]]
    return sorted(found, key=lambda lever: (lever.saved_share is None, -(lever.saved_share or 0.0)))


def favoured(found: list[Lever], max_drop_points: float = 1.0) -> Lever | None:
    """The lever that saves most among those losing at most `max_drop_points`; None when none saves."""
    ok = [lv for lv in found if lv.saved_share is not None and lv.saved_share > 0]
    ok = [lv for lv in ok if lv.accuracy_points >= -max_drop_points]
    return max(ok, key=lambda lv: lv.saved_share or 0.0, default=None)
