"""The Markdown report: fits a pull-request comment (headline, leaderboard, deltas, flags; no images).

Table cells stay short: a missing figure is "n/a" with a numbered note giving its reason under the table.
"""

from __future__ import annotations

from bench.documents import RepeatFigures
from bench.report.analysis import Downgrade, Paired, Step
from bench.report.build import Report
from bench.report.cells import (
    accuracy_text,
    cache_mark,
    cost_definitions,
    hardware_text,
    money_units,
    price_sources,
    search_trace,
    simulated,
    throughput_text,
)
from bench.report.figures import Row
from bench.report.flags import SERIOUS, Flag
from bench.report.levers_view import levers_markdown
from bench.report.value import Per, Value, fmt_number, fmt_tokens, fmt_usd, show
from bench.report.workloads import (
    ANSWER_COLUMNS,
    WorkloadAnswer,
    answer_change,
    answer_rows,
    break_even_lines,
    recommendation_text,
)


class _Notes:
    """Numbered reasons for n/a cells, each reason once."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def cell(self, value: Value, kind: str = "number", per: Per | None = None) -> str:
        if value.value is not None:
            return show(value, kind, per)
        reason = value.reason or "not measured"
        if reason not in self.reasons:
            self.reasons.append(reason)
        return f"n/a [{self.reasons.index(reason) + 1}]"

    def render(self) -> list[str]:
        if not self.reasons:
            return []
        return ["", "n/a:", *[f"[{i}] {r}" for i, r in enumerate(self.reasons, 1)]]


def _accuracy(row: Row, notes: _Notes) -> str:
    text = accuracy_text(row)
    return notes.cell(row.accuracy) if text is None else text


def _flags(row: Row) -> str:
    kinds = sorted({f.kind for f in row.option.flags})
    return ", ".join(f"**{k}**" if k in SERIOUS else k for k in kinds) or "-"


def paired_text(p: Paired | None) -> str:
    """'+0.3 [-2.1, +2.6] (p = 1, n = 400; within noise)'."""
    if p is None:
        return "n/a (no paired items)"
    lo, hi = p.ci95_points
    noise = "" if p.significant else "; within noise"
    return f"{p.diff_points:+.1f} [{lo:+.1f}, {hi:+.1f}] (p = {p.p_value:.2g}, n = {p.n}{noise})"


def saving_text(s: Step) -> str:
    """'$1.20 (40%)', or the same with why it is within noise."""
    text = f"{fmt_usd(s.saving_per_1m)} ({100 * s.saving_share:.0f}%)"
    return text if s.saving_noise is None else f"{text}, within noise: {s.saving_noise}"


def dominance_lines(ladder: Downgrade) -> list[str]:
    """'X is dominated by Y: Y costs 40% less …' and 'X and Y are within noise of each other …'."""
    lines = [
        f"{k} is dominated by {by}: {by} {ladder.reasons.get(k, '')}." for k, by in ladder.dominated.items()
    ]
    lines += [
        f"{t.key} and {t.other} are within noise of each other ({t.why}): neither is shown to be better."
        for t in ladder.within_noise
    ]
    return lines


def _money_phrase(value: Value, per: Per, what: str) -> str:
    if value.value is None:
        return f"{what} n/a ({value.reason or 'not measured'})"
    return f"{show(value, 'usd', per)} {per.phrase}"


def one_line(report: Report, key: str | None) -> str:
    """One option in a sentence: its costs in the leaderboard's units, accuracy, TTFT and operating point."""
    row = report.row(key)
    if row is None:
        return "none"
    units = money_units(report.rows)
    acc = f"{100 * row.accuracy.value:.1f}% accuracy" if row.accuracy.value is not None else "accuracy n/a"
    why = simulated(row.option)
    if why:
        acc += f" (simulated: {why}, not a measurement)"
    cost = _money_phrase(row.usd_per_1m_output, units["usd_per_1m_output"], "cost")
    cost += cache_mark(row, "usd_per_1m_output")
    per_correct = _money_phrase(row.usd_per_correct, units["usd_per_correct"], "cost per correct answer")
    ttft = f"{show(row.ttft_p95, 'ms')} ms" if row.ttft_p95.known else f"n/a ({row.ttft_p95.reason})"
    where = f", {row.option.op.note}" if row.option.op.run is not None else ""
    return f"**{row.key}**: {cost}, {per_correct}, {acc}, TTFT p95 {ttft}{where}"


