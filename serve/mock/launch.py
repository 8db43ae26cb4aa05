"""Serve a mock as its spec says: in this process, or as `spec.workers` processes on one port."""

from __future__ import annotations

from collections.abc import Callable

from serve.mock.server import serve_one
from serve.mock.workers import serve_workers
from serve.specs import MockSpec


def serve_mock(spec: MockSpec, on_ready: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM; `on_ready(url)` runs once bound (once every worker process listens)."""
    if spec.workers > 1:
        serve_workers(spec, on_ready)
    else:
        serve_one(spec, on_ready)
