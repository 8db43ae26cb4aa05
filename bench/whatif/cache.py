"""`whatif cache`: replay a request log through an exact cache and a semantic cache, honestly.

- Honest timing: a request's answer enters the cache only when that request has completed; a duplicate
  that arrives while the first is still in flight is a miss (counted as `in_flight_misses`). A log without
  timestamps is replayed in order, each request completing before the next arrives (optimistic: stated).
- Honest evaluation: requests are ordered by arrival; the first `fill_share` of them is the fill part, the
  rest the measured part. The cache starts empty and keeps filling through both, as it would in production;
  figures are given for the measured part, and the semantic threshold recommended is the one that saved
  most on the fill part within the false-hit limit, so it is never chosen on the requests it is scored on.
- False hits: a hit serves the cached answer of an earlier request; it is scored against *this* request's
  reference with this request's scorer, or, without one, graded by the judge (`judged`); otherwise it is
  counted as unjudged. The false-hit rate is over judged hits, with a 95% Wilson interval.
- Cost model: a hit costs the lookup (and, for the semantic cache, the embedding of the request text) and
  takes their time instead of the request's measured cost and latency; a miss pays the request plus the
  lookup (and embedding). Net $ saved = Σ hits' measured cost − Σ every measured request's overhead.
- The semantic cache compares only requests whose bodies match outside their text (model, tools,
  sampling parameters); with scope `session` only requests of the same session.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from bench.accuracy.scorers import score_deterministic
from bench.records import reference_tokens
from bench.stats import Proportion, wilson
from bench.whatif.embed import TextEmbedder
from bench.whatif.replay import CacheKind, Hit, Replay, replay_exact, replay_semantic, timeline
from bench.whatif.requestlog import LoggedRequest, Scope, is_timed, scope_text
from bench.whatif.signals import JUDGE_RUBRIC

HitKey = tuple[int, int]  # (request index, index of the request whose answer was served)


class CacheCosts(BaseModel):
    """What a cache costs per request: lookup for both caches, embedding for the semantic one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lookup_ms: float = Field(1.0, ge=0, description="hashing or index search per request (ms)")
    lookup_usd: float = Field(0.0, ge=0, description="per request (USD)")
    embed_ms: float = Field(10.0, ge=0, description="embedding one request text (ms)")
    embed_usd_per_1m_tokens: float = Field(
        0.0, ge=0, description="embedding price per 1M reference tokens (0: a local model)"
    )

    def overhead_usd(self, text: str | None) -> float:
        """Per request: lookup, plus the embedding of `text` when the cache is semantic."""
        embed = (
            0.0 if text is None else reference_tokens(len(text.encode())) * self.embed_usd_per_1m_tokens / 1e6
        )
        return self.lookup_usd + embed

    def overhead_ms(self, semantic: bool) -> float:
        return self.lookup_ms + (self.embed_ms if semantic else 0.0)


class CacheSpec(BaseModel):
    """How to replay a log through the caches."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fill_share: float = Field(0.5, ge=0, lt=1, description="share of requests (by arrival) that only fill")
    scope: Scope = "last_user"
    thresholds: tuple[float, ...] = Field((0.8, 0.85, 0.9, 0.95, 0.98), min_length=1)
    max_false_hit_rate: float = Field(0.02, ge=0, le=1, description="limit on the recommended threshold")
    semantic: bool = True
    costs: CacheCosts = CacheCosts()


@dataclass(frozen=True)
class JudgeAsk:
    """A served answer the judge must grade for a request without a deterministic reference."""

    key: HitKey
    question: str
    answer: str
    rubric: str
    reference: str | None


@dataclass(frozen=True)
class CacheFigures:
    """A cache on one part of the log."""

    requests: int
    hits: int
    hit_rate: float | None
    in_flight_misses: int
    false_hits: int
    false_hit_rate: Proportion  # over judged hits
    unjudged_hits: int
    spend_usd: float | None  # what the part cost without a cache
    gross_saved_usd: float | None  # the hits' measured cost
    overhead_usd: float
    net_saved_usd: float | None
    latency_mean_without_ms: float | None
    latency_mean_with_ms: float | None


@dataclass(frozen=True)
class CacheRun:
    """One cache (and threshold) on the fill part and the measured part."""

    kind: CacheKind
    threshold: float | None
    fill: CacheFigures | None  # None when there is no fill part
    measured: CacheFigures
    false_examples: list[tuple[str, str, float | None]]  # (request text, served request's text, cosine)


@dataclass(frozen=True)
class ProviderCache:
    """The provider's own prompt caching as a load run measured it (cached input tokens in usage)."""

    requests: int
    reported: int  # requests whose usage said how many input tokens came from the cache
    input_tokens: int
    cached_input_tokens: int

    @property
    def share(self) -> float | None:
        """Share of input tokens read from the provider's cache; None when no request reported it."""
        return self.cached_input_tokens / self.input_tokens if self.reported and self.input_tokens else None


