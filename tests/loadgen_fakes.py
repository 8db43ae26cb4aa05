"""Client factories for worker-process tests: module-level, so they pickle into bench.loadgen.worker."""

from __future__ import annotations

from bench.clients import BaseClient, ClientConfig, make_client


def mock_client(url: str, model: str) -> BaseClient:
    """The real OpenAI chat client, as `bench load` builds it, for the mock at `url`."""
    return make_client("openai-chat", ClientConfig(base_url=url, model=model, timeout_s=30, keep_text=False))


def broken_client() -> BaseClient:
    """A factory that fails in the worker, as a missing dependency or a bad config would."""
    raise RuntimeError("no client here")
