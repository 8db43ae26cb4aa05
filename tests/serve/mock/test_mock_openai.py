"""The mock server through the official openai SDK (sync and async) and raw HTTP: shapes, usage, errors."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from serve.mock.server import running_mock
from serve.specs import LatencyModel, MockSpec

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say something long."}]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_mock(MockSpec(model="mock-model", port=0)) as base:
        yield base


@pytest.fixture(scope="module")
def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def test_chat_stream_with_usage_matches_max_tokens(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="mock-model",
        messages=MESSAGES,
        max_tokens=17,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert not chunks[0].choices[0].delta.content
    contents = [c.choices[0].delta.content for c in chunks[1:] if c.choices and c.choices[0].delta.content]
    assert len(contents) == 17
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == ["length"]
    usage = chunks[-1].usage
    assert chunks[-1].choices == []
    assert usage is not None
    assert usage.completion_tokens == 17
    assert usage.prompt_tokens == 5  # ceil(19 chars / 4)
    assert usage.total_tokens == 22
    assert all(c.object == "chat.completion.chunk" and c.model == "mock-model" for c in chunks)
    assert len({c.id for c in chunks}) == 1


def test_chat_not_streamed_has_usage(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="mock-model", messages=MESSAGES, max_completion_tokens=9)
    assert reply.choices[0].message.role == "assistant"
    assert len((reply.choices[0].message.content or "").split()) == 9
    assert reply.usage is not None and reply.usage.completion_tokens == 9
    assert reply.choices[0].finish_reason == "length"


def test_default_length_when_max_tokens_unset(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="mock-model", messages=MESSAGES)
    assert reply.usage is not None and reply.usage.completion_tokens == 128
    assert reply.choices[0].finish_reason == "stop"


def test_async_completions_stream_and_not(url: str) -> None:
    async def run() -> tuple[list[str], int, str, int]:
        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as aclient:
            stream = await aclient.completions.create(
                model="mock-model", prompt="Once upon a time", max_tokens=12, stream=True,
                stream_options={"include_usage": True},
            )  # fmt: skip
            texts: list[str] = []
            usage_tokens = -1
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].text:
                    texts.append(chunk.choices[0].text)
                if chunk.usage is not None:
                    usage_tokens = chunk.usage.completion_tokens
            whole = await aclient.completions.create(
                model="mock-model", prompt="Once upon a time", max_tokens=12
            )
            assert whole.usage is not None
            return texts, usage_tokens, whole.choices[0].text, whole.usage.completion_tokens

    texts, streamed_usage, text, usage = asyncio.run(run())
    assert len(texts) == 12 and streamed_usage == 12
    assert "".join(texts) == text  # same seed, same filler
    assert usage == 12


def test_tokens_per_chunk_keeps_usage_exact() -> None:
    spec = MockSpec(model="m", port=0, latency=LatencyModel(tokens_per_chunk=4))
    with running_mock(spec) as base:
        client = openai.OpenAI(base_url=base + "/v1", api_key="x", max_retries=0)
        stream = client.chat.completions.create(
            model="m", messages=MESSAGES, max_tokens=10, stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        chunks = list(stream)
    contents = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(contents) == 3  # 4 + 4 + 2 tokens
    assert len("".join(contents).split()) == 10
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 10


def test_timed_stream_delivers_all_chunks() -> None:
    spec = MockSpec(model="m", port=0, latency=LatencyModel(ttft_ms=5, itl_ms=1, itl_jitter_ms=0.5, seed=3))
    with running_mock(spec) as base:
        client = openai.OpenAI(base_url=base + "/v1", api_key="x", max_retries=0)
        stream = client.chat.completions.create(
            model="m", messages=MESSAGES, max_tokens=20, stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        chunks = list(stream)
        reply = client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=20)
    contents = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(contents) == 20
    assert "".join(contents) == reply.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 20


def test_stop_sequence_cuts_the_answer(client: openai.OpenAI) -> None:
    full = client.chat.completions.create(model="mock-model", messages=MESSAGES, max_tokens=20)
    text = full.choices[0].message.content
    assert text is not None
    stop = text.split()[5]
    cut = client.chat.completions.create(model="mock-model", messages=MESSAGES, max_tokens=20, stop=[stop])
    assert cut.choices[0].message.content == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_models_health_and_unknown_model(url: str, client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["mock-model"]
    assert httpx.get(url + "/health").status_code == 200
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-nope", messages=MESSAGES)
    error = info.value.body
    assert isinstance(error, dict)
    assert error["code"] == "model_not_found" and error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "mock-model"}, "messages"),
        ({"model": "mock-model", "messages": "hi"}, "messages"),
        ({"model": "mock-model", "messages": MESSAGES, "max_tokens": 0}, "max_tokens"),
        ({"model": "mock-model", "messages": MESSAGES, "max_tokens": "ten"}, "max_tokens"),
        ({"model": "mock-model", "messages": MESSAGES, "temperature": 7}, "temperature"),
        ({"model": "mock-model", "messages": MESSAGES, "n": 2}, "n"),
        ({"messages": MESSAGES}, "model"),
        ({"model": "mock-model", "messages": MESSAGES, "ignore_eos": True}, None),
    ],
)
def test_malformed_requests_get_openai_400(url: str, body: dict[str, object], param: str | None) -> None:
    response = httpx.post(url + "/v1/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


def test_strict_rejects_vllm_fields_like_openai(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="mock-model",
            messages=MESSAGES,
            max_tokens=3,
            extra_body={"ignore_eos": True},
        )
    assert "Unrecognized request argument supplied: ignore_eos" in str(info.value)


def test_non_strict_accepts_vllm_fields() -> None:
    with running_mock(MockSpec(model="m", port=0, strict=False)) as base:
        client = openai.OpenAI(base_url=base + "/v1", api_key="x", max_retries=0)
        reply = client.chat.completions.create(
            model="m",
            messages=MESSAGES,
            max_tokens=7,
            extra_body={"ignore_eos": True, "min_tokens": 7, "top_k": 5},
        )
    assert reply.usage is not None and reply.usage.completion_tokens == 7
    assert reply.choices[0].finish_reason == "length"


def test_server_keeps_serving_after_garbage(url: str, client: openai.OpenAI) -> None:
    bad = httpx.post(
        url + "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 400")
    assert httpx.get(url + "/nowhere").status_code == 404
    reply = client.chat.completions.create(model="mock-model", messages=MESSAGES, max_tokens=2)
    assert reply.usage is not None and reply.usage.completion_tokens == 2


def test_raw_sse_framing(url: str) -> None:
    body = {"model": "mock-model", "messages": MESSAGES, "max_tokens": 3, "stream": True}
    with httpx.stream("POST", url + "/v1/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = "".join(response.iter_text())
    events = [e for e in raw.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    first = json.loads(events[0][6:])
    assert set(first) == {"id", "object", "created", "model", "choices"}
    assert first["choices"][0] == {
        "index": 0,
        "delta": {"role": "assistant"},
        "logprobs": None,
        "finish_reason": None,
    }
    assert len(events) == 1 + 3 + 1 + 1  # role, content x3, finish, [DONE] (no usage chunk unless asked)
