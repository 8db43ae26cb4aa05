"""The interface the load generator needs from a client. Clients implement it; loadgen never imports one."""

from __future__ import annotations

from typing import Protocol

from bench.records import GenRequest, RequestRecord


class StreamingClient(Protocol):
    """Sends one streamed generation request and measures it.

    `send` never raises for a failed request: an HTTP error, a timeout or a broken stream becomes a
    RequestRecord with its status, error kind and text. There are no retries.
    """

    async def __aenter__(self) -> StreamingClient: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def check(self) -> None:
        """Fail fast before load starts: raise TargetError if the server is unreachable or lacks the model."""
        ...

    async def send(self, request: GenRequest, scheduled_s: float) -> RequestRecord:
        """Send `request`; `scheduled_s` is the perf_counter time the schedule intended to send it."""
        ...
