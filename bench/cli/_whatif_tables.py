"""How `llmbench whatif` prints its reports: one table per analysis, then the details that decide."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.table import Table

from bench.cli._tables import folding, table_console
from bench.report.value import fmt_number, fmt_signed, fmt_usd

if TYPE_CHECKING:
    from bench.stats import PairedComparison
    from bench.whatif.cache import CacheFigures, CacheReport
    from bench.whatif.policy import Figures
    from bench.whatif.route import PolicyResult, RouteReport


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _usd(x: float | None) -> str:
    return "n/a" if x is None else fmt_usd(x)


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{fmt_number(x)} ms"


def _acc(fig: Figures) -> str:
    ci = fig.accuracy.ci95
    text = _pct(fig.accuracy.score)
    return text if ci is None else f"{text} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def _threshold(t: float) -> str:
    return "never" if math.isinf(t) else fmt_number(t)


def print_route(report: RouteReport) -> None:
    """The policies table, the chosen policy's areas and sensitivity, skipped signals and notes."""
    console = table_console()
    spec = report.spec
    head = (
        f"{report.items} shared items; cheap = {report.cheap}, strong = {report.strong}; thresholds chosen "
        f"on {spec.folds - 1} of {spec.folds} folds (stratified by area, seed {spec.seed}), reported held out"
    )
    table = Table(
        title=head,
        title_justify="left",
        caption="Δ: paired on items against strong (Newcombe 95% CI, McNemar p)",
    )
    for col in ("policy", "accuracy [95% CI]", "Δ vs strong (pts)", "strong calls", "$/1k items", "$/correct",
                "p95 latency", "APGR", "CPT50", "CPT80"):  # fmt: skip
        table.add_column(col, justify="left" if col == "policy" else "right")
    rows: list[tuple[str, Figures, PairedComparison | None, PolicyResult | None]] = [
        (o.name, o.figures, o.vs_strong, None) for o in [*report.options, report.oracle]
    ]
    rows += [(p.name, p.figures, p.vs_strong, p) for p in report.policies]
    for name, fig, vs, policy in rows:
        delta = "—" if vs is None else (
            f"{fmt_signed(vs.diff_points)} [{fmt_signed(vs.ci95_points[0])}, {fmt_signed(vs.ci95_points[1])}]"
            f" p={vs.p_value:.2g}"
        )  # fmt: skip
        mark = " *" if policy is not None and policy is report.chosen else ""
        extra = ["", "", ""] if policy is None else [
            "n/a" if policy.apgr is None else f"{policy.apgr:.3f}", _pct(policy.cpt50), _pct(policy.cpt80)
        ]  # fmt: skip
        table.add_row(name + mark, _acc(fig), delta, _pct(fig.strong_share), _usd(fig.usd_per_1k_items),
                      _usd(fig.usd_per_correct), _ms(fig.latency_p95_ms), *extra)  # fmt: skip
    console.print(folding(table))
    best = report.chosen
    if best is None:
        within = fmt_number(spec.max_drop_points)
        console.print(
            f"recommendation: stay on {report.strong} (no policy was cheaper within {within} pts on the "
            "training folds)",
            markup=False,
        )
    else:
        thresholds = ", ".join(_threshold(t) for t in best.fold_thresholds)
        console.print(
            f"recommendation: {best.name} (fold thresholds {thresholds}; fallback: {report.strong})",
            markup=False,
        )
        areas = Table(title=f"{best.name} by area (held out)", title_justify="left")
        for col in ("area", "items", "accuracy", f"{report.strong}", "Δ (pts)", "strong calls", "$/1k items"):
            areas.add_column(col, justify="left" if col == "area" else "right")
        strong_areas = next(o.areas for o in report.options if o.name == report.strong)
        for area, fig in best.areas.items():
            ref = strong_areas[area]
            diff = 100 * ((fig.accuracy.score or 0) - (ref.accuracy.score or 0))
            cells = [
                _pct(fig.accuracy.score),
                _pct(ref.accuracy.score),
                fmt_signed(diff),
                _pct(fig.strong_share),
            ]
            areas.add_row(area, str(fig.n), *cells, _usd(fig.usd_per_1k_items))
        console.print(folding(areas))
        sweep = Table(title=f"{best.name}: sensitivity to the threshold (held out)", title_justify="left")
        for col in ("aimed strong share", "strong calls", "accuracy [95% CI]", "$/1k items"):
            sweep.add_column(col, justify="right")
        for point in best.sweep:
            f = point.figures
            sweep.add_row(_pct(point.target_share), _pct(f.strong_share), _acc(f), _usd(f.usd_per_1k_items))
        console.print(folding(sweep))
    for name, why in report.skipped.items():
        console.print(f"skipped {name}: {why}", markup=False)
    for note in report.notes:
        console.print(f"note: {note}", markup=False)


