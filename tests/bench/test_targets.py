"""Resolving --target: URLs, registry api/local/mock entries, keys from the environment, serving a mock."""

from __future__ import annotations

import os

import httpx
import psutil
import pytest
from timing_server import Timing, TimingServer

from bench.clients import normalize_base_url as base_url
from bench.errors import MissingKeyError, TargetError, UsageError
from bench.registry import Registry
from bench.runs.targets import identify_target, parse_headers, resolve_target, serving
from bench.settings import Settings

OVERLAY = """\
schema: llmbench.models/1
api:
  fake-openai:
    provider: openai
    base_url: https://api.example.com/v1
    model: gpt-x
    api_key_env: FAKE_OPENAI_KEY
    extra_headers: {X-Team: bench}
    prices: {input_per_1m: 1, output_per_1m: 2, as_of: 2026-01-01, source: test}
  fake-claude:
    provider: anthropic
    base_url: https://api.example.com
    model: claude-x
    api_key_env: FAKE_ANTHROPIC_KEY
    prices: {input_per_1m: 1, output_per_1m: 2, as_of: 2026-01-01, source: test}
  open-compat:
    provider: openai-compatible
    base_url: http://127.0.0.1:9/v1
    model: m
    prices: {input_per_1m: 0, output_per_1m: 0, as_of: 2026-01-01, source: test}
hardware:
  box:
    gpu: H100
    count: 1
    gpu_memory_gib: 80
    usd_per_hour: 2
    as_of: 2026-01-01
    source: test
mock:
  quick-mock:
    provider: openai
    model: quick
    latency: {ttft_ms: 1, itl_ms: 0}
"""


@pytest.fixture
def models_overlay() -> str:
    return OVERLAY


def test_base_url_forms() -> None:
    assert base_url("http://h:1") == "http://h:1/v1"
    assert base_url("http://h:1/v1/") == "http://h:1/v1"
    assert base_url("http://h:1/v1/chat/completions") == "http://h:1/v1"
    assert base_url("https://x.y/api/v1/messages") == "https://x.y/api/v1"


def test_parse_headers() -> None:
    assert parse_headers(["X-A: 1", "X-B:two:three"]) == {"X-A": "1", "X-B": "two:three"}
    with pytest.raises(UsageError) as err:
        parse_headers(["nocolon"])
    assert err.value.flag == "--header"


def test_api_entry_reads_its_key_and_never_shows_it(registry: Registry, settings: Settings) -> None:
    t = resolve_target("fake-openai", registry, settings, env={"FAKE_OPENAI_KEY": "sk-very-secret"})
    assert (t.url, t.api, t.model, t.server_kind) == (
        "https://api.example.com/v1",
        "openai-chat",
        "gpt-x",
        "openai",
    )
    assert t.api_key == "sk-very-secret" and t.headers == {"X-Team": "bench"}
    assert "sk-very-secret" not in repr(t) and "sk-very-secret" not in str(t.to_json())
    assert t.to_json()["api_key_env"] == "FAKE_OPENAI_KEY"
    assert not t.exposes_metrics
    claude = resolve_target("fake-claude", registry, settings, env={"FAKE_ANTHROPIC_KEY": "k"})
    assert claude.api == "anthropic" and claude.url == "https://api.example.com/v1"


def test_missing_key_names_the_variable(registry: Registry, settings: Settings) -> None:
    with pytest.raises(MissingKeyError) as err:
        resolve_target("fake-openai", registry, settings, env={})
    assert err.value.env_var == "FAKE_OPENAI_KEY"


def test_flags_override_the_entry(registry: Registry, settings: Settings) -> None:
    t = resolve_target(
        "open-compat", registry, settings, model="other", api="openai-completions", headers={"X-B": "2"}
    )
    assert (t.model, t.api, t.server_kind, t.api_key) == ("other", "openai-completions", "generic", None)
    assert t.headers == {"X-B": "2"}


def test_local_entry_points_at_a_running_server(registry: Registry, settings: Settings) -> None:
    t = resolve_target("tiny-random", registry, settings)
    assert (t.kind, t.url, t.model, t.server_kind) == (
        "local",
        "http://127.0.0.1:8000/v1",
        "tiny-random",
        "llmbench",
    )
    folder = settings.models_dir / "tiny-random"
    folder.mkdir(parents=True)
    t = resolve_target("tiny-random", registry, settings, url="http://127.0.0.1:9999")
    assert t.url == "http://127.0.0.1:9999/v1" and t.tokenizer == str(folder)


def test_non_endpoint_and_unknown_names(registry: Registry, settings: Settings) -> None:
    with pytest.raises(UsageError) as err:
        resolve_target("box", registry, settings)
    assert err.value.flag == "--target"
    with pytest.raises(Exception, match="unknown registry entry"):
        resolve_target("no-such-thing", registry, settings)


def test_url_target_discovers_the_only_model(registry: Registry, settings: Settings) -> None:
    with TimingServer(Timing(model="served-one")) as server:
        t = resolve_target(server.url + "/chat/completions", registry, settings)
        assert (t.kind, t.url, t.model, t.api) == ("url", server.url, "served-one", "openai-chat")
        assert resolve_target(server.url, registry, settings, model="x").model == "x"


def test_url_target_unreachable(registry: Registry, settings: Settings) -> None:
    with pytest.raises(TargetError, match="cannot reach"):
        resolve_target("http://127.0.0.1:9/v1", registry, settings)


def test_mock_entry_is_served_for_the_run_in_its_own_process(registry: Registry, settings: Settings) -> None:
    t = resolve_target("quick-mock", registry, settings)
    assert t.kind == "mock" and t.url == "" and t.server_kind == "openai"
    with serving(t, settings) as live:
        assert live.url.startswith("http://127.0.0.1:") and live.url.endswith("/v1")
        models = httpx.get(live.url + "/models", timeout=5).json()
        assert [m["id"] for m in models["data"]] == ["quick"]
        # The server is not a thread of this process: its listening socket belongs to another pid.
        port = int(live.url.rsplit(":", 1)[1].split("/")[0])
        owners = {c.pid for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port}
        assert owners and os.getpid() not in owners
        identified = identify_target(live)
        assert identified.identity is not None and identified.identity.detected_by == "/llmbench/info"
        assert identified.server_kind == "openai"  # a strict mock takes no vLLM extras
    with pytest.raises(httpx.ConnectError):
        httpx.get(live.url + "/models", timeout=2)
