"""The report's charts as plotly figures (data only: the HTML renderer inlines plotly.js and draws them).

Each builder returns a figure, or None with nothing to draw; the caller shows the reason instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bench.cost import api_monthly_usd, monthly_capacity, selfhosted_monthly_usd
from bench.report.build import LoadPoint, Report
from bench.report.cells import simulated
from bench.report.operating import load_point
from bench.report.operating import measured_load as measured_of
from bench.report.value import bound_mark, fmt_tokens, fmt_usd
from bench.store import RunInfo

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_LAYOUT: dict[str, Any] = {
    "template": "plotly_white",
    "height": 420,
    "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    "legend": {"orientation": "h", "y": -0.2},
}


def _colors(report: Report) -> dict[str, str]:
    return {r.key: PALETTE[i % len(PALETTE)] for i, r in enumerate(report.rows)}


def _error_bars(values: list[float | None], cis: list[Any]) -> dict[str, Any]:
    """Asymmetric error bars in percent from shares and their (lo, hi) intervals (0 where unknown)."""
    up, down = [], []
    for v, ci in zip(values, cis, strict=True):
        ok = v is not None and ci is not None
        up.append(100 * (ci[1] - v) if ok else 0)
        down.append(100 * (v - ci[0]) if ok else 0)
    return {"type": "data", "symmetric": False, "array": up, "arrayminus": down}


def measured_load(run: RunInfo | None) -> float | None:
    """The load a run ran at: what was measured (mean in flight in its steady window, or its send rate),
    else the load it was asked for; None when unknown."""
    point = None if run is None else load_point(run)
    if run is None or point is None:
        return None
    measured = measured_of(run.load_summary)
    return measured if measured is not None else point[1]


def in_load_order(report: Report, points: list[LoadPoint]) -> list[LoadPoint]:
    """Probes in the order of the load they ran at (not the search's order), unknown loads last."""
    runs = {r.id: r for row in report.rows for r in row.option.load_runs}

    def order(p: LoadPoint) -> tuple[float, float]:
        load = measured_load(runs.get(p.run_id))
        return (math.inf if load is None else load, p.output_tok_s or 0.0)

    return sorted(points, key=order)


def latency_throughput(report: Report) -> go.Figure | None:
    """TTFT p95 and TPOT p95 against output tokens/s, one line per target in load order, the SLO dashed."""
    if not any(len(v) for v in report.curves.values()):
        return None
    colors = _colors(report)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("TTFT p95 (ms)", "TPOT p95 (ms)"))
    for key, points in report.curves.items():
        pts = in_load_order(report, [p for p in points if p.output_tok_s is not None])
        if not pts:
            continue
        x = [p.output_tok_s for p in pts]
        text = [
            f"{p.label}<br>attainment {'n/a' if p.attainment is None else f'{p.attainment:.1%}'}" for p in pts
        ]
        symbols = ["star" if p.is_operating_point else "circle" for p in pts]
        sizes = [14 if p.is_operating_point else 8 for p in pts]
        for col, ys in ((1, [p.ttft_p95 for p in pts]), (2, [p.tpot_p95 for p in pts])):
            fig.add_trace(
                go.Scatter(x=x, y=ys, mode="lines+markers", name=key, legendgroup=key, showlegend=col == 1,
                           text=text, line={"color": colors.get(key)},
                           marker={"symbol": symbols, "size": sizes},
                           hovertemplate="%{text}<br>%{x:.0f} tok/s: %{y:.1f} ms<extra>" + key + "</extra>"),
                row=1, col=col,
            )  # fmt: skip
    slo = report.slo or {}
    for col, bound in ((1, slo.get("ttft_ms")), (2, slo.get("tpot_ms"))):
        if bound:
            fig.add_hline(y=bound, line_dash="dash", line_color="black", row=1, col=col,
                          annotation_text=f"SLO {bound:g} ms", annotation_position="top left")  # fmt: skip
    fig.update_xaxes(title_text="output tokens/s")
    fig.update_layout(title="Latency against throughput (★ = operating point)", **_LAYOUT)
    return fig


