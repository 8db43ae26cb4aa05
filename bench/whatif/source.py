"""The one place the what-if analyses read the results store: stored accuracy runs become RouteData, a
stored load or accuracy run becomes a request log. Everything else in bench.whatif is pure.

Reads `Store.open(path, create=False)`, `get_run`, `load_items`, `load_records` and the run's typed
`target`, `profile` and `provenance` documents.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from bench.accuracy.logprobs import EXTRA_KEY as LOGPROBS_KEY
from bench.accuracy.logprobs import LogprobSummary
from bench.accuracy.runner import DEFAULT_MAX_TOKENS, question_text
from bench.accuracy.suite import Suite, load_suite
from bench.errors import ConfigError, UsageError
from bench.prompts import build_requests
from bench.records import ItemRecord, RequestRecord, reference_tokens
from bench.registry import Prices
from bench.runs.pricing import token_cost
from bench.store import RunInfo, Store
from bench.whatif.cache import ProviderCache
from bench.whatif.model import ItemOutcome, Option, RouteData
from bench.whatif.requestlog import LoggedRequest


@dataclass(frozen=True)
class TokenPrice:
    """A price for an option whose items carry no cost (a self-hosted model): USD per 1M tokens, counted in
    the model's own tokens (`unit="model"`, the items' token counts) or in reference tokens (⌈UTF-8 bytes ÷
    4⌉ of the prompt and answer, as the report prices a self-hosted box at its operating point)."""

    input_per_1m: float
    output_per_1m: float
    unit: Literal["model", "reference"] = "model"

    def cost(self, item: ItemRecord) -> float | None:
        if self.unit == "reference":
            in_bytes, out_bytes = item.extra.get("input_bytes"), item.extra.get("output_bytes")
            if not isinstance(in_bytes, int) or not isinstance(out_bytes, int):
                return None
            tokens_in, tokens_out = reference_tokens(in_bytes), reference_tokens(out_bytes)
        elif item.input_tokens is None or item.output_tokens is None:
            return None
        else:
            tokens_in, tokens_out = item.input_tokens, item.output_tokens
        return (tokens_in * self.input_per_1m + tokens_out * self.output_per_1m) / 1e6


@dataclass(frozen=True)
class RunLog:
    """A stored run as a request log, with the provider's prompt caching where the run measured it."""

    run_id: str
    name: str
    requests: list[LoggedRequest]
    provider: ProviderCache | None
    notes: list[str] = field(default_factory=list)


def _accuracy_run(store: Store, run_id: str, flag: str) -> RunInfo:
    run = store.get_run(run_id)
    if run.kind != "accuracy":
        raise UsageError(f"run {run.id[:12]} is a {run.kind} run; routing reads accuracy runs", flag=flag)
    return run


def _name(run: RunInfo) -> str:
    return run.target.name or run.id[:8]


def _suite(run: RunInfo, override: str | None, notes: list[str]) -> Suite | None:
    """The run's suite, when it is at hand and still the one the run scored (same sha256)."""
    ref = override or run.accuracy_profile.suite
    if ref.startswith("lm-eval:"):
        notes.append(f"run {run.id[:8]} names no suite file: prompt-based signals are off")
        return None
    try:
        suite = load_suite(ref)
    except ConfigError as exc:
        notes.append(f"suite {ref} of run {run.id[:8]} is not at hand ({exc}): prompt-based signals are off")
        return None
    stored = run.accuracy_profile.suite_sha256
    if stored and stored != suite.sha256:
        notes.append(f"suite {ref} changed since run {run.id[:8]} scored it (sha256 differs): not used")
        return None
    return suite


def format_valid(item: ItemRecord) -> bool | None:
    """Did the scorer find the answer well-formed? From what the scorers store: regex `extracted`,
    json_schema `parsed`, numeric's 'no number' detail; None for scorers without a format (exact...)."""
    scorer = item.extra.get("scorer")
    if scorer == "regex":
        return "extracted" in item.extra
    if scorer == "json_schema":
        return "parsed" in item.extra
    if scorer == "numeric":
        return item.extra.get("detail") != "no number in the answer"
    return None


def _logprobs(item: ItemRecord) -> LogprobSummary | None:
    raw = item.extra.get(LOGPROBS_KEY)
    if not isinstance(raw, dict):
        return None
    try:
        return LogprobSummary.model_validate(raw)
    except ValidationError:
        return None


def outcomes(items: Sequence[ItemRecord], price: TokenPrice | None) -> tuple[dict[str, ItemOutcome], int]:
    """Each scored item's first repeat (with every repeat's answer), and how many items were dropped
    (failed requests, items without a right/wrong verdict)."""
    by_id: dict[str, list[ItemRecord]] = {}
    for item in items:
        by_id.setdefault(item.item_id, []).append(item)
    out: dict[str, ItemOutcome] = {}
    for item_id, repeats in by_id.items():
        repeats.sort(key=lambda r: r.repeat)
        first = repeats[0]
        if first.status != "ok" or first.correct is None:
            continue
        cost = first.cost_usd if first.cost_usd is not None or price is None else price.cost(first)
        out[item_id] = ItemOutcome(
            item_id=item_id,
            area=first.area or "-",
            correct=first.correct,
            cost_usd=cost,
            latency_ms=first.latency_ms,
            output=first.output or "",
            logprobs=_logprobs(first),
            repeat_outputs=tuple(r.output or "" for r in repeats if r.status == "ok"),
            format_valid=format_valid(first),
        )
    return out, len(by_id) - len(out)


