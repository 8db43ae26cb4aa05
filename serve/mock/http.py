"""A small HTTP/1.1 server on asyncio.Protocol: keep-alive, Content-Length bodies, chunked responses.

The mock must be cheaper than any client it measures, so it skips every framework: a response is built
as bytes and handed to the transport in as few writes as possible (one for a whole pre-built stream).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
}


@dataclass(slots=True)
class HttpRequest:
    """One parsed request; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


Handler = Callable[[HttpRequest, "HttpConnection"], None]


def status_line(status: int) -> bytes:
    """The `HTTP/1.1 200 OK` line, CRLF-terminated."""
    return f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n".encode()


def encode_chunk(data: bytes) -> bytes:
    """One transfer-encoding chunk (empty input gives empty output, never the terminator)."""
    if not data:
        return b""
    return b"%x\r\n%b\r\n" % (len(data), data)


class HttpConnection(asyncio.Protocol):
    """One client connection; requests are answered in order, one at a time (HTTP/1.1 pipelining)."""

    def __init__(
        self,
        handler: Handler,
        on_open: Callable[[HttpConnection], None],
        on_close: Callable[[HttpConnection], None],
    ) -> None:
        self.handler = handler
        self.on_open = on_open
        self.on_close = on_close
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._busy = False
        self._keep_alive = True
        self._closing = False
        self._continued = False
        self._lost_callbacks: list[Callable[[], None]] = []

    # asyncio.Protocol -------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.on_open(self)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._busy:
            self._next_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        callbacks, self._lost_callbacks = self._lost_callbacks, []
        for callback in callbacks:
            callback()
        self.on_close(self)

    # API for handlers ---------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once the peer went away or the connection is being closed."""
        return self._closing or self.transport is None or self.transport.is_closing()

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Call `callback` if the connection drops before the current response ends."""
        self._lost_callbacks.append(callback)

    def respond(self, status: int, body: bytes, content_type: bytes, extra: bytes = b"") -> None:
        """Send a whole response with Content-Length; `extra` holds more CRLF-terminated header lines."""
        conn = b"" if self._keep_alive else b"connection: close\r\n"
        head = b"%bcontent-type: %b\r\ncontent-length: %d\r\n%b%b\r\n" % (
            status_line(status),
            content_type,
            len(body),
            conn,
            extra,
        )
        self._write(head + body)
        self.finish()

    def stream_head(self, status: int, content_type: bytes, extra: bytes = b"") -> bytes:
        """Headers of a chunked response, to be written with `write` (maybe with the first chunks)."""
        conn = b"" if self._keep_alive else b"connection: close\r\n"
        return b"%bcontent-type: %b\r\ntransfer-encoding: chunked\r\ncache-control: no-cache\r\n%b%b\r\n" % (
            status_line(status),
            content_type,
            conn,
            extra,
        )

    def write(self, data: bytes) -> None:
        """Write raw bytes (already framed) to the client."""
        self._write(data)

    def finish(self) -> None:
        """The current response is complete: go on with the next request, or close."""
        self._lost_callbacks.clear()
        self._busy = False
        if not self._keep_alive:
            self.close()
            return
        if self._buf and not self._closing:
            self._next_request()

    def close(self) -> None:
        """Close the connection after the buffered data is sent."""
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection at once."""
        self._closing = True
        if self.transport is not None:
            self.transport.abort()

    # parsing --------------------------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self._closing:
            self.transport.write(data)

    def _fail(self, status: int, message: str) -> None:
        self._keep_alive = False
        self._buf.clear()
        body = (
            b'{"error": {"message": "%b", "type": "invalid_request_error", "param": null, "code": null}}'
            % (message.encode())
        )
        self.respond(status, body, b"application/json")

    def _next_request(self) -> None:
        while not self._busy and not self._closing and self._buf:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEAD_BYTES:
                    self._fail(431, "request head too large")
                return
            request = self._parse_head(bytes(self._buf[:end]))
            if request is None:
                return
            length = request.headers.get("content-length", "0")
            if not length.isdigit():
                self._fail(400, "bad content-length")
                return
            size = int(length)
            if size > MAX_BODY_BYTES:
                self._fail(413, "request body too large")
                return
            if len(self._buf) < end + 4 + size:
                # curl asks before sending a large body; answer once per request.
                if not self._continued and request.headers.get("expect", "").lower() == "100-continue":
                    self._continued = True
                    self._write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return
            self._continued = False
            request.body = bytes(self._buf[end + 4 : end + 4 + size])
            del self._buf[: end + 4 + size]
            self._keep_alive = request.keep_alive
            self._busy = True
            self.handler(request, self)

    def _parse_head(self, head: bytes) -> HttpRequest | None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self._fail(400, "malformed request line")
            return None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                self._fail(400, "malformed header line")
                return None
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", ""):
            self._fail(501, "chunked request bodies are not supported; send Content-Length")
            return None
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection if parts[2] == "HTTP/1.1" else "keep-alive" in connection
        path = parts[1].split("?", 1)[0]
        return HttpRequest(parts[0], path, headers, b"", keep_alive)
