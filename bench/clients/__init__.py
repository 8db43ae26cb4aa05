"""Streaming clients, one per API protocol, in a registry keyed by api name.

    key = os.environ[entry.api_key_env]
    config = ClientConfig(base_url, model, api_key=key, api_key_env=entry.api_key_env, server_kind="vllm")
    async with make_client("openai-chat", config) as client:
        await client.check()                               # TargetError before any load
        record = await client.send(request, scheduled_s)   # never raises for a failed request

Every client implements bench.loadgen.protocol.StreamingClient.
"""

from __future__ import annotations

from dataclasses import replace

from bench.clients.anthropic import AnthropicClient
from bench.clients.base import BaseClient, ClientConfig, normalize_base_url
from bench.clients.openai import OpenAIChatClient, OpenAICompletionsClient
from bench.errors import UsageError
from bench.tokenizer import load_tokenizer

__all__ = [
    "CLIENTS",
    "AnthropicClient",
    "BaseClient",
    "ClientConfig",
    "OpenAIChatClient",
    "OpenAICompletionsClient",
    "make_client",
    "normalize_base_url",
    "worker_client",
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


def worker_client(api: str, config: ClientConfig, tokenizer: str | None = None) -> BaseClient:
    """make_client in a load-generator worker process (bench.loadgen.workers): `config` comes without its
    tokenizer (a loaded tokenizer does not travel between processes), which is loaded here from
    `tokenizer` (a folder, tokenizer.json or cached hub repo; None: none). Module level: it pickles."""
    if tokenizer is not None:
        loaded = load_tokenizer(tokenizer)
        config = replace(config, tokenizer=None if loaded.approximate else loaded)
    return make_client(api, config)
