"""Turns engine events into OpenAI response bodies: collected results, logprobs shapes, SSE, metrics text."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from serve.hf.engine import EngineStats, HfEngine
from serve.hf.sequence import (
    Delta,
    Event,
    Failed,
    Finished,
    Outbox,
    PromptLogprobs,
    SamplingParams,
    TokenLogprob,
)

TokenStr = Callable[[int], str]


async def events(
    engine: HfEngine, prompt_ids: Sequence[int], params: SamplingParams
) -> AsyncGenerator[list[Event], None]:
    """Submit one request and yield its events in batches (all that arrived since the last batch)."""
    queue: asyncio.Queue[Event] = asyncio.Queue()
    rid = engine.submit(prompt_ids, params, Outbox(asyncio.get_running_loop(), queue))
    done = False
    try:
        while not done:
            items = [await queue.get()]
            while not queue.empty():
                items.append(queue.get_nowait())
            done = isinstance(items[-1], Finished | Failed)
            yield items
    finally:
        if not done:  # the client went away: free the batch slot
            engine.abort(rid)


async def tagged_events(
    engine: HfEngine, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams]
) -> AsyncGenerator[list[tuple[int, Event]], None]:
    """Events of several requests at once, each tagged with its prompt's index."""
    if len(prompts) == 1:
        async with aclosing(events(engine, prompts[0], params[0])) as stream:
            async for batch in stream:
                yield [(0, e) for e in batch]
        return
    merged: asyncio.Queue[list[tuple[int, Event]] | None] = asyncio.Queue()

    async def pump(i: int) -> None:
        async with aclosing(events(engine, prompts[i], params[i])) as stream:
            async for batch in stream:
                await merged.put([(i, e) for e in batch])
        await merged.put(None)

    tasks = [asyncio.create_task(pump(i)) for i in range(len(prompts))]
    try:
        running = len(tasks)
        while running:
            item = await merged.get()
            if item is None:
                running -= 1
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()


@dataclass
class Collected:
    """Everything one request produced."""

    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    prompt_logprobs: tuple[TokenLogprob | None, ...] = ()
    finish: Finished | None = None
    error: str | None = None

    def add(self, event: Event) -> None:
        if isinstance(event, Delta):
            self.text += event.text
            self.token_ids.extend(event.token_ids)
            self.logprobs.extend(event.logprobs)
        elif isinstance(event, PromptLogprobs):
            self.prompt_logprobs = event.entries
        elif isinstance(event, Finished):
            self.finish = event
        else:
            self.error = event.message


async def collect(engine: HfEngine, prompt_ids: Sequence[int], params: SamplingParams) -> Collected:
    """Run one request to the end."""
    result = Collected()
    async with aclosing(events(engine, prompt_ids, params)) as stream:
        async for batch in stream:
            for event in batch:
                result.add(event)
    return result


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """OpenAI usage object (tokens)."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def sse(obj: dict[str, Any]) -> str:
    """One server-sent event."""
    return f"data: {json.dumps(obj, separators=(',', ':'), ensure_ascii=False)}\n\n"


def _top_dict(entry: TokenLogprob, token_str: TokenStr) -> dict[str, float]:
    # vLLM puts the chosen token next to the top-k ones; lm-eval compares it against max(top.values()).
    top = {token_str(t): lp for t, lp in entry.top}
    top.setdefault(token_str(entry.token_id), entry.logprob)
    return top


def completion_logprobs(
    entries: Sequence[TokenLogprob | None],
    token_ids: Sequence[int],
    token_str: TokenStr,
    text_offset: int = 0,
) -> dict[str, Any]:
    """Legacy completions logprobs: tokens, token_logprobs, top_logprobs, text_offset (chars)."""
    tokens = [token_str(t) for t in token_ids]
    offsets = []
    for tok in tokens:
        offsets.append(text_offset)
        text_offset += len(tok)
    return {
        "tokens": tokens,
        "token_logprobs": [None if e is None else e.logprob for e in entries],
        "top_logprobs": [None if e is None else _top_dict(e, token_str) for e in entries],
        "text_offset": offsets,
    }


def chat_logprobs(entries: Sequence[TokenLogprob], token_str: TokenStr) -> dict[str, Any]:
    """Chat logprobs: {"content": [{token, logprob, bytes, top_logprobs}]}."""

    def one(token_id: int, logprob: float) -> dict[str, Any]:
        s = token_str(token_id)
        return {"token": s, "logprob": logprob, "bytes": list(s.encode())}

    return {
        "content": [
            {**one(e.token_id, e.logprob), "top_logprobs": [one(t, lp) for t, lp in e.top]} for e in entries
        ]
    }


def metrics_text(stats: EngineStats, model_name: str) -> str:
    """Prometheus text exposition with vLLM's metric names."""
    label = 'model_name="' + model_name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    out: list[str] = []

    def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(f"{name}{{{labels}}} {value}" for labels, value in samples)

    metric("vllm:num_requests_running", "gauge", "Requests in the running batch.", [(label, stats.running)])
    metric(
        "vllm:num_requests_waiting", "gauge", "Requests waiting to join the batch.", [(label, stats.waiting)]
    )
    metric(
        "vllm:kv_cache_usage_perc", "gauge", "KV-cache usage (1 = full); not tracked here.", [(label, 0.0)]
    )
    metric("vllm:prompt_tokens_total", "counter", "Prefilled prompt tokens.", [(label, stats.prompt_tokens)])
    metric("vllm:generation_tokens_total", "counter", "Generated tokens.", [(label, stats.generation_tokens)])
    finished = [
        (f'finished_reason="{reason}",{label}', float(stats.finished.get(reason, 0)))
        for reason in ("stop", "length", "abort")
    ]
    metric("vllm:request_success_total", "counter", "Finished requests by finish reason.", finished)
    return "\n".join(out) + "\n"
