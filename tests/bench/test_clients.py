"""The streaming clients against small real aiohttp servers on 127.0.0.1 that record what they receive."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from bench.clients import ClientConfig, make_client
from bench.clients.base import BaseClient, normalize_base_url
from bench.errors import TargetError, UsageError
from bench.records import GenRequest, RequestRecord, Status
from bench.tokenizer import ApproxTokenizer

KEY = "sk-test-SECRET-0123456789"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _chat_chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


ROLE = _chat_chunk({"role": "assistant", "content": ""})
TOKENS = [
    _chat_chunk({"content": "Hello"}),
    _chat_chunk({"content": " world"}),
    _chat_chunk({"content": "!"}, "stop"),
]
USAGE = b'data: {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 3}}\n\n'
DONE = b"data: [DONE]\n\n"


@dataclass
class Seen:
    """What the fake server received."""

    paths: list[str] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    peers: list[Any] = field(default_factory=list)


@asynccontextmanager
async def fake_server(handler: Handler) -> AsyncIterator[tuple[str, Seen]]:
    """A real server on 127.0.0.1 (port 0) answering every path with `handler`; yields (base URL, seen)."""
    seen = Seen()

    async def record(request: web.Request) -> web.StreamResponse:
        seen.paths.append(request.path)
        raw = await request.read()
        seen.bodies.append(json.loads(raw) if raw else {})
        seen.headers.append(dict(request.headers))
        seen.peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1", seen
    finally:
        await runner.cleanup()


def streaming(*parts: bytes, pause_s: float = 0.0) -> Handler:
    """A handler that streams `parts` as an event stream, pausing between them."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for part in parts:
            await resp.write(part)
            if pause_s:
                await asyncio.sleep(pause_s)
        await resp.write_eof()
        return resp

    return handler


def status(code: int, body: dict[str, Any]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=code)

    return handler


def config(url: str, **kw: Any) -> ClientConfig:
    return ClientConfig(url, "m", **({"api_key": KEY, "api_key_env": "TEST_KEY"} | kw))


async def send_one(
    api: str, cfg: ClientConfig, request: GenRequest | None = None
) -> tuple[RequestRecord, BaseClient]:
    async with make_client(api, cfg) as client:
        record = await client.send(request or GenRequest(7, prompt="Hi", max_tokens=3), 100.0)
    return record, client


def test_openai_chat_measures_a_stream_and_sends_a_standard_body() -> None:
    async def main() -> None:
        handler = streaming(ROLE, *TOKENS, USAGE, DONE, pause_s=0.02)
        async with fake_server(handler) as (url, seen):
            rec, _ = await send_one("openai-chat", config(url, headers={"X-Team": "perf"}))
        assert rec.ok and rec.http_status == 200 and rec.error_kind is None
        assert (rec.request_id, rec.scheduled_s) == (7, 100.0)
        assert rec.start_s < rec.first_byte_s <= rec.first_token_s < rec.end_s  # type: ignore[operator]
        # The role-only chunk arrives first, 20 ms before the first token: TTFT is not first byte.
        assert rec.first_token_s - rec.first_byte_s > 0.01  # type: ignore[operator]
        assert rec.first_content_s == rec.first_token_s == rec.token_chunk_s[0]
        assert len(rec.token_chunk_s) == 3
        assert (rec.input_tokens, rec.output_tokens, rec.tokens_from) == (9, 3, "usage")
        assert rec.output_text == "Hello world!"
        assert seen.paths == ["/v1/chat/completions"]
        assert seen.bodies == [
            {
                "model": "m",
                "messages": [{"role": "user", "content": "Hi"}],
                "stream": True,
                "stream_options": {"include_usage": True},
                "max_tokens": 3,
            }
        ]
        assert seen.headers[0]["Authorization"] == f"Bearer {KEY}"
        assert seen.headers[0]["X-Team"] == "perf"

    asyncio.run(main())


