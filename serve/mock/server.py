"""The mock backend: a fast simulated OpenAI / Anthropic / vLLM server with a latency and answer model.

At zero latency a whole streamed answer is built as bytes and written at once, so the server costs a few
percent of a core where any client it measures costs a full one.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import hmac
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from serve.errors import PortInUseError, ServerStartError
from serve.info import INFO_PATH, info_json, llmbench_version, runtime_info
from serve.mock.answers import Answer, Answerer, Generation, TokenCounter
from serve.mock.anthropic import AnthropicMessages
from serve.mock.cache import PromptCache
from serve.mock.http import HttpConnection, HttpRequest, encode_chunk
from serve.mock.metrics import MockStats, render_prometheus
from serve.mock.openai import OpenAIChat, OpenAICompletions
from serve.mock.protocols import ApiDialect, ApiError, Rendered
from serve.mock.schedule import Capacity, LatencyPlan, PreciseTimer, TimedJob
from serve.specs import MockSpec

JSON = b"application/json"
SSE = b"text/event-stream; charset=utf-8"
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The API expects a JSON payload, but what was sent was not valid JSON.)"
)
_INJECTED = {
    429: ApiError(
        429,
        "Rate limit reached for requests (injected by the llmbench mock server).",
        code="rate_limit_exceeded",
        kind="requests",
    ),
    500: ApiError(
        500, "The server had an error while processing your request. Sorry about that!", kind="server_error"
    ),
}


# Both providers answer 401 without naming the key that was sent.
_UNAUTHORIZED = ApiError(
    401, "Incorrect API key provided (the llmbench mock requires a key).", code="invalid_api_key"
)


class MockServer:
    """A mock LLM server on asyncio; `start()` binds (port 0 picks a free port)."""

    def __init__(
        self,
        spec: MockSpec,
        clock: Callable[[], float] | None = None,
        *,
        reuse_port: bool = False,
        process: dict[str, Any] | None = None,
    ) -> None:
        """`clock` (s) times the prompt cache's lifetimes (default time.monotonic); `reuse_port` and
        `process` (pid, worker index): one worker of several (serve.mock.workers)."""
        self.spec = spec
        self.stats = MockStats()
        # What GET /metrics renders: this process's counters, or (workers) every worker's summed.
        self.metrics_stats: Callable[[], MockStats] = lambda: self.stats
        self._reuse_port = reuse_port
        self.counter = TokenCounter(spec.tokenizer)
        self.answerer = Answerer(spec.answers, self.counter)
        self.cache = PromptCache(spec.cache, self.counter, clock or time.monotonic)
        self._key_digests: dict[str, str] = {}
        self.plan = LatencyPlan(spec.latency)
        self.capacity = Capacity(spec.latency.capacity, self.stats)
        self.dialects: dict[str, ApiDialect] = {
            "/v1/chat/completions": OpenAIChat(spec.reasoning.openai_field),
            "/v1/completions": OpenAICompletions(),
            "/v1/messages": AnthropicMessages(spec.cache.max_breakpoints),
        }
        self.pages: dict[str, Callable[[], tuple[bytes, bytes]]] = {
            "/health": lambda: (b"", JSON),
            "/metrics": self._metrics,
            "/v1/models": self._models,
            INFO_PATH: self._info,
        }
        self._key = None if spec.api_key is None else spec.api_key.get_secret_value()
        self._info_body = info_json(
            runtime_info(
                {
                    "backend": "mock",
                    "accepts_extras": not spec.strict,  # a strict mock rejects ignore_eos like OpenAI
                    "strict": spec.strict,
                    "model": {"name": spec.model},
                    **spec.info,
                    "engine": {"name": "llmbench-mock", **dict(spec.info.get("engine") or {})},
                    **({"process": process} if process is not None else {}),
                },
                engine_version=llmbench_version(),
            )
        )
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: PreciseTimer | None = None
        self._connections: set[HttpConnection] = set()
        self._port = spec.port
        self._next_id = 0
        self._created = int(time.time())

    @property
    def url(self) -> str:
        """Base URL, http://HOST:PORT (no /v1)."""
        host = f"[{self.spec.host}]" if ":" in self.spec.host else self.spec.host
        return f"http://{host}:{self._port}"

    async def start(self) -> None:
        """Bind and start serving; raises PortInUseError when the port is taken."""
        self._loop = asyncio.get_running_loop()
        self._timer = PreciseTimer(self._loop)
        try:
            self._server = await self._loop.create_server(
                lambda: HttpConnection(self._dispatch, self._connections.add, self._connections.discard),
                self.spec.host,
                self.spec.port,
                backlog=2048,
                reuse_port=True if self._reuse_port else None,
            )
        except OSError as e:
            where = f"{self.spec.host}:{self.spec.port}"
            if e.errno == errno.EADDRINUSE:
                raise PortInUseError(f"{where} is already in use", hint="pick another port, or 0") from e
            raise ServerStartError(f"cannot bind {where}: {e}") from e
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop accepting, drop open connections (ending their streams) and wait until closed."""
        if self._server is None:
            return
        self._server.close()
        if self._timer is not None:
            self._timer.close()
        for conn in list(self._connections):
            conn.abort()
        await self._server.wait_closed()
        self._server = None

    # dispatch ------------------------------------------------------------------------------------------
    def _dispatch(self, req: HttpRequest, conn: HttpConnection) -> None:
        try:
            dialect = self.dialects.get(req.path)
            if dialect is not None and req.method == "POST":
                self._generate(req, conn, dialect)
                return
            page = self.pages.get(req.path)
            if page is not None and req.method == "GET":
                body, content_type = page()
                conn.respond(200, body, content_type)
                return
            known = dialect is not None or page is not None
            status, message = (405, "Method Not Allowed") if known else (404, f"Not found: {req.path}")
            conn.respond(status, OpenAIChat().error(ApiError(status, message)), JSON)
        except Exception as e:  # a bug must cost one request, not the server
            err = ApiError(500, f"mock server error: {type(e).__name__}: {e}", kind="server_error")
            conn.respond(500, OpenAIChat().error(err), JSON)

    def _info(self) -> tuple[bytes, bytes]:
        return self._info_body, JSON

    def _authorized(self, req: HttpRequest) -> bool:
        """With a key set: OpenAI sends `Authorization: Bearer K`, Anthropic `x-api-key: K`."""
        if self._key is None:
            return True
        return hmac.compare_digest(_given_key(req).encode(), self._key.encode())

    def _use_cache(self, req: HttpRequest, gen: Generation, prompt_tokens: int) -> None:
        """Look the prompt up in the cache of its API key and model; count it as vLLM's counters do."""
        if gen.batch or gen.prompt_tokens is not None:
            return  # batched or token-id prompts: not cached
        self.stats.prefix_cache_queries += prompt_tokens
        if gen.cache == "explicit":
            if any(b.ttl is not None for b in gen.cache_blocks):
                gen.cache_use = self.cache.explicit(self._namespace(req, gen.model), gen.cache_blocks)
        elif prompt_tokens >= self.spec.cache.auto_min_tokens:  # shorter prompts never touch the cache
            namespace = self._namespace(req, gen.model)
            gen.cache_use = self.cache.automatic(namespace, gen.prompt_text, prompt_tokens)
        self.stats.prefix_cache_hits += gen.cache_use.read

    def _namespace(self, req: HttpRequest, model: str) -> str:
        """Whose cache a request uses: its API key (by digest) and model."""
        given = _given_key(req)
        digest = self._key_digests.get(given)
        if digest is None:
            digest = self._key_digests[given] = hashlib.sha256(given.encode()).hexdigest()[:16]
        return f"{digest}\x00{model}"

    def _reasoning(self, gen: Generation) -> int:
        """Reasoning tokens for this request: the mock's setting, capped by the request's budget."""
        tokens = self.spec.reasoning.tokens
        return tokens if gen.reasoning_cap is None else min(tokens, gen.reasoning_cap)

    def _models(self) -> tuple[bytes, bytes]:
        model = {
            "id": self.spec.model,
            "object": "model",
            "created": self._created,
            "owned_by": "llmbench-mock",
        }
        return json.dumps({"object": "list", "data": [model]}).encode(), JSON

    def _metrics(self) -> tuple[bytes, bytes]:
        text = render_prometheus(self.metrics_stats(), self.spec.model, self.spec.latency.capacity)
        return text.encode(), b"text/plain; version=0.0.4; charset=utf-8"

    def _error(self, conn: HttpConnection, dialect: ApiDialect, err: ApiError) -> None:
        extra = b"retry-after: 1\r\nx-ratelimit-remaining-requests: 0\r\n" if err.status == 429 else b""
        conn.respond(err.status, dialect.error(err), JSON, extra)

    def _generate(self, req: HttpRequest, conn: HttpConnection, dialect: ApiDialect) -> None:
        stats = self.stats
        stats.requests += 1
        assert self._loop is not None
        arrival = self._loop.time()
        if not self._authorized(req):
            stats.bad_requests += 1
            self._error(conn, dialect, _UNAUTHORIZED)
            return
        try:
            try:
                body = json.loads(req.body)
            except ValueError as e:  # UnicodeDecodeError is a ValueError too
                raise ApiError(400, _BAD_JSON) from e
            gen = dialect.parse(body, self.spec.strict)
            if gen.model != self.spec.model:
                raise dialect.not_found(gen.model)
        except ApiError as err:
            stats.bad_requests += 1
            self._error(conn, dialect, err)
            return
        injected = self.plan.injected_error()
        if injected is not None:
            stats.injected_429 += injected == 429
            stats.injected_500 += injected == 500
            self._error(conn, dialect, _INJECTED[injected])
            return
        self._next_id += 1
        rid = self._next_id
        created = int(time.time())
        prompt_tokens = gen.prompt_tokens or self.counter.count(gen.prompt_text)
        self._use_cache(req, gen, prompt_tokens)
        uncached = prompt_tokens - gen.cache_use.read  # the prompt-length term of TTFT counts only these
        if gen.batch:
            answers = [self.answerer.answer(gen, text) for text in gen.batch]
        else:
            answers = [self.answerer.answer(gen, reasoning=self._reasoning(gen))]
        if gen.stream:
            answer = answers[0]
            rendered = dialect.stream(gen, answer, prompt_tokens, rid, created)
            per = self.spec.latency.tokens_per_chunk
            texts = _chunk_texts(answer.pieces, answer.plain, per)
            thoughts = _chunk_texts(answer.reasoning, True, per)
            if self.plan.instant:
                if thoughts:
                    body_bytes = rendered.head + b"".join(_frames(rendered, thoughts, texts))
                else:
                    body_bytes = _whole_stream(rendered, texts)
                conn.write(conn.stream_head(200, SSE) + encode_chunk(body_bytes) + b"0\r\n\r\n")
                conn.finish()
                self._done(gen, answers, prompt_tokens, len(thoughts) + len(texts), arrival, arrival)
                return
            self._timed_stream(
                conn, gen, answer, rendered, (thoughts, texts), prompt_tokens, uncached, rid, arrival
            )
            return
        payload = dialect.body(gen, answers, prompt_tokens, rid, created)
        if self.plan.instant:
            conn.respond(200, payload, JSON)
            self._done(gen, answers, prompt_tokens, 0, arrival, arrival)
            return
        total = max(len(a.reasoning) + len(a.pieces) for a in answers)
        offsets = self.plan.chunk_offsets(total, uncached, rid)
        # Not streamed: the whole answer arrives when its last token would have.
        ttft = self.plan.ttft_s(uncached)

        def emit(data: bytes, last: bool) -> None:
            conn.respond(200, data, JSON)

        assert self._timer is not None
        job = TimedJob(self._timer, [payload], offsets[-1:], emit, lambda j: None)
        job.on_done = lambda j: self._job_done(j, gen, answers, prompt_tokens, 0, arrival, ttft)
        self._admit(conn, job)

    def _timed_stream(
        self,
        conn: HttpConnection,
        gen: Generation,
        answer: Answer,
        rendered: Rendered,
        chunks: tuple[list[bytes], list[bytes]],
        prompt_tokens: int,
        uncached: int,
        rid: int,
        arrival: float,
    ) -> None:
        thoughts, texts = chunks
        frames = _frames(rendered, thoughts, texts)
        per = self.spec.latency.tokens_per_chunk
        if thoughts:  # reasoning and content are chunked apart: one offset per frame, each part's own runs
            times = self.plan.token_times(len(answer.reasoning) + len(answer.pieces), uncached, rid)
            offsets = _group_offsets(times, [len(answer.reasoning), len(answer.pieces)], per)
        else:
            offsets = self.plan.chunk_offsets(len(answer.pieces), uncached, rid)  # one per frame
        # Headers (and Anthropic's message_start) go out on acceptance, as real servers send them early.
        conn.write(conn.stream_head(200, SSE) + encode_chunk(rendered.head))

        def emit(data: bytes, last: bool) -> None:
            conn.write(encode_chunk(data) + b"0\r\n\r\n" if last else encode_chunk(data))
            if last:
                conn.finish()

        assert self._timer is not None
        job = TimedJob(self._timer, frames, offsets, emit, lambda j: None)
        job.on_done = lambda j: self._job_done(
            j, gen, [answer], prompt_tokens, len(thoughts) + len(texts), arrival, offsets[0]
        )
        self._admit(conn, job)

    def _admit(self, conn: HttpConnection, job: TimedJob) -> None:
        def lost() -> None:
            job.cancel()
            self.stats.cancelled += 1
            self.capacity.release(job)

        conn.on_lost(lost)
        self.capacity.admit(job)

    def _job_done(
        self,
        job: TimedJob,
        gen: Generation,
        answers: list[Answer],
        prompt_tokens: int,
        chunks: int,
        arrival: float,
        ttft_offset: float,
    ) -> None:
        self.capacity.release(job)
        self._done(gen, answers, prompt_tokens, chunks, arrival, job.t0 + ttft_offset)

    def _done(
        self,
        gen: Generation,
        answers: list[Answer],
        prompt_tokens: int,
        chunks: int,
        arrival: float,
        first: float,
    ) -> None:
        stats = self.stats
        assert self._loop is not None
        stats.ok += 1
        stats.chunks += chunks
        stats.prompt_tokens += prompt_tokens
        for answer in answers:
            stats.generation_tokens += answer.output_tokens
            stats.finished["length" if answer.finish == "length" else "stop"] += 1
        stats.ttft.observe(max(0.0, first - arrival))
        stats.e2e.observe(self._loop.time() - arrival)


