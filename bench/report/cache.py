"""Prompt caching as one run measured it, on both sides: the hit rate from usage (every server that reports
cached prompt tokens: OpenAI, Anthropic, vLLM with --enable-prompt-tokens-details, the mock), vLLM's own
prefix-cache counters, the workload's designed reuse, and how many requests did not say.

- **usage hit rate**: cached prompt tokens ÷ prompt tokens, over the requests whose server reported a
  cached count (0 counts: reported, nothing cached). Anthropic's cache writes are prompt tokens, not hits.
- **not reported**: requests whose server gave no cached count. An API run with any is priced as if those
  requests had nothing cached, and every cost shown from it says "cache not reported".
- **vLLM hit rate**: prefix-cache hits ÷ queries, from vLLM's counters scraped during the run.

`run_cache` is the one place the report reads what the load layer stores about caching and workloads
(RunSummary's cache figures, LoadRunProfile's workload): see its docstring for the shape it reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report.query import StoreReader
from bench.store import RunInfo


@dataclass(frozen=True)
class RunWorkload:
    """The workload file a load run sent, as the run stored it."""

    name: str
    kind: str
    sha256: str | None = None
    designed_reuse: float | None = None  # designed share of prompt tokens that repeat earlier ones


@dataclass(frozen=True)
class CacheFigures:
    """Prompt caching over one load run's measured successful requests (tokens as each server counts)."""

    requests: int
    reported: int  # requests whose server reported cached prompt tokens
    prompt_tokens: int  # prompt tokens of the reporting requests
    cached_tokens: int  # of them, read from a cache
    written_tokens: int = 0  # prompt tokens written to a cache (Anthropic's cache_creation)
    vllm_hit_rate: float | None = None  # vLLM prefix-cache hits ÷ queries over the run
    vllm_reason: str = "vLLM's prefix-cache counters were not scraped in this run"
    designed_reuse: float | None = None
    workload: RunWorkload | None = None

    @property
    def not_reported(self) -> int:
        """Requests whose server gave no cached-token count."""
        return self.requests - self.reported

    @property
    def usage_hit_rate(self) -> float | None:
        """Cached ÷ prompt tokens over the reporting requests; None when none reported (or no prompt)."""
        return self.cached_tokens / self.prompt_tokens if self.reported and self.prompt_tokens else None

    @property
    def not_reported_text(self) -> str | None:
        """'cache not reported' (every request) or 'cache not reported for 3 of 40 requests'; None if all
        reported."""
        if not self.requests or not self.not_reported:
            return None
        if self.not_reported == self.requests:
            return "cache not reported"
        return f"cache not reported for {self.not_reported:,} of {self.requests:,} requests"


def run_cache(run: RunInfo, reader: StoreReader) -> CacheFigures:
    """A load run's cache figures and workload: the one function that reads what the load layer stores about
    caching (RunSummary.cache, bench.metrics.workload.CacheMeasure) and workloads (LoadRunProfile.workload);
    everything else in the report reads CacheFigures.

    A run stored before the summary had cache figures gets its usage figures from its stored requests here
    (the same definitions), and no vLLM rate or designed reuse.
    """
    doc = run.load_profile.workload
    summary = run.load_summary
    measure = summary.cache if summary is not None else None
    workload = None
    if doc is not None:
        workload = RunWorkload(doc.name, doc.kind, doc.sha256, doc.designed_reuse)
    if measure is None:
        n, reported, prompt, cached, written = reader.cache_counts(run.id)
        return CacheFigures(n, reported, prompt, cached, written, workload=workload)
    return CacheFigures(
        requests=measure.reported + measure.not_reported,
        reported=measure.reported,
        prompt_tokens=measure.prompt_tokens,
        cached_tokens=measure.read_tokens,
        written_tokens=measure.write_tokens,
        vllm_hit_rate=measure.server_hit_rate,
        vllm_reason=measure.unknown.get("server_hit_rate") or CacheFigures.vllm_reason,
        designed_reuse=measure.designed_reuse,
        workload=workload,
    )
