"""LoadSpec: one validated description of a `bench load` invocation, every default in one place.

`LoadOptions` is what a load sends and how (profile, values, lengths, limits, SLO, search): the workload
flags of `bench load`, and exactly a sweep file's load step (bench.sweep.spec), with the same fields and
the same defaults. `LoadSpec` adds where it goes (target, URL, headers, store, sweep ids). The CLI builds it
with `LoadSpec.from_options(...)` (options left unset fall back to the defaults here); a pydantic error on
a field becomes a UsageError naming the command-line flag (bench.validation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bench.errors import UsageError
from bench.loadgen.profiles import (
    DEFAULT_SEARCH_STEPS,
    DEFAULT_SWEEP_POINTS,
    MIN_ROUNDS,
    ConcurrentProfile,
    ConstantProfile,
    GoodputProfile,
    Limits,
    PoissonProfile,
    Profile,
    SweepProfile,
    SynchronousProfile,
    Warmup,
)
from bench.metrics import DEFAULT_ATTAINMENT, Slo
from bench.prompts import DEFAULT_OUTPUT_TOKENS, LengthUnit, PromptSpec, parse_length
from bench.records import DEFAULT_TIMEOUT_S, ApiKind, ServerKind
from bench.validation import none_means_default, usage_error

ProfileKind = Literal["synchronous", "concurrent", "constant", "poisson", "sweep", "goodput"]

# Field name -> the flag that sets it, so validation errors name what the user typed.
FLAGS: dict[str, str] = {
    "target": "--target",
    "url": "--url",
    "model": "--model",
    "api": "--api",
    "profile": "--profile",
    "concurrency": "--concurrency",
    "rate": "--rate",
    "sweep_points": "--sweep-points",
    "input_tokens": "--input-tokens",
    "length_unit": "--length-unit",
    "output_tokens": "--output-tokens",
    "dataset": "--dataset",
    "tokenizer": "--tokenizer",
    "requests": "--requests",
    "duration_s": "--duration",
    "warmup": "--warmup",
    "grace_s": "--grace",
    "slo": "--slo",
    "ignore_eos": "--ignore-eos",
    "seed": "--seed",
    "timeout_s": "--timeout",
    "headers": "--header",
    "max_error_rate": "--max-error-rate",
    "store": "--store",
    "server_kind": "--server-kind",
    "hardware": "--hardware",
    "attainment": "--attainment",
    "search": "--search",
    "max_load": "--max-load",
    "search_steps": "--search-steps",
    "workload": "--workload",
    "skip_invalid": "--skip-invalid",
    "time_scale": "--time-scale",
    "window_start_s": "--window-start",
    "workers": "--workers",
}
# Flags that shape the prompts themselves: a workload file sets these, so they conflict with --workload.
PROMPT_FIELDS = ("input_tokens", "output_tokens", "dataset", "length_unit")
# Flags that choose how requests are paced: they conflict with a workload sent at its own times.
PACING_FIELDS = ("profile", "concurrency", "rate", "sweep_points", "search", "max_load", "search_steps")


class LoadOptions(BaseModel):
    """What one load sends and how (times in s, lengths in tokens, rates in req/s): the workload flags of
    `bench load`, and a sweep's load step. None for a field with a default means that default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: ProfileKind = "synchronous"
    concurrency: list[int] | None = Field(None, description="concurrent: one run per value")
    rate: list[float] | None = Field(None, description="constant/poisson: one run per value (req/s)")
    sweep_points: int = Field(DEFAULT_SWEEP_POINTS, ge=1, le=100)
    input_tokens: str = "128"
    output_tokens: str | None = Field(None, description="default 128; a prompt file's own lengths")
    length_unit: LengthUnit = Field(
        "reference",
        description="reference: lengths in reference tokens (⌈bytes ÷ 4⌉), the same prompt text for every "
        "target, so options compare on one workload; model: in the target tokenizer's own tokens",
    )
    dataset: str | None = Field(None, description="FILE, sharegpt:FILE, jsonl:FILE or prefix:N,P[,S]")
    requests: int | None = Field(None, ge=1, description="measured requests per run")
    duration_s: float | None = Field(None, gt=0, description="measured seconds per run")
    warmup: Warmup = Field(Warmup(), description="N requests (a bare number) or seconds ('5s')")
    grace_s: float | None = Field(
        None, ge=0, description="cool-down wait for in-flight requests (s); None: until they finish"
    )
    slo: str | None = None
    ignore_eos: bool = True
    seed: int = 0
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, description="per-request timeout (s)")
    max_error_rate: float | None = Field(None, gt=0, le=1)
    attainment: float = Field(
        DEFAULT_ATTAINMENT, gt=0, le=1, description="goodput: share of requests that must meet the SLO"
    )
    search: Literal["rate", "concurrency"] | None = Field(None, description="goodput: what to vary")
    max_load: float | None = Field(None, gt=0, description="goodput: the doubling stops at this load")
    search_steps: int = Field(
        DEFAULT_SEARCH_STEPS, ge=0, le=12, description="goodput: bisection steps after doubling"
    )
    workload: str | None = Field(
        None,
        description="a llmbench.workload/1 file: the traffic the run sends (instead of the prompt flags)",
    )
    skip_invalid: bool = Field(
        False,
        description="request logs: skip lines that are not valid requests (counted) instead of refusing",
    )
    time_scale: float | None = Field(
        None, gt=0, description="workloads sent at their own times: multiplies the gaps (0.5: twice as fast)"
    )
    window_start_s: float | None = Field(
        None, ge=0, description="traces and request logs: replay from this many s after the first arrival"
    )
    workers: int | Literal["auto"] | None = Field(
        None,
        description="load-generator worker processes (None: none, this process sends; auto: one per spare "
        "core, as many as the load needs)",
    )

    @model_validator(mode="before")
    @classmethod
    def _none_is_the_default(cls, data: Any) -> Any:
        """`key: null` (or an unset flag) means the field's default."""
        return none_means_default(cls, data)

    @field_validator("concurrency", "rate", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        """A single number is a list of one (`concurrency: 4` in a sweep file)."""
        return [value] if isinstance(value, int | float) and not isinstance(value, bool) else value

    @field_validator("input_tokens", "output_tokens", mode="before")
    @classmethod
    def _length_text(cls, value: Any) -> Any:
        """A bare number is a fixed length (`output_tokens: 16` as `--output-tokens 16`)."""
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("warmup", mode="before")
    @classmethod
    def _warmup(cls, value: Any) -> Any:
        """`warmup: 2` is two requests; `warmup: 5s` five seconds (as `--warmup`)."""
        if isinstance(value, int) and not isinstance(value, bool):
            return {"requests": value}
        if isinstance(value, str):
            try:
                return Warmup.parse(value)
            except UsageError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("workers")
    @classmethod
    def _some_workers(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"give 1 or more worker processes, or auto (got {value})")
        return value

    @field_validator("concurrency")
    @classmethod
    def _whole_streams(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and not value:
            raise ValueError("give at least one value")
        bad = [v for v in value or [] if v < 1]
        if bad:
            raise ValueError(f"must be ≥ 1 (got {bad[0] if len(bad) == 1 else bad})")
        return value

    @field_validator("rate")
    @classmethod
    def _positive_rate(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and not value:
            raise ValueError("give at least one value")
        bad = [v for v in value or [] if v <= 0]
        if bad:
            raise ValueError(f"must be > 0 requests/s (got {bad[0] if len(bad) == 1 else bad})")
        return value

    def check(self) -> None:
        """The checks across fields (profile and its values, lengths, SLO, dataset), made before any server
        starts; UsageError names the `bench load` flag (a sweep file names its key instead)."""
        for name in ("input_tokens", "output_tokens"):
            value = getattr(self, name)
            if value is not None:
                parse_length(value, flag=FLAGS[name])
        if self.slo is not None:
            Slo.parse(self.slo, flag="--slo")
        self._workload_flags()
        kind = self.profile
        if kind == "concurrent" and not self.concurrency:
            raise UsageError("the concurrent profile needs --concurrency (e.g. 1,4,16)", flag="--concurrency")
        if kind in ("constant", "poisson") and not self.rate:
            raise UsageError(f"the {kind} profile needs --rate in requests/s (e.g. 1,2,4)", flag="--rate")
        if kind == "goodput":
            self._goodput_values()
            self.prompt_spec("openai-chat")
            return
        if self.concurrency and kind not in ("concurrent", "sweep"):
            raise UsageError(f"--concurrency does not apply to the {kind} profile", flag="--concurrency")
        if kind == "sweep" and self.concurrency and len(self.concurrency) != 1:
            raise UsageError(
                "a sweep takes one --concurrency: the load of its maximum-throughput run",
                flag="--concurrency",
            )
        if self.rate and kind not in ("constant", "poisson"):
            raise UsageError(f"--rate does not apply to the {kind} profile", flag="--rate")
        if kind == "concurrent" and self.requests is not None and self.duration_s is None:
            short = [c for c in self.concurrency or [] if c > self.requests]
            if short:
                raise UsageError(
                    f"{self.requests} requests can never keep {short[0]} in flight: send at least "
                    f"{MIN_ROUNDS * short[0]} ({MIN_ROUNDS} per slot) with --requests, or use --duration",
                    flag="--requests",
                )
        self.prompt_spec("openai-chat")  # dataset and lengths fail here, before any server starts

    def _workload_flags(self) -> None:
        """--workload sets the prompts; --time-scale, --window-start and --skip-invalid need it."""
        if self.workload is None:
            for name in ("time_scale", "window_start_s", "skip_invalid"):
                if getattr(self, name) not in (None, False):
                    raise UsageError(
                        f"{FLAGS[name]} applies to a workload file: add --workload FILE or drop it",
                        flag=FLAGS[name],
                    )
            return
        for name in PROMPT_FIELDS:
            if name in self.model_fields_set and getattr(self, name) is not None:
                raise UsageError(
                    f"{FLAGS[name]} and --workload both say what to send: the workload file sets the prompts "
                    "and their lengths; drop one",
                    flag=FLAGS[name],
                )

    @property
    def pacing_flags(self) -> list[str]:
        """The pacing flags that were set (a workload sent at its own times refuses them)."""
        given = self.model_fields_set
        return [FLAGS[n] for n in PACING_FIELDS if n in given and getattr(self, n) is not None]

    def _goodput_values(self) -> None:
        if self.slo is None:
            raise UsageError(
                "the goodput profile searches for the highest load that meets an SLO: pass --slo "
                "(e.g. ttft_ms=500,tpot_ms=50)",
                flag="--slo",
            )
        if self.concurrency and self.rate:
            raise UsageError("give the first probe as --concurrency or as --rate, not both", flag="--rate")
        for values, flag in ((self.concurrency, "--concurrency"), (self.rate, "--rate")):
            if values and len(values) != 1:
                raise UsageError(f"the goodput search takes one {flag}: its first probe", flag=flag)
        dimension = self.goodput_dimension
        if (dimension == "rate" and self.concurrency) or (dimension == "concurrency" and self.rate):
            raise UsageError(f"--search {dimension} starts from --{dimension}", flag="--search")

    @property
    def goodput_dimension(self) -> Literal["rate", "concurrency"]:
        """What the goodput search varies: --search, else what the first probe was given as."""
        return self.search or ("rate" if self.rate else "concurrency")

    # --- derived --------------------------------------------------------------------------------

    def profiles(self) -> list[Profile]:
        """One profile per value: `--concurrency 1,4` gives two concurrent runs."""
        kind = self.profile
        if kind == "synchronous":
            return [SynchronousProfile()]
        if kind == "concurrent":
            return [ConcurrentProfile(concurrency=c) for c in self.concurrency or []]
        if kind == "constant":
            return [ConstantProfile(rate=r) for r in self.rate or []]
        if kind == "poisson":
            return [PoissonProfile(rate=r, seed=self.seed) for r in self.rate or []]
        if kind == "goodput":
            start = (self.concurrency or self.rate or [1.0])[0]
            ceiling = {"max_load": self.max_load} if self.max_load is not None else {}
            return [
                GoodputProfile(
                    dimension=self.goodput_dimension, start=start, target=self.attainment,
                    steps=self.search_steps, seed=self.seed, **ceiling,
                )
            ]  # fmt: skip
        extra: dict[str, Any] = {"throughput_concurrency": self.concurrency[0]} if self.concurrency else {}
        return [SweepProfile(points=self.sweep_points, seed=self.seed, **extra)]

    def limits(self) -> Limits:
        """The limits every run of this invocation shares."""
        return Limits(
            requests=self.requests,
            duration_s=self.duration_s,
            warmup=self.warmup,
            grace_s=self.timeout_s if self.grace_s is None else self.grace_s,
            max_error_rate=self.max_error_rate,
        )

    def slo_bounds(self) -> Slo | None:
        return None if self.slo is None else Slo.parse(self.slo)

    def prompt_spec(self, api: ApiKind) -> PromptSpec:
        """The prompts to send; `api` decides between chat messages and a completion prompt."""
        common: dict[str, Any] = {
            "api": "completions" if api == "openai-completions" else "chat",
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens or str(DEFAULT_OUTPUT_TOKENS),
            "ignore_eos": self.ignore_eos,
            "unit": self.length_unit,
        }
        if self.dataset is None:
            return PromptSpec(kind="synthetic", **common)
        kind, sep, rest = self.dataset.partition(":")
        if sep and kind == "prefix":
            parts = [p.strip() for p in rest.split(",")]
            try:
                numbers = [int(p) for p in parts]
            except ValueError:
                numbers = []
            if len(numbers) not in (2, 3) or any(n <= 0 for n in numbers):
                raise UsageError(
                    f"{self.dataset!r}: expected prefix:N,P[,S] (N prefixes of P tokens, S suffix tokens)",
                    flag="--dataset",
                )
            if len(numbers) == 3:
                common["input_tokens"] = str(numbers[2])
            return PromptSpec(
                kind="shared-prefix", num_prefixes=numbers[0], prefix_tokens=numbers[1], **common
            )
        path = Path(rest if sep and kind in ("sharegpt", "jsonl", "file") else self.dataset).expanduser()
        if not path.is_file():
            raise UsageError(f"prompt file {str(path)!r} does not exist", flag="--dataset")
        common["output_tokens"] = self.output_tokens  # None: the file's own lengths
        return PromptSpec(kind="file", dataset=path, **common)


class LoadSpec(LoadOptions):
    """Everything one `bench load` invocation needs: the load, and where it goes."""

    target: str = Field(min_length=1, description="registry name or base URL")
    url: str | None = Field(None, description="base URL of a local entry's running server")
    model: str | None = None
    api: ApiKind | None = None
    tokenizer: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    store: Path | None = None
    server_metrics_every_s: float = Field(1.0, gt=0)
    server_kind: ServerKind | None = Field(None, description="skip detection: what the server is")
    hardware: str | None = Field(None, description="models.yaml hardware profile the server runs on")
    sweep_id: str | None = Field(None, description="the sweep this invocation belongs to (set by sweeps)")
    point_id: str | None = Field(None, description="its point in that sweep")

    @model_validator(mode="after")
    def _checked(self) -> LoadSpec:
        self.check()
        return self

    @classmethod
    def from_options(cls, **options: Any) -> LoadSpec:
        """Build from CLI options; None means 'use the default'. Errors name the flag."""
        try:
            return cls.model_validate(options)
        except ValidationError as exc:
            raise usage_error(exc, FLAGS, default="(options)", model=cls) from exc

    def redacted(self) -> dict[str, Any]:
        """The spec as JSON data, header values hidden (they may carry credentials)."""
        data = self.model_dump(mode="json")
        data["headers"] = {k: "***" for k in self.headers}
        return data
