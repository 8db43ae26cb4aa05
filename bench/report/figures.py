"""The figures of one leaderboard row: accuracy, speed at the operating point, and cost.

**One workload for every option.** Cost columns compare options on what each load run sent: the workload
of its operating-point run. Load lengths are counted in *reference tokens* by default (⌈UTF-8 bytes ÷ 4⌉
of the text, bench.records.reference_tokens), so every option got the same prompt texts and was asked for
the same output length; every token figure below is in reference tokens, whatever each option's own
tokenizer counts (a byte-level model counts four times as many tokens as an API for the same text). A
report whose options ran different workloads says so in its notes.

Definitions (every figure is "n/a" with a reason when an input is missing, never 0):

- **out tok/s @ op**: reference output tokens per second in the steady window of the operating point
  (the model's own tok/s × reference ÷ own output tokens of the run), with the batch-means 95% interval.
- **$/1M out (all-in)**: what 1M reference output tokens of the workload cost, the input sent with them
  included, at the workload's measured input:output mix. Self-hosted: hardware $/hour ÷ (out tok/s @ op ×
  3600) × 10⁶ (allocation basis; ÷ U on the utilization basis). API: the run's bill (usage × prices, cache
  reads and writes apart) ÷ its reference output tokens. An API's list output price (per 1M of its own
  tokens) is shown beside it.
- **$/1M blended**: per 1M reference tokens (input + output) at one stated mix M:1 for every row, M the
  median of the options' measured mixes. API: (M × input price + output price) ÷ (M + 1), each list price
  converted to reference tokens by the option's measured own-per-reference ratio. Self-hosted: the box's
  $/1M reference tokens at its measured mix (a box has no separate input price); a mix more than 10% from M
  is named.
- **$/1k requests**: self-hosted $/hour ÷ (requests/s in the steady window × 3600) × 1000; API: the bill per
  request × 1000.
- **$ per correct answer**: the accuracy workload's cost ÷ its correct items, for every option on the same
  items. API: its bill. Self-hosted: the run's prompt and answer text in reference tokens × the box's
  $/1M reference tokens (input + output) at the operating point.
- A cost read at a capped operating point (the goodput search stopped at its ceiling or at an invalid
  probe) is an upper bound ("≤"), and the throughput a lower bound ("≥").
- **Prompt caching** (bench.report.cache): an API's bill prices cache reads and writes at the provider's own
  prices; the same bill priced as if nothing were cached (every prompt token at the input price) is shown
  beside it per workload, so what caching saved is visible. Where its server did not report cached tokens
  for some requests, those are billed as if nothing were cached, and each cost figure from that run says
  "cache not reported" (and the option is flagged).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.accuracy.documents import AreaScore
from bench.cost import api_cost, per_1k_requests, selfhosted_cost
from bench.loadgen.documents import LoadRunProfile
from bench.metrics import Distribution
from bench.registry import Hardware, Prices
from bench.report.cache import CacheFigures, run_cache
from bench.report.flags import Flag, is_lower_bound
from bench.report.operating import attainment, steady_output_tokens_per_s
from bench.report.options import Option, Pricing
from bench.report.query import StoreReader
from bench.report.value import Value, known, na

MIX_TOLERANCE = 0.10  # a self-hosted mix this far from the report's stated mix is named beside its blend
UPPER = "upper bound"
LOWER = "lower bound"


@dataclass
class Row:
    """One option with every reported figure."""

    option: Option
    accuracy: Value
    ci95: tuple[float, float] | None = None
    n_items: int | None = None
    correct: int | None = None
    areas: dict[str, AreaScore] = field(default_factory=dict)
    ttft_p50: Value = field(default_factory=lambda: na("no load run"))
    ttft_p95: Value = field(default_factory=lambda: na("no load run"))
    tpot_p50: Value = field(default_factory=lambda: na("no load run"))
    output_tok_s: Value = field(default_factory=lambda: na("no load run"))
    goodput_rps: Value = field(default_factory=lambda: na("no load run"))
    attainment: Value = field(default_factory=lambda: na("no load run"))
    usd_per_hour: Value = field(default_factory=lambda: na("an API is priced per token"))
    usd_per_1m_output: Value = field(default_factory=lambda: na("not computed"))
    usd_per_1m_output_allocation: Value = field(default_factory=lambda: na("not computed"))
    # An API's bill of the same run priced as if nothing were cached: what caching saved it.
    usd_per_1m_output_uncached: Value = field(default_factory=lambda: na("no load run of an API"))
    usd_per_1m_blended: Value = field(default_factory=lambda: na("not computed"))
    usd_per_1k_requests: Value = field(default_factory=lambda: na("not computed"))
    usd_per_correct: Value = field(default_factory=lambda: na("not computed"))
    usd_per_1m_total: float | None = None  # self-hosted: per 1M reference tokens in + out (for $/correct)
    mix: float | None = None  # reference input tokens per reference output token of the workload
    list_usd_per_1m_output: Value = field(default_factory=lambda: na("self-hosted: priced per hour"))
    output_tok_s_model: Value = field(default_factory=lambda: na("no load run"))  # the model's own tokens
    output_tok_s_ci95: tuple[float, float] | None = None  # reference tok/s, batch means
    own_per_ref: tuple[float, float] | None = None  # (input, output) own tokens per reference token
    workload: dict[str, Any] | None = None  # what the operating-point run sent (prompts and length unit)
    capped: str | None = None  # why the operating point is a lower bound on the load
    prices: Prices | None = None
    hardware: Hardware | None = None
    basis: str = "allocation"
    utilization: float | None = None  # the share of busy time on the utilization basis
    cache: CacheFigures | None = None  # prompt caching in the load run its figures come from

    @property
    def cache_not_reported(self) -> str | None:
        """'cache not reported' (for some requests) when this API option's bill came from a run whose
        server did not say what it cached; None otherwise (and for self-hosted options, priced per hour)."""
        if self.option.kind != "api" or self.cache is None:
            return None
        return self.cache.not_reported_text

    @property
    def key(self) -> str:
        return self.option.key


def _dist(dist: Distribution, metric: str, pct: str, lower_bound: bool) -> Value:
    value = getattr(dist, pct)
    note = LOWER if lower_bound and pct in ("p95", "p99", "p999") else None
    return known(value, note, reason=f"no {metric.removesuffix('_ms').upper()} measured")


def _workload(profile: LoadRunProfile) -> dict[str, Any]:
    """What a load run sent, to tell one workload from another: its prompt spec and length unit."""
    return profile.prompts.model_dump(mode="json")


def _speed(row: Row) -> None:
    op = row.option.op
    shown = op.display
    s = None if shown is None else shown.load_summary
    if shown is None or s is None:
        return
    steady = s.load.steady if op.run is not None and s.load is not None else None
    lower = is_lower_bound([f for f in row.option.flags if f.run_id == shown.id])
    ttft, tpot = (
        (steady.ttft_ms, steady.tpot_ms) if steady and steady.ttft_ms.count else (s.ttft_ms, s.tpot_ms)
    )
    row.ttft_p50 = _dist(ttft, "ttft_ms", "p50", lower)  # the steady window's, when one was read
    row.ttft_p95 = _dist(ttft, "ttft_ms", "p95", lower)
    row.tpot_p50 = _dist(tpot, "tpot_ms", "p50", lower)
    row.attainment = known(attainment(s), reason="no SLO")
    if op.run is None:
        reason = op.note
        row.output_tok_s = row.output_tok_s_model = na(reason)
        row.goodput_rps = na(reason)
        return
    row.capped = op.capped
    row.workload = _workload(op.run.load_profile)
    bound = LOWER if op.capped else None
    unknown = s.unknown.get("output_tokens_per_s")
    own_tps = steady_output_tokens_per_s(s)
    row.output_tok_s_model = known(own_tps, bound, reason=str(unknown or "output token counts unknown"))
    goodput = s.goodput_requests_per_s if steady is None else steady.goodput_requests_per_s
    row.goodput_rps = known(goodput, reason="no goodput measured")
    ref = s.reference_tokens if s.reference_tokens and s.reference_tokens[1] else None
    own_in, own_out = float(s.input_tokens), float(s.output_tokens)
    if ref is None or own_tps is None or not own_out:
        # A run stored before reference counts, or whose requests did not record their text: own tokens.
        row.output_tok_s = known(own_tps, _join(bound, "model tokens (no reference count)"), reason=str(
            unknown or "output token counts unknown"))  # fmt: skip
        row.mix = own_in / own_out if own_out else None
        return
    ref_in, ref_out = ref
    per_own = ref_out / own_out
    row.own_per_ref = (own_in / ref_in if ref_in else 1.0, own_out / ref_out)
    row.mix = ref_in / ref_out
    row.output_tok_s = known(own_tps * per_own, bound)
    ci = None if steady is None else steady.output_tokens_per_s_ci95
    if ci is not None:
        row.output_tok_s_ci95 = (ci[0] * per_own, ci[1] * per_own)


def _join(*notes: str | None) -> str | None:
    """Notes joined with '; ' (a bound first, so renderers mark it), None when there are none."""
    kept = [n for n in notes if n]
    return "; ".join(kept) if kept else None


def _accuracy(row: Row) -> None:
    run = row.option.accuracy_run
    if run is None:
        row.accuracy = na(
            "no accuracy run on the report's suite"
            if row.option.accuracy_runs
            else "no accuracy run for this variant"
        )
        return
    s = run.accuracy_summary
    if s is None or not s.n:
        row.accuracy = na("the accuracy run scored no items")
        return
    row.accuracy = known(s.score)
    row.ci95 = s.ci95
    row.n_items, row.correct = s.n, s.correct
    row.areas = dict(s.areas)


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
    tps = row.output_tok_s.value
    run = option.op.run
    if run is None or tps is None or tps <= 0:
        _all_cost_na(row, row.output_tok_s.reason or option.op.note)
        return
    s = run.load_summary
    steady = None if s is None or s.load is None else s.load.steady
    rps = steady.requests_per_s if steady is not None else (None if s is None else s.requests_per_s)
    total = tps * (1.0 + row.mix) if row.mix is not None else None
    cost = selfhosted_cost(
        hw.usd_per_hour, tps, total_tokens_per_s=total, requests_per_s=rps, utilization=utilization
    )
    alloc = selfhosted_cost(hw.usd_per_hour, tps, total_tokens_per_s=total)
    bound = UPPER if row.capped else None
    units = None if row.own_per_ref is not None else "model tokens (no reference count)"
    row.basis = cost.basis
    row.utilization = utilization
    row.usd_per_1m_output = known(cost.per_1m_output, _join(bound, units))
    row.usd_per_1m_output_allocation = known(alloc.per_1m_output, _join(bound, units))
    row.usd_per_1k_requests = known(cost.per_1k_requests, bound, reason="requests/s unknown")
    row.usd_per_1m_total = cost.per_1m_total
    row.usd_per_1m_blended = known(cost.per_1m_total, _join(bound, units), reason="total tokens/s unknown")
    acc = option.accuracy_run
    if acc is None:
        row.usd_per_correct = na(row.accuracy.reason or "no accuracy run")
        return
    if cost.per_1m_total is None:
        row.usd_per_correct = na("total tokens/s at the operating point unknown")
        return
    ref_in, ref_out, complete = reader.item_reference_tokens(acc.id)
    if not complete:
        row.usd_per_correct = na("the accuracy run did not record its text (no reference token counts)")
    elif not row.correct:
        row.usd_per_correct = na("no correct answers")
    else:
        spent = (ref_in + ref_out) * cost.per_1m_total / 1e6
        row.usd_per_correct = known(spent / row.correct, _join(bound, "accuracy-run text at the box's $/1M"))


def _api_cost(row: Row, pricing: Pricing, reader: StoreReader) -> None:
    option = row.option
    prices = pricing.prices.get(option.name)
    if prices is None:
        _all_cost_na(row, "no price for this target")
        return
    row.prices = prices
    row.list_usd_per_1m_output = known(prices.output_per_1m, "list price, per 1M of its own tokens")
    source = option.op.run or option.op.display
    acc = option.accuracy_run
    if source is None:
        # Priced from list prices at the workload's mix once every row is known (apply_blended); the
        # own-per-reference ratios come from the accuracy run's text when it recorded it.
        _all_cost_na(row, "no load run: the workload's cost is not measured", keep_list=True)
        if acc is not None:
            acc_usage, _, acc_complete = reader.item_usage(acc.id)
            ref_in, ref_out, ref_complete = reader.item_reference_tokens(acc.id)
            if acc_complete and ref_complete and ref_in and ref_out:
                row.own_per_ref = (acc_usage.input_total / ref_in, acc_usage.output / ref_out)
    else:
        usage, requests = reader.request_usage(source.id)
        note = None if source is option.op.run else "usage of a run not at an operating point"
        bill = api_cost(usage, prices).total_usd
        summary = source.load_summary
        ref = (
            None
            if summary is None or not (summary.reference_tokens or (0, 0))[1]
            else summary.reference_tokens
        )
        if row.workload is None:
            row.workload = _workload(source.load_profile)
        if ref is None or not usage.output:
            units = "its own tokens (no reference count)"
            out = usage.output
            row.mix = usage.input_total / usage.output if usage.output else None
        else:
            units, out = None, ref[1]
            row.mix = ref[0] / ref[1]
            row.own_per_ref = (usage.input_total / ref[0] if ref[0] else 1.0, usage.output / ref[1])
        row.usd_per_1m_output = known(bill / out * 1e6 if out else None, _join(note, units),
                                      reason="no output tokens")  # fmt: skip
        uncached = api_cost(usage.as_uncached(), prices).total_usd
        row.usd_per_1m_output_uncached = known(uncached / out * 1e6 if out else None, _join(note, units),
                                               reason="no output tokens")  # fmt: skip
        row.usd_per_1m_output_allocation = row.usd_per_1m_output
        row.usd_per_1k_requests = known(per_1k_requests(usage, requests, prices), note, reason="no requests")
    if acc is None:
        row.usd_per_correct = na(row.accuracy.reason or "no accuracy run")
        return
    acc_usage, _, acc_complete = reader.item_usage(acc.id)
    if not acc_complete:
        row.usd_per_correct = na("the accuracy run lacks token counts")
    elif not row.correct:
        row.usd_per_correct = na("no correct answers")
    else:
        row.usd_per_correct = known(api_cost(acc_usage, prices).total_usd / row.correct, "as billed")


def _all_cost_na(row: Row, reason: str, *, keep_list: bool = False) -> None:
    row.usd_per_1m_output = row.usd_per_1m_output_allocation = na(reason)
    row.usd_per_1k_requests = row.usd_per_correct = row.usd_per_1m_blended = na(reason)
    if not keep_list:
        row.list_usd_per_1m_output = na(reason)


def common_mix(rows: Sequence[Row]) -> float | None:
    """The one input:output mix (reference tokens) every row's blended price is stated at: the median of
    the rows' measured workload mixes."""
    mixes = [r.mix for r in rows if r.mix is not None]
    return statistics.median(mixes) if mixes else None


