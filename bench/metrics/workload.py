"""Workload figures of a run: prompt caching (usage and server counters), TTFT by turn, per-session counts.

**Prompt cache** (`CacheMeasure`, every run with a successful request or a server counter):

- *From usage*: over the successful measured requests whose usage reported a cached-token count (0
  included) and a prompt-token count, hit rate = Σ cached (read) tokens ÷ Σ prompt tokens. A request whose
  server reported no cached count (`cached_input_tokens` None: vLLM without
  `--enable-prompt-tokens-details`, most generic servers) is counted in `not_reported`; when no request
  reported one the hit rate is unknown (None, with the reason in `unknown`), never 0. Written tokens
  (Anthropic's `cache_creation_input_tokens`) are summed beside.
- *From the server*: Δ of vLLM's Prometheus counters `vllm:prefix_cache_queries` and
  `vllm:prefix_cache_hits` (prompt tokens looked up, and found) over the measured window; hit rate =
  Δhits ÷ Δqueries (`prefix_cache_delta` reads it from the samples taken during the run).
- *Designed*: the workload's designed reuse share (the share of prompt tokens that repeat an earlier
  request's), shown beside the measured ones.

Example: two successful requests of 1,000 prompt tokens reporting 0 and 768 cached, one reporting
nothing: hit rate 768 ÷ 2,000 = 0.384, `not_reported` 1.

**Sessions** (records carrying `session_id` and `turn`): per turn index, the measured requests sent,
answered, failed and not sent, TTFT and TTFA (time to first answer token) over the successful ones, and
the prompt and cached tokens; per run, sessions started, completed (every turn answered), abandoned (a
turn failed, so the later ones were not sent) and cut off (the run ended first), and completed sessions
per second over the measured window. A session's *occupancy* interval runs from its first turn's send to
its last answer (think times included): the load of a session run is sessions active at once, or sessions
started per second (bench.metrics.load reads it from these intervals).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.metrics.distribution import Distribution
from bench.metrics.request import RequestMetrics
from bench.records import RequestRecord, Status

PREFIX_CACHE_QUERIES = "vllm:prefix_cache_queries_total"  # the Counter vllm:prefix_cache_queries
PREFIX_CACHE_HITS = "vllm:prefix_cache_hits_total"
NOT_REPORTED = "cached tokens not reported by this server"
FAILED = (Status.ERROR, Status.TIMEOUT)

ServerSampleLike = tuple[float, str, Mapping[str, str], float]  # (t_s, name, labels, value)


@dataclass(frozen=True, slots=True)
class PrefixCounters:
    """Δ of a server's prefix-cache counters over a run's measured window (prompt tokens)."""

    queries: float
    hits: float


def prefix_cache_delta(samples: Iterable[ServerSampleLike], start_s: float) -> PrefixCounters | None:
    """Δ of vLLM's prefix-cache counters from the last sample at or before `start_s` (the measured
    window's start) to the last sample of the run, summed over series (engines); None when the server
    exposes no such counters or none was sampled before `start_s`, or a counter went back (a restart)."""
    series: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[float, float]]] = defaultdict(list)
    for t_s, name, labels, value in samples:
        if name in (PREFIX_CACHE_QUERIES, PREFIX_CACHE_HITS):
            series[(name, tuple(sorted(labels.items())))].append((t_s, value))
    totals = {PREFIX_CACHE_QUERIES: 0.0, PREFIX_CACHE_HITS: 0.0}
    seen = set()
    for (name, _), points in series.items():
        points.sort()
        before = [v for t, v in points if t <= start_s]
        if not before:
            return None
        delta = points[-1][1] - before[-1]
        if delta < 0:
            return None
        totals[name] += delta
        seen.add(name)
    if seen != set(totals):
        return None
    return PrefixCounters(queries=totals[PREFIX_CACHE_QUERIES], hits=totals[PREFIX_CACHE_HITS])


@dataclass(frozen=True, slots=True)
class CacheMeasure:
    """Prompt caching in one run (see the module docstring): from usage, the server, and the design."""

    requests: int  # successful measured requests
    reported: int  # of which usage reported a cached-token count (0 included) and a prompt-token count
    not_reported: int  # successful requests whose usage reported no cached-token count
    prompt_tokens: int  # prompt tokens of the reporting requests (the server's own count)
    read_tokens: int  # of which read from the cache
    write_tokens: int  # of which written to it (Anthropic's cache_creation_input_tokens)
    hit_rate: float | None  # read ÷ prompt over the reporting requests; None: unknown (see `unknown`)
    server_queries: float | None = None  # Δ vllm:prefix_cache_queries over the measured window (tokens)
    server_hits: float | None = None  # Δ vllm:prefix_cache_hits (tokens)
    server_hit_rate: float | None = None  # Δhits ÷ Δqueries; None: unknown (see `unknown`)
    designed_reuse: float | None = None  # the workload's designed share of prompt tokens that repeat
    unknown: dict[str, str] = field(default_factory=dict)  # hit_rate / server_hit_rate -> why

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "reported": self.reported,
            "not_reported": self.not_reported,
            "prompt_tokens": self.prompt_tokens,
            "read_tokens": self.read_tokens,
            "write_tokens": self.write_tokens,
            "hit_rate": self.hit_rate,
            "server_queries": self.server_queries,
            "server_hits": self.server_hits,
            "server_hit_rate": self.server_hit_rate,
            "designed_reuse": self.designed_reuse,
            "unknown": dict(self.unknown),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CacheMeasure:
        """Inverse of `to_json`."""
        return cls(
            requests=int(data.get("requests") or 0),
            reported=int(data.get("reported") or 0),
            not_reported=int(data.get("not_reported") or 0),
            prompt_tokens=int(data.get("prompt_tokens") or 0),
            read_tokens=int(data.get("read_tokens") or 0),
            write_tokens=int(data.get("write_tokens") or 0),
            hit_rate=data.get("hit_rate"),
            server_queries=data.get("server_queries"),
            server_hits=data.get("server_hits"),
            server_hit_rate=data.get("server_hit_rate"),
            designed_reuse=data.get("designed_reuse"),
            unknown={str(k): str(v) for k, v in (data.get("unknown") or {}).items()},
        )

    @property
    def server(self) -> PrefixCounters | None:
        """The server's counters as measured (what a recompute needs again)."""
        if self.server_queries is None or self.server_hits is None:
            return None
        return PrefixCounters(self.server_queries, self.server_hits)


