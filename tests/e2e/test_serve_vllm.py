"""Real vLLM started by `llmbench serve` (one server per session): ready line, OpenAI SDK, /metrics."""

from __future__ import annotations

import re

import httpx
import openai
import pytest
from fixtures_vllm import VllmServerInfo

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def _client(server: VllmServerInfo) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=120)


def test_ready_line(vllm_server: VllmServerInfo) -> None:
    assert re.fullmatch(
        r"ready: http://127\.0\.0\.1:\d+/v1 model=tiny-random backend=vllm", vllm_server.ready_line
    )
    assert vllm_server.ready_line.split()[1] == vllm_server.base_url


def test_chat_completion(vllm_server: VllmServerInfo) -> None:
    resp = _client(vllm_server).chat.completions.create(
        model=vllm_server.model, messages=[{"role": "user", "content": "Hello"}], max_tokens=8, temperature=0
    )
    assert resp.choices[0].message.content
    assert resp.usage is not None and resp.usage.completion_tokens == 8


def test_completion(vllm_server: VllmServerInfo) -> None:
    resp = _client(vllm_server).completions.create(model=vllm_server.model, prompt="Once upon", max_tokens=5)
    assert resp.choices[0].text
    assert resp.usage is not None and resp.usage.completion_tokens == 5


def test_streaming_with_usage(vllm_server: VllmServerInfo) -> None:
    stream = _client(vllm_server).chat.completions.create(
        model=vllm_server.model,
        messages=[{"role": "user", "content": "Count"}],
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            usage = chunk.usage
    assert len(pieces) >= 2
    assert usage is not None and usage.completion_tokens == 12


def test_metrics_readable(vllm_server: VllmServerInfo) -> None:
    resp = httpx.get(f"{vllm_server.root_url}/metrics", timeout=30)
    assert resp.status_code == 200
    assert "vllm:generation_tokens_total" in resp.text or "vllm:generation_tokens" in resp.text


def test_unknown_model_is_404(vllm_server: VllmServerInfo) -> None:
    with pytest.raises(openai.NotFoundError):
        _client(vllm_server).completions.create(model="nope", prompt="x", max_tokens=1)
