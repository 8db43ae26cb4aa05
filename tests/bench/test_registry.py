"""The models.yaml registry: shipped entries, overlays, and errors that name the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench.errors import ConfigError, UnknownNameError
from bench.registry import LocalModel, load_registry, shipped_models_file, split_name, validate_file

SHA = "0123456789abcdef0123456789abcdef01234567"


def write(tmp_path: Path, data: dict[str, object], name: str = "models.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"schema": "llmbench.models/1", **data}))
    return path


def local_entry(**over: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "repo": "org/model",
        "license": "apache-2.0",
        "context": {"native": 8192, "served": 4096},
    }
    entry.update(over)
    return entry


def test_shipped_file_has_every_kind_and_the_names_docs_rely_on() -> None:
    registry = load_registry()
    assert registry.sources == [shipped_models_file()]
    for kind in ("local", "api", "hardware", "mock"):
        assert registry.names(kind), f"the shipped models.yaml has no {kind} entries"
    for name in ("tiny-random", "tiny-skills", "mock-openai", "mock-anthropic"):
        registry.get(name)
    kind, entry = registry.get("tiny-skills")
    assert kind == "local" and isinstance(entry, LocalModel) and entry.builtin == "tiny-skills"


def test_shipped_local_models_span_three_families_and_variants_point_back() -> None:
    registry = load_registry()
    real = [e for e in registry.data.local.values() if e.repo and e.derived_from is None]
    assert len({e.family for e in real}) >= 3
    variants = [(n, e) for n, e in registry.data.local.items() if e.derived_from]
    assert variants, "ship at least one quantized variant"
    for name, entry in variants:
        assert entry.derived_from in registry.data.local, name
        resolved, same = registry.local(f"{entry.derived_from}:{entry.variant}")
        assert (resolved, same) == (name, entry)


def test_unknown_key_names_file_key_and_fix(tmp_path: Path) -> None:
    path = write(tmp_path, {"local": {"m": local_entry(revison=SHA)}})
    with pytest.raises(ConfigError) as info:
        validate_file(path)
    text = str(info.value)
    assert str(path) in text
    assert "local.m.revison" in text
    assert "did you mean 'revision'" in text


def test_wrong_type_is_reported_with_the_value(tmp_path: Path) -> None:
    path = write(tmp_path, {"local": {"m": local_entry(context={"native": "lots", "served": 1})}})
    with pytest.raises(ConfigError) as info:
        validate_file(path)
    assert "local.m.context.native" in str(info.value)
    assert "'lots'" in str(info.value)


def test_short_revision_is_rejected_with_the_fix(tmp_path: Path) -> None:
    path = write(tmp_path, {"local": {"m": local_entry(revision="0123abc")}})
    with pytest.raises(ConfigError) as info:
        validate_file(path)
    text = str(info.value)
    assert "local.m.revision" in text and "40-character" in text and "unpinned" in text


def test_unpinned_entry_is_valid_and_listed_as_unpinned(tmp_path: Path) -> None:
    registry = validate_file(write(tmp_path, {"local": {"m": local_entry()}}))
    assert registry.data.local["m"].pinned is False
    pinned = validate_file(write(tmp_path, {"local": {"m": local_entry(revision=SHA)}}, "b.yaml"))
    assert pinned.data.local["m"].pinned is True


def test_overlay_merges_key_by_key_and_can_remove_entries(tmp_path: Path) -> None:
    overlay = write(
        tmp_path,
        {
            "mock": {"mock-openai": {"latency": {"ttft_ms": 1.0}}, "mock-anthropic": None},
            "local": {"mine": local_entry()},
        },
    )
    registry = load_registry([overlay])
    _, mock = registry.get("mock-openai")
    assert mock.latency.ttft_ms == 1.0  # type: ignore[union-attr]
    assert mock.model == "mock-gpt"  # type: ignore[union-attr]  # kept from the shipped file
    assert "mock-anthropic" not in registry.names()
    assert "mine" in registry.names("local")


def test_error_in_an_overlay_names_the_overlay(tmp_path: Path) -> None:
    overlay = write(
        tmp_path, {"api": {"x": {"provider": "openai", "base_url": "https://a/v1", "model": "m"}}}
    )
    with pytest.raises(ConfigError) as info:
        load_registry([overlay])
    assert str(overlay) in str(info.value)
    assert "api.x.prices" in str(info.value)


def test_api_key_env_must_be_a_variable_name_not_a_key(tmp_path: Path) -> None:
    entry = {
        "provider": "openai",
        "base_url": "https://api.example.com/v1",
        "model": "m",
        "api_key_env": "sk-live-abc123",
        "prices": {"input_per_1m": 1, "output_per_1m": 2, "as_of": "2026-01-01", "source": "x"},
    }
    with pytest.raises(ConfigError) as info:
        validate_file(write(tmp_path, {"api": {"x": entry}}))
    assert "NAME of an environment variable" in str(info.value)


def test_duplicate_name_across_kinds_is_rejected(tmp_path: Path) -> None:
    hw = {
        "gpu": "H100",
        "count": 1,
        "gpu_memory_gib": 80,
        "usd_per_hour": 2,
        "as_of": "2026-01-01",
        "source": "x",
    }
    path = write(tmp_path, {"local": {"same": local_entry()}, "hardware": {"same": hw}})
    with pytest.raises(ConfigError) as info:
        validate_file(path)
    assert "hardware.same" in str(info.value) and "unique" in info.value.fix


def test_variant_must_point_at_an_existing_base(tmp_path: Path) -> None:
    variant = local_entry(derived_from="nope", variant="fp8", quantization={"method": "fp8"})
    with pytest.raises(ConfigError) as info:
        validate_file(write(tmp_path, {"local": {"v": variant}}))
    assert "local.v.derived_from" in str(info.value)


def test_unknown_names_list_close_matches() -> None:
    registry = load_registry()
    with pytest.raises(UnknownNameError) as info:
        registry.get("tiny-randm")
    assert "tiny-random" in info.value.matches
    with pytest.raises(UnknownNameError):
        registry.local("tiny-random:fp8")


def test_one_resolver_reads_name_and_variant() -> None:
    registry = load_registry()
    by_variant = registry.resolve("llama-3.1-8b-instruct:fp8")
    by_entry = registry.resolve("llama-3.1-8b-instruct-fp8")
    assert by_variant == by_entry
    assert (by_variant.name, by_variant.kind, by_variant.base, by_variant.variant) == (
        "llama-3.1-8b-instruct-fp8", "local", "llama-3.1-8b-instruct", "fp8",
    )  # fmt: skip
    assert by_variant.label == "llama-3.1-8b-instruct:fp8"
    base = registry.resolve("llama-3.1-8b-instruct")
    assert (base.base, base.variant, base.label) == ("llama-3.1-8b-instruct", None, "llama-3.1-8b-instruct")
    api = registry.resolve("gpt-4o-mini")
    assert (api.kind, api.variant, api.label) == ("api", None, "gpt-4o-mini")
    with pytest.raises(UnknownNameError) as info:
        registry.resolve("llama-3.1-8b-instruct:fp9")
    assert "llama-3.1-8b-instruct:fp8" in info.value.matches
    with pytest.raises(UnknownNameError, match="local model"):
        registry.local("gpt-4o-mini")
    assert split_name("m:v") == ("m", "v") and split_name("m") == ("m", None)
    assert split_name("http://127.0.0.1:8000/v1") == ("http://127.0.0.1:8000/v1", None)


def test_invalid_yaml_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("schema: llmbench.models/1\nlocal:\n  m: {repo: [unclosed\n")
    with pytest.raises(ConfigError, match="line"):
        validate_file(path)
