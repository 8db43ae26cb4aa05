"""The answer per workload: the same judgement (recommendation, cost at the operating point, break-even) made
once for every workload the load runs sent, with prompt-cache hit rates on both sides, and one line saying
where the answer changes between workloads.

A load run's workload is its sweep point's (bench.documents.SweepPoint.workload), else the workload file
the run stored (bench.report.cache.run_cache), else `synthetic` (the prompt flags). Accuracy runs count for
every workload: the same weights answer the same items whatever the traffic. A report whose load runs sent
one workload has no per-workload section and reads as it did before workloads existed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.documents import SweepPoint
from bench.report.analysis import BreakEvenRow, Headline
from bench.report.cache import CacheFigures, run_cache
from bench.report.figures import Row
from bench.report.query import StoreReader
from bench.report.value import fmt_tokens, fmt_usd, show
from bench.store import RunInfo, Store

SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class WorkloadKey:
    """Which traffic a load run sent: the workload's name, kind and file sha256 (None: synthetic)."""

    name: str
    kind: str = SYNTHETIC
    sha256: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"name": self.name, "kind": self.kind, "sha256": self.sha256}


@dataclass
class WorkloadAnswer:
    """The report's judgement on one workload's load runs (and every accuracy run)."""

    workload: WorkloadKey
    load_runs: int
    rows: list[Row]
    headline: Headline
    break_evens: list[BreakEvenRow]

    def row(self, key: str | None) -> Row | None:
        return next((r for r in self.rows if r.key == key), None)

    @property
    def measured(self) -> list[str]:
        """Options with a load run on this workload."""
        return [r.key for r in self.rows if r.option.load_runs]

    @property
    def designed_reuse(self) -> float | None:
        """The workload's designed reuse share, as its runs stored it (None where not stored)."""
        shares = [r.cache.designed_reuse for r in self.rows if r.cache and r.cache.designed_reuse is not None]
        return shares[0] if shares else None


def cache_json(cache: CacheFigures | None) -> dict[str, Any] | None:
    if cache is None:
        return None
    return {
        "requests": cache.requests,
        "reported": cache.reported,
        "not_reported": cache.not_reported,
        "prompt_tokens": cache.prompt_tokens,
        "cached_tokens": cache.cached_tokens,
        "written_tokens": cache.written_tokens,
        "usage_hit_rate": cache.usage_hit_rate,
        "vllm_hit_rate": cache.vllm_hit_rate,
        "vllm_reason": None if cache.vllm_hit_rate is not None else cache.vllm_reason,
        "designed_reuse": cache.designed_reuse,
    }


def sweep_points(store: Store, runs: Iterable[RunInfo]) -> dict[str, SweepPoint]:
    """The stored plan point of every run that belongs to a sweep, by point id."""
    points: dict[str, SweepPoint] = {}
    for sweep_id in dict.fromkeys(r.sweep_id for r in runs if r.sweep_id):
        assert sweep_id is not None
        points.update({p.point_id: p for p in store.get_sweep(sweep_id).plan})
    return points


def workload_of(run: RunInfo, points: Mapping[str, SweepPoint], reader: StoreReader) -> WorkloadKey:
    """The workload a load run sent (see the module docstring)."""
    point = points.get(run.point_id or "")
    if point is not None:
        return WorkloadKey(point.workload, point.workload_kind, point.workload_sha256)
    stored = run_cache(run, reader).workload
    if stored is not None:
        return WorkloadKey(stored.name, stored.kind, stored.sha256)
    return WorkloadKey(SYNTHETIC)


def split_by_workload(
    runs: Sequence[RunInfo], points: Mapping[str, SweepPoint], reader: StoreReader
) -> dict[WorkloadKey, list[RunInfo]]:
    """The runs of each workload (accuracy runs in every one), in the sweep plan's order, else the order the
    workloads were first run in."""
    keys = {r.id: workload_of(r, points, reader) for r in runs if r.kind == "load"}
    planned = list(dict.fromkeys(p.workload for p in points.values()))  # the plan's order
    seen = list(dict.fromkeys(keys[r.id] for r in sorted(runs, key=lambda r: r.started_at) if r.id in keys))

    def rank(key: WorkloadKey) -> tuple[int, int]:
        return (planned.index(key.name) if key.name in planned else len(planned), seen.index(key))

    accuracy = [r for r in runs if r.kind != "load"]
    return {key: [r for r in runs if keys.get(r.id) == key] + accuracy for key in sorted(seen, key=rank)}


# -- words ----------------------------------------------------------------------------------------------


def pct(share: float) -> str:
    return f"{100 * share:.1f}%"


def usage_hit_text(cache: CacheFigures | None) -> str:
    """'62.0% (1,240 of 2,000 prompt tokens)', 'not reported', or 'n/a: no load run'."""
    if cache is None:
        return "n/a: no load run"
    rate = cache.usage_hit_rate
    missing = cache.not_reported_text
    if rate is None:
        return missing.removeprefix("cache ") if missing else "n/a: no prompt tokens"
    text = f"{pct(rate)} ({cache.cached_tokens:,} of {cache.prompt_tokens:,} prompt tokens)"
    if cache.written_tokens:
        text += f", {cache.written_tokens:,} written"
    return text + (f"; {missing.removeprefix('cache ')}" if missing else "")


