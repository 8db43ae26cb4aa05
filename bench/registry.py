"""The models.yaml registry: local models, API endpoints, hardware profiles and mock endpoints.

The shipped file is merged with user overlays (later files win, entry by entry, key by key), then
validated with pydantic models that forbid unknown keys, so a typo is an error naming the file and key.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bench.errors import ConfigError, UnknownNameError
from bench.validation import Problem, config_error, read_text
from serve.specs import AnswerModel, LatencyModel, PromptCacheModel, ReasoningModel

SCHEMA = "llmbench.models/1"
KINDS = ("local", "api", "hardware", "mock")
_SHA = re.compile(r"^[0-9a-f]{40}$")
BUILTIN_GENERATORS = ("tiny-random", "tiny-skills")


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContextLength(_Entry):
    """Context lengths in tokens: what the model supports and what we serve by default."""

    native: int = Field(gt=0)
    served: int = Field(gt=0)

    @model_validator(mode="after")
    def _served_fits(self) -> ContextLength:
        if self.served > self.native:
            raise ValueError(f"served ({self.served}) is longer than native ({self.native})")
        return self


class Quantization(_Entry):
    """How a variant is quantized: prequantized on the hub, or made by `llmbench quantize`."""

    method: Literal["fp8", "w4a16", "w8a8", "awq", "gptq", "bnb-nf4", "bnb-int8"]
    source: Literal["hub", "llmbench"] = "hub"


class LocalModel(_Entry):
    """An open-weight model we can pull and serve."""

    repo: str | None = None
    revision: str | None = Field(None, description="full 40-character commit; unset = unpinned")
    builtin: Literal["tiny-random", "tiny-skills"] | None = None
    family: str | None = None
    params_b: float | None = Field(None, gt=0, description="parameters, billions")
    license: str
    gated: bool = False
    context: ContextLength
    chat_template: str = Field("repo", description="'repo', 'chatml', or a path to a Jinja template")
    generation_config: Literal["vllm", "auto"] = Field(
        "vllm", description="'vllm' ignores the repo's generation_config.json; 'auto' applies it"
    )
    tokenizer: str | None = Field(None, description="tokenizer repo when it differs from the model repo")
    vllm_args: dict[str, str | int | float | bool | list[str | int]] = Field(default_factory=dict)
    derived_from: str | None = None
    variant: str | None = None
    quantization: Quantization | None = None
    notes: str = ""

    @field_validator("revision")
    @classmethod
    def _full_sha(cls, value: str | None) -> str | None:
        if value is not None and not _SHA.match(value):
            raise ValueError(
                f"revision {value!r} is not a full 40-character lowercase hex commit; use the whole "
                "commit sha (a branch, tag or short sha can move), or remove the key to leave it unpinned"
            )
        return value

    @field_validator("vllm_args")
    @classmethod
    def _flag_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if key.startswith("-") or "_" in key:
                raise ValueError(
                    f"vllm_args key {key!r}: use vLLM's own flag name without dashes, e.g. 'max-model-len'"
                )
        return value

    @model_validator(mode="after")
    def _source(self) -> LocalModel:
        if (self.repo is None) == (self.builtin is None):
            raise ValueError("set exactly one of 'repo' (a hub model) or 'builtin' (built offline)")
        if self.builtin and self.revision:
            raise ValueError("a builtin model has no revision: it is built deterministically from its seed")
        if self.derived_from is not None and (self.variant is None or self.quantization is None):
            raise ValueError("an entry with 'derived_from' is a variant: set 'variant' and 'quantization'")
        if self.variant is not None and self.derived_from is None:
            raise ValueError("'variant' needs 'derived_from' naming the base model")
        return self

    @property
    def pinned(self) -> bool:
        return self.builtin is not None or self.revision is not None


class Prices(_Entry):
    """Published API prices in USD per 1M tokens."""

    input_per_1m: float = Field(ge=0)
    output_per_1m: float = Field(ge=0)
    cached_input_per_1m: float | None = Field(None, ge=0, description="cache reads, per 1M tokens")
    cache_write_per_1m: float | None = Field(
        None, ge=0, description="cache writes (Anthropic bills them above base input), per 1M tokens"
    )
    cache_write_1h_per_1m: float | None = Field(
        None, ge=0, description="cache writes with a 1-hour lifetime (Anthropic: 2× input), per 1M tokens"
    )
    as_of: date
    source: str = Field(min_length=1, description="where the prices were read (URL or document)")


class ApiEndpoint(_Entry):
    """A commercial or OpenAI-compatible endpoint. The key is read from `api_key_env`, never stored."""

    provider: Literal["openai", "anthropic", "openai-compatible"]
    base_url: str
    model: str
    api_key_env: str | None = None
    prices: Prices
    context: int | None = Field(None, gt=0)
    tokenizer: str | None = Field(None, description="local tokenizer used to size synthetic prompts")
    extra_headers: dict[str, str] = Field(default_factory=dict)
    notes: str = ""

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"base_url {value!r} must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Z_][A-Z0-9_]*$", value):
            raise ValueError(
                f"api_key_env {value!r} must be the NAME of an environment variable (e.g. OPENAI_API_KEY), "
                "never the key itself"
            )
        return value

    @model_validator(mode="after")
    def _key_required(self) -> ApiEndpoint:
        if self.provider in ("openai", "anthropic") and self.api_key_env is None:
            raise ValueError(f"provider {self.provider!r} needs api_key_env (e.g. OPENAI_API_KEY)")
        return self


class Hardware(_Entry):
    """A priced hardware profile for self-hosting cost: GPUs, or a CPU-only machine (`cpu`, `vcpus`)."""

    gpu: str | None = Field(None, description="GPU model; unset for a CPU-only profile")
    count: int = Field(1, ge=1, description="GPUs in the profile")
    gpu_memory_gib: float | None = Field(None, gt=0, description="memory per GPU, GiB")
    cpu: str | None = Field(None, description="CPU or instance type of a CPU-only profile")
    vcpus: int | None = Field(None, ge=1)
    memory_gib: float | None = Field(None, gt=0, description="host memory, GiB")
    usd_per_hour: float = Field(gt=0, description="price of the whole profile (all GPUs), USD/hour")
    provider: str = ""
    as_of: date
    source: str = Field(min_length=1)
    notes: str = ""

    @model_validator(mode="after")
    def _gpu_or_cpu(self) -> Hardware:
        if self.gpu is None and self.cpu is None:
            raise ValueError("set 'gpu' (with gpu_memory_gib) or, for a CPU-only profile, 'cpu'")
        if self.gpu is not None and self.gpu_memory_gib is None:
            raise ValueError("a GPU profile needs gpu_memory_gib")
        return self

    @property
    def label(self) -> str:
        """One line naming the hardware, e.g. '1x H100 SXM 80GB' or 't3.large (2 vCPU)'."""
        if self.gpu is not None:
            return f"{self.count}x {self.gpu}"
        return f"{self.cpu} ({self.vcpus} vCPU)" if self.vcpus else str(self.cpu)


class MockEndpoint(_Entry):
    """A simulated endpoint served by `llmbench serve NAME --backend mock`."""

    provider: Literal["openai", "anthropic"] = Field(description="which commercial API it stands in for")
    model: str = Field(description="model id it answers to")
    port: int = Field(0, ge=0, le=65535, description="0 picks a free port")
    latency: LatencyModel = LatencyModel()
    answers: AnswerModel = AnswerModel()
    cache: PromptCacheModel = Field(
        PromptCacheModel(), description="prompt caching as the provider does it (on by default)"
    )
    reasoning: ReasoningModel = Field(
        ReasoningModel(), description="reasoning tokens streamed before each answer (off by default)"
    )
    prices: Prices | None = Field(None, description="simulated prices, for cost reports")
    tokenizer: str | None = Field(None, description="registry name or path of a tokenizer to size prompts")
    strict: bool = Field(
        True, description="reject fields the real provider rejects (vLLM extras such as ignore_eos)"
    )
    notes: str = ""


Entry = LocalModel | ApiEndpoint | Hardware | MockEndpoint


class RegistryFile(BaseModel):
    """The whole of a models.yaml file after merging."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_: Annotated[str, Field(alias="schema")] = SCHEMA
    local: dict[str, LocalModel] = Field(default_factory=dict)
    api: dict[str, ApiEndpoint] = Field(default_factory=dict)
    hardware: dict[str, Hardware] = Field(default_factory=dict)
    mock: dict[str, MockEndpoint] = Field(default_factory=dict)

    @field_validator("schema_")
    @classmethod
    def _schema(cls, value: str) -> str:
        if value != SCHEMA:
            raise ValueError(f"schema must be {SCHEMA!r}")
        return value