def apply_blended(rows: Sequence[Row], mix: float | None) -> None:
    """Every row's blended $/1M reference tokens at the one stated `mix` (see the module docstring)."""
    for row in rows:
        if mix is None:
            if row.usd_per_1m_blended.value is not None or row.option.kind == "api":
                row.usd_per_1m_blended = na("no measured workload mix to state a blend at")
            continue
        stated = f"at {mix:.3g}:1"
        if row.option.kind == "api":
            if row.prices is None:
                continue
            r_in, r_out = row.own_per_ref or (1.0, 1.0)
            units = None if row.own_per_ref else "its own tokens (no reference count)"
            p_in, p_out = row.prices.input_per_1m * r_in, row.prices.output_per_1m * r_out
            row.usd_per_1m_blended = known(
                (mix * p_in + p_out) / (mix + 1), _join(f"list prices {stated}", units)
            )
            if row.usd_per_1m_output.value is None and row.option.op.display is None:
                # No load run: the workload's all-in price from list prices at its mix (no caching seen).
                note = _join(f"list prices at the workload's {mix:.3g}:1 mix (no load run)", units)
                row.usd_per_1m_output = row.usd_per_1m_output_allocation = known(mix * p_in + p_out, note)
        elif row.usd_per_1m_blended.value is not None:
            own = row.mix
            off = own is not None and abs(own / mix - 1) > MIX_TOLERANCE
            where = f"at its measured mix {own:.3g}:1, not {mix:.3g}:1" if off and own else stated
            note = row.usd_per_1m_blended.note
            bound = UPPER if note and note.startswith(UPPER) else None
            rest = None if not note else note.removeprefix(UPPER).lstrip("; ") or None
            row.usd_per_1m_blended = known(row.usd_per_1m_blended.value, _join(bound, where, rest))


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
    _cache(row, reader)
    return row


def _cache(row: Row, reader: StoreReader) -> None:
    """The load run's prompt caching; an API bill from a run whose server did not report it says so."""
    run = row.option.op.run or row.option.op.display
    if run is None or run.kind != "load":
        return
    row.cache = run_cache(run, reader)
    mark = row.cache_not_reported
    if mark is None:
        return
    for name in ("usd_per_1m_output", "usd_per_1m_output_allocation", "usd_per_1k_requests"):
        value: Value = getattr(row, name)
        if value.value is not None:
            setattr(row, name, known(value.value, _join(value.note, mark)))
    detail = f"{mark}: those requests are billed as if nothing were cached"
    row.option.flags.append(Flag("cache_not_reported", detail, run.id))
