"""Resolve `--target NAME|URL` to an endpoint: URL, API protocol, model id, key, tokenizer, headers.

A registry `api` entry brings its base URL, protocol, key variable (read here from the environment) and
headers; a `local` entry points at an already running `llmbench serve NAME` (default
http://127.0.0.1:8000/v1) with the tokenizer of the pulled model folder; a `mock` entry is started as its
own server process (`python -m serve`, bench.serving.managed) for the duration of the run (`serving`).
Anything that starts with http:// or https:// is a bare URL. `identify_target` then asks the server what it is
(bench.runs.serverinfo), which decides whether vLLM's extras (ignore_eos) may be sent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import httpx

from bench.clients.base import KEY_HOW, NOT_LLM_FIX, content_type, is_json, no_answer
from bench.clients.base import normalize_base_url as base_url
from bench.errors import MissingKeyError, NotAnLlmServerError, TargetError, UsageError
from bench.records import ApiKind, ServerKind
from bench.registry import ApiEndpoint, LocalModel, MockEndpoint, Registry
from bench.runs.serverinfo import ServerIdentity, identify
from bench.serving.plan import mock_spec
from bench.settings import Settings
from serve.specs import MockSpec

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
    mock: MockSpec | None = field(default=None, repr=False)  # a mock entry's server, started per run
    identity: ServerIdentity | None = None  # what the server said it is (set by identify_target)

    @property
    def exposes_metrics(self) -> bool:
        """Whether a Prometheus /metrics page is worth asking for (commercial APIs have none; ours do)."""
        if self.kind == "mock" or (self.identity is not None and self.identity.info):
            return True
        return self.kind != "api" and self.server_kind not in ("openai", "anthropic")

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
            "server_kind_from": None if self.identity is None else self.identity.detected_by,
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
    api_key_env: str | None = None,
) -> Target:
    """Resolve a registry name or a URL; flags override what the entry says. Reads API keys from `env`:
    an api entry's `api_key_env`, or `api_key_env` (--api-key-env) for a URL or a local entry's server."""
    env = os.environ if env is None else env
    extra = dict(headers or {})
    if is_url(name):
        if url is not None:
            raise UsageError("give the URL once: as --target or as --url", flag="--url")
        key = read_key(api_key_env, name, env)
        chosen: ApiKind = api or "openai-chat"
        return Target(
            name=name,
            kind="url",
            url=base_url(name),
            api=chosen,
            model=model or discover_model(base_url(name), {**extra, **key_headers(chosen, key)}),
            api_key=key,
            api_key_env=api_key_env,
            tokenizer=tokenizer,
            headers=extra,
        )
    if ":" in name:  # NAME:VARIANT names a local variant entry
        name, _ = registry.local(name)
    kind, entry = registry.get(name)
    if isinstance(entry, ApiEndpoint):
        if api_key_env is not None:
            raise UsageError(_API_ENTRY_KEY.format(name=name, var=entry.api_key_env), flag="--api-key-env")
        key_env = entry.api_key_env
        key = read_key(key_env, name, env)
        default_api: ApiKind = "anthropic" if entry.provider == "anthropic" else "openai-chat"
        return Target(
            name=name,
            kind="api",
            url=base_url(url or entry.base_url),
            api=api or default_api,
            model=model or entry.model,
            server_kind="generic" if entry.provider == "openai-compatible" else entry.provider,
            api_key=key,
            api_key_env=key_env,
            tokenizer=tokenizer or _tokenizer_path(entry.tokenizer, registry, settings),
            headers={**entry.extra_headers, **extra},
        )
    if isinstance(entry, MockEndpoint):
        if url is not None:
            raise UsageError(
                f"{name} is a mock endpoint: llmbench starts it as its own server process for the run, "
                "so --url does not apply",
                flag="--url",
            )
        if api_key_env is not None:
            raise UsageError(
                f"{name} is a mock endpoint that llmbench starts without a key; --api-key-env does not apply",
                flag="--api-key-env",
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
            mock=mock_spec(registry, settings, name, entry),
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
            api_key=read_key(api_key_env, name, env),
            api_key_env=api_key_env,
            tokenizer=tokenizer or (str(folder) if folder.is_dir() else entry.tokenizer or entry.repo),
            headers=extra,
        )
    raise UsageError(
        f"{name} is a {kind} entry, not an endpoint; pass a model, API or mock name", flag="--target"
    )


_API_ENTRY_KEY = (
    "{name} is an api entry: models.yaml names its key variable (api_key_env: {var}); --api-key-env "
    "applies to URL targets and to local entries served with a key"
)


def key_headers_for(
    name: str,
    registry: Registry,
    *,
    api: ApiKind | None,
    api_key_env: str,
    env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The header that sends the key held in `api_key_env` to a URL or local target (as --header would).

    For commands whose spec carries headers but no key variable; the header's value is never stored
    (runs keep header names only) and the clients redact it from error text.
    """
    env = os.environ if env is None else env
    if not is_url(name):
        kind, entry = registry.get(registry.local(name)[0] if ":" in name else name)
        if isinstance(entry, ApiEndpoint):
            raise UsageError(_API_ENTRY_KEY.format(name=name, var=entry.api_key_env), flag="--api-key-env")
        if not isinstance(entry, LocalModel):
            raise UsageError(
                f"{name} is a {kind} entry that llmbench serves without a key; --api-key-env does not apply",
                flag="--api-key-env",
            )
    return key_headers(api or "openai-chat", read_key(api_key_env, name, env))