@dataclass(frozen=True)
class CacheReport:
    """Both caches on one log."""

    requests: int
    fill_requests: int
    timed: bool
    spec: CacheSpec
    exact: CacheRun
    semantic: list[CacheRun]
    chosen_threshold: float | None
    notes: list[str] = field(default_factory=list)
    provider: ProviderCache | None = None  # shown beside: the provider's prompt caching, where measured


def judge_asks(log: Sequence[LoggedRequest], replays: Sequence[Replay]) -> list[JudgeAsk]:
    """Hits the judge must grade: those of requests without a deterministic reference (one ask per pair)."""
    asks: dict[HitKey, JudgeAsk] = {}
    for replay in replays:
        for hit in replay.hits.values():
            request, served = log[hit.index], log[hit.source].answer
            key = (hit.index, hit.source)
            if served is None or key in asks or _deterministic(request):
                continue
            check = request.check
            rubric = check.rubric if check is not None and check.rubric else JUDGE_RUBRIC
            refs = check.all_references if check is not None else []
            asks[key] = JudgeAsk(key, request.question(), served, rubric, refs[0] if refs else None)
    return list(asks.values())


def _deterministic(request: LoggedRequest) -> bool:
    return request.check is not None and request.check.scorer.kind not in ("judge", "embedding")


def verdict(log: Sequence[LoggedRequest], hit: Hit, judged: Mapping[HitKey, bool]) -> bool | None:
    """Was the served answer right for this request? None when it cannot be judged."""
    request, served = log[hit.index], log[hit.source].answer
    if served is None:
        return None
    if _deterministic(request):
        assert request.check is not None
        return score_deterministic(request.check, served).correct
    return judged.get((hit.index, hit.source))