def load_route_data(
    store_path: Path,
    run_ids: Sequence[str],
    *,
    prices: Mapping[str, TokenPrice] | None = None,
    suite: str | None = None,
) -> RouteData:
    """Stored accuracy runs (ids or unique prefixes) as RouteData; `prices` by run id prefix fill in items
    without a cost; `suite` overrides the suite file the runs name (for the prompt-based signals)."""
    notes: list[str] = []
    options: list[Option] = []
    prompts: dict[str, str] = {}
    with Store.open(store_path, create=False) as store:
        runs = [_accuracy_run(store, r, "RUN_ID") for r in run_ids]
        if len({r.id for r in runs}) < len(runs):
            raise UsageError("the same run is named twice", flag="RUN_ID")
        for run in runs:
            price = next((p for key, p in (prices or {}).items() if run.id.startswith(key.lower())), None)
            items, dropped = outcomes(store.load_items(run.id), price)
            if dropped:
                notes.append(f"{_name(run)}: {dropped} items without a right/wrong verdict (failed) left out")
            options.append(Option(_name(run), run.id, items))
        found = _suite(runs[0], suite, notes)
    if found is not None:
        prompts = {i.id: question_text(i) for i in found.items}
    names = [o.name for o in options]
    if len(set(names)) < len(names):  # two runs of one target: tell them apart by run id
        options = [Option(f"{o.name}@{o.run_id[:6]}", o.run_id, o.items) for o in options]
    return RouteData(tuple(options), prompts, tuple(notes))


def _from_items(run: RunInfo, items: Sequence[ItemRecord], suite: Suite) -> list[LoggedRequest]:
    by_id = {i.id: i for i in suite.items}
    model = run.target.model
    max_tokens = run.accuracy_profile.max_tokens or DEFAULT_MAX_TOKENS
    out: list[LoggedRequest] = []
    for item in items:
        question = by_id.get(item.item_id)
        if item.repeat != 0 or question is None:
            continue
        body = {
            "model": model,
            "messages": question.chat_messages(),
            "max_tokens": question.max_tokens or max_tokens,
            "temperature": 0.0,
        }
        out.append(
            LoggedRequest(
                len(out), body, cost_usd=item.cost_usd, latency_ms=item.latency_ms, answer=item.output,
                check=question, ok=item.status == "ok",
            )
        )  # fmt: skip
    return out


def _from_records(
    run: RunInfo, records: Sequence[RequestRecord], prices: Prices | None, notes: list[str]
) -> list[LoggedRequest]:
    """Rebuild each record's request from the run's prompt spec and seed (the store keeps no bodies)."""
    profile = run.load_profile
    spec, seed = profile.prompts, profile.prompt_seed
    if spec.unit == "model":
        notes.append("prompts sized in the target's own tokens were rebuilt with the approximate tokenizer")
    kept = [r for r in records if not r.warmup]
    sent = build_requests(spec, max((r.request_id for r in kept), default=-1) + 1, seed)
    model = run.target.model
    out: list[LoggedRequest] = []
    for r in kept:
        request = sent[r.request_id]
        text: dict[str, Any] = (
            {"messages": request.messages} if request.messages is not None else {"prompt": request.prompt}
        )
        body = {"model": model, **text, "max_tokens": request.max_tokens, **request.extra_body}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        cost = token_cost(
            prices, r.input_tokens, r.output_tokens, r.cached_input_tokens, r.cache_write_tokens
        )
        out.append(
            LoggedRequest(
                len(out), body, r.start_s, r.end_s, cost, (r.end_s - r.start_s) * 1000, r.output_text or None,
                ok=r.ok,
            )
        )  # fmt: skip
    return out


def provider_cache(records: Sequence[RequestRecord]) -> ProviderCache:
    """The provider's prompt caching over a load run's measured requests."""
    kept = [r for r in records if not r.warmup and r.ok]
    return ProviderCache(
        requests=len(kept),
        reported=sum(r.cached_input_tokens is not None for r in kept),
        input_tokens=sum(r.input_tokens or 0 for r in kept),
        cached_input_tokens=sum(r.cached_input_tokens or 0 for r in kept),
    )


def load_provider_cache(store_path: Path, run_id: str) -> ProviderCache:
    """The provider's prompt caching over a stored load run's measured requests."""
    with Store.open(store_path, create=False) as store:
        return provider_cache(store.load_records(store.get_run(run_id).id))


def load_run_log(
    store_path: Path,
    run_id: str,
    *,
    prices_for: Callable[[str], Prices | None] | None = None,
    suite: str | None = None,
) -> RunLog:
    """A stored run's requests as a log: a load run's records (bodies rebuilt from its prompt spec, priced
    with `prices_for(target name)`), or an accuracy run's first repeats (bodies from its suite, untimed)."""
    notes: list[str] = []
    with Store.open(store_path, create=False) as store:
        run = store.get_run(run_id)
        if run.kind == "accuracy":
            found = _suite(run, suite, notes)
            if found is None:
                raise UsageError(f"{notes[-1]}; pass --suite FILE", flag="--suite")
            requests = _from_items(run, store.load_items(run.id), found)
            provider = None
        else:
            records = store.load_records(run.id)
            prices = prices_for(_name(run)) if prices_for is not None else None
            requests = _from_records(run, records, prices, notes)
            provider = provider_cache(records)
    if not requests:
        raise UsageError(f"run {run.id[:8]} has no requests to replay", flag="--run")
    return RunLog(run.id, _name(run), requests, provider, notes)
