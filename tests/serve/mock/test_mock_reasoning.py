"""The mock's reasoning mode through the official SDKs: reasoning streamed before the answer, counted as
output and reported apart, inside the request's output budget."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import anthropic
import httpx
import openai
import pytest

from serve.mock.server import running_mock
from serve.specs import LatencyModel, MockSpec, ReasoningModel

THINKING: Any = {"type": "enabled", "budget_tokens": 1024}


@pytest.fixture
def closing() -> Iterator[ExitStack]:
    """Closes the SDK clients a test opens (their sockets)."""
    with ExitStack() as stack:
        yield stack


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_mock(MockSpec(model="m", port=0, reasoning=ReasoningModel(tokens=6))) as base:
        yield base


def test_openai_stream_reasons_first_and_reports_reasoning_tokens(url: str, closing: ExitStack) -> None:
    client = closing.enter_context(openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0))
    chunks = list(
        client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "Think."}],
            max_tokens=10,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    kinds = []
    for chunk in chunks:
        if chunk.choices and chunk.choices[0].delta.content:
            kinds.append("content")
        elif chunk.choices and (chunk.choices[0].delta.model_extra or {}).get("reasoning_content"):
            kinds.append("reasoning")
    assert kinds == ["reasoning"] * 6 + ["content"] * 4  # 6 reasoning tokens, then 10 - 6 of answer
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 10
    assert (
        usage.completion_tokens_details is not None and usage.completion_tokens_details.reasoning_tokens == 6
    )


def test_openai_budget_spent_on_reasoning_ends_with_length(url: str, closing: ExitStack) -> None:
    client = closing.enter_context(openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0))
    reply = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Hm"}], max_tokens=4
    )
    assert reply.choices[0].message.content == "" and reply.choices[0].finish_reason == "length"
    assert (reply.choices[0].message.model_extra or {}).get("reasoning_content")
    assert reply.usage is not None and reply.usage.completion_tokens == 4
    assert reply.usage.completion_tokens_details is not None
    assert reply.usage.completion_tokens_details.reasoning_tokens == 4


def test_completions_never_reason(url: str, closing: ExitStack) -> None:
    client = closing.enter_context(openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0))
    reply = client.completions.create(model="m", prompt="Go", max_tokens=5)
    assert reply.usage is not None and reply.usage.completion_tokens == 5
    assert reply.usage.completion_tokens_details is None


def test_anthropic_thinks_only_when_asked(url: str, closing: ExitStack) -> None:
    client = closing.enter_context(anthropic.Anthropic(base_url=url, api_key="k", max_retries=0))
    with client.messages.stream(
        model="m", max_tokens=2000, thinking=THINKING, messages=[{"role": "user", "content": "Hm"}]
    ) as stream:
        message = stream.get_final_message()
    assert [block.type for block in message.content] == ["thinking", "text"]
    thinking = message.content[0]
    assert thinking.type == "thinking" and len(thinking.thinking.split()) == 6 and thinking.signature
    assert message.usage.output_tokens == 2000  # filler answers fill their budget
    assert message.usage.output_tokens_details is not None
    assert message.usage.output_tokens_details.thinking_tokens == 6
    plain = client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "Hm"}])
    assert [block.type for block in plain.content] == ["text"] and plain.usage.output_tokens == 5
    made = client.messages.create(
        model="m", max_tokens=1030, thinking=THINKING, messages=[{"role": "user", "content": "Hm"}]
    )
    assert [block.type for block in made.content] == ["thinking", "text"]
    assert (
        made.usage.output_tokens_details is not None and made.usage.output_tokens_details.thinking_tokens == 6
    )


def test_anthropic_thinking_event_sequence(url: str) -> None:
    body = {"model": "m", "max_tokens": 1026, "stream": True, "thinking": THINKING,
            "messages": [{"role": "user", "content": "Hm"}]}  # fmt: skip
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    with httpx.stream("POST", url + "/v1/messages", json=body, headers=headers) as response:
        raw = "".join(response.iter_text())
    events = [json.loads(block.split("\n")[1][6:]) for block in filter(None, raw.split("\n\n"))]
    shape = [
        (e["type"], e.get("index"), (e.get("delta") or e.get("content_block") or {}).get("type"))
        for e in events
    ]
    assert shape[:3] == [
        ("message_start", None, None),
        ("content_block_start", 0, "thinking"),
        ("ping", None, None),
    ]
    assert shape[3:9] == [("content_block_delta", 0, "thinking_delta")] * 6
    assert shape[9:12] == [
        ("content_block_delta", 0, "signature_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, "text"),
    ]
    assert shape[12:-3] == [("content_block_delta", 1, "text_delta")] * 1020
    assert shape[-3:] == [
        ("content_block_stop", 1, None),
        ("message_delta", None, None),
        ("message_stop", None, None),
    ]
    assert events[-2]["usage"] == {"output_tokens": 1026, "output_tokens_details": {"thinking_tokens": 6}}


def test_thinking_budget_is_checked(url: str, closing: ExitStack) -> None:
    client = closing.enter_context(anthropic.Anthropic(base_url=url, api_key="k", max_retries=0))
    with pytest.raises(anthropic.BadRequestError, match="budget_tokens"):
        client.messages.create(
            model="m", max_tokens=1024, thinking=THINKING, messages=[{"role": "user", "content": "Hm"}]
        )


def test_reasoning_with_latency_and_chunks(closing: ExitStack) -> None:
    """Timed streams chunk reasoning and answer apart, each in runs of tokens_per_chunk."""
    spec = MockSpec(
        model="m",
        port=0,
        latency=LatencyModel(ttft_ms=1, itl_ms=1, tokens_per_chunk=4),
        reasoning=ReasoningModel(tokens=6, openai_field="reasoning"),
    )
    with running_mock(spec) as base:
        client = closing.enter_context(openai.OpenAI(base_url=base + "/v1", api_key="k", max_retries=0))
        chunks = list(
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "Hm"}], max_tokens=11, stream=True
            )
        )
    reasoning = [(c.choices[0].delta.model_extra or {}).get("reasoning") for c in chunks if c.choices]
    content = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert [len(r.split()) for r in reasoning if r] == [4, 2]
    assert [len(c.split()) for c in content] == [4, 1]