def split_name(name: str) -> tuple[str, str | None]:
    """NAME[:VARIANT] as (NAME, VARIANT or None), without a registry; a URL is a name of its own
    (`http://127.0.0.1:8000/v1` is not the model "http" in variant "//127…")."""
    if "://" in name:
        return name, None
    base, _, variant = name.partition(":")
    return base, variant or None


def variant_name(base: str, variant: str) -> str:
    """The user-facing name of a variant, BASE:VARIANT (what `split_name` reads)."""
    return f"{base}:{variant}"


@dataclass(frozen=True)
class Resolved:
    """A registry name resolved (`Registry.resolve`): the entry, and the base model and variant it is."""

    name: str  # the entry's own registry name, e.g. tiny-skills-nf4 for tiny-skills:nf4
    kind: str  # local, api, hardware or mock
    entry: Entry
    base: str  # the base model a variant derives from; the entry's own name otherwise
    variant: str | None  # the variant's name (nf4), None for anything that is not a variant

    @property
    def label(self) -> str:
        """The name users give: BASE:VARIANT for a variant, the entry's name otherwise."""
        return self.name if self.variant is None else variant_name(self.base, self.variant)


class Registry:
    """Validated registry entries, looked up by name across all kinds."""

    def __init__(self, data: RegistryFile, sources: Sequence[Path]) -> None:
        self.data = data
        self.sources = list(sources)
        self._by_name: dict[str, tuple[str, Entry]] = {}
        for kind in KINDS:
            for name, entry in getattr(data, kind).items():
                if name in self._by_name:
                    other = self._by_name[name][0]
                    raise ConfigError(
                        f"{_describe(sources)}: {kind}.{name}: name used by a {other} and a {kind} entry",
                        file=_describe(sources),
                        key=f"{kind}.{name}",
                        fix="give every entry a unique name",
                    )
                self._by_name[name] = (kind, entry)
        self._check_links()

    def _check_links(self) -> None:
        for name, model in self.data.local.items():
            if model.derived_from is None:
                continue
            base = self.data.local.get(model.derived_from)
            if base is None:
                raise ConfigError(
                    f"{_describe(self.sources)}: local.{name}.derived_from: "
                    f"{model.derived_from!r} is not a local model",
                    file=_describe(self.sources),
                    key=f"local.{name}.derived_from",
                    fix=_suggest(model.derived_from, list(self.data.local)),
                )

    def names(self, kind: str | None = None) -> list[str]:
        return [n for n, (k, _) in self._by_name.items() if kind is None or k == kind]

    def items(self) -> Iterator[tuple[str, str, Entry]]:
        for name, (kind, entry) in self._by_name.items():
            yield name, kind, entry

    def get(self, name: str) -> tuple[str, Entry]:
        """Return (kind, entry) for a name; UnknownNameError lists close matches."""
        if name in self._by_name:
            return self._by_name[name]
        raise UnknownNameError(name, "registry entry", difflib.get_close_matches(name, self._by_name, n=4))

    def hardware(self, name: str) -> Hardware:
        """The hardware profile `name`; UnknownNameError lists close matches."""
        found = self.data.hardware.get(name)
        if found is None:
            raise UnknownNameError(
                name, "hardware profile", difflib.get_close_matches(name, self.data.hardware)
            )
        return found

    def resolve(self, name: str) -> Resolved:
        """Resolve NAME or NAME:VARIANT (any kind of entry): the one reader of a variant name.

        A variant is found by its base and variant name (`tiny-skills:nf4`) or by its own entry name
        (`tiny-skills-nf4`); either way the result names both. UnknownNameError lists close matches.
        """
        base, variant = split_name(name)
        if variant is not None:
            for vname, model in self.data.local.items():
                if model.derived_from == base and model.variant == variant:
                    return Resolved(vname, "local", model, base, variant)
            known = [
                variant_name(base, e.variant)
                for e in self.data.local.values()
                if e.derived_from == base and e.variant is not None
            ]
            raise UnknownNameError(
                name, "model variant", known or difflib.get_close_matches(base, self.data.local)
            )
        kind, entry = self.get(base)
        if isinstance(entry, LocalModel) and entry.derived_from is not None and entry.variant is not None:
            return Resolved(base, kind, entry, entry.derived_from, entry.variant)
        return Resolved(base, kind, entry, base, None)

    def local(self, name: str) -> tuple[str, LocalModel]:
        """Resolve NAME or NAME:VARIANT to a local model entry; returns (entry name, entry)."""
        base, variant = split_name(name)
        if variant is None and base not in self.data.local:
            raise UnknownNameError(name, "local model", difflib.get_close_matches(base, self.data.local, n=4))
        found = self.resolve(name)
        assert isinstance(found.entry, LocalModel)
        return found.name, found.entry

    def variants(self, base: str) -> list[str]:
        return [n for n, e in self.data.local.items() if e.derived_from == base]