def vllm_hit_text(row: Row) -> str:
    """vLLM's prefix-cache hit rate for a self-hosted option; '-' for an API."""
    if row.option.kind == "api":
        return "-"
    cache = row.cache
    if cache is None:
        return "n/a: no load run"
    if cache.vllm_hit_rate is None:
        return f"n/a: {cache.vllm_reason}"
    return pct(cache.vllm_hit_rate)


def cost_text(row: Row) -> str:
    """$/1M output tokens at the operating point, marked where its server did not report caching."""
    value = row.usd_per_1m_output
    if value.value is None:
        return f"n/a: {value.reason or 'not measured'}"
    mark = row.cache_not_reported
    return f"{show(value, 'usd')}" + (f" ({mark})" if mark else "")


def verdict_text(answer: WorkloadAnswer, row: Row) -> str:
    h = answer.headline
    if row.key == h.recommended:
        return "recommended"
    if row.key == h.runner_up:
        return "runner-up"
    if not row.option.load_runs:
        return f"not measured on {answer.workload.name}"
    return h.reasons.get(row.key, "eligible, dearer")


ANSWER_COLUMNS = (
    ("option", "option"),
    ("$/1M out @ op", "cost"),
    ("$/1M out if uncached", "uncached"),
    ("TTFT p95 ms", "ttft_p95"),
    ("prompt-cache hit (usage)", "usage_hit"),
    ("prefix-cache hit (vLLM)", "vllm_hit"),
    ("verdict", "verdict"),
)  # (heading, answer_rows key) of the per-workload tables


def answer_rows(answer: WorkloadAnswer) -> list[dict[str, str]]:
    """One line per option of a workload: cost at its operating point, TTFT, hit rates, verdict."""
    return [
        {
            "option": row.key,
            "kind": row.option.kind,
            "cost": cost_text(row),
            "uncached": show(row.usd_per_1m_output_uncached, "usd") if row.option.kind == "api" else "-",
            "ttft_p95": show(row.ttft_p95, "ms"),
            "usage_hit": usage_hit_text(row.cache),
            "vllm_hit": vllm_hit_text(row),
            "verdict": verdict_text(answer, row),
        }
        for row in answer.rows
    ]


def recommendation_text(answer: WorkloadAnswer) -> str:
    """'mock-frontier, $4.10 per 1M output tokens at its operating point (cache hit 61.2%)'."""
    row = answer.row(answer.headline.recommended)
    if row is None:
        return "none: " + answer.headline.summary
    text = f"{row.key}, {cost_text(row)} per 1M output tokens at its operating point"
    rate = None if row.cache is None else row.cache.usage_hit_rate
    return text + (f" (prompt-cache hit {pct(rate)})" if rate else "")


def break_even_lines(answer: WorkloadAnswer, mark: Callable[[str], str | None]) -> list[str]:
    """'tiny-skills@cpu-2vcpu against mock-mini: 12.3M output tokens a month (utilization 4.1%)'."""
    lines = []
    for b in answer.break_evens:
        be = b.result
        volume = (
            f"{fmt_tokens(be.volume)} output tokens a month (utilization {pct(be.utilization)})"
            if be.volume is not None
            else f"never ({be.reason})"
        )
        api = mark(b.api)
        price = f"{fmt_usd(b.api_usd_per_1m_output)} per 1M out" + (f", {api}" if api else "")
        lines.append(f"{b.selfhosted} against {b.api} ({price}): {volume}")
    return lines


def answer_change(answers: Sequence[WorkloadAnswer]) -> str | None:
    """One line: where the recommendation changes between workloads, and why; or that it holds."""
    if len(answers) < 2:
        return None
    base = answers[0]
    before = base.headline.recommended
    changes = []
    for answer in answers[1:]:
        after = answer.headline.recommended
        if after == before:
            continue
        name = answer.workload.name
        if before is None:
            changes.append(f"on {name} the answer is {after}, where {base.workload.name} has none")
            continue
        if after is None:
            why = answer.headline.reasons.get(before, "")
            changes.append(f"on {name} no option qualifies ({before}: {why or 'not eligible'})")
            continue
        changes.append(
            f"on {name} the answer changes from {before} to {after} because {_why(answer, before, after)}"
        )
    if not changes:
        names = ", ".join(a.workload.name for a in answers)
        return f"The answer holds across the workloads: {before or 'no option'} on each of {names}."
    text = "; ".join(changes)
    return text[0].upper() + text[1:] + "."


def _why(answer: WorkloadAnswer, before: str, after: str) -> str:
    old, new = answer.row(before), answer.row(after)
    if old is None or not old.option.load_runs:
        measured = answer.measured
        only = f" (only {', '.join(measured)} {'was' if len(measured) == 1 else 'were'})" if measured else ""
        return f"{before} was not measured on {answer.workload.name}{only}"
    reason = answer.headline.reasons.get(before)
    if reason is not None:
        return f"{before} is out there ({reason})"
    assert new is not None
    why = f"{after} costs {cost_text(new)} per 1M output tokens there against {before}'s {cost_text(old)}"
    rate = None if new.cache is None else new.cache.usage_hit_rate
    if new.option.kind == "api" and rate:
        why += f", with {pct(rate)} of its prompt tokens billed at the cache-read price"
    return why
