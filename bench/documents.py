"""Stored documents that several layers write and read: a run's target and provenance, a sweep point's detail.

Each JSON document the store keeps has one typed model that writes it (`to_json`) and reads it back
(`from_json`), with `from_json(to_json(x)) == x`. Documents of the measurement layers live with their
writers (bench.metrics.summary.RunSummary, bench.loadgen.documents, bench.accuracy.documents); these are
written by the runs layer (bench.runs) and the sweep, and read by the report, so they live here, below
the store. A document stored by an older llmbench is upgraded when it is read (a `before` validator maps
its old shape to the current one); it is never re-derived by a second implementation.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer


class StoredModel(BaseModel):
    """A stored document: unknown keys are an error (a renamed field fails loudly, not as None)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> dict[str, Any]:
        """The document as stored (plain JSON data)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: Any) -> Self:
        """The document a `to_json` wrote (or an older llmbench stored), as this type."""
        return cls.model_validate(data)


class TargetDoc(StoredModel):
    """What a run measured: the registry name or URL, its kind and protocol, the served model. No key:
    `api_key_env` names the variable, `headers` only the header names (their values may be secrets)."""

    name: str
    kind: str  # local | api | mock | url
    url: str
    api: str  # openai-chat | openai-completions | anthropic
    model: str
    server_kind: str = "generic"
    api_key_env: str | None = None
    tokenizer: str | None = None
    headers: list[str] = Field(default_factory=list)
    server_kind_from: str | None = None


class GitInfo(StoredModel):
    sha: str | None = None
    dirty: bool | None = None


class LlmbenchInfo(StoredModel):
    version: str | None = None
    git: GitInfo = GitInfo()


class ServerSaid(StoredModel):
    """A part a server described about itself (its /llmbench/info): the fields llmbench reads are typed, and
    anything else a server says is kept as it said it (a newer server may say more)."""

    model_config = ConfigDict(extra="allow", frozen=True)


class EngineInfo(ServerSaid):
    name: str | None = None
    version: str | None = None


class ServerInfo(ServerSaid):
    """The server side as it described itself (/llmbench/info, or vLLM's /version) and how it was reached."""

    kind: str | None = None
    detected_by: str | None = None
    # GPUs ({kind: gpu, name, ...}), or the CPU ({kind: cpu, name, cores}) of a machine without one
    accelerators: list[dict[str, Any]] | None = None
    backend: str | None = None
    llmbench_version: str | None = None
    same_host: bool = False  # reached over loopback: the load generator ran on the serving machine


class ModelInfo(ServerSaid):
    name: str | None = None
    repo: str | None = None
    revision: str | None = None
    derived_from: str | None = None
    variant: str | None = None
    builtin: str | None = None  # a tiny model llmbench builds
    folder: str | None = None  # the checkpoint folder served
    registry: str | None = None  # a mock: the registry entry it is
    stands_in_for: str | None = None  # a mock: the provider it imitates


class CpuInfo(StoredModel):
    model: str | None = None
    count: int | None = None
    usable: int | None = None


class Provenance(StoredModel):
    """Where a run's figures came from: the client machine (python, os, cpu, ram, gpus), llmbench and its git
    sha, and the server side (engine, server, model, quantization, engine arguments, hardware profile)."""

    llmbench: LlmbenchInfo = LlmbenchInfo()
    python: dict[str, str] = Field(default_factory=dict)
    os: dict[str, str] = Field(default_factory=dict)
    cpu: CpuInfo = CpuInfo()
    ram_bytes: int | None = None
    gpus: list[dict[str, Any]] = Field(default_factory=list)
    engine: EngineInfo = EngineInfo()
    collected_at: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    server: ServerInfo = ServerInfo()
    model: ModelInfo = ModelInfo()
    quantization: dict[str, Any] | None = None
    engine_args: dict[str, Any] | None = None
    hardware_profile: str | None = None
    mock_answers: dict[str, Any] | None = None  # a mock endpoint's configured answers (simulated accuracy)

    @property
    def served_dtype(self) -> str | None:
        """The dtype the engine served the model in, as its engine arguments say ('auto' is not one)."""
        dtype = (self.engine_args or {}).get("dtype")
        return dtype if isinstance(dtype, str) and dtype not in ("auto", "") else None


class SweepPoint(StoredModel):
    """One point of a sweep's plan: one serve configuration and one workload, and everything measured
    against them."""

    point_id: str
    label: str  # e.g. "tiny-skills:w8a8 [max-num-seqs=16]"
    target: str  # the registry name of the base entry
    kind: str  # local, api or mock
    serve_name: str  # what `serve` or `--target` is given: NAME or NAME:VARIANT
    variant: str  # base or the variant name
    backend: str  # local: auto, vllm, hf or mock; else the kind
    engine_args: dict[str, Any] = Field(default_factory=dict)
    hardware: str | None = None
    quantize: dict[str, Any] | None = None  # {"method", "group_size"} when the variant is made first
    loads: list[dict[str, Any]] = Field(default_factory=list)  # the sweep file's load steps, validated
    suites: list[dict[str, Any]] = Field(default_factory=list)  # its suite steps, validated
    repetitions: int = 1
    workload: str = "synthetic"  # the traffic its loads send: a workload's name (bench.sweep.workloads)
    workload_kind: str = "synthetic"  # sessions, shared_prefix, trace, request_log, phases or synthetic
    workload_sha256: str | None = None  # of the workload file's bytes; None for synthetic prompts
    estimate_s: float = 0.0
    estimate_usd: float = 0.0  # real money: API targets
    estimate_simulated_usd: float = 0.0  # mock targets' simulated prices
    notes: list[str] = Field(default_factory=list)


class RepeatFigures(StoredModel):
    """One figure over a sweep point's repetitions: n, mean, std and the 95% t-interval of the mean."""

    n: int
    mean: float | None = None
    std: float | None = None
    ci95: tuple[float, float] | None = None
    na: str | None = None  # why there is no interval (one repetition, nothing measured)


class RepeatStep(StoredModel):
    """One load step of a point over its repetitions (a goodput search: at its operating point): each
    figure's mean and 95% t-interval (bench.sweep.repeats)."""

    load: int
    run: str
    output_tokens_per_s: RepeatFigures | None = None
    requests_per_s: RepeatFigures | None = None
    goodput_requests_per_s: RepeatFigures | None = None
    ttft_p50_ms: RepeatFigures | None = None

    def figures(self) -> dict[str, RepeatFigures]:
        """Figure name -> its figures over repetitions (those measured)."""
        named = {
            "output_tokens_per_s": self.output_tokens_per_s,
            "requests_per_s": self.requests_per_s,
            "goodput_requests_per_s": self.goodput_requests_per_s,
            "ttft_p50_ms": self.ttft_p50_ms,
        }
        return {k: v for k, v in named.items() if v is not None}


class PointDetail(StoredModel):
    """What a sweep point recorded beside its runs."""

    url: str | None = None  # where its server answered
    prefix_cache: str | None = None  # reset before each run, unsupported, or n/a
    repeats: list[RepeatStep] = Field(default_factory=list)
    spend_usd: float = 0.0
    simulated_spend_usd: float = 0.0
    cap_reached: str | None = None  # the spend cap stopped it
    imported_runs: int | None = None  # on Ray: the runs its task sent back


RECOVERY_SCHEMA: Literal["llmbench.recovery/1"] = "llmbench.recovery/1"


class RecoveryFigure(StoredModel):
    """One figure of a recovery document: `value` with its 95% CI, the concurrency or basis it was taken at;
    or `value: null` and the `reason` it could not be measured (never 0)."""

    value: float | None
    reason: str | None = None
    ci95: tuple[float, float | None] | None = None  # an upper bound of None: unbounded
    concurrency: int | None = None
    basis: str | None = None

    @model_serializer(mode="wrap")
    def _only_what_was_said(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Stored as {value, ci95} | {value, concurrency} | {value, basis} | {value: null, reason}: the keys
        # a figure has, never a row of nulls (`value` always, null when not measured).
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if k == "value" or v is not None}


class RecoverySide(StoredModel):
    """One side of a recovery comparison: what was served, on which backend, in which dtype, and its size."""

    name: str  # NAME or NAME:VARIANT as given
    entry: str  # registry entry (the served model name)
    backend: str
    method: str | None = None  # registry quantization method
    dtype: str | None = None  # what was served: the engine's dtype where known, else the stored one
    dtype_from: str | None = None  # engine | config.json
    stored_dtype: str | None = None
    weights_bytes: int | None = None
    disk_bytes: int | None = None
    size_reason: str | None = None  # why the size is unknown
    manifest: dict[str, Any] | None = None


class RecoveryComparison(StoredModel):
    """Base against variant on the items both scored (one area, or a whole suite): scores, the paired
    change in points with its CI and McNemar's p, and recovery (variant ÷ base) with its CI and flag."""

    n: int
    base_score: float | None
    variant_score: float | None
    diff_points: float | None = None
    diff_ci95_points: tuple[float, float] | None = None
    base_only_correct: int | None = None
    variant_only_correct: int | None = None
    p_value: float | None = None
    recovery: RecoveryFigure
    flagged: bool
    clearly_below: bool | None = None  # the whole interval is under the threshold


class SideCounts(StoredModel):
    base: int
    variant: int


class SuiteRecovery(RecoveryComparison):
    """One suite: its two runs, the whole-suite comparison, each area's, and the items that failed or were
    scored on one side only."""

    base_run: str
    variant_run: str
    areas: dict[str, RecoveryComparison] = Field(default_factory=dict)
    failed: SideCounts
    unpaired: SideCounts


class RecoverySpeedPoint(StoredModel):
    """One load run at a fixed concurrency (rates per second, latencies ms; None when not measured)."""

    concurrency: int
    output_tokens_per_s: float | None
    tpot_p50_ms: float | None
    ttft_p50_ms: float | None
    completed: int
    failed: int
    run_id: str | None
    status: str = "complete"


class SpeedRatios(StoredModel):
    concurrency_1: RecoveryFigure
    saturation: RecoveryFigure


class RecoverySpeed(StoredModel):
    """Output tok/s of both sides and the ratio (variant ÷ base) at concurrency 1 and near saturation; or
    why speed was not measured (`skipped`)."""

    ratio: SpeedRatios
    skipped: str | None = None
    metric: str | None = None
    saturation_concurrency: int | None = None
    saturation_share: float | None = None
    base: list[RecoverySpeedPoint] = Field(default_factory=list)
    variant: list[RecoverySpeedPoint] = Field(default_factory=list)


class RecoveryDoc(StoredModel):
    """The `llmbench.recovery/1` document (`llmbench bench recovery`, a sweep's variants): what a quantized
    variant keeps of its base, per suite and area, its size and its speed. Written by bench.recovery, read
    by the report and the CLI."""

    schema_: Literal["llmbench.recovery/1"] = Field(RECOVERY_SCHEMA, alias="schema")
    created_at: str
    base: RecoverySide
    variant: RecoverySide
    threshold: float
    size_ratio: RecoveryFigure
    suites: dict[str, SuiteRecovery]
    flagged: list[str]
    passed: bool
    speed: RecoverySpeed
    notes: list[str] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)
