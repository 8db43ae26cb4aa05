"""sweep.yaml (`llmbench.sweep/1`): what to measure, validated whole before anything starts.

```yaml
schema: llmbench.sweep/1
name: quickstart
slo: ttft_ms=2000,tpot_ms=200          # default for every load (a load may set its own)
repetitions: 1                          # every load and suite run this many times per point
max_usd: 2.00                           # refuse a sweep whose API estimate is above this; stop at it
targets:
  - name: tiny-skills                   # a registry entry: local (served by llmbench), api or mock
    hardware: cpu-2vcpu                 # models.yaml hardware profile (self-hosted cost)
    backend: vllm                       # serve backend for local targets [auto]
    variants:                           # `base` is the entry itself
      - base
      - {quantize: w8a8}                # made first with `llmbench quantize` when it is missing
      - {quantize: int8, backend: hf}   # bitsandbytes runs on the hf backend on CPU
    engine_args: {max-num-seqs: [16, 64]}                       # Cartesian product
    linked: [{max-model-len: 256}, {max-model-len: 512}]        # values that move together
  - name: mock-frontier
loads:
  - {profile: concurrent, concurrency: [1, 8], requests: 40, input_tokens: 32, output_tokens: 16}
  - {profile: goodput, requests: 60, output_tokens: 16}
suites:
  - {suite: "builtin:tiny-skills", limit: 25}
```

Every error of the file is reported at once, each with the file, the key path and the fix.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bench.errors import ConfigError
from bench.metrics import Slo

SCHEMA = "llmbench.sweep/1"
EngineValue = str | int | float | bool
Backend = Literal["auto", "vllm", "hf", "mock"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_slo(value: str | None) -> str | None:
    if value is not None:
        Slo.parse(value, flag="slo")
    return value


class QuantizedVariant(_Spec):
    """A variant made by `llmbench quantize` (first, when the registry has no built checkpoint of it)."""

    quantize: Literal["nf4", "int8", "fp8-dynamic", "w8a8", "w4a16"]
    backend: Backend | None = Field(None, description="serve backend for this variant [the target's]")
    group_size: int | None = Field(None, ge=8, description="w4a16 group size (64 for the tiny models)")


class NamedVariant(_Spec):
    """An existing registry variant, or `base`, with its own serve backend."""

    variant: str = Field(min_length=1)
    backend: Backend | None = None


Variant = Annotated[str, Field(min_length=1)] | NamedVariant | QuantizedVariant


class TargetSpec(_Spec):
    """One registry entry to measure, with its variants and engine-argument matrix (local entries)."""

    name: str = Field(min_length=1, description="registry name: local, api or mock entry")
    variants: list[Variant] = Field(default_factory=lambda: list[Variant](["base"]))
    backend: Backend = "auto"
    hardware: str | None = Field(None, description="models.yaml hardware profile it runs on")
    engine_args: dict[str, EngineValue | list[EngineValue]] = Field(
        default_factory=dict, description="vLLM options; a list is swept (Cartesian product with the rest)"
    )
    linked: list[dict[str, EngineValue]] = Field(
        default_factory=list, description="option sets swept together (each one a point)"
    )
    slo: str | None = None

    _slo = field_validator("slo")(_check_slo)


class LoadStep(_Spec):
    """One load profile run at every point (the flags of `llmbench bench load`, as keys)."""

    profile: Literal["synchronous", "concurrent", "constant", "poisson", "sweep", "goodput"] = "concurrent"
    concurrency: list[int] | None = None
    rate: list[float] | None = None
    requests: int | None = Field(None, ge=1)
    duration_s: float | None = Field(None, gt=0)
    warmup: int = Field(2, ge=0, description="warm-up requests before each measured run")
    input_tokens: str = "128"
    output_tokens: str | None = None
    dataset: str | None = None
    slo: str | None = None
    attainment: float | None = Field(None, gt=0, le=1)
    search: Literal["rate", "concurrency"] | None = None
    max_load: float | None = Field(None, gt=0)
    search_steps: int | None = Field(None, ge=0, le=12)
    max_error_rate: float | None = Field(None, gt=0, le=1)
    timeout_s: float | None = Field(None, gt=0)
    seed: int = 0

    _slo = field_validator("slo")(_check_slo)

    @field_validator("concurrency", "rate", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, int | float) and not isinstance(value, bool) else value

    @field_validator("input_tokens", "output_tokens", mode="before")
    @classmethod
    def _length_text(cls, value: Any) -> Any:
        """A bare number is a fixed length (`output_tokens: 16` as `--output-tokens 16`)."""
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class SuiteStep(_Spec):
    """One accuracy suite scored at every point."""

    suite: str = Field(min_length=1, description="builtin:NAME, a JSONL file or lm-eval:TASK[,TASK]")
    limit: int | None = Field(None, ge=1, description="items per area")
    concurrency: int = Field(8, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    judge: str | None = None


class SweepFile(_Spec):
    """The whole sweep file."""

    schema_: Annotated[str, Field(alias="schema")] = SCHEMA
    name: str = Field(min_length=1)
    targets: list[TargetSpec] = Field(min_length=1)
    loads: list[LoadStep] = Field(default_factory=list)
    suites: list[SuiteStep] = Field(default_factory=list)
    slo: str | None = None
    hardware: str | None = Field(None, description="default hardware profile of local targets")
    repetitions: int = Field(1, ge=1, le=50)
    max_usd: float | None = Field(None, ge=0, description="spend cap for API targets (USD)")

    _slo = field_validator("slo")(_check_slo)

    @field_validator("schema_")
    @classmethod
    def _schema(cls, value: str) -> str:
        if value != SCHEMA:
            raise ValueError(f"schema must be {SCHEMA!r}")
        return value

    @model_validator(mode="after")
    def _something_to_do(self) -> SweepFile:
        if not self.loads and not self.suites:
            raise ValueError("a sweep needs at least one entry under loads: or suites:")
        for i, load in enumerate(self.loads):
            if load.profile == "goodput" and not (load.slo or self.slo):
                raise ValueError(f"loads.{i}: the goodput profile needs an slo (here or at the top level)")
        return self


def read_sweep_file(path: Path) -> SweepFile:
    """Parse and validate a sweep file; ConfigError lists every problem (file, key path, fix)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"sweep file not found: {path}", file=str(path), fix="check the path") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path} is not valid YAML{where}", file=str(path), fix="fix the YAML") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path} must hold a mapping", file=str(path), fix=f"start it with `schema: {SCHEMA}`"
        )
    try:
        return SweepFile.model_validate(data)
    except ValidationError as exc:
        problems = [f"{path}: {where}: {fix}" for where, fix in describe_errors(exc, SweepFile)]
        head = problems[0] if len(problems) == 1 else f"{len(problems)} problems:\n  " + "\n  ".join(problems)
        raise ConfigError(head, file=str(path), key=describe_errors(exc, SweepFile)[0][0]) from exc