@pytest.mark.parametrize(
    ("server_kind", "extras", "budget"),
    [
        ("vllm", True, "max_tokens"),
        ("llmbench", True, "max_tokens"),
        ("generic", False, "max_tokens"),
        ("openai", False, "max_completion_tokens"),
    ],
)
def test_vllm_only_fields_go_only_to_servers_that_accept_them(
    server_kind: str, extras: bool, budget: str
) -> None:
    request = GenRequest(
        1,
        messages=[{"role": "user", "content": "x"}],
        max_tokens=64,
        ignore_eos=True,
        temperature=0.0,
        extra_body={"top_p": 0.5},
    )

    async def main() -> None:
        async with fake_server(streaming(*TOKENS, USAGE, DONE)) as (url, seen):
            rec, client = await send_one("openai-chat", config(url, server_kind=server_kind), request)
        assert rec.ok
        body = seen.bodies[0]
        assert client.supports_ignore_eos is extras
        assert ("ignore_eos" in body, "min_tokens" in body) == (extras, extras)
        if extras:
            assert (body["ignore_eos"], body["min_tokens"]) == (True, 64)
        assert body[budget] == 64 and {"max_tokens", "max_completion_tokens"} - {budget} - set(body)
        assert (body["temperature"], body["top_p"]) == (0.0, 0.5)

    asyncio.run(main())


def test_completions_client_and_tokenizer_fallback_when_no_usage() -> None:
    class Words:
        approximate = False

        def count(self, text: str, *, special: bool = False) -> int:
            return len(text.split())

    events = [
        {"choices": [{"text": t, "finish_reason": f}]} for t, f in (("one two", None), (" three", "length"))
    ]
    parts = [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events] + [DONE]

    async def main() -> None:
        async with fake_server(streaming(*parts)) as (url, seen):
            rec, _ = await send_one("openai-completions", config(url, tokenizer=Words(), keep_text=False))
            bare, _ = await send_one("openai-completions", config(url))
            approx, _ = await send_one("openai-completions", config(url, tokenizer=ApproxTokenizer()))
        assert seen.paths == ["/v1/completions"] * 3
        assert seen.bodies[0]["prompt"] == "Hi" and seen.bodies[0]["max_tokens"] == 3
        assert (rec.output_tokens, rec.tokens_from, rec.output_text) == (3, "tokenizer", "")
        assert (bare.output_tokens, bare.tokens_from) == (None, "none")  # never chunks counted as tokens
        assert (approx.output_tokens, approx.tokens_from) == (None, "none")  # an estimate is no count
        assert len(bare.token_chunk_s) == 2

    asyncio.run(main())


@pytest.mark.parametrize(("code", "kind"), [(429, "http_429"), (500, "http_500"), (503, "http_503")])
def test_http_errors_are_records_without_retries_or_the_key(code: int, kind: str) -> None:
    body = {"error": {"message": f"slow down, key {KEY} over quota", "type": "rate_limit"}}

    async def main() -> None:
        async with fake_server(status(code, body)) as (url, seen):
            rec, _ = await send_one("openai-chat", config(url))
        assert len(seen.paths) == 1  # no hidden retry
        assert (rec.status, rec.error_kind, rec.http_status) == (Status.ERROR, kind, code)
        assert rec.error_text == "rate_limit: slow down, key [REDACTED] over quota"
        assert KEY not in repr(rec) and KEY not in repr(config(url))
        assert rec.output_tokens is None and rec.token_chunk_s == []

    asyncio.run(main())


@pytest.mark.slow  # several seconds: left to scripts/test, kept out of scripts/check
def test_timeout_is_a_timeout_record() -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(5)
        return web.Response(text="late")

    async def main() -> None:
        async with fake_server(slow) as (url, seen):
            rec, _ = await send_one("openai-chat", config(url, timeout_s=0.3))
        assert (rec.status, rec.error_kind) == (Status.TIMEOUT, "timeout")
        assert len(seen.paths) == 1
        assert 0.25 < rec.end_s - rec.start_s < 4

    asyncio.run(main())


