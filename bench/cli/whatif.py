"""`llmbench whatif route|cache`: what routing, cascades and caching would save on stored runs and logs."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from pydantic import ValidationError

from bench.cli._context import AppContext, check_writable
from bench.cli._whatif_tables import print_cache, print_route
from bench.errors import UsageError
from bench.settings import Settings
from bench.validation import usage_error

if TYPE_CHECKING:
    from bench.registry import Prices
    from bench.whatif.run import JudgeWith
    from bench.whatif.source import TokenPrice

_PATH = click.Path(dir_okay=False, path_type=Path)
SIGNAL_KINDS = ("prompt_length", "keyword", "classifier", "logprob", "agreement", "judge", "format")
STORE_HELP = "Results store [LLMBENCH_HOME/results.sqlite]."


@click.group("whatif")
def whatif() -> None:
    """What a lever would save on your own stored items and traffic, and what it would cost in quality."""


def _app(ctx: click.Context) -> AppContext:
    return ctx.find_object(AppContext) or AppContext(Settings.from_env())


def _store(app: AppContext, store: Path | None) -> Path:
    path = store or app.settings.results_path
    if not path.is_file():
        raise UsageError(
            f"no results store at {path}; run `llmbench bench accuracy` or pass --store", flag="--store"
        )
    return path


def _prices(values: tuple[str, ...]) -> dict[str, TokenPrice]:
    from bench.whatif.source import TokenPrice

    out: dict[str, TokenPrice] = {}
    for raw in values:
        run, sep, pair = raw.partition("=")
        try:
            tokens_in, tokens_out = (float(x) for x in pair.split(","))
        except ValueError:
            tokens_in = tokens_out = -1.0
        if not sep or not run.strip() or tokens_in < 0 or tokens_out < 0:
            raise UsageError(
                f"{raw!r} is not RUN_ID=IN,OUT (USD per 1M input and output tokens)", flag="--price"
            )
        out[run.strip()] = TokenPrice(tokens_in, tokens_out)
    return out


def _selfhosted_prices(
    app: AppContext, store: Path, run_ids: tuple[str, ...], given: list[str]
) -> tuple[dict[str, TokenPrice], list[str]]:
    """Self-hosted runs priced as the report prices them (their operating point), unless --price names
    them."""
    from bench.report.jsonout import pricing_from_registry
    from bench.report.route_prices import route_prices

    return route_prices(store, run_ids, pricing_from_registry(app.registry), skip=given)


def _embedder(app: AppContext, path: Path | None) -> Any:
    from bench.whatif.embed import OfflineEmbedder, find_model

    return OfflineEmbedder(find_model(path, app.settings.home))


def _judge_with(app: AppContext, name: str | None) -> JudgeWith | None:
    if name is None:
        return None
    from bench.whatif.judging import with_judge

    return functools.partial(with_judge, name, app.registry, app.settings)


@whatif.command("route")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--min-shared", type=int, default=None, help="Refuse runs that share fewer items [20].")
@click.option("--folds", type=int, default=None, help="k of the stratified k-fold [5].")
@click.option("--seed", type=int, default=None, help="Seed of the fold assignment [0].")
@click.option("--cheap", default=None, help="The cheap option: target name or run id [the cheapest].")
@click.option("--strong", default=None, help="The strong option [the most accurate].")
@click.option("--max-drop", type=float, default=None, help="Accuracy points a policy may lose to strong [1].")
@click.option(
    "--signal", "signals", multiple=True, type=click.Choice(SIGNAL_KINDS), help="Signals to try [all]."
)
@click.option(
    "--keyword", "keywords", multiple=True, help="Keyword rule: prompts with it go to strong (repeatable)."
)
@click.option(
    "--logprob-quantile",
    type=click.Choice(["min", "p05", "p10", "p25", "p50", "mean"]),
    default=None,
    help="Logprob confidence: the quantile of the cheap answer's token logprobs [p10].",
)
@click.option("--judge", default=None, help="Registry name of the judge for the cascade's judge signal.")
@click.option(
    "--price",
    "prices",
    multiple=True,
    help="RUN_ID=IN,OUT: USD per 1M tokens for unpriced items [a self-hosted run: its operating point's "
    "$/1M reference tokens, as the report costs it, when the store holds its load runs].",
)
@click.option("--suite", default=None, help="The suite file the runs scored [the one they name].")
@click.option(
    "--embedding-model", type=click.Path(path_type=Path), default=None, help="Local embedding model folder."
)
@click.option(
    "--export", type=_PATH, default=None, help="Write the recommended policy (llmbench.route-policy/1)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the llmbench.whatif-route/1 JSON.")
@click.option("--store", type=_PATH, default=None, help=STORE_HELP)
@click.pass_context
def route(
    ctx: click.Context,
    run_ids: tuple[str, ...],
    min_shared: int | None,
    folds: int | None,
    seed: int | None,
    cheap: str | None,
    strong: str | None,
    max_drop: float | None,
    signals: tuple[str, ...],
    keywords: tuple[str, ...],
    logprob_quantile: str | None,
    judge: str | None,
    prices: tuple[str, ...],
    suite: str | None,
    embedding_model: Path | None,
    export: Path | None,
    as_json: bool,
    store: Path | None,
) -> None:
    """Routers and cascades between stored accuracy runs of the same items (RUN_ID RUN_ID [...]).

    Each threshold is chosen on the training folds (stratified by area) and reported on the held-out fold;
    the sensitivity sweep, RouteLLM's APGR and CPT(50%/80%), $ per 1k items, $ per correct answer, p95
    latency and the paired accuracy change against the strong model (Newcombe CI, McNemar p) are held out.
    """
    from bench.whatif.jsonout import route_json
    from bench.whatif.route import RouteSpec
    from bench.whatif.run import needs_embeddings
    from bench.whatif.run import route as run_route
    from bench.whatif.source import load_route_data

    app = _app(ctx)
    kinds = list(signals or SIGNAL_KINDS)
    if keywords and "keyword" not in kinds:
        kinds.append("keyword")
    if not keywords and "keyword" in kinds:
        if signals:
            raise UsageError("the keyword signal needs --keyword WORD", flag="--keyword")
        kinds.remove("keyword")
    chosen: list[dict[str, Any]] = []
    for kind in kinds:
        entry: dict[str, Any] = {"kind": kind}
        if kind == "keyword":
            entry["keywords"] = list(keywords)
        if kind == "logprob" and logprob_quantile:
            entry["quantile"] = logprob_quantile
        chosen.append(entry)
    values = {"min_shared": min_shared, "folds": folds, "seed": seed, "cheap": cheap, "strong": strong,
              "max_drop_points": max_drop, "signals": chosen}  # fmt: skip
    try:
        spec = RouteSpec.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise usage_error(
            exc, {"max_drop_points": "--max-drop", "signals": "--signal"}, model=RouteSpec
        ) from exc
    if export is not None:
        check_writable(export, "--export")
    path = _store(app, store)
    given = _prices(prices)
    found, priced = _selfhosted_prices(app, path, run_ids, list(given))
    data = load_route_data(path, run_ids, prices={**found, **given}, suite=suite)
    embedder = _embedder(app, embedding_model) if needs_embeddings(data, spec) else None
    report = run_route(data, spec, embedder=embedder, judge_with=_judge_with(app, judge))
    report.notes[:0] = priced
    if as_json:
        click.echo(json.dumps(route_json(report), indent=2))
    else:
        print_route(report)
    if export is not None:
        if report.chosen is None:
            click.echo(
                f"no policy beat {report.strong} on the training folds: nothing written to {export}", err=True
            )
        else:
            report.chosen.export.write(export)
            click.echo(f"wrote {export} ({report.chosen.name})", err=True)


@whatif.command("cache")
@click.option("--run", "run_id", default=None, help="Replay a stored load or accuracy run's requests.")
@click.option("--log", "log_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Replay a request-log JSONL.")  # fmt: skip
@click.option("--scope", type=click.Choice(["last_user", "conversation", "session"]), default=None,
              help="What the semantic cache compares [last_user].")  # fmt: skip
@click.option("--thresholds", default=None, help="Cosine thresholds to sweep, e.g. 0.8,0.9,0.95.")
@click.option(
    "--fill-share", type=float, default=None, help="Share of the log (by arrival) that only fills [0.5]."
)
@click.option(
    "--max-false-hit", type=float, default=None, help="False-hit limit of the recommended threshold [0.02]."
)
@click.option("--no-semantic", is_flag=True, help="Only the exact cache (no embedding model needed).")
@click.option("--judge", default=None, help="Registry name of the judge for hits without a reference.")
@click.option("--embed-ms", type=float, default=None, help="Time to embed one request (ms) [10].")
@click.option(
    "--embed-usd-per-1m", type=float, default=None, help="Embedding price per 1M tokens [0: local]."
)
@click.option("--lookup-ms", type=float, default=None, help="Cache lookup time per request (ms) [1].")
@click.option("--suite", default=None, help="The suite file an accuracy run scored [the one it names].")
@click.option(
    "--embedding-model", type=click.Path(path_type=Path), default=None, help="Local embedding model folder."
)
@click.option("--json", "as_json", is_flag=True, help="Print the llmbench.whatif-cache/1 JSON.")
@click.option("--store", type=_PATH, default=None, help=STORE_HELP)
@click.pass_context
def cache(
    ctx: click.Context,
    run_id: str | None,
    log_file: Path | None,
    scope: str | None,
    thresholds: str | None,
    fill_share: float | None,
    max_false_hit: float | None,
    no_semantic: bool,
    judge: str | None,
    embed_ms: float | None,
    embed_usd_per_1m: float | None,
    lookup_ms: float | None,
    suite: str | None,
    embedding_model: Path | None,
    as_json: bool,
    store: Path | None,
) -> None:
    """Replay a request log through an exact and a semantic cache (--run RUN_ID or --log FILE).

    An entry exists only once its request has completed; the cache fills on the first part of the log and
    is measured on the rest; a hit's served answer is scored against this request's reference (or judged).
    """
    from bench.whatif.cache import CacheSpec
    from bench.whatif.jsonout import cache_json
    from bench.whatif.requestlog import read_request_log
    from bench.whatif.run import cache as run_cache
    from bench.whatif.source import load_run_log

    app = _app(ctx)
    if (run_id is None) == (log_file is None):
        raise UsageError("give --run RUN_ID or --log FILE (one of them)", flag="--run")
    costs = {"embed_ms": embed_ms, "embed_usd_per_1m_tokens": embed_usd_per_1m, "lookup_ms": lookup_ms}
    values: dict[str, Any] = {"scope": scope, "fill_share": fill_share, "max_false_hit_rate": max_false_hit,
                              "costs": {k: v for k, v in costs.items() if v is not None}}  # fmt: skip
    if thresholds is not None:
        values["thresholds"] = [t.strip() for t in thresholds.split(",") if t.strip()]
    if no_semantic:
        values["semantic"] = False
    try:
        spec = CacheSpec.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        flags = {"max_false_hit_rate": "--max-false-hit", "costs": "--embed-ms"}
        raise usage_error(exc, flags, model=CacheSpec) from exc
    provider = None
    notes: list[str] = []
    if log_file is not None:
        log = read_request_log(log_file)
        source = str(log_file)
    else:
        assert run_id is not None
        found = load_run_log(
            _store(app, store), run_id, prices_for=functools.partial(_registry_prices, app), suite=suite
        )
        log, provider, notes, source = (
            found.requests,
            found.provider,
            found.notes,
            f"run {found.run_id[:8]} ({found.name})",
        )
    embedder = None if not spec.semantic else _embedder(app, embedding_model)
    report = run_cache(log, spec, embedder=embedder, judge_with=_judge_with(app, judge), provider=provider)
    report.notes[:0] = notes
    if as_json:
        click.echo(json.dumps(cache_json(report), indent=2))
    else:
        print_cache(report, source)


def _registry_prices(app: AppContext, name: str) -> Prices | None:
    from bench.errors import ConfigError
    from bench.registry import ApiEndpoint, MockEndpoint

    try:
        _, entry = app.registry.get(name)
    except ConfigError:
        return None
    return entry.prices if isinstance(entry, ApiEndpoint | MockEndpoint) else None
