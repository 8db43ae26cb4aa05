"""Run a suite against one endpoint: ask every item (temperature 0, N at a time), score it, hand it on.

Each scored item is passed to `on_item` as soon as it is done, so an interrupted run keeps what it scored.
A failed request is an item with status 'error': counted apart, never right or wrong. The endpoint is never
answered from a cache; only judge calls are cached. Items carry their tokens (cache reads and writes in
`extra`) but no price: the caller that knows the target's prices (bench.runs) costs them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.accuracy.embedding import Embedder
from bench.accuracy.judge import Judge, JudgeError
from bench.accuracy.logprobs import EXTRA_KEY as LOGPROBS_KEY
from bench.accuracy.logprobs import summarize_logprobs
from bench.accuracy.scorers import Verdict, score_deterministic
from bench.accuracy.suite import EmbeddingSpec, JudgeSpec, Suite, SuiteItem
from bench.errors import UsageError
from bench.loadgen.protocol import StreamingClient
from bench.records import GenRequest, ItemRecord, RequestRecord, Status

# How an item becomes a request: its prompt (as one user message) or its messages, sent unchanged. Versioned
# by hash with every run, like the judge's templates.
ITEM_TEMPLATE = (
    "chat: item.messages, or [{role: user, content: item.prompt}]; temperature 0; no system prompt"
)
DEFAULT_MAX_TOKENS = 256  # output budget of an item without its own max_tokens (tokens)


@dataclass
class SuiteRunner:
    """Asks a suite's items through one client and scores them."""

    client: StreamingClient
    concurrency: int = 8
    max_tokens: int = DEFAULT_MAX_TOKENS
    judge: Judge | None = None
    embedder: Embedder | None = None
    similarity: bool = False  # add the advisory cosine to every item that has references

    def check(self, suite: Suite) -> None:
        """Fail before any request when an item needs a judge that was not given, or a prompt template."""
        unrendered = suite.unrendered()
        if unrendered:
            raise UsageError(
                f"{len(unrendered)} items of suite {suite.name!r} give only template variables (first: "
                f"{unrendered[0]!r}); name the prompt template they fill with --template FILE",
                flag="--template",
            )
        if self.judge is None and any(isinstance(i.scorer, JudgeSpec) for i in suite.items):
            n = sum(isinstance(i.scorer, JudgeSpec) for i in suite.items)
            raise UsageError(
                f"{n} items of suite {suite.name!r} are scored by a judge; pass --judge NAME", flag="--judge"
            )

    async def run(self, suite: Suite, on_item: Callable[[ItemRecord], None]) -> list[ItemRecord]:
        """Ask and score every item; `on_item` sees each one as it completes (in completion order)."""
        self.check(suite)
        queue: asyncio.Queue[tuple[int, SuiteItem]] = asyncio.Queue()
        for pair in enumerate(suite.items):
            queue.put_nowait(pair)
        done: list[ItemRecord] = []

        async def worker() -> None:
            while not queue.empty():
                index, item = queue.get_nowait()
                result = await self.one(index, item)
                if result is None:  # cancelled mid-request: the item is simply not done
                    raise asyncio.CancelledError
                done.append(result)
                on_item(result)

        workers = [
            asyncio.create_task(worker()) for _ in range(max(1, min(self.concurrency, len(suite.items))))
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        return done

    async def one(self, index: int, item: SuiteItem) -> ItemRecord | None:
        """Ask one item and score it; None when the request was cancelled."""
        request = GenRequest(
            request_id=index,
            prompt=item.prompt if item.messages is None else None,
            messages=item.chat_messages() if item.messages is not None else None,
            max_tokens=item.max_tokens or self.max_tokens,
            temperature=0.0,
        )
        record = await self.client.send(request, time.perf_counter())
        if record.status is Status.CANCELLED:
            return None
        base = _measured(item, record)
        if not record.ok:
            base["extra"]["error_kind"] = record.error_kind
            return ItemRecord(**base, status="error", error_text=f"{record.error_kind}: {record.error_text}")
        judge_json: dict[str, Any] | None = None
        try:
            verdict, judge_json = await self._score(item, record.output_text)
        except JudgeError as exc:
            base["extra"]["error_kind"] = "judge"
            return ItemRecord(**base, status="error", error_text=f"judge: {exc}", judge={"error": str(exc)})
        extra = {**base.pop("extra"), "scorer": item.scorer.kind, "detail": verdict.detail, **verdict.extra}
        if self.similarity and item.all_references and not isinstance(item.scorer, EmbeddingSpec):
            extra["similarity"] = await self._similarity(record.output_text, item.all_references)
        return ItemRecord(
            **base, status="ok", score=verdict.score, correct=verdict.correct, judge=judge_json, extra=extra
        )

    async def _score(self, item: SuiteItem, output: str) -> tuple[Verdict, dict[str, Any] | None]:
        if isinstance(item.scorer, JudgeSpec):
            assert self.judge is not None and item.rubric is not None
            refs = item.all_references
            got = await self.judge.grade(question_text(item), output, item.rubric, refs[0] if refs else None)
            return Verdict(got.passed, got.score, got.reason), got.to_json()
        if isinstance(item.scorer, EmbeddingSpec):
            sim = await self._similarity(output, item.all_references)
            # Advisory only: a cosine is reported, but never decides right or wrong.
            return Verdict(None, sim, f"cosine {sim:.3f} (advisory)", {"similarity": sim}), None
        return score_deterministic(item, output), None

    async def _similarity(self, output: str, references: list[str]) -> float:
        if self.embedder is None:
            self.embedder = Embedder()
        return await asyncio.to_thread(self.embedder.similarity, output, references)


def question_text(item: SuiteItem) -> str:
    """The question as the judge sees it: the prompt, or the chat as 'role: content' lines."""
    if item.prompt is not None:
        return item.prompt
    return "\n".join(f"{m['role']}: {m['content']}" for m in item.chat_messages())


def _measured(item: SuiteItem, record: RequestRecord) -> dict[str, Any]:
    """The ItemRecord fields every outcome shares: ids, output, tokens and latency (the cost is added by
    the caller that knows the prices, from the tokens here)."""
    ttft = None if record.first_token_s is None else (record.first_token_s - record.start_s) * 1000
    measured: dict[str, Any] = {
        "item_id": item.id,
        "area": item.area,
        "output": record.output_text,
        "reference": " | ".join(item.all_references) or None,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "latency_ms": (record.end_s - record.start_s) * 1000,
        "extra": {
            "ttft_ms": ttft,
            "http_status": record.http_status,
            "tokens_from": record.tokens_from,
            # The items table has no columns for these: the item's price and bench.cost read them here.
            "cached_input_tokens": record.cached_input_tokens,
            "cache_write_tokens": record.cache_write_tokens,
            # Text bytes of prompt and answer (reasoning included): reference tokens for the cost report.
            "input_bytes": record.input_bytes,
            "output_bytes": record.output_bytes,
        },
    }
    if record.token_logprobs is not None:  # asked for (ClientConfig.logprobs): a summary, not the list
        summary = summarize_logprobs(record.token_logprobs)
        measured["extra"][LOGPROBS_KEY] = None if summary is None else summary.model_dump()
    return measured
