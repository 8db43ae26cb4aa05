"""Streaming clients, one per API protocol, in a registry keyed by api name.

    key = os.environ[entry.api_key_env]
    config = ClientConfig(base_url, model, api_key=key, api_key_env=entry.api_key_env, server_kind="vllm")
    async with make_client("openai-chat", config) as client:
        await client.check()                               # TargetError before any load
        record = await client.send(request, scheduled_s)   # never raises for a failed request

Every client implements bench.loadgen.protocol.StreamingClient.
"""

from __future__ import annotations

from bench.clients.anthropic import AnthropicClient
from bench.clients.base import BaseClient, ClientConfig, normalize_base_url
from bench.clients.openai import OpenAIChatClient, OpenAICompletionsClient
from bench.errors import UsageError

__all__ = [
    "CLIENTS",
    "AnthropicClient",
    "BaseClient",
    "ClientConfig",
    "OpenAIChatClient",
    "OpenAICompletionsClient",
    "make_client",
    "normalize_base_url",
]

CLIENTS: dict[str, type[BaseClient]] = {
    "openai-chat": OpenAIChatClient,
    "openai-completions": OpenAICompletionsClient,
    "anthropic": AnthropicClient,
}


def make_client(api: str, config: ClientConfig) -> BaseClient:
    """The client for `api` (openai-chat, openai-completions or anthropic)."""
    try:
        cls = CLIENTS[api]
    except KeyError:
        raise UsageError(f"--api {api!r}: choose one of {', '.join(CLIENTS)}", flag="--api") from None
    return cls(config)
