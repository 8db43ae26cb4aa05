"""Trace replay: a published trace's arrivals replayed open-loop, its prompts synthesized to its lengths.

Prompts are sized in reference tokens. With Mooncake's `hash_ids`, the prompt is the concatenation of one
deterministic text per block id (`block_tokens` each, the last block cut to the recorded length), so
equal ids share text exactly and a prefix cache can reuse them; tokens beyond the listed blocks, and every
prompt of a trace without ids, are text of the request's own.

**Block-reuse share**: of all prompt tokens replayed, the share in blocks whose id appeared in an earlier
replayed request (the reuse the trace offers a cache that never evicts). Example, block size 512:
request 1 `[1, 2]`, 1,024 tokens; request 2 `[1, 2, 3]`, 1,300 tokens: 1,024 reused of 2,324 → 0.4406.

Rows recorded without output (BurstGPT logs failed requests with 0 response tokens) cannot be replayed
and are left out, counted in `skipped`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field, model_validator

from bench.prompts.workloads.base import DataPath, OpenLoopRequests, Window, WorkloadBase
from bench.prompts.workloads.text import TextSource
from bench.prompts.workloads.trace_formats import TraceFormat, TraceRow, read_trace
from bench.records import GenRequest

MOONCAKE_BLOCK_TOKENS = 512


class TraceWorkload(WorkloadBase):
    """Replay a Mooncake, Azure or BurstGPT trace file open-loop."""

    kind: Literal["trace"] = "trace"
    format: TraceFormat = Field(description="mooncake (JSONL), azure (CSV) or burstgpt (CSV)")
    file: DataPath = Field(description="the trace file (relative to this workload file)")
    window: Window = Window()
    block_tokens: int = Field(MOONCAKE_BLOCK_TOKENS, ge=1, description="tokens per hash id (Mooncake: 512)")
    model_filter: str | None = Field(
        None, description="burstgpt: replay only rows of this Model (e.g. GPT-4)"
    )

    @model_validator(mode="after")
    def _filter_is_burstgpt(self) -> TraceWorkload:
        if self.model_filter is not None and self.format != "burstgpt":
            raise ValueError("model_filter applies to burstgpt traces only")
        return self

    def check(self) -> None:
        """Read the trace file: ConfigError naming each bad line."""
        read_trace(self.file, self.format)

    def build(self) -> OpenLoopRequests:
        """The open-loop schedule of the window, with prompts built on access."""
        rows = read_trace(self.file, self.format)
        usable = [r for r in rows if r.output_tokens > 0 and self._wanted(r)]
        skipped = sum(r.output_tokens == 0 and self._wanted(r) for r in rows)
        kept, offsets = self.window.select([r.time_s for r in usable])
        chosen = [usable[i] for i in kept]
        texts = TextSource(self.seed)
        block = self.block_tokens

        def make(i: int) -> GenRequest:
            row = chosen[i]
            text = prompt_text(texts, row, block, key=f"request {row.line}")
            if self.api == "completions":
                return GenRequest(i, prompt=text, max_tokens=row.output_tokens)
            return GenRequest(i, messages=[{"role": "user", "content": text}], max_tokens=row.output_tokens)

        notes = [f"{skipped} rows recorded without output were left out"] if skipped else []
        return OpenLoopRequests(
            offsets, make, reuse_share=block_reuse_share(chosen, block), skipped=skipped, notes=notes
        )

    def _wanted(self, row: TraceRow) -> bool:
        return self.model_filter is None or row.model == self.model_filter


def prompt_text(texts: TextSource, row: TraceRow, block_tokens: int, *, key: str) -> str:
    """The prompt of a row: its blocks' texts in order, then text of its own; `input_tokens` long."""
    parts = []
    left = row.input_tokens
    for block_id in row.hash_ids:
        if left <= 0:
            break
        n = min(block_tokens, left)
        parts.append(texts.text(f"block {block_id}", block_tokens)[: 4 * n])
        left -= n
    if left > 0:
        parts.append(texts.text(key, left))
    return "".join(parts)


def block_reuse_share(rows: Sequence[TraceRow], block_tokens: int) -> float:
    """Share of prompt tokens in blocks whose id appeared in an earlier row (0 without ids)."""
    seen: set[int] = set()
    reused = total = 0
    for row in rows:
        left = row.input_tokens
        for block_id in row.hash_ids:
            if left <= 0:
                break
            n = min(block_tokens, left)
            if block_id in seen:
                reused += n
            seen.add(block_id)
            left -= n
        total += row.input_tokens
    return reused / total if total else 0.0
