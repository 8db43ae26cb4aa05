"""What the renderers write about an option, defined once for the Markdown, HTML and card outputs: its model
and variant, its accuracy (marked when a mock's configured answers made it, not a model), and the unit of
each money column of the leaderboard.

An accuracy is simulated when its run's target was a mock endpoint: target kind `mock`, or a server that
said it is llmbench's mock backend. `bench accuracy` stores the mock's answer configuration in the run's
provenance (`mock_answers`), so the page can say what was configured (e.g. an oracle right 95% of the time).
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.report.figures import Row
from bench.report.options import Option
from bench.report.value import (
    PER_1K_REQUESTS,
    PER_1M_BLENDED,
    PER_1M_OUTPUT,
    PER_CORRECT,
    Per,
    fmt_number,
    fmt_usd,
    per_column,
    show,
)

# The leaderboard's money columns: the Row field and its unit before a column picks its count.
MONEY_COLUMNS: dict[str, Per] = {
    "usd_per_1m_output": PER_1M_OUTPUT,
    "usd_per_1m_blended": PER_1M_BLENDED,
    "usd_per_1k_requests": PER_1K_REQUESTS,
    "usd_per_correct": PER_CORRECT,
}


def simulated(option: Option) -> str | None:
    """What simulated the option's accuracy (a mock endpoint's configured answers), or None if measured."""
    run = option.accuracy_run
    if run is None:
        return None
    answers = run.provenance.mock_answers
    backend = run.provenance.server.backend
    if answers is None:
        if run.target.kind == "mock" or backend == "mock":
            return "a mock endpoint's configured answers"
        return None
    if answers.get("kind") == "oracle":
        share = answers.get("accuracy")
        by_area = " (set per area)" if answers.get("area_accuracy") else ""
        rate = f" right {share:.0%} of the time{by_area}" if isinstance(share, int | float) else ""
        return f"a mock oracle configured to answer{rate}"
    return f"a mock endpoint's {answers.get('kind') or 'configured'} answers"


def accuracy_text(row: Row, *, with_n: bool = False) -> str | None:
    """'95.0% [93.1, 96.5]', ' simulated' when a mock made it, ' (n = 400)'; None when not measured."""
    if row.accuracy.value is None:
        return None
    text = f"{100 * row.accuracy.value:.1f}%"
    if row.ci95:
        text += f" [{100 * row.ci95[0]:.1f}, {100 * row.ci95[1]:.1f}]"
    if simulated(row.option):
        text += " simulated"
    return text + (f" (n = {row.n_items})" if with_n else "")


def money_units(rows: Sequence[Row]) -> dict[str, Per]:
    """Each money column's unit: one count for every row, chosen from the column's smallest figure."""
    return {
        name: per_column(unit, (getattr(r, name).value for r in rows)) for name, unit in MONEY_COLUMNS.items()
    }


def hardware_text(row: Row) -> str:
    """'cpu-2vcpu: t3.large (2 vCPU), $0.0832/hour · measured on Intel Xeon, 2 cores (shared with the load
    generator) — not the machine priced': the machine priced beside the machine measured."""
    o = row.option
    if row.hardware is not None:
        text = f"{o.hardware}: {row.hardware.label}, ${row.hardware.usd_per_hour:g}/hour"
    else:
        text = o.hardware or ("API" if o.kind == "api" else "-")
    if o.machine is not None:
        text += f" · measured on {o.machine.label}"
        if o.machine.shared:
            text += " (shared with the load generator)"
        if any(f.kind == "hardware_mismatch" for f in o.flags):
            text += " — not the machine priced"
    return text


def throughput_text(row: Row) -> str | None:
    """'1,230 ±4.1%': the steady-window throughput and the half-width of its 95% interval; None if n/a."""
    value, ci = row.output_tok_s, row.output_tok_s_ci95
    if value.value is None:
        return None
    text = show(value)
    if ci is not None and value.value:
        text += f" ±{100 * (ci[1] - ci[0]) / 2 / value.value:.1f}%"
    return text