def option_flags(report: Report) -> list[tuple[str, Flag]]:
    """Each flag once, with the option it qualifies (the flags list names options, not runs)."""
    seen: dict[tuple[str, Flag], None] = {}
    for row in report.rows:
        for flag in row.option.flags:
            seen.setdefault((row.key, flag), None)
    return list(seen)


def simulated_note(report: Report) -> str | None:
    """The sentence under a leaderboard that has simulated accuracies, or None."""
    marked = [f"{r.key} ({why})" for r in report.rows if (why := simulated(r.option))]
    if not marked:
        return None
    return "simulated: accuracy configured in a mock endpoint, not measured on a model: " + "; ".join(marked)


def mean_ci_text(figure: RepeatFigures | None) -> str:
    """'mean [lo, hi]' of a figure over repeats; 'n/a' where nothing was measured."""
    if figure is None or figure.mean is None:
        return "n/a"
    ci = figure.ci95
    bounds = f" [{fmt_number(ci[0])}, {fmt_number(ci[1])}]" if ci else ""
    return f"{fmt_number(figure.mean)}{bounds}"


def render_markdown(report: Report) -> str:
    """The report as GitHub-flavoured Markdown."""
    h = report.headline
    notes = _Notes()
    spec = report.spec
    units = money_units(report.rows)
    lines = ["## llmbench report", ""]
    on = f" (workload {report.answers[0].workload.name})" if report.answers else ""
    lines.append(f"**Recommendation{on}:** {one_line(report, h.recommended)}")
    if h.runner_up:
        lines.append(f"**Runner-up:** {one_line(report, h.runner_up)}")
    lines.append("")
    lines.append(h.summary)
    if h.reasons:
        lines += ["", "Excluded:"] + [f"- {k}: {why}" for k, why in h.reasons.items()]
    change = answer_change(report.answers)
    if change:
        lines += ["", f"**Across workloads:** {change}"]
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
        "| goodput req/s | " + " | ".join(u.heading for u in units.values()) + " | list $/1M out | flags |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report.rows:
        tok_s = throughput_text(r) or notes.cell(r.output_tok_s)
        lines.append(
            f"| {r.key} | {hardware_text(r)} | {_accuracy(r, notes)} | {notes.cell(r.ttft_p50, 'ms')} / "
            f"{notes.cell(r.ttft_p95, 'ms')} | {notes.cell(r.tpot_p50, 'ms')} | {tok_s} "
            f"| {notes.cell(r.goodput_rps)} | "
            + " | ".join(
                notes.cell(getattr(r, name), "usd", unit) + cache_mark(r, name)
                for name, unit in units.items()
            )
            + f" | {notes.cell(r.list_usd_per_1m_output, 'usd') if r.option.kind == 'api' else '-'}"
            + f" | {_flags(r)} |"
        )
    lines += notes.render()
    lines += ["", "Cost columns:", *(f"- {d}" for d in cost_definitions(report.workload, report.mix))]
    note = simulated_note(report)
    if note:
        lines += ["", note]
    lines += workload_lines(report)
    if h.versus_best:
        lines += ["", f"### Accuracy against {h.best_accuracy} (paired, points)", ""]
        lines += ["| option | change [95% CI] |", "|---|---|"]
        lines += [f"| {k} | {paired_text(p)} |" for k, p in h.versus_best.items()]
    if report.downgrade.steps:
        lines += ["", "### Downgrade ladder (Pareto frontier, strongest first)", ""]
        lines += ["| step | accuracy change [95% CI] | saves per 1M out |", "|---|---|---|"]
        for s in report.downgrade.steps:
            lines.append(f"| {s.stronger} → {s.cheaper} | {paired_text(s.paired)} | {saving_text(s)} |")
    dominance = dominance_lines(report.downgrade)
    if dominance:
        lines += ["", *dominance]
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
            api = report.row(b.api)
            mark = "" if api is None else cache_mark(api, "usd_per_1m_output_allocation")
            lines.append(
                f"| {b.selfhosted} | {b.api} | {fmt_usd(b.api_usd_per_1m_output)}{mark} | {vol} "
                f"| {100 * be.utilization:.1f}% | {above} |"
            )
    lines += levers_markdown(report.levers)
    if report.repeats:
        lines += ["", "### Over repetitions (mean [95% CI] of the sweep's repeats)", ""]
        lines += [
            "| point | run | n | output tok/s | TTFT p50 ms | goodput req/s |",
            "|---|---|---|---|---|---|",
        ]
        for rep in report.repeats:
            f = rep.step
            tok_s, ttft = mean_ci_text(f.output_tokens_per_s), mean_ci_text(f.ttft_p50_ms)
            goodput = mean_ci_text(f.goodput_requests_per_s)
            lines.append(f"| {rep.point} | {rep.run} | {rep.n} | {tok_s} | {ttft} | {goodput} |")
    traces = [(r.key, t) for r in report.rows if (t := search_trace(r.option))]
    if traces:
        lines += ["", "### Goodput searches (probes in load order; an invalid probe cannot pass)", ""]
        for key, trace in traces:
            capped = next((r.capped for r in report.rows if r.key == key and r.capped), None)
            lines += [f"**{key}**" + (f" — capped: {capped}" if capped else ""), ""]
            lines += [
                "| load | measured | attainment [95% CI] | verdict | stage | run |",
                "|---|---|---|---|---|---|",
            ]
            cols = ("load", "measured", "attainment", "verdict", "stage")
            lines += ["| " + " | ".join(p[c] for c in cols) + f" | `{p['run']}` |" for p in trace]
            lines.append("")
    sources = price_sources(report.rows)
    if sources:
        lines += ["", "### Prices (source, as of)", ""]
        lines += [f"- **{p['priced']}**: {p['prices']} — {p['source']}, as of {p['as_of']}" for p in sources]
    flagged = option_flags(report)
    if flagged:
        lines += ["", "### Flags", ""]
        lines += [f"- **{key}** — {f.kind}: {f.detail} (run `{f.run_id[:8]}`)" for key, f in flagged]
    if report.notes:
        lines += ["", *[f"> {n}" for n in report.notes]]
    return "\n".join(lines) + "\n"


