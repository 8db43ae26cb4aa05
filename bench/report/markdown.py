"""The Markdown report: fits a pull-request comment (headline, leaderboard, deltas, flags; no images).

Table cells stay short: a missing figure is "n/a" with a numbered note giving its reason under the table.
"""

from __future__ import annotations

from typing import Any

from bench.report.analysis import Paired
from bench.report.build import Report
from bench.report.figures import Row
from bench.report.flags import SERIOUS
from bench.report.value import Value, fmt_tokens, fmt_usd, show


class _Notes:
    """Numbered reasons for n/a cells, each reason once."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def cell(self, value: Value, kind: str = "number") -> str:
        if value.value is not None:
            return show(value, kind)
        reason = value.reason or "not measured"
        if reason not in self.reasons:
            self.reasons.append(reason)
        return f"n/a [{self.reasons.index(reason) + 1}]"

    def render(self) -> list[str]:
        if not self.reasons:
            return []
        return ["", "n/a:", *[f"[{i}] {r}" for i, r in enumerate(self.reasons, 1)]]


def _accuracy(row: Row, notes: _Notes) -> str:
    if row.accuracy.value is None:
        return notes.cell(row.accuracy)
    text = f"{100 * row.accuracy.value:.1f}%"
    if row.ci95:
        text += f" [{100 * row.ci95[0]:.1f}, {100 * row.ci95[1]:.1f}]"
    return text


def _flags(row: Row) -> str:
    kinds = sorted({f.kind for f in row.option.flags})
    return ", ".join(f"**{k}**" if k in SERIOUS else k for k in kinds) or "-"


def _paired(p: Paired | None) -> str:
    if p is None:
        return "n/a (no paired items)"
    lo, hi = p.ci95_points
    return f"{p.diff_points:+.1f} [{lo:+.1f}, {hi:+.1f}] (p = {p.p_value:.2g}, n = {p.n})"


def _one_line(report: Report, key: str | None) -> str:
    row = report.row(key)
    if row is None:
        return "none"
    acc = f"{100 * row.accuracy.value:.1f}% accuracy" if row.accuracy.value is not None else "accuracy n/a"
    cost = show(row.usd_per_1m_output, "usd")
    where = f", {row.option.op.note}" if row.option.op.run is not None else ""
    per_correct = show(row.usd_per_correct, "usd")
    ttft = show(row.ttft_p95, "ms")
    return (
        f"**{row.key}**: {cost} per 1M output tokens, {per_correct} per correct answer, {acc}, "
        f"TTFT p95 {ttft} ms{where}"
    )


def mean_ci_text(figure: dict[str, Any] | None, digits: int = 1) -> str:
    """'mean [lo, hi]' of a figure over repeats; 'n/a' where nothing was measured."""
    if not figure or figure.get("mean") is None:
        return "n/a"
    ci = figure.get("ci95")
    bounds = f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else ""
    return f"{figure['mean']:.{digits}f}{bounds}"


def render_markdown(report: Report) -> str:
    """The report as GitHub-flavoured Markdown."""
    h = report.headline
    notes = _Notes()
    spec = report.spec
    lines = ["## llmbench report", ""]
    lines.append(f"**Recommendation:** {_one_line(report, h.recommended)}")
    if h.runner_up:
        lines.append(f"**Runner-up:** {_one_line(report, h.runner_up)}")
    lines.append("")
    lines.append(h.summary)
    if h.reasons:
        lines += ["", "Excluded:"] + [f"- {k}: {why}" for k, why in h.reasons.items()]
    slo = ", ".join(f"{k}={v:g}" for k, v in (report.slo or {}).items()) or "none stored"
    suite = report.suite.label if report.suite else "none"
    basis = (
        "allocation (a reserved box at the operating point)"
        if spec.utilization is None
        else f"utilization {spec.utilization:.0%} busy"
    )
    lines += [
        "",
        f"Suite {suite} · SLO {slo}, attainment ≥ {report.attainment_label} · max drop "
        f"{spec.max_drop:g} points · cost basis: {basis} · {report.n_runs} runs ({spec.selection()})",
        "",
        "### Leaderboard",
        "",
        "| option | hardware | accuracy [95% CI] | TTFT p50 / p95 ms | TPOT p50 ms | out tok/s @ op "
        "| goodput req/s | $/1M out | $/1M blended | $/1k req | $/correct | flags |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report.rows:
        hw = (
            r.hardware.label
            if r.hardware
            else (r.option.hardware or ("API" if r.option.kind == "api" else "-"))
        )
        lines.append(
            f"| {r.key} | {hw} | {_accuracy(r, notes)} | {notes.cell(r.ttft_p50, 'ms')} / "
            f"{notes.cell(r.ttft_p95, 'ms')} | {notes.cell(r.tpot_p50, 'ms')} | {notes.cell(r.output_tok_s)} "
            f"| {notes.cell(r.goodput_rps)} | {notes.cell(r.usd_per_1m_output, 'usd')} "
            f"| {notes.cell(r.usd_per_1m_blended, 'usd')} | {notes.cell(r.usd_per_1k_requests, 'usd')} "
            f"| {notes.cell(r.usd_per_correct, 'usd')} | {_flags(r)} |"
        )
    lines += notes.render()
    if h.versus_best:
        lines += ["", f"### Accuracy against {h.best_accuracy} (paired, points)", ""]
        lines += ["| option | change [95% CI] |", "|---|---|"]
        lines += [f"| {k} | {_paired(p)} |" for k, p in h.versus_best.items()]
    if report.downgrade.steps:
        lines += ["", "### Downgrade ladder (Pareto frontier, strongest first)", ""]
        lines += ["| step | accuracy change [95% CI] | saves per 1M out |", "|---|---|---|"]
        for s in report.downgrade.steps:
            lines.append(
                f"| {s.stronger} → {s.cheaper} | {_paired(s.paired)} | {fmt_usd(s.saving_per_1m)} "
                f"({100 * s.saving_share:.0f}%) |"
            )
        for k, by in report.downgrade.dominated.items():
            lines.append(f"\n{k} is dominated by {by} (cheaper and at least as accurate).")
    if report.break_evens:
        lines += ["", "### Break-even (self-hosted against each API, output tokens per month)", ""]
        lines += [
            "| self-hosted | API | API $/1M out at the mix | break-even | utilization | always cheaper above"
            " |",
            "|---|---|---|---|---|---|",
        ]
        for b in report.break_evens:
            be = b.result
            vol = fmt_tokens(be.volume) if be.volume is not None else f"never ({be.reason})"
            above = fmt_tokens(be.always_above) if be.always_above is not None else "-"
            lines.append(
                f"| {b.selfhosted} | {b.api} | {fmt_usd(b.api_usd_per_1m_output)} | {vol} "
                f"| {100 * be.utilization:.1f}% | {above} |"
            )
    if report.repeats:
        lines += ["", "### Over repetitions (mean [95% CI] of the sweep's repeats)", ""]
        lines += [
            "| point | run | n | output tok/s | TTFT p50 ms | goodput req/s |",
            "|---|---|---|---|---|---|",
        ]
        for rep in report.repeats:
            f = rep.figures
            tok_s, ttft = mean_ci_text(f.get("output_tokens_per_s")), mean_ci_text(f.get("ttft_p50_ms"))
            goodput = mean_ci_text(f.get("goodput_requests_per_s"), 2)
            lines.append(f"| {rep.point} | {rep.run} | {rep.n} | {tok_s} | {ttft} | {goodput} |")
    flagged = [f for f in report.flags]
    if flagged:
        lines += ["", "### Flags", ""]
        lines += [f"- `{f.run_id[:8]}` **{f.kind}**: {f.detail}" for f in dict.fromkeys(flagged)]
    if report.notes:
        lines += ["", *[f"> {n}" for n in report.notes]]
    return "\n".join(lines) + "\n"
