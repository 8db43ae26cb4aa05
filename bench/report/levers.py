"""The report's "levers" section: for the recommended option and its nearest alternatives, what each cost
lever would save and what it would cost in accuracy (with 95% CIs), measured on the stored runs, and the
lever the measurements favour (bench.whatif.levers: the largest saving within the report's max drop).

Levers and what each needs from the store (a lever that lacks it is listed as not measured, with why):
- routing and cascades: accuracy runs of the recommended option and an alternative on the same items;
  thresholds chosen on training folds, figures held out (bench.whatif.route). Signals that need a model
  call or the embedding model (judge, classifier) are left to `llmbench whatif route`;
- exact cache: the recommended option's operating-point load run, replayed with honest timing
  (bench.whatif.cache); the semantic cache needs the offline embedding model (`llmbench whatif cache`);
- prompt versions: accuracy runs of one option on the same suite through different prompt templates;
- provider prompt caching: the cached input tokens an API option's load run measured, priced.

Item costs: an API option's items at its per-token prices; a self-hosted option's at its $/1M reference
tokens at the operating point (the report's own figure), so the shares compare like with like.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from bench.cost import api_cost, from_record
from bench.errors import LlmbenchError
from bench.registry import Prices
from bench.report.analysis import Headline
from bench.report.figures import Row
from bench.report.options import Pricing, SuiteKey, suite_key
from bench.stats import wilson
from bench.store import RunInfo
from bench.whatif.cache import CacheSpec, ProviderCache, analyse_cache
from bench.whatif.embed import TextEmbedder
from bench.whatif.levers import Lever, favoured, levers, prompt_lever, provider_cache_lever
from bench.whatif.model import Option as WhatifOption
from bench.whatif.route import RouteSpec, analyse_route
from bench.whatif.signals import AgreementSignal, FormatSignal, LogprobSignal, PromptLengthSignal
from bench.whatif.source import TokenPrice, load_provider_cache, load_route_data, load_run_log

ALTERNATIVES = 2  # nearest alternatives routed against the recommended option
REPORT_SIGNALS = (PromptLengthSignal(), LogprobSignal(), AgreementSignal(), FormatSignal())
LEFT_TO_WHATIF = {
    "cascade:judge": "calls a judge on every item: run `llmbench whatif route {runs} --judge NAME`",
    "router:classifier": "needs the offline embedding model: run `llmbench whatif route {runs}`",
}


@dataclass(frozen=True)
class NotMeasured:
    """A lever the store cannot price, and why."""

    lever: str
    why: str


@dataclass(frozen=True)
class PromptVersion:
    """One prompt version of one option on the report's suite."""

    option: str
    version: str  # 'name@version (sha256 prefix)', or 'none'
    run_id: str
    n: int
    accuracy: float | None
    ci95: tuple[float, float] | None
    input_tokens: float | None  # mean per item, the model's own tokens
    usd_per_1k_items: float | None
    base: bool  # the version the report's figures use


@dataclass
class LeversSection:
    """What the levers section shows."""

    subject: str  # the recommended option and the alternatives it was measured against
    max_drop: float
    levers: list[Lever] = field(default_factory=list)
    favoured: Lever | None = None
    not_measured: list[NotMeasured] = field(default_factory=list)
    prompt_versions: list[PromptVersion] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _price(row: Row, pricing: Pricing) -> TokenPrice | None:
    """How a row's unpriced items are priced: an API's per-token prices, a self-hosted box's $/1M
    reference tokens at its operating point; None when neither is known."""
    prices = pricing.prices.get(row.option.name) or row.prices
    if prices is not None:
        return TokenPrice(prices.input_per_1m, prices.output_per_1m)
    if row.usd_per_1m_total is not None:
        return TokenPrice(row.usd_per_1m_total, row.usd_per_1m_total, unit="reference")
    return None


def _log_prices(row: Row, pricing: Pricing) -> Prices | None:
    """Prices for replaying a row's load run (a self-hosted box at its $/1M tokens at the operating point)."""
    prices = pricing.prices.get(row.option.name) or row.prices
    if prices is not None or row.usd_per_1m_total is None:
        return prices
    per_1m = row.usd_per_1m_total
    return Prices(input_per_1m=per_1m, output_per_1m=per_1m, as_of=date.today(),
                  source="self-hosted at its operating point")  # fmt: skip