def _answer_lines(answer: WorkloadAnswer) -> list[str]:
    w = answer.workload
    sha = f", sha256 {w.sha256[:12]}" if w.sha256 else ""
    reuse = answer.designed_reuse
    designed = f"; designed reuse {100 * reuse:.1f}%" if reuse is not None else ""
    lines = [
        "",
        f"#### {w.name} ({w.kind}{sha}; {answer.load_runs} load runs{designed})",
        "",
        f"Recommendation: {recommendation_text(answer)}",
        "",
        "| " + " | ".join(heading for heading, _ in ANSWER_COLUMNS) + " |",
        "|" + "---|" * len(ANSWER_COLUMNS),
    ]
    lines += ["| " + " | ".join(r[key] for _, key in ANSWER_COLUMNS) + " |" for r in answer_rows(answer)]
    marks = {r.key: r.cache_not_reported for r in answer.rows}
    evens = break_even_lines(answer, marks.get)
    lines += ["", "Break-even: " + ("none: no costed self-hosted option and priced API measured on it"
                                    if not evens else "; ".join(evens) + ".")]  # fmt: skip
    return lines


def workload_lines(report: Report) -> list[str]:
    """The answer per workload (only when the load runs sent several): each one's recommendation, every
    option's cost at its operating point with cache hit rates on both sides, and its break-evens."""
    if not report.answers:
        return []
    lines = ["", "### The answer per workload"]
    for answer in report.answers:
        lines += _answer_lines(answer)
    return lines
