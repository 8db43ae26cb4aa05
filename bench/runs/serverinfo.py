"""Who answers at a URL: llmbench's own servers say so at GET /llmbench/info, vLLM answers GET /version.

What the server is decides which request fields may be sent (vLLM's ignore_eos and min_tokens fix the output
length; OpenAI and a strict mock reject them) and what the run records as its engine. A `--server-kind`
flag overrides the detection; commercial APIs are not probed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.records import ServerKind

INFO_PATH = "/llmbench/info"  # serve.info.INFO_PATH; bench reads it over HTTP, never by import
PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ServerIdentity:
    """What a server is, how that was found out, and what it said about itself."""

    kind: ServerKind
    detected_by: str  # "/llmbench/info", "/version", "--server-kind", "registry" or "none"
    engine: str | None = None
    engine_version: str | None = None
    info: dict[str, Any] = field(default_factory=dict)  # llmbench.serve-info/1, when the server has one

    def to_json(self) -> dict[str, Any]:
        """As stored in a run's provenance (`server`)."""
        return {
            "kind": self.kind,
            "detected_by": self.detected_by,
            "engine": self.engine,
            "engine_version": self.engine_version,
            "info": self.info or None,
        }


def kind_from_info(info: Mapping[str, Any]) -> ServerKind:
    """A llmbench server's kind: vLLM behind llmbench is vLLM; a mock imitates its provider's strictness."""
    backend = info.get("backend")
    if backend == "vllm":
        return "vllm"
    if backend == "mock" and not info.get("accepts_extras", False):
        provider = (info.get("model") or {}).get("stands_in_for")
        return "anthropic" if provider == "anthropic" else "openai"
    return "llmbench"


class _Silent(Exception):
    """The server accepted the connection and did not answer in time."""


def _get_json(client: httpx.Client, url: str) -> Any:
    try:
        resp = client.get(url)
    except httpx.TimeoutException as exc:
        raise _Silent from exc
    except httpx.HTTPError:
        return None
    if resp.status_code != 200:
        return None
    try:
        return resp.json()
    except ValueError:
        return None


def identify(
    base_url: str, headers: Mapping[str, str] | None = None, *, timeout_s: float = PROBE_TIMEOUT_S
) -> ServerIdentity:
    """Probe the server root of `base_url` (…/v1): /llmbench/info first, then vLLM's /version."""
    root = base_url.rstrip("/").removesuffix("/v1")
    try:
        return _identify(root, headers, timeout_s)
    except _Silent:  # a hung server says nothing here either: the endpoint check reports it, without a wait
        return ServerIdentity("generic", "none")


def _identify(root: str, headers: Mapping[str, str] | None, timeout_s: float) -> ServerIdentity:
    with httpx.Client(headers=dict(headers or {}), timeout=timeout_s, trust_env=False) as client:
        info = _get_json(client, root + INFO_PATH)
        if isinstance(info, dict) and info.get("server") == "llmbench":
            engine = info.get("engine") or {}
            return ServerIdentity(
                kind=kind_from_info(info),
                detected_by=INFO_PATH,
                engine=engine.get("name"),
                engine_version=engine.get("version"),
                info=info,
            )
        version = _get_json(client, root + "/version")
        if isinstance(version, dict) and version.get("version") is not None:
            return ServerIdentity("vllm", "/version", engine="vllm", engine_version=str(version["version"]))
    return ServerIdentity("generic", "none")
