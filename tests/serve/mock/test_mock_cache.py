"""The mock's prompt caches over loopback, read by the official SDKs: exact token counts in each provider's
shape, lifetimes on an injected clock, and TTFT that skips the cached part of the prompt.

Without a tokenizer the mock counts ⌈characters ÷ 4⌉ tokens, so a text of 4n characters is n tokens.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import anthropic
import httpx
import openai
import pytest

from serve.mock.answers import TokenCounter
from serve.mock.cache import CacheBlock, PromptCache
from serve.mock.server import running_mock
from serve.specs import MockSpec, PromptCacheModel

EPHEMERAL: dict[str, Any] = {"type": "ephemeral"}


class FakeClock:
    """A clock the test moves by hand (s)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def text(tokens: int, seed: int) -> str:
    """Exactly 4 × `tokens` characters of words (the mock counts them as `tokens` tokens)."""
    rng = random.Random(seed)
    out = ""
    while len(out) < 4 * tokens:
        out += rng.choice(("lorem ", "ipsum ", "dolor ", "sit ", "amet "))
    return out[: 4 * tokens]


@pytest.fixture
def closing() -> Iterator[ExitStack]:
    """Closes the SDK clients a test opens (their sockets)."""
    with ExitStack() as stack:
        yield stack


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def url(clock: FakeClock) -> Iterator[str]:
    with running_mock(MockSpec(model="m", port=0), clock) as base:
        yield base


def chat_usage(client: openai.OpenAI, content: str) -> Any:
    stream = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": content}],
        max_tokens=2,
        stream=True,
        stream_options={"include_usage": True},
    )
    return [c for c in stream if c.usage is not None][-1].usage


def test_openai_cache_hits_in_128_token_steps_from_1024(
    url: str, clock: FakeClock, closing: ExitStack
) -> None:
    client = closing.enter_context(openai.OpenAI(base_url=url + "/v1", api_key="k1", max_retries=0))
    prompt = text(1300, 1)
    first, second = chat_usage(client, prompt), chat_usage(client, prompt)
    assert (first.prompt_tokens, first.prompt_tokens_details.cached_tokens) == (1300, 0)
    assert (second.prompt_tokens, second.prompt_tokens_details.cached_tokens) == (1300, 1280)  # 10 × 128
    assert second.total_tokens == 1302 and second.completion_tokens_details.reasoning_tokens == 0
    # The same first 1,100 tokens, then other text: ⌊1100 / 128⌋ × 128 = 1,024 tokens read.
    assert chat_usage(client, prompt[: 4 * 1100] + text(300, 2)).prompt_tokens_details.cached_tokens == 1024
    # A shared prefix of 1,000 tokens is 7 whole steps (896 tokens), under the 1,024 minimum: no hit.
    assert chat_usage(client, prompt[: 4 * 1000] + text(300, 3)).prompt_tokens_details.cached_tokens == 0
    short = text(1000, 4)  # under 1,024 tokens: never cached
    assert [chat_usage(client, short).prompt_tokens_details.cached_tokens for _ in range(2)] == [0, 0]
    # Another API key has its own cache.
    other = closing.enter_context(openai.OpenAI(base_url=url + "/v1", api_key="k2", max_retries=0))
    assert chat_usage(other, prompt).prompt_tokens_details.cached_tokens == 0


def test_openai_cache_lifetime_is_refreshed_on_use(url: str, clock: FakeClock, closing: ExitStack) -> None:
    client = closing.enter_context(openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0))
    prompt = text(1024, 5)
    assert chat_usage(client, prompt).prompt_tokens_details.cached_tokens == 0
    clock.now += 299
    assert chat_usage(client, prompt).prompt_tokens_details.cached_tokens == 1024
    clock.now += 299  # 598 s after the write, 299 s after the last use
    assert chat_usage(client, prompt).prompt_tokens_details.cached_tokens == 1024
    clock.now += 301
    assert chat_usage(client, prompt).prompt_tokens_details.cached_tokens == 0


def test_completions_report_cached_tokens_only_when_there_are_some(url: str, closing: ExitStack) -> None:
    client = closing.enter_context(openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0))
    prompt = text(1200, 6)
    first = client.completions.create(model="m", prompt=prompt, max_tokens=1)
    second = client.completions.create(model="m", prompt=prompt, max_tokens=1)
    assert first.usage is not None and first.usage.prompt_tokens_details is None
    assert second.usage is not None and second.usage.prompt_tokens_details is not None
    assert second.usage.prompt_tokens_details.cached_tokens == 1152  # 9 × 128


def messages_usage(client: anthropic.Anthropic, **kwargs: Any) -> Any:
    with client.messages.stream(model="m", max_tokens=3, **kwargs) as stream:
        return stream.get_final_message().usage


def test_anthropic_breakpoint_writes_then_reads(url: str, closing: ExitStack) -> None:
    client = closing.enter_context(anthropic.Anthropic(base_url=url, api_key="k", max_retries=0))
    system = [{"type": "text", "text": text(1100, 7), "cache_control": EPHEMERAL}]
    question = [{"role": "user", "content": text(10, 8)}]
    first = messages_usage(client, system=system, messages=question)
    assert (first.cache_creation_input_tokens, first.cache_read_input_tokens, first.input_tokens) == (
        1100,
        0,
        10,
    )
    assert first.cache_creation is not None and first.cache_creation.ephemeral_5m_input_tokens == 1100
    second = messages_usage(client, system=system, messages=[{"role": "user", "content": text(20, 9)}])
    assert (second.cache_creation_input_tokens, second.cache_read_input_tokens, second.input_tokens) == (
        0,
        1100,
        20,
    )
    assert second.output_tokens == 3
    # The same prompt without a breakpoint neither reads nor writes.
    plain = messages_usage(client, system=system[0]["text"], messages=question)
    assert (plain.cache_creation_input_tokens, plain.cache_read_input_tokens, plain.input_tokens) == (
        0,
        0,
        1110,
    )