def _cache_row(label: str, part: str, f: CacheFigures) -> list[str]:
    rate = f.false_hit_rate
    false = "n/a" if rate.score is None or rate.ci95 is None else (
        f"{_pct(rate.score)} [{100 * rate.ci95[0]:.1f}, {100 * rate.ci95[1]:.1f}] ({f.false_hits}/{rate.n})"
    )  # fmt: skip
    saved = "n/a" if f.net_saved_usd is None else _usd(f.net_saved_usd)
    if f.net_saved_usd is not None and f.spend_usd:
        saved += f" ({100 * f.net_saved_usd / f.spend_usd:.1f}%)"
    latency = "n/a" if f.latency_mean_without_ms is None or f.latency_mean_with_ms is None else (
        f"{fmt_number(f.latency_mean_without_ms)} → {fmt_number(f.latency_mean_with_ms)} ms"
    )  # fmt: skip
    return [label, part, f"{f.hits}/{f.requests} ({_pct(f.hit_rate)})", str(f.in_flight_misses), false,
            str(f.unjudged_hits), saved, latency]  # fmt: skip


def print_cache(report: CacheReport, source: str) -> None:
    """One row per cache and threshold, for the fill part and the measured part."""
    console = table_console()
    measured = report.requests - report.fill_requests
    title = (
        f"{source}: {report.requests} requests; fill on the first {report.fill_requests}, measured on the "
        f"last {measured} (by arrival); scope {report.spec.scope}"
    )
    c = report.spec.costs
    caption = (
        f"cost model per request: lookup {fmt_number(c.lookup_ms)} ms and {_usd(c.lookup_usd)}; semantic: + "
        f"embedding {fmt_number(c.embed_ms)} ms and ${fmt_number(c.embed_usd_per_1m_tokens)}/1M tokens. Net "
        "saved = hits' measured cost − every request's cache cost. False hits: Wilson 95% CI over judged hits"
    )
    table = Table(title=title, title_justify="left", caption=caption)
    for col in ("cache", "part", "hits", "in flight", "false-hit rate [95% CI]", "unjudged", "net $ saved",
                "mean latency"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("cache", "part") else "right")
    for run in [report.exact, *report.semantic]:
        label = "exact" if run.threshold is None else f"semantic ≥ {fmt_number(run.threshold)}"
        if run.threshold is not None and run.threshold == report.chosen_threshold:
            label += " *"
        if run.fill is not None:
            table.add_row(*_cache_row(label, "fill", run.fill))
        table.add_row(*_cache_row(label if run.fill is None else "", "measured", run.measured))
    console.print(folding(table))
    if report.chosen_threshold is not None:
        console.print(
            f"recommended semantic threshold (chosen on the fill part): {fmt_number(report.chosen_threshold)}"
        )
    for run in report.semantic:
        for request, served, cosine in run.false_examples:
            sim = "" if cosine is None else f" (cosine {cosine:.3f})"
            console.print(
                f"false hit at ≥ {run.threshold}: {request!r} served the answer to {served!r}{sim}",
                markup=False,
            )
    provider = report.provider
    if provider is not None:
        share = "not reported by the server" if provider.share is None else (
            f"{_pct(provider.share)} of {provider.input_tokens:,} input tokens read from the provider's cache"
        )  # fmt: skip
        console.print(f"provider prompt caching in this run: {share}", markup=False)
    for note in report.notes:
        console.print(f"note: {note}", markup=False)