def shipped_models_file() -> Path:
    """The models.yaml that ships with llmbench (the repo root in a checkout, package data in a wheel)."""
    packaged = resources.files("bench").joinpath("_data/models.yaml")
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "models.yaml"


def load_registry(overlays: Sequence[Path] = (), *, include_shipped: bool = True) -> Registry:
    """Read the shipped models.yaml and the overlays (later wins), merge, validate."""
    paths = ([shipped_models_file()] if include_shipped else []) + list(overlays)
    merged: dict[str, Any] = {}
    origin: dict[tuple[str, str], Path] = {}
    for path in paths:
        raw = _read_yaml(path)
        for kind in KINDS:
            for name in raw.get(kind) or {}:
                origin[(kind, name)] = path
        merged = _deep_merge(merged, raw)
    for kind in KINDS:  # `NAME: null` with nothing to remove (an overlay validated on its own) is a no-op
        section = merged.get(kind)
        if isinstance(section, dict):
            merged[kind] = {name: entry for name, entry in section.items() if entry is not None}
    try:
        data = RegistryFile.model_validate(merged)
    except ValidationError as exc:
        raise _config_error(exc, origin, paths) from exc
    return Registry(data, paths)


def validate_file(path: Path) -> Registry:
    """Validate one file on its own (as `llmbench models validate FILE` does)."""
    return load_registry([path], include_shipped=False)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = read_text(path, what="models file")
    except FileNotFoundError as exc:
        raise ConfigError(f"models file not found: {path}", file=str(path), fix="check the path") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path} is not valid YAML{where}", file=str(path), fix="fix the YAML syntax"
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path} must hold a mapping with keys {', '.join(('schema', *KINDS))}",
            file=str(path),
            fix="start the file with `schema: llmbench.models/1` and sections local:, api:, hardware:, mock:",
        )
    return data


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if value is None and key in out and isinstance(out[key], dict):
            del out[key]  # `name: null` in an overlay removes a shipped entry
        elif isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _config_error(
    exc: ValidationError, origin: Mapping[tuple[str, str], Path], paths: Sequence[Path]
) -> ConfigError:
    def file_of(problem: Problem) -> str:
        loc = problem.loc
        path = origin.get((str(loc[0]), str(loc[1]))) if len(loc) >= 2 else None
        return str(path) if path else _describe(paths)

    return config_error(exc, file=file_of, model=RegistryFile)


def _suggest(word: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"allowed keys: {', '.join(known)}" if known else "remove it"


def _describe(paths: Sequence[Path]) -> str:
    return ", ".join(str(p) for p in paths) or "(no file)"
