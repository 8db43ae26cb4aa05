"""The ServeFn the CLI uses: each side served through the typed serve plan in its own process group.

Each side runs as `llmbench serve NAME --backend B` would serve it (bench.serving.managed: the plan, then
the serve library in its own process group, on a free port), so the load generator in this process
measures it over HTTP and never shares an interpreter with the engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from bench.recovery.driver import Served
from bench.registry import Registry
from bench.serving.managed import managed_server
from bench.serving.plan import BackendChoice, ServeOptions
from bench.settings import Settings


@contextmanager
def served(registry: Registry, settings: Settings, name: str, backend: BackendChoice) -> Iterator[Served]:
    """Serve one side; yield its root URL once it is ready; stop its whole group on exit."""
    with managed_server(registry, settings, name, ServeOptions(backend=backend)) as server:
        yield Served(url=server.url.rstrip("/").removesuffix("/v1"), backend=backend)


class ManagedServers:
    """A ServeFn over servers in their own process groups, bound to the registry and the settings."""

    def __init__(self, registry: Registry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings

    def __call__(self, name: str, backend: str) -> AbstractContextManager[Served]:
        return served(self.registry, self.settings, name, backend)  # type: ignore[arg-type]