def _alternatives(rows: Sequence[Row], chosen: Row, head: Headline) -> list[Row]:
    """The runner-up, then the options nearest the chosen one in $/1M output tokens, with accuracy runs."""
    rest = [r for r in rows if r is not chosen and r.option.accuracy_run is not None]
    picked = [r for r in rest if r.key == head.runner_up]
    cost = chosen.usd_per_1m_output.value

    def distance(r: Row) -> float:
        other = r.usd_per_1m_output.value
        return abs(other - cost) if other is not None and cost is not None else float("inf")

    picked += sorted((r for r in rest if r not in picked), key=distance)
    return picked[:ALTERNATIVES]


def _route(store: Path, chosen: Row, alt: Row, pricing: Pricing, section: LeversSection) -> None:
    a, b = chosen.option.accuracy_run, alt.option.accuracy_run
    assert a is not None and b is not None
    pair = f"routing / cascade, {chosen.key} with {alt.key}"
    prices = {run.id: p for run, row in ((a, chosen), (b, alt)) if (p := _price(row, pricing)) is not None}
    try:
        data = load_route_data(store, [a.id, b.id], prices=prices)
        shared = len(data.shared_ids())
        spec = RouteSpec(min_shared=20, signals=REPORT_SIGNALS, max_drop_points=section.max_drop,
                         folds=min(5, max(2, shared)))  # fmt: skip
        report = analyse_route(data, spec)
    except LlmbenchError as exc:
        section.not_measured.append(NotMeasured(pair, str(exc)))
        return
    found = levers(route=report)
    context = f"{report.cheap} → {report.strong}"
    section.levers += [dataclasses.replace(lv, name=f"{lv.name} ({context})") for lv in found]
    runs = f"{a.id[:8]} {b.id[:8]}"
    skipped = {**report.skipped, **{k: v.format(runs=runs) for k, v in LEFT_TO_WHATIF.items()}}
    reasons = "; ".join(f"{name}: {why}" for name, why in skipped.items())
    section.not_measured.append(NotMeasured(f"routing / cascade signals ({context})", reasons))
    if not report.costs_known:
        section.notes.append(
            f"{context}: some items have no cost; thresholds chose by the share of strong calls"
        )


def _caches(
    store: Path, row: Row, pricing: Pricing, embedder: TextEmbedder | None, section: LeversSection
) -> None:
    run = row.option.op.run or row.option.op.display
    if run is None:
        why = "no load run to replay (run `llmbench bench load`, or a sweep with loads:)"
        section.not_measured += [NotMeasured(f"exact cache ({row.key})", why)]
        section.not_measured += [NotMeasured(f"semantic cache ({row.key})", why)]
        section.not_measured += [NotMeasured(f"provider prompt caching ({row.key})", why)]
        return
    prices = _log_prices(row, pricing)
    try:
        log = load_run_log(store, run.id, prices_for=lambda _name: prices)
        report = analyse_cache(log.requests, CacheSpec(semantic=embedder is not None), embedder=embedder,
                               provider=log.provider)  # fmt: skip
    except LlmbenchError as exc:
        section.not_measured.append(NotMeasured(f"caches ({row.key})", str(exc)))
        return
    where = f"{row.key}, run {run.id[:8]}"
    section.levers += [dataclasses.replace(lv, name=f"{lv.name} ({where})") for lv in levers(cache=report)]
    if embedder is None:
        section.not_measured.append(NotMeasured(
            f"semantic cache ({row.key})",
            f"needs the offline embedding model: run `llmbench whatif cache --run {run.id[:8]}`",
        ))  # fmt: skip
    if not report.timed:
        section.notes.append(f"{where}: the log has no timestamps; replayed in order (optimistic)")
    _provider(row, run, pricing, log.provider, section)


def _provider(
    row: Row, run: RunInfo, pricing: Pricing, provider: ProviderCache | None, section: LeversSection
) -> None:
    lever = f"provider prompt caching ({row.key})"
    summary = run.load_summary
    prices = pricing.prices.get(row.option.name) or row.prices
    reported = 0 if provider is None else provider.reported
    if row.option.kind != "api" or prices is None:
        why = "a self-hosted box is paid by the hour: its prefix cache shows in throughput, not in a bill"
        section.not_measured.append(NotMeasured(lever, why))
        return
    if summary is None or not reported:
        why = "the server reported no cached input tokens on this run (a shared-prefix workload shows them)"
        section.not_measured.append(NotMeasured(lever, why))
        return
    usage = from_record(summary.input_tokens, summary.output_tokens, summary.cache_read_tokens,
                        summary.cache_write_tokens, summary.reasoning_tokens)  # fmt: skip
    billed, uncached = api_cost(usage, prices).total_usd, api_cost(usage.as_uncached(), prices).total_usd
    assert provider is not None
    name = f"provider prompt caching ({row.key}, run {run.id[:8]})"
    section.levers.append(provider_cache_lever(name, billed, uncached, provider.requests))