def test_connection_refused_and_server_dying_mid_stream() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]

    async def dies(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(TOKENS[0])
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.close()
        return resp

    async def main() -> None:
        refused, _ = await send_one("openai-chat", config(f"http://127.0.0.1:{closed_port}/v1"))
        assert (refused.status, refused.error_kind) == (Status.ERROR, "connection")
        assert refused.http_status is None
        async with fake_server(dies) as (url, _seen):
            cut, _ = await send_one("openai-chat", config(url))
        assert (cut.status, cut.error_kind) == (Status.ERROR, "connection")
        assert (len(cut.token_chunk_s), cut.output_text) == (1, "Hello")  # what arrived before the break

    asyncio.run(main())


def test_malformed_stream_is_a_protocol_error() -> None:
    async def main() -> None:
        async with fake_server(streaming(TOKENS[0], b"data: {not json\n\n", DONE)) as (url, _seen):
            rec, _ = await send_one("openai-chat", config(url))
        assert (rec.status, rec.error_kind) == (Status.ERROR, "protocol")
        assert rec.error_text is not None and rec.error_text.startswith("malformed stream")
        async with fake_server(streaming(*TOKENS[:2])) as (url, _seen):
            short, _ = await send_one("openai-chat", config(url))
        assert (short.status, short.error_kind, len(short.token_chunk_s)) == (Status.ERROR, "protocol", 2)

    asyncio.run(main())


def test_cancelled_send_returns_its_partial_record() -> None:
    async def main() -> None:
        async with (
            fake_server(streaming(*TOKENS, USAGE, DONE, pause_s=0.5)) as (url, _seen),
            make_client("openai-chat", config(url)) as client,
        ):
            task = asyncio.create_task(client.send(GenRequest(3, prompt="x"), 0.0))
            await asyncio.sleep(0.25)
            task.cancel()
            rec = await task
        assert (rec.status, rec.error_kind) == (Status.CANCELLED, "cancelled")
        assert len(rec.token_chunk_s) == 1 and rec.end_s > rec.first_token_s  # type: ignore[operator]
        assert rec.output_text == "Hello"  # the partial answer is kept

    asyncio.run(main())


def test_keep_alive_reuses_one_connection() -> None:
    async def main() -> None:
        async with (
            fake_server(streaming(*TOKENS, USAGE, DONE)) as (url, seen),
            make_client("openai-chat", config(url)) as client,
        ):
            records = [await client.send(GenRequest(i, prompt="x"), 0.0) for i in range(3)]
        assert all(r.ok for r in records)
        assert len(set(seen.peers)) == 1

    asyncio.run(main())


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


ANTHROPIC_PARTS = [
    _event("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 5}}}),
    _event("ping", {"type": "ping"}),
    _event(
        "content_block_delta", {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Y"}}
    ),
    _event(
        "content_block_delta", {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "o"}}
    ),
    _event("message_delta", {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 2}}),
    _event("message_stop", {"type": "message_stop"}),
]


def test_anthropic_client_headers_body_and_usage() -> None:
    request = GenRequest(
        2,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        max_tokens=9,
        ignore_eos=True,
    )

    async def main() -> None:
        async with fake_server(streaming(*ANTHROPIC_PARTS)) as (url, seen):
            rec, _ = await send_one(
                "anthropic", config(url.removesuffix("/v1"), server_kind="anthropic"), request
            )
        assert seen.paths == ["/v1/messages"]
        assert seen.headers[0]["x-api-key"] == KEY and seen.headers[0]["anthropic-version"] == "2023-06-01"
        assert "Authorization" not in seen.headers[0]
        assert seen.bodies[0] == {
            "model": "m",
            "max_tokens": 9,
            "messages": [{"role": "user", "content": "Hi"}],
            "stream": True,
            "system": "Be brief.",
        }
        assert rec.ok and (rec.input_tokens, rec.output_tokens, rec.tokens_from) == (5, 2, "usage")
        assert (rec.output_text, len(rec.token_chunk_s)) == ("Yo", 2)

    asyncio.run(main())


def test_anthropic_overloaded_is_an_error_record() -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}

    async def main() -> None:
        async with fake_server(status(529, body)) as (url, seen):
            rec, _ = await send_one("anthropic", config(url))
        assert (rec.error_kind, rec.error_text, len(seen.paths)) == (
            "http_529",
            "overloaded_error: Overloaded",
            1,
        )

    asyncio.run(main())


