"""Injected 429/500 errors surface as the SDKs' own exception types; the server itself keeps going."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from serve.errors import PortInUseError, ServerStartError
from serve.mock.server import MockServer, running_mock
from serve.specs import AnswerModel, LatencyModel, MockSpec

MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("latency", "openai_error", "anthropic_error"),
    [
        (LatencyModel(error_rate_429=1.0), openai.RateLimitError, anthropic.RateLimitError),
        (LatencyModel(error_rate_500=1.0), openai.InternalServerError, anthropic.InternalServerError),
    ],
)
def test_injected_errors_surface_as_sdk_errors(
    latency: LatencyModel, openai_error: type[Exception], anthropic_error: type[Exception]
) -> None:
    with running_mock(MockSpec(model="m", port=0, latency=latency)) as url:
        oai = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        with pytest.raises(openai_error):
            oai.chat.completions.create(model="m", messages=MESSAGES, max_tokens=3)
        with pytest.raises(openai_error):
            oai.chat.completions.create(model="m", messages=MESSAGES, max_tokens=3, stream=True)
        ant = anthropic.Anthropic(base_url=url, api_key="x", max_retries=0)
        with pytest.raises(anthropic_error):
            ant.messages.create(model="m", messages=MESSAGES, max_tokens=3)
        raw = httpx.post(url + "/v1/messages", json={"model": "m", "messages": MESSAGES, "max_tokens": 3})
        assert raw.json()["type"] == "error"
        assert httpx.get(url + "/health").status_code == 200


def test_429_carries_retry_after_and_openai_shape() -> None:
    with running_mock(MockSpec(model="m", port=0, latency=LatencyModel(error_rate_429=1.0))) as url:
        response = httpx.post(url + "/v1/chat/completions", json={"model": "m", "messages": MESSAGES})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


def test_error_injection_is_seeded_and_near_the_rate() -> None:
    def outcomes() -> list[int]:
        latency = LatencyModel(error_rate_429=0.2, error_rate_500=0.1, seed=7)
        with running_mock(MockSpec(model="m", port=0, latency=latency)) as url, httpx.Client() as http:
            body = {"model": "m", "messages": MESSAGES, "max_tokens": 1}
            return [http.post(url + "/v1/chat/completions", json=body).status_code for _ in range(120)]

    first = outcomes()
    assert first == outcomes()
    assert 10 <= first.count(429) <= 40  # expected 24
    assert 3 <= first.count(500) <= 25  # expected 12
    assert first.count(200) == 120 - first.count(429) - first.count(500)


def test_port_in_use_raises() -> None:
    with running_mock(MockSpec(model="m", port=0)) as url:
        port = int(url.rsplit(":", 1)[1])
        with pytest.raises(PortInUseError) as info, running_mock(MockSpec(model="m", port=port)):
            pass
        assert isinstance(info.value, ServerStartError)


def test_bad_oracle_file_fails_at_construction(tmp_path: Path) -> None:
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"id": 1, "prompt": "x"}\n')
    spec = MockSpec(model="m", port=0, answers=AnswerModel(kind="oracle", oracle_file=bad))
    with pytest.raises(ServerStartError, match=r"q\.jsonl:1"):
        MockServer(spec)