def cost_definitions(workload: str | None, mix: float | None) -> list[str]:
    """What the cost columns are, in one place for every page (bench.report.figures has the formulas)."""
    stated = f"{mix:.3g}:1" if mix is not None else "n/a"
    lines = [
        "Token figures are reference tokens (⌈UTF-8 bytes ÷ 4⌉ of the text: the same count for the same text "
        "on every option, whatever its tokenizer)"
        + (f"; every option ran one workload: {workload}." if workload else "."),
        "out tok/s @ op: reference output tokens per second in the steady window of the operating point, "
        "± the half-width of its 95% interval (batch means).",
        "$/1M out: all-in — what 1M output tokens of that workload cost with the input sent with them, at "
        "its measured mix; self-hosted = $/hour ÷ throughput at the operating point (a reserved box); an "
        "API = its bill (cache reads and writes as billed) ÷ its output tokens. list $/1M out: an API's list "
        "output price, per 1M of its own tokens.",
        f"$/1M blended: per 1M tokens in + out at one stated mix for every row, {stated} (input:output): "
        "APIs at list prices, self-hosted at its measured mix (named when it differs).",
        "$/req: per request of the workload. $/correct: the accuracy run's cost ÷ its correct answers, on "
        "the same items for every option (APIs as billed; self-hosted: its prompt and answer text at the "
        "box's price per token).",
        "≤ a cost read where the goodput search was capped (the true operating point may be higher); "
        "≥ a throughput so read.",
    ]
    return lines


def search_trace(option: Option) -> list[dict[str, str]]:
    """The goodput search behind an option's operating point, probe by probe in load order."""
    run = option.op.run or option.op.display
    point = run.load_profile.operating_point if run is not None and run.kind == "load" else None
    if point is None:
        return []
    dim = point.dimension
    out = []
    for p in sorted(point.search, key=lambda p: p.load):
        ci = p.ci95
        share = p.attainment
        out.append(
            {
                "load": f"{dim} {fmt_number(p.load)}",
                "measured": "n/a"
                if p.measured_load is None
                else fmt_number(p.measured_load) + (" in flight" if dim == "concurrency" else " sent/s"),
                "attainment": "n/a"
                if share is None
                else f"{100 * share:.1f}%" + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else ""),
                "verdict": (p.verdict or "miss")
                + (f": {'; '.join(p.invalid)}" if p.invalid else "")
                + (
                    f" (after {len(p.retried)} invalid run{'s' if len(p.retried) > 1 else ''}: "
                    f"{', '.join(r[:8] for r in p.retried)})"
                    if p.retried
                    else ""
                ),
                "stage": p.stage,
                "run": p.run_id[:8],
            }
        )
    return out


def cache_mark(row: Row, name: str) -> str:
    """' (cache not reported)' after a money figure billed from a run whose server did not report what it
    cached (the request-priced columns of an API option); '' otherwise."""
    mark = row.cache_not_reported
    if mark is None or name not in BILLED_COLUMNS or getattr(row, name).value is None:
        return ""
    return f" ({mark})"


BILLED_COLUMNS = ("usd_per_1m_output", "usd_per_1m_output_allocation", "usd_per_1k_requests")


def price_sources(rows: Sequence[Row]) -> list[dict[str, str]]:
    """Each price the report used, once: what it is, where it was read, and as of when."""
    out: dict[str, dict[str, str]] = {}
    for row in rows:
        if row.prices is not None:
            p = row.prices
            parts = [f"input {fmt_usd(p.input_per_1m)}"]
            if p.cached_input_per_1m is not None:
                parts.append(f"cache read {fmt_usd(p.cached_input_per_1m)}")
            if p.cache_write_per_1m is not None:
                parts.append(f"cache write {fmt_usd(p.cache_write_per_1m)}")
            if p.cache_write_1h_per_1m is not None:
                parts.append(f"1-hour cache write {fmt_usd(p.cache_write_1h_per_1m)}")
            parts.append(f"output {fmt_usd(p.output_per_1m)}")
            text = ", ".join(parts) + " per 1M tokens"
            out.setdefault(row.option.name, {"priced": row.option.name, "prices": text, "source": p.source,
                                             "as_of": p.as_of.isoformat()})  # fmt: skip
        if row.hardware is not None and row.option.hardware is not None:
            hw = row.hardware
            out.setdefault(row.option.hardware, {
                "priced": row.option.hardware,
                "prices": f"{hw.label}: {fmt_usd(hw.usd_per_hour)} per hour"
                + (f" ({hw.provider})" if hw.provider else ""),
                "source": hw.source,
                "as_of": hw.as_of.isoformat(),
            })  # fmt: skip
    return list(out.values())
