"""Resolve `--target NAME|URL` to an endpoint: URL, API protocol, model id, key, tokenizer, headers.

A registry `api` entry brings its base URL, protocol, key variable (read here from the environment) and
headers; a `local` entry points at an already running `llmbench serve NAME` (default
http://127.0.0.1:8000/v1) with the tokenizer of the pulled model folder; a `mock` entry is served in-process
for the duration of the run (`serving`). Anything that starts with http:// or https:// is a bare URL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import httpx

from bench.clients.base import normalize_base_url as base_url
from bench.errors import MissingKeyError, TargetError, UsageError
from bench.records import ApiKind, ServerKind
from bench.registry import ApiEndpoint, LocalModel, MockEndpoint, Registry
from bench.settings import Settings

TargetKind = Literal["url", "local", "api", "mock"]
DEFAULT_LOCAL_URL = "http://127.0.0.1:8000/v1"


@dataclass(frozen=True)
class Target:
    """One endpoint to measure. `api_key` is the secret itself: never in repr, JSON, logs or the store."""

    name: str  # registry name, or the URL for a bare URL target
    kind: TargetKind
    url: str  # base URL ending in /v1 (empty for a mock entry until it is served)
    api: ApiKind
    model: str
    server_kind: ServerKind = "generic"
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str | None = None
    tokenizer: str | None = None  # folder, tokenizer.json or hub repo used to size prompts
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    mock: MockEndpoint | None = field(default=None, repr=False)

    @property
    def exposes_metrics(self) -> bool:
        """Whether a Prometheus /metrics page is worth asking for (commercial APIs have none; mocks do)."""
        return self.kind == "mock" or self.server_kind not in ("openai", "anthropic")

    def to_json(self) -> dict[str, Any]:
        """The target as stored and written to --out: no key, header names only (values may be secrets)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "url": self.url,
            "api": self.api,
            "model": self.model,
            "server_kind": self.server_kind,
            "api_key_env": self.api_key_env,
            "tokenizer": self.tokenizer,
            "headers": sorted(self.headers),
        }


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def parse_headers(values: list[str] | tuple[str, ...], *, flag: str = "--header") -> dict[str, str]:
    """Parse repeated `K:V` header flags."""
    out: dict[str, str] = {}
    for raw in values:
        key, sep, value = raw.partition(":")
        if not sep or not key.strip():
            raise UsageError(f"{raw!r} is not NAME:VALUE (e.g. X-Team:bench)", flag=flag)
        out[key.strip()] = value.strip()
    return out


def resolve_target(
    name: str,
    registry: Registry,
    settings: Settings,
    *,
    url: str | None = None,
    model: str | None = None,
    api: ApiKind | None = None,
    tokenizer: str | None = None,
    headers: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Target:
    """Resolve a registry name or a URL; flags override what the entry says. Reads API keys from `env`."""
    env = os.environ if env is None else env
    extra = dict(headers or {})
    if is_url(name):
        if url is not None:
            raise UsageError("give the URL once: as --target or as --url", flag="--url")
        return Target(
            name=name,
            kind="url",
            url=base_url(name),
            api=api or "openai-chat",
            model=model or discover_model(base_url(name), extra),
            tokenizer=tokenizer,
            headers=extra,
        )
    kind, entry = registry.get(name)
    if isinstance(entry, ApiEndpoint):
        key = None
        if entry.api_key_env is not None:
            key = env.get(entry.api_key_env)
            if not key:
                raise MissingKeyError(entry.api_key_env, name)
        default_api: ApiKind = "anthropic" if entry.provider == "anthropic" else "openai-chat"
        return Target(
            name=name,
            kind="api",
            url=base_url(url or entry.base_url),
            api=api or default_api,
            model=model or entry.model,
            server_kind="generic" if entry.provider == "openai-compatible" else entry.provider,
            api_key=key,
            api_key_env=entry.api_key_env,
            tokenizer=tokenizer or _tokenizer_path(entry.tokenizer, registry, settings),
            headers={**entry.extra_headers, **extra},
        )
    if isinstance(entry, MockEndpoint):
        if url is not None:
            raise UsageError(
                f"{name} is a mock endpoint served in-process; --url does not apply", flag="--url"
            )
        mock_api: ApiKind = "anthropic" if entry.provider == "anthropic" else "openai-chat"
        return Target(
            name=name,
            kind="mock",
            url="",
            api=api or mock_api,
            model=model or entry.model,
            server_kind=entry.provider,
            tokenizer=tokenizer or _tokenizer_path(entry.tokenizer, registry, settings),
            headers=extra,
            mock=entry,
        )
    if isinstance(entry, LocalModel):
        folder = settings.models_dir / name
        return Target(
            name=name,
            kind="local",
            url=base_url(url or DEFAULT_LOCAL_URL),
            api=api or "openai-chat",
            model=model or name,
            server_kind="llmbench",
            tokenizer=tokenizer or (str(folder) if folder.is_dir() else entry.tokenizer or entry.repo),
            headers=extra,
        )
    raise UsageError(
        f"{name} is a {kind} entry, not an endpoint; pass a model, API or mock name", flag="--target"
    )


def _tokenizer_path(value: str | None, registry: Registry, settings: Settings) -> str | None:
    """A tokenizer named by registry entry (its pulled folder) or given as a path or hub repo."""
    if value is None:
        return None
    if value in registry.names("local"):
        folder = settings.models_dir / value
        if folder.is_dir():
            return str(folder)
        _, entry = registry.local(value)
        return entry.tokenizer or entry.repo or str(folder)
    return value


def discover_model(url: str, headers: Mapping[str, str], timeout_s: float = 10.0) -> str:
    """The only model a server lists at GET /models; UsageError asks for --model when it lists several."""
    try:
        resp = httpx.get(url + "/models", headers=dict(headers), timeout=timeout_s, trust_env=False)
    except httpx.HTTPError as exc:
        raise TargetError(
            f"cannot reach {url}/models ({type(exc).__name__}: {exc}); start the server or fix the URL",
            url=url,
        ) from exc
    ids: list[str] = []
    if resp.status_code == 200:
        try:
            ids = [str(m["id"]) for m in resp.json().get("data", [])]
        except (ValueError, KeyError, TypeError, AttributeError):
            ids = []
    if len(ids) == 1:
        return ids[0]
    listed = f"it serves {', '.join(ids)}" if ids else f"GET {url}/models gave no model list"
    raise UsageError(f"name the model to measure ({listed})", flag="--model")


@contextmanager
def serving(target: Target) -> Iterator[Target]:
    """Yield the target ready to use: a mock entry is started in-process and stopped on exit."""
    if target.mock is None:
        yield target
        return
    from bench.serving.answers import resolve_answers
    from serve.mock.server import running_mock
    from serve.specs import MockSpec

    entry = target.mock
    tokenizer = Path(target.tokenizer) if target.tokenizer and Path(target.tokenizer).exists() else None
    spec = MockSpec(
        model=entry.model,
        port=entry.port,
        latency=entry.latency,
        answers=resolve_answers(entry.answers),
        tokenizer=tokenizer,
    )
    with running_mock(spec) as url:
        yield replace(target, url=base_url(url))
