"""A recording pass-through on 127.0.0.1 in front of an endpoint, for clients we do not own (lm-eval).

It forwards every request unchanged except for the headers: it adds the API key itself, so the client in
front never sees it. Only its own client may use it: every request must carry `Authorization: Bearer
TOKEN` with the random per-run `token` (any other local process gets 401 and no key), and error texts it
records or returns have the key and the token redacted, as the clients redact theirs.
Responses are read whole (lm-eval does not stream). Per request it records status,
latency (send to last byte) and the usage the server reported, as RequestRecords. It runs its own event
loop in a background thread, because lm-eval's `simple_evaluate` is synchronous and runs its own loop.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from bench.clients.openai import apply_usage
from bench.errors import TargetError
from bench.records import DEFAULT_TIMEOUT_S, RequestRecord, Status

# Headers that belong to one hop, or that the proxy sets itself (the key, the length, the encoding).
_DROP = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "content-encoding",
        "accept-encoding",
        "authorization",
        "x-api-key",
        "proxy-authorization",
        "upgrade",
    }
)


@dataclass
class ProxyCall:
    """One forwarded request: what it measured and the JSON body it carried (for matching to samples)."""

    record: RequestRecord
    path: str
    body: Any


class RecordingProxy:
    """`with RecordingProxy(upstream_base_url, headers) as proxy:` point the client at `proxy.base_url`."""

    def __init__(
        self, upstream: str, headers: Mapping[str, str] | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        parts = urlsplit(upstream.rstrip("/"))
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._prefix = parts.path  # e.g. /v1
        self._headers = dict(headers or {})
        self._timeout_s = timeout_s
        self.token = secrets.token_urlsafe(32)  # what the client must send; new for every run
        # Secrets that must never leave in a record or a response: the header values we add, the token.
        self._secrets = [v.split(" ", 1)[-1] for v in self._headers.values() if len(v) >= 8] + [self.token]
        self.calls: list[ProxyCall] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        """The proxy's base URL, with the upstream's path (e.g. http://127.0.0.1:PORT/v1)."""
        return f"http://127.0.0.1:{self.port}{self._prefix}"

    def __enter__(self) -> RecordingProxy:
        self._thread = threading.Thread(target=self._serve, name="llmbench-proxy", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None or not self.port:
            raise TargetError(
                f"cannot start the recording proxy: {self._error}", url=self._origin
            ) from self._error
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)

    def records(self) -> list[RequestRecord]:
        """Every forwarded request's record, in the order they were sent."""
        with self._lock:
            return [c.record for c in sorted(self.calls, key=lambda c: c.record.request_id)]

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced to __enter__; a thread must not die silently
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            trust_env=False,
            auto_decompress=True,
        ) as session:
            app = web.Application(client_max_size=64 * 1024 * 1024)

            async def handle(request: web.Request) -> web.StreamResponse:
                return await self._forward(session, request)

            app.router.add_route("*", "/{tail:.*}", handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = runner.addresses[0][1]
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await runner.cleanup()

    @property
    def client_headers(self) -> dict[str, str]:
        """What the client in front must send with every request."""
        return {"Authorization": f"Bearer {self.token}"}

    def redact(self, text: str) -> str:
        """`text` without the upstream key or the proxy token."""
        for secret in self._secrets:
            text = text.replace(secret, "[REDACTED]")
        return text

    async def _forward(self, session: aiohttp.ClientSession, request: web.Request) -> web.StreamResponse:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            # Another local process: it gets neither the upstream nor the key.
            return web.json_response(
                {
                    "error": {
                        "message": "llmbench proxy: missing or wrong token",
                        "type": "authentication_error",
                    }
                },
                status=401,
            )
        raw = await request.read()
        with self._lock:
            request_id = len(self.calls)
            now = time.perf_counter()
            record = RequestRecord(request_id, Status.OK, now, now, now)
            self.calls.append(ProxyCall(record, request.path, _json_or_none(raw)))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP}
        headers.update(self._headers)
        url = self._origin + request.path_qs
        try:
            async with session.request(request.method, url, data=raw or None, headers=headers) as upstream:
                record.http_status = upstream.status
                body = await upstream.read()
                record.first_byte_s = record.end_s = time.perf_counter()
                content_type = upstream.headers.get("Content-Type", "application/json")
        except (aiohttp.ClientError, TimeoutError) as exc:
            record.end_s = time.perf_counter()
            record.status = Status.TIMEOUT if isinstance(exc, TimeoutError) else Status.ERROR
            record.error_kind = "timeout" if isinstance(exc, TimeoutError) else "connection"
            record.error_text = self.redact(f"{type(exc).__name__}: {exc}")[:500]
            return web.json_response(
                {"error": {"message": f"llmbench proxy: {record.error_text}"}}, status=502
            )
        _read_usage(record, body)
        if record.http_status != 200:
            record.status = Status.ERROR
            record.error_kind = f"http_{record.http_status}"
            body = self.redact(body.decode("utf-8", "replace")).encode()
            record.error_text = body.decode("utf-8", "replace")[:500]
        return web.Response(body=body, status=upstream.status, headers={"Content-Type": content_type})


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _read_usage(record: RequestRecord, body: bytes) -> None:
    """Usage from a JSON body, or from the last SSE event that carries one."""
    parsed = _json_or_none(body)
    if isinstance(parsed, dict):
        usage = parsed.get("usage")
        if isinstance(usage, dict):
            apply_usage(record, usage)
            record.tokens_from = "usage"
        return
    for line in body.splitlines():
        if line.startswith(b"data: ") and b'"usage"' in line:
            event = _json_or_none(line[6:])
            if isinstance(event, dict) and isinstance(event.get("usage"), dict):
                apply_usage(record, event["usage"])
                record.tokens_from = "usage"
