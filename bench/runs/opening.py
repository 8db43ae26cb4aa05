"""The steps every run opens with, written once: serve the resolved target if it needs a server of its own,
identify it, check it answers, and collect the run's provenance (client machine + server side)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from bench.clients import ClientConfig, make_client
from bench.records import DEFAULT_TIMEOUT_S, ServerKind
from bench.registry import Registry
from bench.runs.provenance import collect_provenance, target_provenance
from bench.runs.targets import Target, identify_target, serving
from bench.settings import Settings


def check_hardware(registry: Registry, hardware: str | None) -> None:
    """An unknown hardware profile fails here, before anything starts."""
    if hardware is not None:
        registry.hardware(hardware)


@contextmanager
def opened(target: Target, settings: Settings, server_kind: ServerKind | None = None) -> Iterator[Target]:
    """The target served (a mock entry gets its own server process until the block ends) and identified
    (`server_kind`: the --server-kind override)."""
    with serving(target, settings) as served:
        yield identify_target(served, server_kind)


def client_config(target: Target, timeout_s: float = DEFAULT_TIMEOUT_S) -> ClientConfig:
    """The streaming client's configuration for a served target (`timeout_s`: per request, s)."""
    return ClientConfig(
        base_url=target.url,
        model=target.model,
        api_key=target.api_key,
        api_key_env=target.api_key_env,
        server_kind=target.server_kind,
        headers=dict(target.headers),
        timeout_s=timeout_s,
    )


async def check_target(target: Target, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    """TargetError before the run starts when the endpoint is unreachable or lacks the model."""
    async with make_client(target.api, client_config(target, timeout_s)) as client:
        await client.check()


def run_provenance(
    target: Target, registry: Registry, *, hardware: str | None, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """What a run ran on: this machine and llmbench (with `extra`), then the server side of `target`."""
    return {
        **collect_provenance(extra=extra),
        **target_provenance(target, registry, hardware=hardware),
    }