def _given_key(req: HttpRequest) -> str:
    """The API key a request presents: `Authorization: Bearer K` (OpenAI) or `x-api-key: K` (Anthropic)."""
    bearer = req.headers.get("authorization", "")
    return bearer[7:] if bearer.lower().startswith("bearer ") else req.headers.get("x-api-key", "")


def _chunk_texts(pieces: list[str], plain: bool, per_chunk: int) -> list[bytes]:
    """The JSON-escaped text of each streamed chunk (`per_chunk` pieces each)."""
    if per_chunk > 1:
        pieces = ["".join(pieces[i : i + per_chunk]) for i in range(0, len(pieces), per_chunk)]
    if plain:
        return [p.encode() for p in pieces]
    return [json.dumps(p)[1:-1].encode() for p in pieces]


def _frames(rendered: Rendered, thoughts: list[bytes], texts: list[bytes]) -> list[bytes]:
    """Every frame of a timed stream after the head: reasoning chunks, the switch, content chunks."""
    r_suffix = rendered.suffix if rendered.reasoning_suffix is None else rendered.reasoning_suffix
    frames = [rendered.reasoning_prefix + t + r_suffix for t in thoughts]
    content = [rendered.prefix + t + rendered.suffix for t in texts]
    if thoughts and content:
        content[0] = rendered.switch + content[0]
    elif thoughts:
        frames[-1] += rendered.switch
    frames += content
    frames = frames or [b""]
    frames[0] = rendered.first + frames[0]
    frames[-1] += rendered.tail
    return frames


