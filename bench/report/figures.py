"""The figures of one leaderboard row: accuracy, latency at the operating point, and cost.

Cost definitions (every figure is "n/a" with a reason when an input is missing, never 0):

- $/1M output tokens: what 1M output tokens of the measured workload cost, the input sent with them
  included. Self-hosted: hardware $/hour ÷ (output tok/s at the operating point × 3600) × 10⁶ (allocation
  basis; ÷ U on the utilization basis). API: the load run's billed usage × prices ÷ its output tokens.
- Blended $/1M: APIs at list prices, 3 input : 1 output; self-hosted per 1M tokens in + out at the operating
  point's measured input:output mix (a box has no separate input price), and the mix is stated.
- $/1k requests: self-hosted $/hour ÷ (requests/s × 3600) × 1000; API: billed usage per request × 1000.
- $ per correct answer: the accuracy run's cost ÷ its correct items. API: its billed usage. Self-hosted: its
  input + output tokens at the operating point's $/1M tokens (in + out).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.cost import Usage, api_cost, blended_per_1m, per_1k_requests, selfhosted_cost
from bench.cost.api import workload_per_1m_output
from bench.registry import Hardware, Prices
from bench.report.flags import is_lower_bound
from bench.report.operating import attainment
from bench.report.options import Option, Pricing
from bench.report.query import StoreReader
from bench.report.value import Value, known, na


@dataclass
class Row:
    """One option with every reported figure."""

    option: Option
    accuracy: Value
    ci95: tuple[float, float] | None = None
    n_items: int | None = None
    correct: int | None = None
    areas: dict[str, dict[str, Any]] = field(default_factory=dict)
    ttft_p50: Value = field(default_factory=lambda: na("no load run"))
    ttft_p95: Value = field(default_factory=lambda: na("no load run"))
    tpot_p50: Value = field(default_factory=lambda: na("no load run"))
    output_tok_s: Value = field(default_factory=lambda: na("no load run"))
    goodput_rps: Value = field(default_factory=lambda: na("no load run"))
    attainment: Value = field(default_factory=lambda: na("no load run"))
    usd_per_hour: Value = field(default_factory=lambda: na("an API is priced per token"))
    usd_per_1m_output: Value = field(default_factory=lambda: na("not computed"))
    usd_per_1m_output_allocation: Value = field(default_factory=lambda: na("not computed"))
    usd_per_1m_blended: Value = field(default_factory=lambda: na("not computed"))
    usd_per_1k_requests: Value = field(default_factory=lambda: na("not computed"))
    usd_per_correct: Value = field(default_factory=lambda: na("not computed"))
    usd_per_1m_total: float | None = None  # self-hosted: in + out tokens (for $/correct)
    mix: float | None = None  # input tokens per output token of the load run the cost reads
    prices: Prices | None = None
    hardware: Hardware | None = None
    basis: str = "allocation"
    utilization: float | None = None  # the share of busy time on the utilization basis

    @property
    def key(self) -> str:
        return self.option.key


def _dist(summary: dict[str, Any], metric: str, pct: str, lower_bound: bool) -> Value:
    value = (summary.get(metric) or {}).get(pct)
    note = "lower bound" if lower_bound and pct in ("p95", "p99", "p999") else None
    return known(value, note, reason=f"no {metric.removesuffix('_ms').upper()} measured")


def _speed(row: Row) -> None:
    op = row.option.op
    shown = op.display
    if shown is None:
        return
    s = shown.summary or {}
    lower = is_lower_bound([f for f in row.option.flags if f.run_id == shown.id])
    row.ttft_p50 = _dist(s, "ttft_ms", "p50", lower)
    row.ttft_p95 = _dist(s, "ttft_ms", "p95", lower)
    row.tpot_p50 = _dist(s, "tpot_ms", "p50", lower)
    got = attainment(s)
    row.attainment = known(got, reason="no SLO")
    if op.run is None:
        reason = op.note
        row.output_tok_s = na(reason)
        row.goodput_rps = na(reason)
        return
    unknown = (s.get("unknown") or {}).get("output_tokens_per_s")
    row.output_tok_s = known(
        s.get("output_tokens_per_s"), reason=str(unknown or "output token counts unknown")
    )
    row.goodput_rps = known(s.get("goodput_requests_per_s"), reason="no goodput measured")
    tokens = s.get("tokens") or {}
    if tokens.get("output"):
        row.mix = float(tokens.get("input") or 0) / float(tokens["output"])


def _accuracy(row: Row) -> None:
    run = row.option.accuracy_run
    if run is None:
        row.accuracy = na(
            "no accuracy run on the report's suite"
            if row.option.accuracy_runs
            else "no accuracy run for this variant"
        )
        return
    s = run.summary or {}
    if not s.get("n"):
        row.accuracy = na("the accuracy run scored no items")
        return
    row.accuracy = known(s.get("score"))
    row.ci95 = (float(s["ci95"][0]), float(s["ci95"][1])) if s.get("ci95") else None
    row.n_items, row.correct = int(s["n"]), int(s.get("correct") or 0)
    row.areas = {a: dict(v) for a, v in (s.get("areas") or {}).items()}


def _selfhosted_cost(row: Row, pricing: Pricing, reader: StoreReader, utilization: float | None) -> None:
    option = row.option
    if option.hardware is None:
        why = "no hardware profile for this target: run with --hardware or pass --hardware NAME=PROFILE"
        _all_cost_na(row, why)
        return
    hw = pricing.hardware.get(option.hardware)
    if hw is None:
        _all_cost_na(row, f"unknown hardware profile {option.hardware!r} (not in models.yaml)")
        return
    row.hardware = hw
    row.usd_per_hour = known(hw.usd_per_hour)
    s = (option.op.run.summary or {}) if option.op.run is not None else {}
    out_tps = s.get("output_tokens_per_s")
    if option.op.run is None or not isinstance(out_tps, int | float) or out_tps <= 0:
        _all_cost_na(row, row.output_tok_s.reason or option.op.note)
        return
    cost = selfhosted_cost(
        hw.usd_per_hour,
        float(out_tps),
        total_tokens_per_s=s.get("total_tokens_per_s"),
        requests_per_s=s.get("requests_per_s"),
        utilization=utilization,
    )
    alloc = selfhosted_cost(hw.usd_per_hour, float(out_tps), total_tokens_per_s=s.get("total_tokens_per_s"))
    row.basis = cost.basis
    row.utilization = utilization
    row.usd_per_1m_output = known(cost.per_1m_output)
    row.usd_per_1m_output_allocation = known(alloc.per_1m_output)
    mix = f"in+out at the measured mix {row.mix:.2g}:1" if row.mix is not None else "in+out"
    row.usd_per_1m_blended = known(cost.per_1m_total, mix, reason="total tokens/s unknown")
    row.usd_per_1k_requests = known(cost.per_1k_requests, reason="requests/s unknown")
    row.usd_per_1m_total = cost.per_1m_total
    run = option.accuracy_run
    if run is None:
        row.usd_per_correct = na(row.accuracy.reason or "no accuracy run")
        return
    usage, _, complete = reader.item_usage(run.id)
    if cost.per_1m_total is None:
        row.usd_per_correct = na("total tokens/s at the operating point unknown")
    elif not complete:
        row.usd_per_correct = na("the accuracy run lacks token counts")
    elif not row.correct:
        row.usd_per_correct = na("no correct answers")
    else:
        spent = (usage.input_total + usage.output) * cost.per_1m_total / 1e6
        row.usd_per_correct = known(spent / row.correct, "accuracy-run tokens at the operating point's $/1M")


def _api_cost(row: Row, pricing: Pricing, reader: StoreReader) -> None:
    option = row.option
    prices = pricing.prices.get(option.name)
    if prices is None:
        _all_cost_na(row, "no price for this target")
        return
    row.prices = prices
    row.usd_per_1m_blended = known(blended_per_1m(prices), "list price, 3 input : 1 output")
    source = option.op.run or option.op.display
    usage: Usage | None = None
    requests = 0
    note: str | None = None
    if source is not None:
        usage, requests = reader.request_usage(source.id)
        note = None if source is option.op.run else "usage of a run not at an operating point"
    acc = option.accuracy_run
    acc_usage, acc_n, acc_complete = reader.item_usage(acc.id) if acc is not None else (Usage(), 0, False)
    if usage is None or usage.output == 0:
        usage, requests, note = (
            (acc_usage, acc_n, "at the accuracy run's token mix") if acc_complete else (None, 0, None)
        )
    if usage is None:
        _all_cost_na(row, "no token usage stored for this target", keep_blended=True)
    else:
        row.usd_per_1m_output = known(workload_per_1m_output(usage, prices), note, reason="no output tokens")
        row.usd_per_1m_output_allocation = row.usd_per_1m_output
        row.usd_per_1k_requests = known(per_1k_requests(usage, requests, prices), note, reason="no requests")
        if usage.output:
            row.mix = usage.input_total / usage.output
    if acc is None:
        row.usd_per_correct = na(row.accuracy.reason or "no accuracy run")
    elif not acc_complete:
        row.usd_per_correct = na("the accuracy run lacks token counts")
    elif not row.correct:
        row.usd_per_correct = na("no correct answers")
    else:
        row.usd_per_correct = known(api_cost(acc_usage, prices).total_usd / row.correct)


def _all_cost_na(row: Row, reason: str, *, keep_blended: bool = False) -> None:
    row.usd_per_1m_output = row.usd_per_1m_output_allocation = na(reason)
    row.usd_per_1k_requests = row.usd_per_correct = na(reason)
    if not keep_blended:
        row.usd_per_1m_blended = na(reason)


def compute_row(
    option: Option, pricing: Pricing, reader: StoreReader, *, utilization: float | None = None
) -> Row:
    """Every figure of one option (reads aggregates through `reader`)."""
    row = Row(option=option, accuracy=na("not computed"))
    _accuracy(row)
    _speed(row)
    if option.kind == "self-hosted":
        _selfhosted_cost(row, pricing, reader, utilization)
    else:
        _api_cost(row, pricing, reader)
    return row