def read_key(env_var: str | None, target: str, env: Mapping[str, str]) -> str | None:
    """The key held in `env_var` (None without one); MissingKeyError when the variable is unset or empty."""
    if env_var is None:
        return None
    key = env.get(env_var)
    if not key:
        raise MissingKeyError(env_var, target)
    return key


def key_headers(api: ApiKind, key: str | None) -> dict[str, str]:
    """The header that carries `key` in the `api` protocol (what the streaming client sends)."""
    if not key:
        return {}
    return {"x-api-key": key} if api == "anthropic" else {"Authorization": f"Bearer {key}"}


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
    """The only model a server lists at GET /models; UsageError asks for --model when it lists several.

    TargetError when nothing answers, when no answer comes within `timeout_s`, when the server wants a key,
    and when the answer is not an OpenAI-style model list (a web page, say): the URL is not an LLM server.
    """
    where = url + "/models"
    try:
        resp = httpx.get(where, headers=dict(headers), timeout=timeout_s, trust_env=False)
    except httpx.TimeoutException as exc:
        raise TargetError(no_answer(f"GET {where}", timeout_s, flag=None), url=url) from exc
    except httpx.HTTPError as exc:
        raise TargetError(
            f"cannot reach {where} ({type(exc).__name__}: {exc}); start the server or fix the URL",
            url=url,
        ) from exc
    if resp.status_code in (401, 403):
        raise TargetError(
            f"GET {where} answered HTTP {resp.status_code}: the server wants an API key; {KEY_HOW} "
            "(sent as `Authorization: Bearer <key>`)",
            url=url,
        )
    try:
        listed = resp.json()
    except ValueError:
        listed = None
    data = listed.get("data") if isinstance(listed, dict) else None
    if not isinstance(data, list):
        if not is_json(resp.headers.get("content-type", "")):
            raise NotAnLlmServerError(
                f"{url} does not look like an OpenAI-compatible server (GET /v1/models answered "
                f"{resp.status_code} {content_type(resp.headers.get('content-type'))})",
                url=url,
                fix=NOT_LLM_FIX,
            )
        raise UsageError(
            f"name the model to measure (GET {where} answered {resp.status_code} without a model list)",
            flag="--model",
        )
    ids = [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]
    if len(ids) == 1:
        return ids[0]
    shown = f"it serves {', '.join(ids)}" if ids else f"GET {where} lists no model"
    raise UsageError(f"name the model to measure ({shown})", flag="--model")


def identify_target(target: Target, override: ServerKind | None = None) -> Target:
    """The target with its server kind found out: `override` (--server-kind), the registry for commercial
    APIs, else the server's own answer (/llmbench/info, vLLM's /version); `generic` when it says nothing.
    """
    if override is not None:
        return replace(target, server_kind=override, identity=ServerIdentity(override, "--server-kind"))
    if target.kind == "api":
        identity = ServerIdentity(target.server_kind, "registry", engine=target.server_kind)
        return replace(target, identity=identity)
    identity = identify(target.url, {**target.headers, **key_headers(target.api, target.api_key)})
    return replace(target, server_kind=identity.kind, identity=identity)


@contextmanager
def serving(target: Target, settings: Settings) -> Iterator[Target]:
    """Yield the target ready to use: a mock entry is started as its own server process, then stopped."""
    if target.mock is None:
        yield target
        return
    from bench.serving.managed import managed_mock

    with managed_mock(settings, target.name, target.mock) as server:
        yield replace(target, url=base_url(server.url))