def _reports(r: RequestRecord) -> bool:
    return r.cached_input_tokens is not None and r.input_tokens is not None


def cache_measure(
    ok: Sequence[RequestRecord], server: PrefixCounters | None, designed_reuse: float | None
) -> CacheMeasure:
    """The cache figures of a run's successful measured requests `ok`, its server counters and design."""
    reporting = [r for r in ok if _reports(r)]
    prompt = sum(r.input_tokens or 0 for r in reporting)
    read = sum(r.cached_input_tokens or 0 for r in reporting)
    unknown: dict[str, str] = {}
    hit_rate: float | None = None
    if not reporting:
        unknown["hit_rate"] = (
            NOT_REPORTED if ok else "no successful request: nothing to measure the hit rate on"
        )
    elif prompt <= 0:
        unknown["hit_rate"] = "the reporting requests have no prompt tokens"
    else:
        hit_rate = read / prompt
    server_rate: float | None = None
    if server is None:
        unknown["server_hit_rate"] = "the server exposes no prefix-cache counters (vLLM's) or none were read"
    elif server.queries <= 0:
        unknown["server_hit_rate"] = "no prefix-cache queries counted in the measured window"
    else:
        server_rate = server.hits / server.queries
    return CacheMeasure(
        requests=len(ok),
        reported=len(reporting),
        not_reported=len(ok) - len(reporting),
        prompt_tokens=prompt,
        read_tokens=read,
        write_tokens=sum(r.cache_write_tokens or 0 for r in reporting),
        hit_rate=hit_rate,
        server_queries=None if server is None else server.queries,
        server_hits=None if server is None else server.hits,
        server_hit_rate=server_rate,
        designed_reuse=designed_reuse,
        unknown=unknown,
    )


