"""What `bench load` prints under its table for workload runs: the workload, prompt-cache hit rates (usage
and server), sessions, and TTFT by turn. Plain lines, numbers through the report's formatter."""

from __future__ import annotations

from bench.loadgen.results import RunResult
from bench.metrics import CacheMeasure, Distribution
from bench.metrics.workload import NOT_REPORTED
from bench.report.value import fmt_number
from bench.runs import LoadResult


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ms(d: Distribution, field: str) -> str:
    value = getattr(d, field)
    return "-" if value is None else fmt_number(value)


def cache_lines(label: str, cache: CacheMeasure) -> list[str]:
    """The hit rates of one run: from usage, from the server's counters, and as designed."""
    if cache.hit_rate is not None:
        usage = (
            f"usage hit rate {_pct(cache.hit_rate)} ({cache.read_tokens:,} of {cache.prompt_tokens:,} "
            f"prompt tokens read from the cache over {cache.reported} requests"
        )
        usage += f", {cache.write_tokens:,} written)" if cache.write_tokens else ")"
        if cache.not_reported:
            usage += f"; {cache.not_reported} requests without cached-token counts ({NOT_REPORTED})"
    else:
        why = cache.unknown.get("hit_rate", NOT_REPORTED)
        usage = f"usage hit rate unknown: {why}"
    if cache.server_hit_rate is not None:
        hits, queries = cache.server_hits or 0.0, cache.server_queries or 0.0
        server = (
            f"server hit rate {_pct(cache.server_hit_rate)} (vLLM prefix-cache counters: "
            f"{hits:,.0f} of {queries:,.0f} queried tokens)"
        )
    else:
        server = f"server hit rate unknown: {cache.unknown.get('server_hit_rate', 'no counters')}"
    lines = [f"{label}: prompt cache: {usage}", f"{label}: prompt cache: {server}"]
    if cache.designed_reuse is not None:
        lines.append(f"{label}: prompt cache: designed reuse {_pct(cache.designed_reuse)}")
    return lines


def _shows_cache(run: RunResult) -> bool:
    cache = run.summary.cache
    if cache is None:
        return False
    return run.profile.workload is not None or cache.read_tokens > 0 or cache.server_queries is not None


def turn_table(run: RunResult) -> list[str]:
    """TTFT and TTFA by turn index (ms), with the prompt and cached tokens of each turn."""
    turns = run.summary.turns
    if not turns:
        return []
    head = (
        f"{'turn':>4} {'sent':>5} {'ok':>5} {'failed':>6} {'not sent':>8} {'TTFT p50':>9} {'TTFT p99':>9} "
        f"{'TTFA p50':>9} {'prompt tok':>10} {'cached tok':>10} {'hit rate':>8}"
    )
    lines = [f"{run.label}: TTFT by turn (ms; over successful requests; cached tokens from usage)", head]
    for t in turns:
        cached = "-" if not t.cache_reported else f"{t.cache_read_tokens:,}"
        prompt = "-" if not t.cache_reported else f"{t.prompt_tokens:,}"
        lines.append(
            f"{t.turn:>4} {t.sent:>5} {t.ok:>5} {t.failed:>6} {t.not_sent:>8} {_ms(t.ttft_ms, 'p50'):>9} "
            f"{_ms(t.ttft_ms, 'p99'):>9} {_ms(t.ttfa_ms, 'p50'):>9} {prompt:>10} {cached:>10} "
            f"{_pct(t.cache_hit_rate):>8}"
        )
    return lines


def workload_lines(result: LoadResult) -> list[str]:
    """Every workload run's workload, cache, session and per-turn lines."""
    lines: list[str] = []
    for run in result.runs:
        label = run.label
        doc = run.profile.workload
        if doc is not None:
            parts = [f"{doc.kind} from {doc.file}", f"paced by the {doc.paced_by}"]
            if doc.skipped:
                parts.append(f"{doc.skipped} input lines skipped")
            lines.append(f"{label}: workload {doc.name}: " + ", ".join(parts))
            lines.extend(f"{label}: workload note: {note}" for note in doc.notes)
        if _shows_cache(run):
            assert run.summary.cache is not None
            lines.extend(cache_lines(label, run.summary.cache))
        s = run.summary.sessions
        if s is not None:
            rate = "" if s.sessions_per_s is None else f", {fmt_number(s.sessions_per_s)} sessions/s"
            lines.append(
                f"{label}: sessions: {s.started} started, {s.completed} completed, {s.abandoned} abandoned "
                f"(a turn failed), {s.cut_off} cut off by the run's end{rate}; turns: {s.turns_sent} sent, "
                f"{s.turns_ok} ok, {s.turns_failed} failed, {s.turns_not_sent} not sent"
            )
        lines.extend(turn_table(run))
    return lines