MODELS = {"object": "list", "data": [{"id": "m", "object": "model"}, {"id": "other", "object": "model"}]}


def test_check_passes_and_names_served_models_when_the_id_is_wrong() -> None:
    async def main() -> None:
        async with fake_server(status(200, MODELS)) as (url, seen):
            async with make_client("openai-chat", config(url)) as client:
                await client.check()
            async with make_client("openai-chat", ClientConfig(url, "typo")) as client:
                with pytest.raises(TargetError) as info:
                    await client.check()
        assert seen.paths == ["/v1/models", "/v1/models"]
        assert "'typo'" in str(info.value) and "m, other" in str(info.value)

    asyncio.run(main())


def test_check_unreachable_and_unauthorized() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]

    async def main() -> None:
        url = f"http://127.0.0.1:{closed_port}/v1"
        async with make_client("openai-chat", config(url)) as client:
            with pytest.raises(TargetError) as unreachable:
                await client.check()
        assert url in str(unreachable.value) and "llmbench serve" in str(unreachable.value)
        denied = {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "invalid_request_error"}}
        for api in ("openai-chat", "anthropic"):
            async with (
                fake_server(status(401, denied)) as (base, _seen),
                make_client(api, config(base)) as client,
            ):
                with pytest.raises(TargetError) as info:
                    await client.check()
            assert "TEST_KEY" in str(info.value) and KEY not in str(info.value)

    asyncio.run(main())


