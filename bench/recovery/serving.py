"""The ServeFn the CLI uses: `llmbench serve NAME --backend B` in its own process on a free port.

Each side runs in its own process group, as a user would serve it (bench.serving.managed, the one way a
registry entry is served for a run), so the load generator in this process measures it over HTTP and
never shares an interpreter with the engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from bench.recovery.driver import Served
from bench.serving.managed import managed_server
from bench.settings import Settings


@contextmanager
def served(settings: Settings, name: str, backend: str) -> Iterator[Served]:
    """Serve one side; yield its root URL once it is ready; stop its whole group on exit."""
    with managed_server(settings, name, ["--backend", backend]) as server:
        yield Served(url=server.url.rstrip("/").removesuffix("/v1"), backend=backend)


class CliServers:
    """A ServeFn over `llmbench serve` subprocesses, bound to the settings (home, overlays)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, name: str, backend: str) -> AbstractContextManager[Served]:
        return served(self.settings, name, backend)