def _versions(
    store: Path, row: Row, suite: SuiteKey | None, pricing: Pricing, section: LeversSection
) -> bool:
    """Prompt versions of one option: rows and levers; False when it ran only one."""
    base = row.option.accuracy_run
    if base is None:
        return False
    runs: dict[str, RunInfo] = {}
    for run in sorted(row.option.accuracy_runs, key=lambda r: r.started_at):
        if (
            run.summary is not None
            and run.status == "complete"
            and suite_key(run) == (suite or suite_key(base))
        ):
            runs[_label(run)] = run  # the newest run of each version
    runs[_label(base)] = base
    if len(runs) < 2:
        return False
    price = _price(row, pricing)
    ordered = [base, *(r for r in runs.values() if r is not base)]
    try:
        data = load_route_data(
            store, [r.id for r in ordered], prices={r.id: price for r in ordered} if price else None
        )
    except LlmbenchError as exc:
        section.not_measured.append(NotMeasured(f"prompt versions ({row.key})", str(exc)))
        return True
    options = {o.run_id: o for o in data.options}
    base_option = options[base.id]
    for run in ordered:
        option = options[run.id]
        section.prompt_versions.append(_version_row(row.key, run, option, run is base))
        if run is not base:
            found = prompt_lever(base_option, option)
            if found is not None:
                name = f"prompt {_label(run)} instead of {_label(base)} ({row.key})"
                section.levers.append(dataclasses.replace(found, name=name))
    return True


def _label(run: RunInfo) -> str:
    ref = run.accuracy_profile.prompt
    return "none" if ref is None else ref.label


def _version_row(key: str, run: RunInfo, option: WhatifOption, base: bool) -> PromptVersion:
    outcomes = list(option.items.values())
    right = sum(o.correct for o in outcomes)
    share = wilson(right, len(outcomes))
    costs = [o.cost_usd for o in outcomes]
    usd = (
        None
        if not costs or any(c is None for c in costs)
        else 1000 * sum(c or 0.0 for c in costs) / len(costs)
    )
    summary = run.accuracy_summary
    tokens = None if summary is None else summary.tokens.input
    n_items = 0 if summary is None else summary.items
    mean_in = tokens / n_items if tokens is not None and n_items else None
    return PromptVersion(key, _label(run), run.id, len(outcomes), share.score, share.ci95, mean_in, usd, base)


def levers_section(
    store: Path,
    rows: Sequence[Row],
    head: Headline,
    pricing: Pricing,
    suite: SuiteKey | None,
    max_drop: float,
    *,
    embedder: TextEmbedder | None = None,
) -> LeversSection:
    """The levers of the recommended option (else the most accurate) and its nearest alternatives."""
    key = head.recommended or head.best_accuracy
    chosen = next((r for r in rows if r.key == key), None)
    if chosen is None:
        section = LeversSection("no recommended option", max_drop)
        section.not_measured.append(
            NotMeasured("every lever", "the report recommends no option to pull them on")
        )
        return section
    alts = _alternatives(rows, chosen, head)
    names = ", ".join(r.key for r in alts) or "no alternative"
    section = LeversSection(f"{chosen.key} (recommended) with {names}", max_drop)
    if chosen.option.accuracy_run is None:
        section.not_measured.append(NotMeasured("routing / cascade", f"{chosen.key} has no accuracy run"))
    elif not alts:
        section.not_measured.append(
            NotMeasured("routing / cascade", "no other option has an accuracy run on the same suite")
        )
    for alt in alts if chosen.option.accuracy_run is not None else []:
        _route(store, chosen, alt, pricing, section)
    _caches(store, chosen, pricing, embedder, section)
    for alt in alts:  # an API alternative's own prompt caching, beside the recommended option's
        run = alt.option.op.run or alt.option.op.display
        if alt.option.kind == "api" and run is not None:
            _provider(alt, run, pricing, load_provider_cache(store, run.id), section)
    versions = [_versions(store, r, suite, pricing, section) for r in (chosen, *alts)]
    if not any(versions):
        section.not_measured.append(NotMeasured(
            "prompt versions",
            "each option ran one prompt version: run `bench accuracy --template FILE` per version (or a "
            "sweep's templates:) to price a shorter prompt",
        ))  # fmt: skip
    section.levers.sort(key=lambda lv: (lv.saved_share is None, -(lv.saved_share or 0.0)))
    section.favoured = favoured(section.levers, max_drop)
    return section


__all__ = ["LeversSection", "NotMeasured", "PromptVersion", "levers_section"]