def distributions(report: Report) -> go.Figure | None:
    """TTFT (every request) and ITL (sampled gaps) histograms of each option's operating-point run."""
    if not report.histograms:
        return None
    colors = _colors(report)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("TTFT (ms)", "ITL (ms, sampled gaps)"))
    for h in report.histograms:
        width = (h.hi - h.lo) / len(h.counts) if h.hi > h.lo else 1.0
        centres = [h.lo + (i + 0.5) * width for i in range(len(h.counts))]
        total = sum(h.counts) or 1
        fig.add_trace(
            go.Bar(x=centres, y=[c / total for c in h.counts], width=width, name=h.key, legendgroup=h.key,
                   showlegend=h.metric == "ttft", marker={"color": colors.get(h.key)}, opacity=0.6,
                   hovertext=h.note),
            row=1, col=1 if h.metric == "ttft" else 2,
        )  # fmt: skip
    fig.update_yaxes(title_text="share of requests", row=1, col=1)
    fig.update_yaxes(title_text="share of gaps", row=1, col=2)
    fig.update_layout(title="Latency distributions at the operating point", barmode="overlay", **_LAYOUT)
    return fig


def cost_accuracy(report: Report) -> go.Figure | None:
    """Accuracy against $/1M output tokens, one legend entry per option (circles self-hosted, diamonds
    APIs), the Pareto frontier marked."""
    rows = [r for r in report.rows if r.accuracy.value is not None and r.usd_per_1m_output.value is not None]
    if not rows:
        return None
    fig = go.Figure()
    colors = _colors(report)
    # One trace per option, named in the legend and on hover: text beside the markers overlaps when two
    # options sit close together (a base and its quantized variant usually do).
    for r in rows:
        cost = r.usd_per_1m_output
        name = r.key + (" (simulated accuracy)" if simulated(r.option) else "")
        hover = f"{r.key}<br>{bound_mark(cost.note)}{fmt_usd(cost.value or 0.0)} per 1M output tokens"
        fig.add_trace(go.Scatter(
            x=[cost.value], y=[100 * (r.accuracy.value or 0)], name=name, mode="markers",
            error_y=_error_bars([r.accuracy.value], [r.ci95]), hovertext=[hover],
            hovertemplate="%{hovertext}<br>accuracy %{y:.1f}%<extra></extra>",
            marker={"symbol": "circle" if r.option.kind == "self-hosted" else "diamond", "size": 12,
                    "color": colors.get(r.key)},
        ))  # fmt: skip
    by_key = {r.key: r for r in rows}
    front = [by_key[k] for k in report.downgrade.frontier if k in by_key]
    fig.add_trace(go.Scatter(
        x=[r.usd_per_1m_output.value for r in front], y=[100 * (r.accuracy.value or 0) for r in front],
        mode="lines", line={"shape": "hv", "dash": "dot", "color": "black"}, name="Pareto frontier",
    ))  # fmt: skip
    basis = (
        "allocation basis"
        if report.spec.utilization is None
        else f"{report.spec.utilization:.0%} utilization"
    )
    fig.update_xaxes(type="log", title_text=f"USD per 1M output tokens ({basis}, log scale)")
    fig.update_yaxes(title_text="accuracy % (95% CI)")
    fig.update_layout(title="Cost against accuracy", **_LAYOUT)
    return fig


def accuracy_areas(report: Report) -> go.Figure | None:
    """Accuracy per area of each option, with 95% CIs."""
    rows = [r for r in report.rows if r.areas]
    if not rows:
        return None
    areas = sorted({a for r in rows for a in r.areas})
    colors = _colors(report)
    fig = go.Figure()
    for r in rows:
        got = [r.areas.get(a) for a in areas]
        shares = [g.score if g is not None and g.n else None for g in got]
        cis = [g.ci95 if g is not None else None for g in got]
        fig.add_trace(go.Bar(
            x=areas, y=[None if s is None else 100 * s for s in shares], name=r.key,
            marker={"color": colors.get(r.key)}, error_y=_error_bars(shares, cis),
        ))  # fmt: skip
    fig.update_yaxes(title_text="accuracy % (95% CI)", range=[0, 100])
    fig.update_layout(
        title=f"Accuracy per area ({report.suite.label if report.suite else ''})", barmode="group", **_LAYOUT
    )
    return fig