def _mean(values: Sequence[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None) / len(values)


def _plus(value: float | None, extra: float) -> float | None:
    return None if value is None else value + extra


def _sum(values: Sequence[float | None]) -> float | None:
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def figures(
    log: Sequence[LoggedRequest],
    part: Sequence[int],
    replay: Replay,
    judged: Mapping[HitKey, bool],
    costs: CacheCosts,
    texts: Sequence[str] | None,
) -> CacheFigures:
    """The cache's figures over the requests `part`; `texts` are what a semantic cache embeds."""
    hits = [replay.hits[i] for i in part if i in replay.hits]
    verdicts = [verdict(log, h, judged) for h in hits]
    wrong = sum(v is False for v in verdicts)
    judged_n = sum(v is not None for v in verdicts)
    semantic = replay.kind == "semantic"
    overhead = sum(costs.overhead_usd(texts[i] if texts is not None else None) for i in part)
    gross = _sum([log[h.index].cost_usd for h in hits])
    extra_ms = costs.overhead_ms(semantic)
    without = [log[i].latency_ms for i in part]
    with_cache = [extra_ms if i in replay.hits else _plus(log[i].latency_ms, extra_ms) for i in part]
    return CacheFigures(
        requests=len(part),
        hits=len(hits),
        hit_rate=len(hits) / len(part) if part else None,
        in_flight_misses=sum(i in replay.in_flight for i in part),
        false_hits=wrong,
        false_hit_rate=wilson(wrong, judged_n),
        unjudged_hits=len(hits) - judged_n,
        spend_usd=_sum([log[i].cost_usd for i in part]),
        gross_saved_usd=gross,
        overhead_usd=overhead,
        net_saved_usd=None if gross is None else gross - overhead,
        latency_mean_without_ms=_mean(without),
        latency_mean_with_ms=_mean(with_cache),
    )


def _run(
    log: Sequence[LoggedRequest],
    replay: Replay,
    parts: tuple[list[int], list[int]],
    judged: Mapping[HitKey, bool],
    spec: CacheSpec,
    texts: Sequence[str] | None,
) -> CacheRun:
    fill, measured = parts
    false = [
        (log[h.index].question(), log[h.source].question(), h.similarity)
        for h in (replay.hits[i] for i in measured if i in replay.hits)
        if verdict(log, h, judged) is False
    ]
    return CacheRun(
        replay.kind,
        replay.threshold,
        figures(log, fill, replay, judged, spec.costs, texts) if fill else None,
        figures(log, measured, replay, judged, spec.costs, texts),
        false[:5],
    )


def replay_all(log: Sequence[LoggedRequest], spec: CacheSpec, embedder: TextEmbedder | None) -> list[Replay]:
    """The exact cache, then the semantic cache at each threshold (when asked and an embedder is given)."""
    replays = [replay_exact(log)]
    if spec.semantic and embedder is not None:
        vectors = embedder.encode([scope_text(r.body, spec.scope) for r in log])
        replays += [replay_semantic(log, vectors, t, spec.scope) for t in sorted(spec.thresholds)]
    return replays


def summarize_cache(
    log: Sequence[LoggedRequest],
    spec: CacheSpec,
    replays: Sequence[Replay],
    judged: Mapping[HitKey, bool] | None = None,
    provider: ProviderCache | None = None,
) -> CacheReport:
    """Figures per cache on the fill and measured parts; the semantic threshold chosen on the fill part."""
    order, _, _, notes = timeline(log)
    cut = int(len(order) * spec.fill_share)
    parts = (order[:cut], order[cut:])
    texts = [scope_text(r.body, spec.scope) for r in log]
    verdicts = judged or {}
    runs = [_run(log, r, parts, verdicts, spec, texts if r.kind == "semantic" else None) for r in replays]
    semantic = runs[1:]
    chosen = _choose(semantic, spec.max_false_hit_rate)
    if not parts[0]:
        notes.append("no fill part (fill share 0): no threshold is recommended")
    unjudged = sum(r.measured.unjudged_hits for r in runs)
    if unjudged:
        notes.append(
            f"{unjudged} hits could not be judged (no reference and no --judge, or no stored answer)"
        )
    return CacheReport(len(log), cut, is_timed(log), spec, runs[0], semantic, chosen, notes, provider)


def _choose(runs: Sequence[CacheRun], limit: float) -> float | None:
    """The threshold with the most net $ saved (else hits) on the fill part within the false-hit limit."""
    ok = [r for r in runs if r.fill is not None and (r.fill.false_hit_rate.score or 0.0) <= limit]
    if not ok:
        return None

    def key(r: CacheRun) -> tuple[float, float]:
        assert r.fill is not None
        saved = r.fill.net_saved_usd if r.fill.net_saved_usd is not None else float(r.fill.hits)
        return (saved, r.threshold or 0.0)

    return max(ok, key=key).threshold


def analyse_cache(
    log: Sequence[LoggedRequest],
    spec: CacheSpec,
    *,
    embedder: TextEmbedder | None = None,
    judged: Mapping[HitKey, bool] | None = None,
    provider: ProviderCache | None = None,
) -> CacheReport:
    """Replay and summarize in one call (`judged`: the judge's verdicts on `judge_asks`, if any)."""
    return summarize_cache(log, spec, replay_all(log, spec, embedder), judged, provider)