def describe_errors(exc: ValidationError, model: type[BaseModel]) -> list[tuple[str, str]]:
    """(key path, what to do) for every error, with 'did you mean' for unknown keys."""
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        where = ".".join(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            known = _fields_at(model, loc[:-1])
            close = difflib.get_close_matches(loc[-1], known, n=1)
            fix = f"unknown key {loc[-1]!r}; " + (
                f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(known)}"
            )
        elif err["type"] == "missing":
            fix = "required key is missing; add it"
        else:
            fix = str(err["msg"]).removeprefix("Value error, ")
            if err["type"].endswith(("_type", "_parsing")) or err["type"] == "literal_error":
                fix += f" (got {err.get('input')!r})"
        out.append((where, fix))
    return out


def _fields_at(model: type[BaseModel], loc: list[str]) -> list[str]:
    """Field names of the nested model at `loc` (list indices and union tags skipped)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None or part.isdigit():
            continue
        field = current.model_fields.get(part)
        if field is None:
            # A union member named by pydantic (e.g. 'QuantizedVariant'): follow it by name.
            current = next((m for m in _MODELS if m.__name__ == part), current)
            continue
        args = getattr(field.annotation, "__args__", (field.annotation,))
        nested = [a for a in _flatten(args) if isinstance(a, type) and issubclass(a, BaseModel)]
        current = nested[0] if nested else None
    return [] if current is None else [f.alias or n for n, f in current.model_fields.items()]


def _flatten(args: tuple[Any, ...]) -> list[Any]:
    out: list[Any] = []
    for a in args:
        inner = getattr(a, "__args__", None)
        out.extend(_flatten(inner) if inner else [a])
    return out


_MODELS: tuple[type[BaseModel], ...] = (TargetSpec, LoadStep, SuiteStep, QuantizedVariant, NamedVariant)
