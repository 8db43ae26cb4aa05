"""Levers side by side, for the report's "levers" section: for each router, cascade and cache, what it
would save and what it would cost in accuracy, with CIs, and which one the measurements favour.

- A route or cascade: saved = 1 − its held-out $ ÷ the strong model's on the same items; the accuracy
  change is the paired held-out difference against the strong model (Newcombe 95% CI).
- A cache: saved = net $ saved ÷ spend on the measured part; the accuracy change is −(false hits ÷
  measured requests), with the Wilson 95% interval of that share (a served wrong answer counts against the
  cache even where the model itself would have been wrong too: an upper bound on the harm).
- A prompt version: saved = 1 − its $ ÷ the base version's on the items both scored (a shorter prompt
  costs less on every request); the accuracy change is the paired difference against the base version.
- The provider's prompt caching, as a load run measured it: saved = 1 − its billed $ ÷ the same tokens
  billed uncached; it serves the model's own answer to the exact prompt, so it changes no answer (0
  points, no interval to estimate).
The favoured lever saves the largest share among those whose accuracy change is within `max_drop_points`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bench.stats import paired_compare, wilson
from bench.whatif.cache import CacheReport, CacheRun
from bench.whatif.model import Option
from bench.whatif.route import PolicyResult, RouteReport

LeverKind = Literal["route", "cache", "prompt", "provider-cache"]


@dataclass(frozen=True)
class Lever:
    """One lever's saving and accuracy cost."""

    name: str
    kind: LeverKind
    saved_share: float | None  # of spend; None when costs are unknown
    accuracy_points: float  # change (negative: lost)
    accuracy_ci95_points: tuple[float, float] | None  # None: nothing to estimate (no answer changes)
    items: int  # items (held out) or requests (measured) it was measured on
    mcnemar_p: float | None = None  # paired levers: McNemar's exact p of the accuracy change


def _route_lever(p: PolicyResult, strong_usd: float | None) -> Lever:
    cost = p.figures.cost_usd
    saved = None if cost is None or not strong_usd else 1 - cost / strong_usd
    vs = p.vs_strong
    return Lever(p.name, "route", saved, vs.diff_points, vs.ci95_points, p.figures.n, vs.p_value)


def _cache_lever(run: CacheRun) -> Lever:
    m = run.measured
    name = "exact cache" if run.threshold is None else f"semantic cache ≥ {run.threshold:g}"
    saved = None if m.net_saved_usd is None or not m.spend_usd else m.net_saved_usd / m.spend_usd
    share = wilson(m.false_hits, m.requests)
    lo, hi = share.ci95 or (0.0, 0.0)
    lost = 100 * (share.score or 0.0)
    return Lever(
        name, "cache", saved, -lost if lost else 0.0, (-100 * hi, -100 * lo if lo else 0.0), m.requests
    )


def prompt_lever(base: Option, version: Option) -> Lever | None:
    """`version` (a prompt version's run) against `base` (the base version's) on the items both scored;
    None when they share none."""
    ids = sorted(set(base.items) & set(version.items))
    if not ids:
        return None
    vs = paired_compare(
        {i: base.items[i].correct for i in ids}, {i: version.items[i].correct for i in ids}, resamples=0
    )
    costs = [(base.items[i].cost_usd, version.items[i].cost_usd) for i in ids]
    saved = None
    if all(a is not None and b is not None for a, b in costs):
        spent = sum(a or 0.0 for a, _ in costs)
        saved = 1 - sum(b or 0.0 for _, b in costs) / spent if spent else None
    return Lever(version.name, "prompt", saved, vs.diff_points, vs.ci95_points, vs.n, vs.p_value)


def provider_cache_lever(name: str, billed_usd: float, uncached_usd: float, requests: int) -> Lever:
    """The provider's prompt caching a load run measured: `billed_usd` as billed (cache reads and writes at
    their prices) against `uncached_usd`, the same tokens at the base input price."""
    saved = 1 - billed_usd / uncached_usd if uncached_usd else None
    return Lever(name, "provider-cache", saved, 0.0, None, requests)


def levers(
    route: RouteReport | None = None, cache: CacheReport | None = None, *, more: Sequence[Lever] = ()
) -> list[Lever]:
    """Every lever measured, the largest saving first (unknown savings last)."""
    found: list[Lever] = []
    if route is not None:
        strong = next(o for o in route.options if o.name == route.strong)
        found += [_route_lever(p, strong.figures.cost_usd) for p in route.policies]
    if cache is not None:
        found += [_cache_lever(r) for r in [cache.exact, *cache.semantic]]
    found += more
    return sorted(found, key=lambda lever: (lever.saved_share is None, -(lever.saved_share or 0.0)))


def favoured(found: list[Lever], max_drop_points: float = 1.0) -> Lever | None:
    """The lever that saves most among those losing at most `max_drop_points`; None when none saves."""
    ok = [lv for lv in found if lv.saved_share is not None and lv.saved_share > 0]
    ok = [lv for lv in ok if lv.accuracy_points >= -max_drop_points]
    return max(ok, key=lambda lv: lv.saved_share or 0.0, default=None)
