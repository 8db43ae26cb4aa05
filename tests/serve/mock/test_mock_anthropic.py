"""The mock server through the official anthropic SDK and raw HTTP: event sequence, usage, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam

from serve.mock.server import running_mock
from serve.specs import LatencyModel, MockSpec

MESSAGES: list[MessageParam] = [{"role": "user", "content": "Write a poem."}]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_mock(MockSpec(model="claude-mock", port=0)) as base:
        yield base


@pytest.fixture(scope="module")
def client(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0)


def test_stream_text_and_usage(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="claude-mock",
        max_tokens=11,
        system="Be brief.",
        messages=MESSAGES,
    ) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(texts) == 11
    assert final.content[0].type == "text" and final.content[0].text == "".join(texts)
    assert final.usage.output_tokens == 11
    assert final.usage.input_tokens == 6  # ceil(("Be brief." + "Write a poem.") = 22 chars / 4)
    assert final.stop_reason == "max_tokens"


def test_not_streamed(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model="claude-mock", max_tokens=5, messages=MESSAGES)
    assert message.type == "message" and message.role == "assistant"
    assert message.usage.output_tokens == 5
    assert message.content[0].type == "text" and len(message.content[0].text.split()) == 5


def test_event_sequence(url: str) -> None:
    body = {"model": "claude-mock", "max_tokens": 3, "messages": MESSAGES, "stream": True}
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    with httpx.stream("POST", url + "/v1/messages", json=body, headers=headers) as response:
        raw = "".join(response.iter_text())
    names = []
    for block in filter(None, raw.split("\n\n")):
        event, data = block.split("\n")
        assert event.startswith("event: ") and data.startswith("data: ")
        assert json.loads(data[6:])["type"] == event[7:]
        names.append(event[7:])
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = json.loads(raw.split("\n\n")[0].split("\n")[1][6:])
    assert start["message"]["usage"]["input_tokens"] == 4


def test_tokens_per_chunk_with_latency() -> None:
    spec = MockSpec(model="c", port=0, latency=LatencyModel(ttft_ms=2, itl_ms=1, tokens_per_chunk=3))
    with running_mock(spec) as base:
        client = anthropic.Anthropic(base_url=base, api_key="x", max_retries=0)
        with client.messages.stream(model="c", max_tokens=7, messages=MESSAGES) as stream:
            texts = list(stream.text_stream)
            final = stream.get_final_message()
    assert len(texts) == 3
    assert final.usage.output_tokens == 7


def test_max_tokens_is_required(url: str, client: anthropic.Anthropic) -> None:
    response = httpx.post(url + "/v1/messages", json={"model": "claude-mock", "messages": MESSAGES})
    assert response.status_code == 400
    assert response.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
    }
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="claude-mock", max_tokens=0, messages=MESSAGES)


def test_unknown_model_and_fields(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.create(model="claude-nope", max_tokens=5, messages=MESSAGES)
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(
            model="claude-mock",
            max_tokens=5,
            messages=MESSAGES,
            extra_body={"ignore_eos": True},
        )
    assert "ignore_eos" in str(bad.value)
    ok = client.messages.create(model="claude-mock", max_tokens=2, messages=MESSAGES)
    assert ok.usage.output_tokens == 2
