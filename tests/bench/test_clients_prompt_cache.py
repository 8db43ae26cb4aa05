"""The streaming clients against the real mock: cache reads and writes, breakpoints placed by the Anthropic
client, reasoning tokens, and TTFT that skips the cached part of the prompt."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bench.clients import ClientConfig, make_client
from bench.clients.anthropic import AnthropicClient
from bench.records import GenRequest, RequestRecord
from serve.mock.server import running_mock
from serve.specs import LatencyModel, MockSpec, ReasoningModel

DOC = "abcd" * 1100  # 1,100 tokens as the mock counts them (⌈characters ÷ 4⌉)
QUESTION = "What is it about"  # 16 characters: 4 tokens


def send_all(url: str, api: str, requests: list[GenRequest], **config: Any) -> list[RequestRecord]:
    async def main() -> list[RequestRecord]:
        options = {"server_kind": "anthropic", **config}
        async with make_client(api, ClientConfig(url, "m", **options)) as client:
            return [await client.send(request, 0.0) for request in requests]

    return asyncio.run(main())


def test_anthropic_body_marks_breakpoints_on_the_marked_messages() -> None:
    client = AnthropicClient(ClientConfig("http://127.0.0.1:1", "m"))
    messages = [{"role": "system", "content": DOC}, {"role": "user", "content": QUESTION}]
    body = client.body(GenRequest(0, messages=messages, cache_breakpoints=(0,)))
    assert body["system"] == [{"type": "text", "text": DOC, "cache_control": {"type": "ephemeral"}}]
    assert body["messages"] == [{"role": "user", "content": QUESTION}]
    body = client.body(GenRequest(0, messages=messages, cache_breakpoints=(0, 1), cache_ttl="1h"))
    hour = {"type": "ephemeral", "ttl": "1h"}
    assert body["system"] == [{"type": "text", "text": DOC, "cache_control": hour}]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": QUESTION, "cache_control": hour}]}
    ]
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    body = client.body(GenRequest(0, messages=[{"role": "user", "content": parts}], cache_breakpoints=(0,)))
    assert body["messages"][0]["content"] == [parts[0], {**parts[1], "cache_control": {"type": "ephemeral"}}]
    assert "cache_control" not in parts[1]  # the request's own messages are left as they were
    assert client.body(GenRequest(0, messages=messages))["system"] == DOC  # no breakpoint: a plain string


def test_anthropic_client_records_cache_writes_then_reads() -> None:
    messages = [{"role": "system", "content": DOC}, {"role": "user", "content": QUESTION}]
    request = GenRequest(0, messages=messages, max_tokens=3, cache_breakpoints=(0,))
    with running_mock(MockSpec(model="m", port=0)) as url:
        first, second = send_all(url, "anthropic", [request, request])
        (uncached,) = send_all(url, "anthropic", [GenRequest(1, messages=messages, max_tokens=3)])
    assert (first.input_tokens, first.cached_input_tokens, first.cache_write_tokens) == (1104, 0, 1100)
    assert (second.input_tokens, second.cached_input_tokens, second.cache_write_tokens) == (1104, 1100, 0)
    assert (uncached.input_tokens, uncached.cached_input_tokens, uncached.cache_write_tokens) == (1104, 0, 0)


def test_anthropic_client_records_thinking_tokens() -> None:
    request = GenRequest(
        0, prompt="Hm", max_tokens=1030, extra_body={"thinking": {"type": "enabled", "budget_tokens": 1024}}
    )
    with running_mock(MockSpec(model="m", port=0, reasoning=ReasoningModel(tokens=5))) as url:
        (rec,) = send_all(url, "anthropic", [request], keep_text=True)
    assert rec.ok, rec.error_text
    assert (rec.output_tokens, rec.reasoning_tokens) == (1030, 5)
    assert len(rec.reasoning_text.split()) == 5 and rec.output_text


@pytest.mark.slow  # about 1.4 s: scripts/test runs it, scripts/check stays under a minute
def test_openai_client_records_cached_and_reasoning_tokens_and_ttft_skips_the_cache() -> None:
    """1,300 prompt tokens at 0.5 ms each: 650 ms to the first token; then 1,280 are cached: 10 ms."""
    spec = MockSpec(
        model="m",
        port=0,
        latency=LatencyModel(ttft_per_prompt_token_ms=0.5, itl_ms=50),
        reasoning=ReasoningModel(tokens=3),
    )
    request = GenRequest(0, prompt="wxyz" * 1300, max_tokens=8)
    with running_mock(spec) as url:
        first, second = send_all(url, "openai-chat", [request, request], server_kind="openai")
    assert (first.input_tokens, first.cached_input_tokens) == (1300, 0)
    assert (second.input_tokens, second.cached_input_tokens) == (1300, 1280)
    assert (second.output_tokens, second.reasoning_tokens) == (8, 3)
    assert first.first_token_s is not None and second.first_token_s is not None
    assert first.first_token_s - first.start_s >= 0.6
    assert second.first_token_s - second.start_s < 0.3
    # The answer's first token comes three reasoning tokens (50 ms apart) after the first one.
    assert second.first_content_s is not None
    assert second.first_content_s - second.first_token_s >= 0.1