def _log_grid(lo: float, hi: float, n: int = 200) -> list[float]:
    a, b = math.log10(lo), math.log10(hi)
    return [10 ** (a + (b - a) * i / (n - 1)) for i in range(n)]


def break_even_chart(report: Report) -> go.Figure | None:
    """Monthly cost against monthly output tokens (reference tokens of the one workload): APIs as lines at
    their all-in price, self-hosted as whole-replica steps at their out tok/s (report.figures)."""
    selfhosted = [r for r in report.rows if r.option.kind == "self-hosted" and r.hardware]
    tps = {r.key: v for r in selfhosted if (v := r.output_tok_s.value) is not None and v > 0}
    apis = {b.api: b.api_usd_per_1m_output for b in report.break_evens}
    if not tps or not apis:
        return None
    volumes = [b.result.always_above or b.result.volume or 0 for b in report.break_evens]
    top = max([3 * monthly_capacity(v) for v in tps.values()] + [10 * v for v in volumes if v])
    grid = _log_grid(max(1e3, top / 1e6), top)
    colors = _colors(report)
    fig = go.Figure()
    for r in selfhosted:
        if r.key not in tps or r.hardware is None:
            continue
        ys = [selfhosted_monthly_usd(t, r.hardware.usd_per_hour, tps[r.key]) for t in grid]
        name = f"{r.key} (steps of {fmt_tokens(monthly_capacity(tps[r.key]))} tokens)"
        line = {"shape": "hv", "color": colors.get(r.key)}
        fig.add_trace(go.Scatter(x=grid, y=ys, mode="lines", line=line, name=name))
    for key, price in apis.items():
        fig.add_trace(go.Scatter(x=grid, y=[api_monthly_usd(t, price) for t in grid], mode="lines",
                                 line={"dash": "dash", "color": colors.get(key)},
                                 name=f"{key} ({fmt_usd(price)}/1M out, all-in)"))  # fmt: skip
    fig.update_xaxes(type="log", title_text="output tokens per month (reference tokens, log scale)")
    fig.update_yaxes(type="log", title_text="USD per month (log scale)")
    fig.update_layout(title="Break-even: monthly cost against monthly volume", **_LAYOUT)
    return fig


def recovery_chart(report: Report) -> go.Figure | None:
    """Quantization recovery (variant ÷ base) per area, with 95% CIs and the flag threshold."""
    rec = report.recovery
    if not rec.areas:
        return None
    fig = go.Figure()
    for variant in dict.fromkeys(a.variant for a in rec.areas):
        pts = [a for a in rec.areas if a.variant == variant]
        fig.add_trace(go.Bar(
            x=[f"{a.suite}/{a.area}" for a in pts], y=[100 * a.recovery for a in pts], name=variant,
            marker={"line": {"width": [3 if a.flagged else 0 for a in pts], "color": "red"}},
            error_y=_error_bars([a.recovery for a in pts], [a.ci95 for a in pts]),
        ))  # fmt: skip
    threshold = min(d.doc.threshold for d in rec.documents) if rec.documents else 0.95
    fig.add_hline(y=100 * threshold, line_dash="dash", annotation_text=f"flag below {threshold:.0%}")
    fig.update_yaxes(title_text="recovery % of base (95% CI)")
    fig.update_layout(
        title="Quantization recovery per area (red outline: flagged)", barmode="group", **_LAYOUT
    )
    return fig


CHARTS: dict[str, tuple[str, Callable[[Report], go.Figure | None], Callable[[Report], str]]] = {
    "latency": ("Latency against throughput", latency_throughput, lambda r: "no load run to draw"),
    "distributions": ("TTFT and ITL distributions", distributions, lambda r: "no load run to draw"),
    "cost-accuracy": ("Cost against accuracy", cost_accuracy,
                      lambda r: "no option has both a cost and an accuracy"),
    "areas": ("Accuracy per area", accuracy_areas, lambda r: "no accuracy run to draw"),
    "break-even": ("Break-even", break_even_chart,
                   lambda r: "needs a costed self-hosted option and a priced API"),
    "recovery": ("Quantization recovery per area", recovery_chart,
                 lambda r: r.recovery.empty_reason or "no recovery report stored"),
}  # fmt: skip
