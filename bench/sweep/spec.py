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
  - {profile: goodput, requests: 60, output_tokens: 16, warmup: 2}
suites:
  - {suite: "builtin:tiny-skills", limit: 25}
workloads:                              # a matrix axis: every target × workload [synthetic]
  - synthetic                           # the load steps' own prompts
  - {file: builtin:chat-over-docs, targets: [mock-frontier]}   # or a llmbench.workload/1 file
templates:                              # prompt versions: each load and suite runs once per template
  - prompts/support-answer.v1.yaml      # (a step may name its own `template:` instead)
  - prompts/support-answer.v2.yaml
```

A load step takes the options of `llmbench bench load` as keys (`duration_s`, `timeout_s`, `grace_s` for
`--duration`, `--timeout`, `--grace`), with the same defaults (profile synchronous, no warm-up); a suite step
takes those of `llmbench bench accuracy`.

`workloads:` (bench.sweep.workloads) lists the traffic every load step sends: each target × workload is a
point; paths are relative to the sweep file. Without it, the one workload is `synthetic`.

Every error of the file is reported at once, each with the file, the key path and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from bench.accuracy.spec import LMEVAL_PREFIX, SuiteOptions
from bench.accuracy.suite import load_suite
from bench.errors import ConfigError, UsageError
from bench.loadgen.spec import FLAGS, LoadOptions
from bench.metrics import Slo
from bench.prompts.templates import load_template
from bench.sweep.workloads import WorkloadEntry
from bench.validation import config_error, read_text

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


def check_template(path: Path | None) -> Path | None:
    """ValueError unless `path` is a prompt template that loads (llmbench.prompt/1)."""
    if path is not None:
        try:
            load_template(path)
        except ConfigError as exc:
            raise ValueError(f"{exc}" + (f"; {exc.fix}" if exc.fix else "")) from exc
    return path


class LoadStep(LoadOptions):
    """One load run at every point: `bench load`'s own options (bench.loadgen.spec.LoadOptions, the same
    fields and defaults, as keys), checked as `bench load` checks them, each problem named by its key;
    `template` as `bench load --template`."""

    template: Path | None = Field(None, description="a prompt template every prompt is asked through")

    _template = field_validator("template")(check_template)

    @model_validator(mode="after")
    def _as_bench_load_checks_it(self) -> LoadStep:
        """The step must pass the very checks `llmbench bench load` makes, before anything is served."""
        step = self
        if self.profile == "goodput" and self.slo is None:
            # the sweep's own slo applies; its presence is checked on the file
            step = self.model_copy(update={"slo": "ttft_ms=1000"})
        try:
            step.check()
        except UsageError as exc:
            key = _KEYS.get(exc.flag, "")
            message = _FLAG.sub(lambda m: _KEYS.get(m[0], m[0]), str(exc))
            raise PydanticCustomError("load_step", "{message}", {"message": message, "key": key}) from exc
        return self


def load_options(step: Mapping[str, Any]) -> dict[str, Any]:
    """A point's load step (as stored JSON) as `LoadSpec.from_options` keywords, target, URL, hardware, store
    and sweep ids left to the caller (its prompt template apart: `step_template`). Steps stored by earlier
    versions (warm-up as a count) read the same."""
    return {**{k: v for k, v in step.items() if k != "template"}, "seed": int(step.get("seed") or 0)}


def step_template(step: Mapping[str, Any]) -> Path | None:
    """The prompt template a stored load or suite step names (None: none)."""
    value = step.get("template")
    return None if value is None else Path(value)


def with_templates(steps: list[dict[str, Any]], templates: list[Path]) -> list[dict[str, Any]]:
    """The sweep's `templates:` axis: every step that names no template of its own, once per template
    (steps unchanged without the axis)."""
    if not templates:
        return steps
    out: list[dict[str, Any]] = []
    for step in steps:
        if step.get("template") is not None:
            out.append(step)
        else:
            out += [{**step, "template": str(t)} for t in templates]
    return out


_KEYS = {flag: field for field, flag in FLAGS.items()}  # `bench load` flag -> sweep key
_FLAG = re.compile(r"--[a-z][a-z-]*")
_TASK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def check_suite(ref: str) -> str:
    """ValueError unless `ref` names a suite that loads (builtin, JSONL file) or valid lm-eval task names."""
    if ref.startswith(LMEVAL_PREFIX):
        tasks = [t.strip() for t in ref.removeprefix(LMEVAL_PREFIX).split(",")]
        if not any(tasks):
            raise ValueError("name at least one task: lm-eval:TASK[,TASK]")
        bad = [t for t in tasks if not _TASK.match(t)]
        if bad:
            raise ValueError(
                f"{bad[0]!r} is not an lm-eval task name (letters, digits, '_', '-', '.'; "
                "tasks separated by commas)"
            )
        return ref
    try:
        load_suite(ref)
    except ConfigError as exc:
        raise ValueError(f"{exc}" + (f"; {exc.fix}" if exc.fix else "")) from exc
    return ref


class SuiteStep(SuiteOptions):
    """One accuracy suite scored at every point: `bench accuracy`'s own options (bench.accuracy.spec.
    SuiteOptions, the same fields and defaults); the suite must load (or name valid lm-eval tasks), and its
    prompt template too."""

    _suite = field_validator("suite")(check_suite)
    _template = field_validator("template")(check_template)


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
    workloads: list[WorkloadEntry] = Field(
        default_factory=lambda: [WorkloadEntry()],
        min_length=1,
        description="traffic every load step sends, a matrix axis (bench.sweep.workloads) [synthetic]",
    )
    templates: list[Path] = Field(
        default_factory=list,
        description="prompt versions: every load and suite without its own template runs once per template",
    )

    _slo = field_validator("slo")(_check_slo)

    @field_validator("schema_")
    @classmethod
    def _schema(cls, value: str) -> str:
        if value != SCHEMA:
            raise ValueError(f"schema must be {SCHEMA!r}")
        return value

    @field_validator("templates")
    @classmethod
    def _templates(cls, value: list[Path]) -> list[Path]:
        for path in value:
            check_template(path)
        if len(set(value)) < len(value):
            raise ValueError("a template is named twice")
        return value

    @model_validator(mode="after")
    def _something_to_do(self) -> SweepFile:
        if not self.loads and not self.suites:
            raise ValueError("a sweep needs at least one entry under loads: or suites:")
        for i, load in enumerate(self.loads):
            if load.profile == "goodput" and not (load.slo or self.slo):
                message = "the goodput profile needs an slo (on the load or at the top level)"
                raise PydanticCustomError(
                    "sweep", "{message}", {"message": message, "key": f"loads[{i}].slo"}
                )
        self._workloads_fit()
        return self

    def _workloads_fit(self) -> None:
        """Workload names are unique, their targets are the sweep's, and a load step names none itself."""
        for i, load in enumerate(self.loads):
            if load.workload is not None:
                message = (
                    "list workload files under the sweep's workloads: (a matrix axis), not on a load step"
                )
                raise PydanticCustomError(
                    "sweep", "{message}", {"message": message, "key": f"loads[{i}].workload"}
                )
        names = [w.label for w in self.workloads]
        targets = {t.name for t in self.targets}
        for i, entry in enumerate(self.workloads):
            if names.index(entry.label) != i:
                message = f"two workloads are named {entry.label!r}: give one a name: of its own"
                raise PydanticCustomError(
                    "sweep", "{message}", {"message": message, "key": f"workloads[{i}].name"}
                )
            unknown = [t for t in entry.targets or [] if t.partition(":")[0] not in targets]
            if unknown:
                message = (
                    f"{unknown[0]!r} is not a target of this sweep (targets: {', '.join(sorted(targets))})"
                )
                raise PydanticCustomError(
                    "sweep", "{message}", {"message": message, "key": f"workloads[{i}].targets"}
                )


def read_sweep_file(path: Path) -> SweepFile:
    """Parse and validate a sweep file; ConfigError lists every problem (file, key path, fix)."""
    try:
        text = read_text(path, what="the sweep file")
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
        return SweepFile.model_validate(data, context={"base": path.parent})  # workload paths: from here
    except ValidationError as exc:
        raise config_error(exc, file=str(path), model=SweepFile, fix=FIX) from exc


FIX = "fix the sweep file (every problem is listed) and run it again; nothing was started"
