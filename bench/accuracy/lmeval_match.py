"""Match the requests the proxy recorded to the lm-eval samples that sent them, by prompt text.

lm-eval sends no sample id, so a request is matched by its prompt: chat messages, a prompt string, or token
ids decoded with the run's tokenizer (lm-eval's default `tokenized_requests=True`). A loglikelihood sample
sends context + continuation; a generation sends the context. A sample's tokens and latency are the
sums over its requests (one per choice for multiple choice); the requests matched to each sample are
returned with them, for the caller that knows the prices (bench.runs) to cost it. Unmatched samples keep
None; the run's totals always come from every recorded request.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from typing import Any

from bench.accuracy.proxy import ProxyCall
from bench.records import ItemRecord, RequestRecord

Decode = Callable[[list[int]], str]
Matched = dict[str, list[tuple[RequestRecord, int]]]  # item id -> its requests, each with its share divisor


def _norm(text: str) -> str:
    return " ".join(text.split())


def _chat_key(messages: Any) -> str:
    if not isinstance(messages, list):
        return _norm(str(messages))
    return _norm("\n".join(f"{m.get('role')}: {m.get('content')}" for m in messages if isinstance(m, dict)))


def request_keys(body: Any, decode: Decode | None) -> list[str]:
    """One key per prompt a request carried (a batched completions request carries several)."""
    if not isinstance(body, dict):
        return []
    if "messages" in body:
        return [_chat_key(body["messages"])]
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return [_norm(prompt)]
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
        return [_norm(decode(prompt))] if decode else []
    if isinstance(prompt, list):
        keys = []
        for p in prompt:
            if isinstance(p, str):
                keys.append(_norm(p))
            elif isinstance(p, list) and decode is not None:
                keys.append(_norm(decode(p)))
        return keys
    return []


def sample_keys(sample: dict[str, Any], chat: bool) -> list[str]:
    """The prompt key of every request a sample made."""
    keys = []
    for args in sample.get("arguments") or []:
        if not isinstance(args, list | tuple) or not args:
            continue
        context = args[0]
        if hasattr(context, "prompt"):  # lm-eval's JsonChatStr: a chat serialized as JSON
            context = context.prompt
        elif isinstance(context, list | tuple) and len(context) == 1 and isinstance(context[0], str):
            context = context[0]  # the same, after a JSON round trip
        if chat and isinstance(context, str):
            try:
                keys.append(_chat_key(json.loads(context)))
                continue
            except ValueError:
                pass
        continuation = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
        keys.append(_norm(str(context) + continuation))
    return keys


def _hf_decoder(tokenizer: str | None) -> Decode | None:
    if tokenizer is None:
        return None
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer)

    def decode(ids: list[int]) -> str:
        return str(tok.decode(ids, skip_special_tokens=False))

    return decode


def attribute(
    items: list[ItemRecord],
    raw: dict[str, Any],
    calls: Sequence[ProxyCall],
    tokenizer: str | None,
    *,
    chat: bool,
) -> tuple[list[ItemRecord], Matched]:
    """Items with tokens and latency (sum over their requests, ms) filled in where matched, and the
    requests matched to each item (a request batched over N prompts counts 1/N toward each)."""
    needs_decode = any(isinstance(c.body, dict) and isinstance(c.body.get("prompt"), list) for c in calls)
    decode = _hf_decoder(tokenizer) if needs_decode else None
    pool: dict[str, deque[tuple[ProxyCall, int]]] = defaultdict(deque)
    for call in calls:
        keys = request_keys(call.body, decode)
        for key in keys:
            pool[key].append((call, len(keys)))
    by_id = {i.item_id: i for i in items}
    out: dict[str, ItemRecord] = {}
    requests: Matched = {}
    for task, samples in raw.get("samples", {}).items():
        for sample in samples:
            item_id = f"{task}/{sample['doc_id']}"
            item = by_id.get(item_id)
            if item is None or item_id in out:
                continue
            matched = [pool[k].popleft() for k in sample_keys(sample, chat) if pool.get(k)]
            out[item_id] = _with_usage(item, matched) if matched else item
            if matched:
                requests[item_id] = [(call.record, share) for call, share in matched]
    return [out.get(i.item_id, i) for i in items], requests


def _with_usage(item: ItemRecord, matched: list[tuple[ProxyCall, int]]) -> ItemRecord:
    """Sum the matched requests; a batched request is shared evenly among its prompts."""
    tin = tout = 0
    latency = 0.0
    failed = 0
    for call, share in matched:
        r = call.record
        failed += not r.ok
        tin += (r.input_tokens or 0) // share
        tout += (r.output_tokens or 0) // share
        latency += (r.end_s - r.start_s) * 1000 / share
    extra = {**item.extra, "requests": len(matched), "failed_requests": failed}
    return dataclasses.replace(item, input_tokens=tin, output_tokens=tout, latency_ms=latency, extra=extra)