def _group_offsets(times: list[float], parts: list[int], per_chunk: int) -> list[float]:
    """The send time of each frame: the time of its last token, each part chunked on its own."""
    out: list[float] = []
    start = 0
    for n in parts:
        out += [times[start + min(c + per_chunk, n) - 1] for c in range(0, n, per_chunk)]
        start += n
    return out or times[:1]


def _whole_stream(rendered: Rendered, texts: list[bytes]) -> bytes:
    """Every event of a stream in one buffer (the zero-latency path: one write per response)."""
    if not texts:
        return rendered.head + rendered.first + rendered.tail
    middle = (rendered.suffix + rendered.prefix).join(texts)
    return rendered.head + rendered.first + rendered.prefix + middle + rendered.suffix + rendered.tail


def serve_one(spec: MockSpec, on_ready: Callable[[str], None]) -> None:
    """Serve in this process until SIGINT or SIGTERM, then shut down cleanly; `on_ready(url)` runs once bound
    (serve.mock.launch.serve_mock chooses this or several worker processes)."""

    async def main() -> None:
        server = MockServer(spec)
        await server.start()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            on_ready(server.url)
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await server.stop()

    asyncio.run(main())


@contextmanager
def running_mock(spec: MockSpec, clock: Callable[[], float] | None = None) -> Iterator[str]:
    """Run a MockServer on a background thread's event loop; yields its base URL (`clock`: see MockServer;
    one process: use serve.mock.launch.serve_mock for `spec.workers` > 1)."""
    if spec.workers > 1:
        raise ServerStartError("running_mock serves from one thread; serve several workers with serve_mock")
    server = MockServer(spec, clock)
    loop = asyncio.new_event_loop()
    ready: Future[str] = Future()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as e:
            ready.set_exception(e)
            loop.close()
            return
        ready.set_result(server.url)
        loop.run_forever()
        loop.run_until_complete(server.stop())
        loop.close()

    thread = threading.Thread(target=run, name="llmbench-mock", daemon=True)
    thread.start()
    url = ready.result()
    try:
        yield url
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
