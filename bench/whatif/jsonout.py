"""The what-if reports as JSON documents: `llmbench.whatif-route/1` and `llmbench.whatif-cache/1`
(what `--json` prints; the report's levers section can read the typed reports directly)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from bench.stats import PairedComparison
from bench.whatif.cache import CacheFigures, CacheReport, CacheRun
from bench.whatif.policy import Figures
from bench.whatif.route import OptionResult, PolicyResult, RouteReport

ROUTE_SCHEMA = "llmbench.whatif-route/1"
CACHE_SCHEMA = "llmbench.whatif-cache/1"


def _threshold(t: float) -> float | None:
    return None if math.isinf(t) else t


def paired_json(vs: PairedComparison | None) -> dict[str, Any] | None:
    """B − A against the strong model: points, 95% CI, McNemar p."""
    if vs is None:
        return None
    return {
        "n": vs.n,
        "diff_points": vs.diff_points,
        "ci95_points": list(vs.ci95_points),
        "mcnemar_p": vs.p_value,
        "strong_only": vs.a_only,
        "policy_only": vs.b_only,
    }


def _areas(areas: dict[str, Figures]) -> dict[str, Any]:
    return {area: fig.to_json() for area, fig in areas.items()}


def option_json(o: OptionResult) -> dict[str, Any]:
    return {
        "name": o.name,
        **o.figures.to_json(),
        "vs_strong": paired_json(o.vs_strong),
        "areas": _areas(o.areas),
    }


def policy_json(p: PolicyResult) -> dict[str, Any]:
    return {
        "name": p.name,
        "signal": p.signal.model_dump(mode="json"),
        **p.figures.to_json(),
        "vs_strong": paired_json(p.vs_strong),
        "apgr": p.apgr,
        "cpt50": p.cpt50,
        "cpt80": p.cpt80,
        "fold_thresholds": [_threshold(t) for t in p.fold_thresholds],
        "train_drop_points": p.train_drop_points,
        "train_cost": p.train_cost,
        "train_strong_cost": p.train_strong_cost,
        "chosen_by": "usd" if p.by_cost else "strong_share",
        "fallback_items": p.fallback_items,
        "sweep": [{"target_share": s.target_share, **s.figures.to_json()} for s in p.sweep],
        "areas": _areas(p.areas),
        "policy": p.export.to_json(),
    }


def route_json(report: RouteReport) -> dict[str, Any]:
    """The whole route analysis."""
    return {
        "schema": ROUTE_SCHEMA,
        "items": report.items,
        "cheap": report.cheap,
        "strong": report.strong,
        "spec": report.spec.model_dump(mode="json"),
        "options": [option_json(o) for o in report.options],
        "oracle": option_json(report.oracle),
        "policies": [policy_json(p) for p in report.policies],
        "skipped": report.skipped,
        "chosen": None if report.chosen is None else report.chosen.name,
        "costs_known": report.costs_known,
        "notes": report.notes,
    }


def _figures(f: CacheFigures | None) -> dict[str, Any] | None:
    if f is None:
        return None
    data = dataclasses.asdict(f)
    rate = f.false_hit_rate
    data["false_hit_rate"] = {"score": rate.score, "ci95": rate.ci95, "judged": rate.n}
    return data


def _run(r: CacheRun) -> dict[str, Any]:
    return {
        "kind": r.kind,
        "threshold": r.threshold,
        "fill": _figures(r.fill),
        "measured": _figures(r.measured),
        "false_examples": [{"request": q, "served_from": s, "cosine": c} for q, s, c in r.false_examples],
    }


def cache_json(report: CacheReport) -> dict[str, Any]:
    """The whole cache replay."""
    provider = report.provider
    return {
        "schema": CACHE_SCHEMA,
        "requests": report.requests,
        "fill_requests": report.fill_requests,
        "timed": report.timed,
        "spec": report.spec.model_dump(mode="json"),
        "exact": _run(report.exact),
        "semantic": [_run(r) for r in report.semantic],
        "chosen_threshold": report.chosen_threshold,
        "provider_cache": None
        if provider is None
        else {**dataclasses.asdict(provider), "share": provider.share},
        "notes": report.notes,
    }
