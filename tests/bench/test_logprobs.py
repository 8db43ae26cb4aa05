"""Token logprobs: asked for only when configured, parsed from chat and completions streams of a real
loopback server, and kept as a compact summary in an accuracy item's `extra`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from bench.accuracy.logprobs import LogprobSummary, summarize_logprobs
from bench.accuracy.runner import SuiteRunner
from bench.accuracy.suite import Suite, SuiteItem
from bench.clients import ClientConfig, make_client
from bench.records import GenRequest, ItemRecord, RequestRecord, Status


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def chat_chunk(text: str, logprob: float | None, finish: str | None = None) -> bytes:
    lp = None if logprob is None else {"content": [{"token": text, "logprob": logprob, "top_logprobs": []}]}
    choice = {"index": 0, "delta": {"content": text}, "logprobs": lp, "finish_reason": finish}
    return _sse({"choices": [choice]})


def text_chunk(text: str, logprob: float, finish: str | None = None) -> bytes:
    lp = {"tokens": [text], "token_logprobs": [logprob], "top_logprobs": None, "text_offset": [0]}
    return _sse({"choices": [{"index": 0, "text": text, "logprobs": lp, "finish_reason": finish}]})


USAGE = _sse({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 3}})
DONE = b"data: [DONE]\n\n"


@asynccontextmanager
async def server(*parts: bytes) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A real server on 127.0.0.1 (port 0) streaming `parts`; yields (base URL, request bodies seen)."""
    bodies: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        bodies.append(json.loads(await request.read()))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for part in parts:
            await resp.write(part)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1", bodies
    finally:
        await runner.cleanup()


async def send(api: str, url: str, logprobs: int | None) -> RequestRecord:
    async with make_client(api, ClientConfig(url, "m", logprobs=logprobs)) as client:
        return await client.send(GenRequest(0, prompt="Hi", max_tokens=3), 0.0)


def test_chat_asks_for_logprobs_only_when_configured_and_parses_every_token() -> None:
    parts = (chat_chunk("a", -0.1), chat_chunk("b", -2.0), chat_chunk("c", -0.5, "stop"), USAGE, DONE)

    async def main() -> None:
        async with server(*parts) as (url, bodies):
            asked = await send("openai-chat", url, 2)
            plain = await send("openai-chat", url, None)
        assert bodies[0]["logprobs"] is True and bodies[0]["top_logprobs"] == 2
        assert "logprobs" not in bodies[1] and "top_logprobs" not in bodies[1]
        assert asked.token_logprobs == [-0.1, -2.0, -0.5] and asked.output_text == "abc"
        assert plain.token_logprobs is None and plain.output_text == "abc"

    asyncio.run(main())


def test_chat_logprobs_of_zero_alternatives_sends_no_top_logprobs() -> None:
    async def main() -> None:
        async with server(chat_chunk("a", -0.25, "stop"), USAGE, DONE) as (url, bodies):
            rec = await send("openai-chat", url, 0)
        assert bodies[0]["logprobs"] is True and "top_logprobs" not in bodies[0]
        assert rec.token_logprobs == [-0.25]

    asyncio.run(main())


def test_completions_send_logprobs_n_and_read_token_logprobs() -> None:
    parts = (text_chunk("x", -1.5), text_chunk("y", -0.5, "stop"), USAGE, DONE)

    async def main() -> None:
        async with server(*parts) as (url, bodies):
            rec = await send("openai-completions", url, 1)
        assert bodies[0]["logprobs"] == 1
        assert rec.token_logprobs == [-1.5, -0.5] and rec.output_text == "xy"

    asyncio.run(main())


def test_summary_is_a_low_quantile_not_only_the_mean() -> None:
    """Logprobs -0.1 ×9 and -3.0 (ten tokens). Sorted: -3.0, -0.1 ×9. Linear-interpolation percentiles with
    rank h = 9·q/100: p05 → h 0.45: -3.0 + 0.45·2.9 = -1.695; p10 → h 0.9: -3.0 + 0.9·2.9 = -0.39;
    p25/p50 = -0.1; mean = (-0.9 - 3.0)/10 = -0.39; min = -3.0."""
    got = summarize_logprobs([-0.1] * 9 + [-3.0])
    assert got == LogprobSummary(n=10, min=-3.0, p05=-1.695, p10=-0.39, p25=-0.1, p50=-0.1, mean=-0.39)
    assert summarize_logprobs([]) is None


class LogprobClient:
    """A fake streaming client: answers '4' with the given token logprobs."""

    def __init__(self, logprobs: list[float] | None) -> None:
        self.logprobs = logprobs

    async def send(self, request: GenRequest, scheduled_s: float) -> RequestRecord:
        rec = RequestRecord(request.request_id, Status.OK, scheduled_s, 1.0, 1.25, output_text="4")
        rec.token_logprobs = self.logprobs
        return rec


def test_the_runner_stores_the_summary_in_extra_only_when_logprobs_came_back() -> None:
    item = SuiteItem(id="a", area="math", prompt="2+2?", reference="4")
    suite = Suite("s", path=None, sha256="x", items=[item])  # type: ignore[arg-type]

    def run(logprobs: list[float] | None) -> ItemRecord:
        got: list[ItemRecord] = []
        asyncio.run(SuiteRunner(LogprobClient(logprobs)).run(suite, got.append))
        return got[0]

    with_lp = run([-0.2, -0.4])
    assert with_lp.correct is True
    assert with_lp.extra["logprobs"] == {
        "n": 2, "min": -0.4, "p05": -0.39, "p10": -0.38, "p25": -0.35, "p50": -0.3, "mean": -0.3
    }  # fmt: skip
    assert "logprobs" not in run(None).extra