@dataclass(frozen=True, slots=True)
class TurnFigures:
    """One turn index of a session run, over its measured requests (latencies ms, tokens summed)."""

    turn: int  # 0-based
    sent: int  # requests of this turn sent (answered, failed or cut off)
    ok: int
    failed: int  # error or timeout
    not_sent: int  # never sent: an earlier turn failed, or the run ended
    ttft_ms: Distribution  # successful requests
    ttfa_ms: Distribution  # time to the first answer token (first visible content)
    cache_reported: int  # successful requests whose usage reported cached tokens
    prompt_tokens: int  # of those: prompt tokens ...
    cache_read_tokens: int  # ... and the cached (read) part

    @property
    def cache_hit_rate(self) -> float | None:
        """Cached ÷ prompt tokens over the reporting requests; None when none reported."""
        return self.cache_read_tokens / self.prompt_tokens if self.prompt_tokens > 0 else None

    def to_json(self) -> dict[str, Any]:
        return {
            "turn": self.turn,
            "sent": self.sent,
            "ok": self.ok,
            "failed": self.failed,
            "not_sent": self.not_sent,
            "ttft_ms": self.ttft_ms.to_json(),
            "ttfa_ms": self.ttfa_ms.to_json(),
            "cache_reported": self.cache_reported,
            "prompt_tokens": self.prompt_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_hit_rate": self.cache_hit_rate,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TurnFigures:
        """Inverse of `to_json` (`cache_hit_rate` is derived, not read)."""
        return cls(
            turn=int(data["turn"]),
            sent=int(data.get("sent") or 0),
            ok=int(data.get("ok") or 0),
            failed=int(data.get("failed") or 0),
            not_sent=int(data.get("not_sent") or 0),
            ttft_ms=Distribution.from_json(data.get("ttft_ms") or {"count": 0}),
            ttfa_ms=Distribution.from_json(data.get("ttfa_ms") or {"count": 0}),
            cache_reported=int(data.get("cache_reported") or 0),
            prompt_tokens=int(data.get("prompt_tokens") or 0),
            cache_read_tokens=int(data.get("cache_read_tokens") or 0),
        )


@dataclass(frozen=True, slots=True)
class SessionFigures:
    """The sessions of a run (measured ones; warm-up sessions excluded)."""

    started: int  # sessions with at least one turn sent
    completed: int  # every turn answered
    abandoned: int  # a turn failed: the later turns were not sent
    cut_off: int  # the run ended (duration, Ctrl-C, a stop) before every turn was answered
    turns_sent: int
    turns_ok: int
    turns_failed: int  # error or timeout
    turns_not_sent: int  # not sent after a failed turn, or because the run ended
    sessions_per_s: float | None  # completed sessions ÷ the measured window (s)

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "completed": self.completed,
            "abandoned": self.abandoned,
            "cut_off": self.cut_off,
            "turns_sent": self.turns_sent,
            "turns_ok": self.turns_ok,
            "turns_failed": self.turns_failed,
            "turns_not_sent": self.turns_not_sent,
            "sessions_per_s": self.sessions_per_s,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SessionFigures:
        """Inverse of `to_json`."""
        return cls(
            started=int(data.get("started") or 0),
            completed=int(data.get("completed") or 0),
            abandoned=int(data.get("abandoned") or 0),
            cut_off=int(data.get("cut_off") or 0),
            turns_sent=int(data.get("turns_sent") or 0),
            turns_ok=int(data.get("turns_ok") or 0),
            turns_failed=int(data.get("turns_failed") or 0),
            turns_not_sent=int(data.get("turns_not_sent") or 0),
            sessions_per_s=data.get("sessions_per_s"),
        )


def session_records(records: Iterable[RequestRecord]) -> list[RequestRecord]:
    """The records that belong to a session turn (session_id and turn set)."""
    return [r for r in records if r.session_id is not None and r.turn is not None]


def session_occupancy(measured: Iterable[RequestRecord]) -> list[tuple[float, float]]:
    """Each measured session's (first send, last end) over its sent turns, in start order."""
    spans: dict[str, tuple[float, float]] = {}
    for r in measured:
        if r.session_id is None or r.status is Status.NOT_SENT:
            continue
        a, b = spans.get(r.session_id, (r.start_s, r.end_s))
        spans[r.session_id] = (min(a, r.start_s), max(b, r.end_s))
    return sorted(spans.values())


def turn_figures(
    measured: Sequence[RequestRecord], metrics: Mapping[int, RequestMetrics]
) -> list[TurnFigures]:
    """Per turn index, over the measured session records; `metrics` maps a successful record's id() to
    its RequestMetrics."""
    by_turn: dict[int, list[RequestRecord]] = defaultdict(list)
    for r in measured:
        if r.turn is not None:
            by_turn[r.turn].append(r)
    out = []
    for turn in sorted(by_turn):
        rs = by_turn[turn]
        ok = [r for r in rs if r.status is Status.OK]
        ms = [metrics[id(r)] for r in ok]
        reporting = [r for r in ok if _reports(r)]
        out.append(
            TurnFigures(
                turn=turn,
                sent=sum(1 for r in rs if r.status is not Status.NOT_SENT),
                ok=len(ok),
                failed=sum(1 for r in rs if r.status in FAILED),
                not_sent=sum(1 for r in rs if r.status is Status.NOT_SENT),
                ttft_ms=Distribution.of(m.ttft_ms for m in ms if m.ttft_ms is not None),
                ttfa_ms=Distribution.of(m.ttfc_ms for m in ms if m.ttfc_ms is not None),
                cache_reported=len(reporting),
                prompt_tokens=sum(r.input_tokens or 0 for r in reporting),
                cache_read_tokens=sum(r.cached_input_tokens or 0 for r in reporting),
            )
        )
    return out


def session_figures(measured: Sequence[RequestRecord], window_s: float | None) -> SessionFigures:
    """The per-session counts of the measured session records; `window_s` is the measured window's length."""
    by_session: dict[str, list[RequestRecord]] = defaultdict(list)
    for r in measured:
        if r.session_id is not None:
            by_session[r.session_id].append(r)
    started = completed = abandoned = cut_off = 0
    for rs in by_session.values():
        if all(r.status is Status.NOT_SENT for r in rs):
            continue
        started += 1
        if any(r.status in FAILED for r in rs):
            abandoned += 1
        elif all(r.status is Status.OK for r in rs):
            completed += 1
        else:
            cut_off += 1
    statuses = [r.status for r in measured if r.session_id is not None]
    return SessionFigures(
        started=started,
        completed=completed,
        abandoned=abandoned,
        cut_off=cut_off,
        turns_sent=sum(1 for s in statuses if s is not Status.NOT_SENT),
        turns_ok=sum(1 for s in statuses if s is Status.OK),
        turns_failed=sum(1 for s in statuses if s in FAILED),
        turns_not_sent=sum(1 for s in statuses if s is Status.NOT_SENT),
        sessions_per_s=completed / window_s if window_s is not None and window_s > 0 else None,
    )