def test_check_anthropic_probe_and_missing_model() -> None:
    ok = {
        "type": "message",
        "content": [{"type": "text", "text": "H"}],
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    missing = {"type": "error", "error": {"type": "not_found_error", "message": "model: m"}}

    async def main() -> None:
        async with (
            fake_server(status(200, ok)) as (url, seen),
            make_client("anthropic", config(url)) as client,
        ):
            await client.check()
        assert seen.bodies[0]["max_tokens"] == 1 and seen.bodies[0]["stream"] is False
        async with (
            fake_server(status(404, missing)) as (url, _seen),
            make_client("anthropic", config(url)) as client,
        ):
            with pytest.raises(TargetError, match="does not serve model 'm'"):
                await client.check()

    asyncio.run(main())


def test_check_falls_back_to_a_probe_without_models_endpoint() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/models"):
            return web.json_response({"detail": "Not Found"}, status=404)
        return web.json_response({"detail": "unknown model m"}, status=404)

    async def main() -> None:
        async with (
            fake_server(handler) as (url, seen),
            make_client("openai-completions", config(url)) as client,
        ):
            with pytest.raises(TargetError, match="unknown model m"):
                await client.check()
        assert seen.paths == ["/v1/models", "/v1/completions"]
        assert seen.bodies[1]["stream"] is False and "stream_options" not in seen.bodies[1]

    asyncio.run(main())


def test_registry_and_base_urls() -> None:
    with pytest.raises(UsageError) as info:
        make_client("grpc", ClientConfig("http://x", "m"))
    assert info.value.flag == "--api"
    assert normalize_base_url("http://h:8000") == "http://h:8000/v1"
    assert normalize_base_url("http://h:8000/v1/") == "http://h:8000/v1"
    assert normalize_base_url("https://api.x.com/v1/chat/completions") == "https://api.x.com/v1"
    assert normalize_base_url("https://api.anthropic.com") == "https://api.anthropic.com/v1"


@pytest.mark.parametrize(
    ("api", "strict"), [("openai-chat", False), ("openai-completions", True), ("anthropic", False)]
)
def test_against_the_real_mock(api: str, strict: bool) -> None:
    from serve.mock.server import running_mock
    from serve.specs import LatencyModel, MockSpec

    spec = MockSpec(model="mock-m", port=0, strict=strict, latency=LatencyModel(ttft_ms=30, itl_ms=2))
    kind = ("openai" if api.startswith("openai") else "anthropic") if strict else "llmbench"

    async def main(url: str) -> None:
        async with make_client(api, ClientConfig(url, "mock-m", server_kind=kind)) as client:  # type: ignore[arg-type]
            await client.check()
            request = GenRequest(5, prompt="two words", max_tokens=24, ignore_eos=True)
            rec = await client.send(request, 0.0)
        assert rec.ok, rec.error_text
        assert rec.tokens_from == "usage" and rec.output_tokens == 24 and rec.input_tokens
        assert rec.first_token_s - rec.start_s >= 0.025  # type: ignore[operator]
        assert len(rec.token_chunk_s) >= 2 and rec.output_text
        async with make_client(api, ClientConfig(url, "nope", server_kind=kind)) as client:  # type: ignore[arg-type]
            with pytest.raises(TargetError, match="nope"):
                await client.check()

    with running_mock(spec) as url:
        asyncio.run(main(url))


@pytest.mark.vllm
@pytest.mark.parametrize("api", ["openai-chat", "openai-completions"])
def test_against_real_vllm_prompt_lengths_and_usage(vllm_server: Any, api: str) -> None:
    """Prompts sized by our tokenizer are exactly what vLLM counts, chat template included."""
    from bench.prompts import PromptSpec, build_requests
    from bench.tokenizer import load_tokenizer

    tok = load_tokenizer(vllm_server.model_dir)
    spec = PromptSpec(
        unit="model",
        api="chat" if api == "openai-chat" else "completions",
        input_tokens="uniform:16:300",
        output_tokens="uniform:4:24",
        ignore_eos=True,
    )
    requests = build_requests(spec, 8, seed=1, tokenizer=tok)

    async def main() -> list[RequestRecord]:
        cfg = ClientConfig(vllm_server.base_url, vllm_server.model, server_kind="vllm", tokenizer=tok)
        async with make_client(api, cfg) as client:
            await client.check()
            return list(await asyncio.gather(*(client.send(r, 0.0) for r in requests)))

    for request, rec in zip(requests, asyncio.run(main()), strict=True):
        assert rec.ok, rec.error_text
        assert rec.tokens_from == "usage"
        assert rec.input_tokens == request.input_tokens
        assert rec.output_tokens == request.max_tokens  # ignore_eos + min_tokens reached vLLM
        assert rec.first_token_s is not None and len(rec.token_chunk_s) >= 1
        # Re-encoding the text need not give back the generated token count: hence usage first.
        assert rec.output_text and len(rec.token_chunk_s) <= request.max_tokens


def test_server_text_is_quoted_without_tags_and_capped() -> None:
    from bench.clients.base import server_text

    page = "<!DOCTYPE HTML><html><head><style>p {x: 1}</style><title>Error</title></head><body>"
    page += "<h1>Error response</h1><p>Message: Unsupported method ('POST').</p>" + "<p>x</p>" * 400
    text = server_text(page)
    assert text.startswith("Error Error response Message: Unsupported method ('POST').")
    assert "<" not in text and "{x: 1}" not in text and len(text) <= 200 and text.endswith("…")
    assert server_text('{"error": "plain"}') == '{"error": "plain"}'


def test_credential_headers_are_redacted_like_the_key() -> None:
    config = ClientConfig("http://127.0.0.1:9/v1", "m", headers={"Authorization": f"Bearer {KEY}"})
    client = make_client("openai-chat", config)
    assert KEY not in client.error_message(f'{{"error": {{"message": "bad key {KEY}"}}}}'.encode())
    assert "Authorization header" in client.key_hint()
    bare = make_client("openai-chat", ClientConfig("http://127.0.0.1:9/v1", "m"))
    assert "--api-key-env VAR" in bare.key_hint() and "Authorization: Bearer <key>" in bare.key_hint()
