"""A streaming server with exact, known timing, for checking what the load generator measures.

Every streamed request gets its first token `ttft_ms` after the request arrived and each further token
`itl_ms` after the previous one, on an absolute schedule (due = arrival + ttft + i·itl), so timer
overshoot never accumulates. "Arrived" is stamped when the request's first byte is read, on a bare
asyncio.Protocol (no web framework between the socket and the clock). `spin_ms` > 0 sleeps to that much
before each due time and then yields the loop until it is reached, trading CPU for sub-millisecond
wake-ups (epoll rounds timeouts up to whole milliseconds).

It speaks OpenAI chat/completions (streamed, role-only first chunk, usage-only final chunk) and Anthropic
messages, counts requests in flight (the maximum is the server-side concurrency check), logs arrival
and first-token times, and serves a Prometheus /metrics page. Run it in a thread (`TimingServer`) or as
a process (`python tests/timing_server.py --port 0` prints `URL <base url>`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

MODEL = "timing-model"
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


@dataclass
class Timing:
    """Server behaviour: latencies (ms), model id, and an optional failure status for every generation."""

    ttft_ms: float = 200.0
    itl_ms: float = 20.0
    model: str = MODEL
    default_tokens: int = 16
    fail_status: int | None = None
    spin_ms: float = 0.0  # yield-spin this long before each due time (precise wake-ups, costs CPU)


@dataclass
class Stats:
    """What the server saw; times are perf_counter seconds (CLOCK_MONOTONIC: comparable across processes)."""

    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    arrivals: list[float] = field(default_factory=list)
    first_token_late_ms: list[float] = field(default_factory=list)  # first write after its due time
    first_token_at: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "arrivals": self.arrivals,
            "first_token_late_ms": self.first_token_late_ms,
            "first_token_at": self.first_token_at,
        }


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _head(status: int, content_type: str, length: int | None) -> bytes:
    size = f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    return (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: {content_type}\r\n{size}"
        "Cache-Control: no-cache\r\n\r\n"
    ).encode()


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _sse(obj: Any, event: str | None = None) -> bytes:
    prefix = f"event: {event}\n".encode() if event else b""
    return prefix + b"data: " + json.dumps(obj).encode() + b"\n\n"


class _Server:
    """Request handling shared by every connection."""

    def __init__(self, timing: Timing) -> None:
        self.timing = timing
        self.stats = Stats()
        self.connections: set[_Connection] = set()

    def get(self, path: str) -> tuple[int, str, bytes]:
        s = self.stats
        if path == "/health":
            return 200, "text/plain", b"ok"
        if path == "/v1/models":
            body = {"object": "list", "data": [{"id": self.timing.model, "object": "model"}]}
            return 200, "application/json", json.dumps(body).encode()
        if path == "/stats":
            return 200, "application/json", json.dumps(s.to_json()).encode()
        if path == "/metrics":
            name = self.timing.model
            text = (
                "# TYPE vllm:num_requests_running gauge\n"
                f'vllm:num_requests_running{{model_name="{name}"}} {s.in_flight}\n'
                "# TYPE vllm:num_requests_waiting gauge\n"
                f'vllm:num_requests_waiting{{model_name="{name}"}} 0\n'
                "# TYPE vllm:kv_cache_usage_perc gauge\n"
                f'vllm:kv_cache_usage_perc{{model_name="{name}"}} {s.in_flight / 100:.3f}\n'
            )
            return 200, "text/plain; version=0.0.4", text.encode()
        return 404, "application/json", b'{"error": {"message": "not found"}}'

    async def post(self, conn: _Connection, path: str, body: dict[str, Any], arrived: float) -> None:
        t = self.timing
        s = self.stats
        s.requests += 1
        s.arrivals.append(arrived)
        if path not in ("/v1/chat/completions", "/v1/completions", "/v1/messages"):
            conn.respond(404, "application/json", b'{"error": {"message": "not found"}}')
            return
        if t.fail_status is not None:
            conn.respond(t.fail_status, "application/json", b'{"error": {"message": "injected failure"}}')
            return
        if body.get("model") != t.model:
            msg = {"error": {"message": f"model {body.get('model')!r} not found", "type": "not_found_error"}}
            conn.respond(404, "application/json", json.dumps(msg).encode())
            return
        n = int(body.get("max_tokens") or body.get("max_completion_tokens") or t.default_tokens)
        prompt = len(json.dumps(body.get("messages") or body.get("prompt") or "")) // 4
        if not body.get("stream"):
            await self._until(arrived + (t.ttft_ms + (n - 1) * t.itl_ms) / 1000.0)
            text = " tok" * n
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "text": text}
            conn.respond(
                200,
                "application/json",
                json.dumps({"choices": [choice], "usage": _usage(prompt, n)}).encode(),
            )
            return
        s.in_flight += 1
        s.max_in_flight = max(s.max_in_flight, s.in_flight)
        try:
            conn.write(_head(200, "text/event-stream", None))
            if path == "/v1/messages":
                await self._anthropic(conn, n, prompt, arrived)
            else:
                usage = (body.get("stream_options") or {}).get("include_usage", False)
                await self._openai(conn, path.endswith("/chat/completions"), n, prompt, arrived, usage)
            conn.write(b"0\r\n\r\n")
        finally:
            s.in_flight -= 1

    async def _tokens(self, conn: _Connection, n: int, arrived: float, frame: bytes) -> None:
        t = self.timing
        for i in range(n):
            due = arrived + (t.ttft_ms + i * t.itl_ms) / 1000.0
            await self._until(due)
            if i == 0:
                now = time.perf_counter()
                self.stats.first_token_late_ms.append((now - due) * 1000.0)
                self.stats.first_token_at.append(now)
            conn.write(frame)

    async def _openai(
        self, conn: _Connection, chat: bool, n: int, prompt: int, arrived: float, usage: bool
    ) -> None:
        if chat:
            role = {"id": "x", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
            conn.write(_chunk(_sse(role)))
            token = {
                "id": "x",
                "choices": [{"index": 0, "delta": {"content": " tok"}, "finish_reason": None}],
            }
        else:
            token = {"id": "x", "choices": [{"index": 0, "text": " tok", "finish_reason": None}]}
        await self._tokens(conn, n, arrived, _chunk(_sse(token)))
        if usage:
            conn.write(_chunk(_sse({"id": "x", "choices": [], "usage": _usage(prompt, n)})))
        conn.write(_chunk(b"data: [DONE]\n\n"))

    async def _anthropic(self, conn: _Connection, n: int, prompt: int, arrived: float) -> None:
        def event(name: str, data: dict[str, Any]) -> bytes:
            return _chunk(_sse({"type": name, **data}, event=name))

        msg = {"id": "m", "type": "message", "role": "assistant", "model": self.timing.model, "content": []}
        conn.write(
            event(
                "message_start", {"message": {**msg, "usage": {"input_tokens": prompt, "output_tokens": 1}}}
            )
        )
        conn.write(event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}))
        delta = event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": " tok"}})
        await self._tokens(conn, n, arrived, delta)
        conn.write(event("content_block_stop", {"index": 0}))
        conn.write(
            event("message_delta", {"delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": n}})
        )
        conn.write(event("message_stop", {}))

    async def _until(self, due: float) -> None:
        spin = self.timing.spin_ms / 1000.0
        delay = due - time.perf_counter() - spin
        if delay > 0:
            await asyncio.sleep(delay)
        while spin and time.perf_counter() < due:
            await asyncio.sleep(0)


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection: Content-Length request bodies, one request at a time."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.buffer = b""
        self.arrived = 0.0
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.transport = None
        if self.task is not None:
            self.task.cancel()

    def data_received(self, data: bytes) -> None:
        if not self.buffer:
            self.arrived = time.perf_counter()  # the first byte of a request: the server's clock starts
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        if len(self.buffer) < end + 4 + length:
            return
        raw, self.buffer = self.buffer[end + 4 : end + 4 + length], self.buffer[end + 4 + length :]
        path = path.split("?", 1)[0]
        if method == "GET":
            self.respond(*self.server.get(path))
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self.respond(400, "application/json", b'{"error": {"message": "bad json"}}')
            return
        self.task = asyncio.get_running_loop().create_task(self.server.post(self, path, body, self.arrived))

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def respond(self, status: int, content_type: str, body: bytes) -> None:
        self.write(_head(status, content_type, len(body)) + body)


async def _listen(server: _Server, port: int) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: _Connection(server), "127.0.0.1", port)


class TimingServer:
    """The timing server on 127.0.0.1 in a background thread; `url` ends in /v1. Use as a context manager."""

    def __init__(self, timing: Timing | None = None, port: int = 0) -> None:
        self.server = _Server(timing or Timing())
        self.port = port
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def stats(self) -> Stats:
        return self.server.stats

    @property
    def timing(self) -> Timing:
        return self.server.timing

    def __enter__(self) -> TimingServer:
        self._thread = threading.Thread(target=self._serve, name="timing-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("timing server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop listening and drop every open connection (a server that dies mid-run). Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = None
        asyncio.run_coroutine_threadsafe(self._close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    async def _close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        for conn in list(self.server.connections):
            if conn.transport is not None:
                conn.transport.abort()
        await asyncio.sleep(0)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._listener = loop.run_until_complete(_listen(self.server, self.port))
        self.port = self._listener.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._loop = loop
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.sleep(0))
            loop.close()


def main(argv: list[str] | None = None) -> None:
    """Serve in the foreground; prints `URL <base url>` once listening, then serves until killed."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ttft-ms", type=float, default=200.0)
    parser.add_argument("--itl-ms", type=float, default=20.0)
    parser.add_argument("--spin-ms", type=float, default=0.0, help="precise wake-ups: spin this long (ms)")
    parser.add_argument("--model", default=MODEL)
    args = parser.parse_args(argv)
    server = _Server(Timing(ttft_ms=args.ttft_ms, itl_ms=args.itl_ms, model=args.model, spin_ms=args.spin_ms))

    async def serve() -> None:
        listener = await _listen(server, args.port)
        print(f"URL http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/v1", flush=True)
        await asyncio.Event().wait()

    try:
        import uvloop
    except ImportError:
        uvloop = None
    with contextlib.suppress(KeyboardInterrupt):
        if uvloop is not None:
            uvloop.run(serve())
        else:
            asyncio.run(serve())


if __name__ == "__main__":
    main()