def test_anthropic_minimum_length_and_lifetimes(url: str, clock: FakeClock, closing: ExitStack) -> None:
    client = closing.enter_context(anthropic.Anthropic(base_url=url, api_key="k", max_retries=0))
    short = [{"type": "text", "text": text(1000, 10), "cache_control": EPHEMERAL}]  # under 1,024 tokens
    question = [{"role": "user", "content": "Why?"}]
    for _ in range(2):
        usage = messages_usage(client, system=short, messages=question)
        assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (0, 0)
    five = [{"type": "text", "text": text(1200, 11), "cache_control": EPHEMERAL}]
    hour = [{"type": "text", "text": text(1300, 12), "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    assert messages_usage(client, system=five, messages=question).cache_creation_input_tokens == 1200
    written = messages_usage(client, system=hour, messages=question)
    assert written.cache_creation is not None and written.cache_creation.ephemeral_1h_input_tokens == 1300
    clock.now += 301
    assert messages_usage(client, system=five, messages=question).cache_read_input_tokens == 0  # expired
    assert messages_usage(client, system=hour, messages=question).cache_read_input_tokens == 1300
    clock.now += 3599  # the read refreshed the hour
    assert messages_usage(client, system=hour, messages=question).cache_read_input_tokens == 1300


def test_anthropic_breakpoint_on_the_latest_turn_finds_the_previous_one(url: str, closing: ExitStack) -> None:
    """Multi-turn: each turn marks its last message; the lookback finds the last turn's breakpoint."""
    client = closing.enter_context(anthropic.Anthropic(base_url=url, api_key="k", max_retries=0))
    doc, first_q, answer, second_q = text(1100, 13), text(30, 14), text(50, 15), text(40, 16)

    def turn(history: list[dict[str, Any]]) -> Any:
        *head, last = history
        marked = {**last, "content": [{"type": "text", "text": last["content"], "cache_control": EPHEMERAL}]}
        return messages_usage(client, system=doc, messages=[*head, marked])

    one = turn([{"role": "user", "content": first_q}])
    assert (one.cache_creation_input_tokens, one.cache_read_input_tokens, one.input_tokens) == (1130, 0, 0)
    two = turn(
        [
            {"role": "user", "content": first_q},
            {"role": "assistant", "content": answer},
            {"role": "user", "content": second_q},
        ]
    )
    assert (two.cache_read_input_tokens, two.cache_creation_input_tokens, two.input_tokens) == (1130, 90, 0)


def test_anthropic_cache_control_is_checked(url: str) -> None:
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    blocks = [{"type": "text", "text": "x", "cache_control": EPHEMERAL} for _ in range(5)]
    body = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": blocks}]}
    response = httpx.post(url + "/v1/messages", json=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "A maximum of 4 blocks with cache_control may be provided. Found 5."
    )
    blocks = [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "2h"}}]
    body = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": blocks}]}
    response = httpx.post(url + "/v1/messages", json=body, headers=headers)
    assert response.status_code == 400 and "ttl" in response.json()["error"]["message"]


def test_message_start_usage_shape(url: str) -> None:
    system = [{"type": "text", "text": text(1100, 17), "cache_control": EPHEMERAL}]
    body = {"model": "m", "max_tokens": 2, "stream": True, "system": system,
            "messages": [{"role": "user", "content": "Hi"}]}  # fmt: skip
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    with httpx.stream("POST", url + "/v1/messages", json=body, headers=headers) as response:
        raw = "".join(response.iter_text())
    events = [json.loads(block.split("\n")[1][6:]) for block in filter(None, raw.split("\n\n"))]
    assert events[0]["message"]["usage"] == {
        "input_tokens": 1,
        "cache_creation_input_tokens": 1100,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 1100, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 1,
        "service_tier": "standard",
    }
    assert events[-2]["usage"] == {"output_tokens": 2}


def test_cache_counters_in_metrics(url: str, closing: ExitStack) -> None:
    client = closing.enter_context(openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0))
    prompt = text(1300, 18)
    chat_usage(client, prompt)
    chat_usage(client, prompt)
    metrics = httpx.get(url + "/metrics").text
    assert 'vllm:prefix_cache_queries_total{model_name="m"} 2600.0' in metrics
    assert 'vllm:prefix_cache_hits_total{model_name="m"} 1280.0' in metrics


def test_cache_can_be_turned_off(closing: ExitStack) -> None:
    spec = MockSpec(model="m", port=0, cache=PromptCacheModel(enabled=False))
    with running_mock(spec) as base:
        client = closing.enter_context(openai.OpenAI(base_url=base + "/v1", api_key="k", max_retries=0))
        prompt = text(1300, 19)
        assert [chat_usage(client, prompt).prompt_tokens_details.cached_tokens for _ in range(2)] == [0, 0]


def test_explicit_writes_are_split_by_lifetime() -> None:
    """Two breakpoints, 1 h then 5 min: each stretch of the write is reported with its lifetime."""
    cache = PromptCache(PromptCacheModel(), TokenCounter(None), clock=lambda: 0.0)
    blocks = [
        CacheBlock("system", text(1100, 20), "1h"),
        CacheBlock("user", text(200, 21), "5m"),
        CacheBlock("user", text(7, 22)),
    ]
    first = cache.explicit("ns", blocks)
    assert (first.read, first.write_1h, first.write_5m) == (0, 1100, 200)
    again = cache.explicit("ns", blocks)
    assert (again.read, again.write) == (1300, 0)
    assert cache.explicit("other", blocks).read == 0
