"""The what-ifs end to end on data already read: compute the embeddings and judge verdicts a spec needs,
then run the pure analyses. `judge_with(work)` runs `work` with a ready Judge (bench.whatif.judging
.with_judge, bound to a registry name); None: no judge."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from bench.accuracy.judge import Judge
from bench.whatif.cache import (
    CacheReport,
    CacheSpec,
    HitKey,
    ProviderCache,
    judge_asks,
    replay_all,
    summarize_cache,
)
from bench.whatif.embed import TextEmbedder
from bench.whatif.judging import judge_answers, judge_served
from bench.whatif.model import JudgedAnswer, RouteData
from bench.whatif.requestlog import LoggedRequest
from bench.whatif.route import RouteReport, RouteSpec, analyse_route, check_shared, pick_pair
from bench.whatif.signals import ClassifierSignal, JudgeSignal

JudgeWith = Callable[[Callable[[Judge], Awaitable[Any]]], Any]


def needs_embeddings(data: RouteData, spec: RouteSpec) -> bool:
    """True when the spec has a classifier and the prompts are at hand to embed."""
    return bool(data.prompts) and any(isinstance(s, ClassifierSignal) for s in spec.signals)


def route(
    data: RouteData,
    spec: RouteSpec,
    *,
    embedder: TextEmbedder | None = None,
    judge_with: JudgeWith | None = None,
) -> RouteReport:
    """Embed the prompts (for a classifier), judge the cheap answers (for a judge signal), analyse."""
    ids = check_shared(data, spec.min_shared)
    embeddings: Mapping[str, Sequence[float]] | None = None
    if embedder is not None and needs_embeddings(data, spec):
        embedded = [i for i in ids if i in data.prompts]
        embeddings = dict(zip(embedded, embedder.encode([data.prompts[i] for i in embedded]), strict=True))
    judged: dict[str, JudgedAnswer] | None = None
    judge_spec = next((s for s in spec.signals if isinstance(s, JudgeSignal)), None)
    if judge_with is not None and judge_spec is not None and data.prompts:
        cheap, _ = pick_pair(data, ids, spec)
        asks = [(i, data.prompts[i], cheap.items[i].output) for i in ids if i in data.prompts]
        rubric = judge_spec.rubric

        async def work(judge: Judge) -> dict[str, JudgedAnswer]:
            return await judge_answers(judge, asks, rubric)

        judged = judge_with(work)
    return analyse_route(data, spec, embeddings=embeddings, judged=judged)


def cache(
    log: Sequence[LoggedRequest],
    spec: CacheSpec,
    *,
    embedder: TextEmbedder | None = None,
    judge_with: JudgeWith | None = None,
    provider: ProviderCache | None = None,
) -> CacheReport:
    """Replay both caches; the judge grades served answers that have no reference; summarize."""
    replays = replay_all(log, spec, embedder)
    asks = judge_asks(log, replays)
    judged: dict[HitKey, bool] = {}
    if judge_with is not None and asks:

        async def work(judge: Judge) -> dict[HitKey, bool]:
            return await judge_served(judge, asks)

        judged = judge_with(work)
    return summarize_cache(log, spec, replays, judged, provider)
