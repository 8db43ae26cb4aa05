"""The profile a load run stores: what it was asked to do, what it sent, and, for a goodput search, the
operating point with every probe. One model writes it and reads it back (bench.documents.StoredModel).

Kinds: a plain run stores its run profile's fields (`kind` synchronous, concurrent, constant or poisson
with its load); a probe of a goodput search adds `goodput` (the search it belongs to and the stage); a
step of a sweep profile adds `sweep`; the final run of a goodput search is stored with `kind: goodput`,
its `pacing` (the run profile it ran), the `operating_point` and the `search_profile`.

A run that sent a workload file (`--workload`) adds `workload` (WorkloadDoc: its name, kind, file and
hash, the designed reuse share, lines skipped, notes). A workload sent at its own times (a trace, a timed
request log, phases, or sessions arriving as the file says) is stored with `kind: workload` and `rate`
its mean offered rate (requests per second; sessions per second for sessions). For a session workload
`concurrency` counts sessions active at once and `rate` sessions started per second, and `limits.requests`
counts measured sessions.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from bench.documents import StoredModel
from bench.loadgen.goodput import Stage
from bench.loadgen.profiles import (
    ConcurrentProfile,
    ConstantProfile,
    GoodputProfile,
    Limits,
    PoissonProfile,
    RunProfile,
    SynchronousProfile,
)
from bench.metrics.load import LoadTarget
from bench.prompts import PromptSpec
from bench.prompts.workloads import Window

Dimension = Literal["rate", "concurrency"]


class Sent(StoredModel):
    """What the requests really carried (ignore_eos only reaches servers that accept vLLM's extras)."""

    length_unit: Literal["reference", "model"] = "model"  # runs stored before units counted model tokens
    output_scale: float = 1.0  # the target's tokens per reference token (output lengths asked in its own)
    ignore_eos_requested: bool
    ignore_eos: bool
    server_kind: str | None = None
    server_kind_from: str | None = None


class SweepStage(StoredModel):
    """A run of a `sweep` profile: which stage, and the rates it measured so far."""

    points: int
    stage: Literal["synchronous", "throughput", "rate"]
    sync_rate: float | None = None
    max_rate: float | None = None
    point: int | None = None


class GoodputStage(StoredModel):
    """A probe of a goodput search: the search (the invocation's group id), its target and stage."""

    search: str
    target: float
    dimension: Dimension
    stage: Stage
    load: float


class ProbeDoc(StoredModel):
    """One probe of a goodput search as the operating point records it."""

    load: float
    stage: Stage
    run_id: str
    attainment: float | None
    ci95: tuple[float, float] | None = None
    passed: bool
    measured_load: float | None = None
    valid: bool = True
    invalid: list[str] = Field(default_factory=list)
    verdict: Literal["pass", "miss", "invalid"] | None = None
    retried: list[str] = Field(default_factory=list)  # earlier invalid runs of this probe, measured again

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("verdict") is None:  # stored before verdicts
            invalid = data.get("invalid") or []
            data = {**data, "verdict": "invalid" if invalid else ("pass" if data.get("passed") else "miss")}
        return data


class OperatingPointDoc(StoredModel):
    """Where a goodput search ended: the highest passing load, what was measured there, and the search."""

    dimension: Dimension
    value: float
    measured: float | None = None  # the load really reached there (mean in flight, or the send rate)
    target_attainment: float
    attainment: float | None
    attainment_ci: tuple[float, float] | None = None
    probes: list[str] = Field(default_factory=list)  # run ids, in search order
    search: list[ProbeDoc] = Field(default_factory=list)
    capped: str | None = None  # why the point is only a lower bound on the load (its cost an upper bound)
    warnings: list[str] = Field(default_factory=list)


class WorkloadDoc(StoredModel):
    """The workload file a run sent: what it was, where it came from, and what it was designed to reuse."""

    name: str  # the file's `name`, else its file name
    kind: str  # sessions | shared_prefix | trace | request_log | phases
    file: str  # the workload file as given
    sha256: str  # of the workload file's bytes
    data_sha256: str | None = None  # of the data file it names (trace, log, conversations), if any
    seed: int  # the workload seed this run used (the file's, plus the run's offset: fresh text per run)
    paced_by: Literal["profile", "workload"]  # the load profile, or the workload's own times
    designed_reuse: float | None = None  # designed share of prompt tokens that repeat an earlier request's
    skipped: int = 0  # input lines or rows left out (invalid lines with --skip-invalid, unsendable rows)
    notes: list[str] = Field(default_factory=list)
    window: Window | None = None  # traces and request logs: the part replayed, and how fast
    sessions: int | None = None  # session workloads: sessions planned (warm-up included)


class LoadRunProfile(StoredModel):
    """The stored profile of one load run (see the module docstring for its kinds)."""

    kind: Literal["synchronous", "concurrent", "constant", "poisson", "goodput", "workload"]
    concurrency: int | None = None
    rate: float | None = None
    seed: int | None = None
    label: str
    limits: Limits
    prompts: PromptSpec
    prompt_seed: int = 0
    slo: str | None = None
    sent: Sent | None = None  # None only for runs written by hand (tests, imports of other tools)
    sweep: SweepStage | None = None
    goodput: GoodputStage | None = None
    attainment_target: float | None = None
    pacing: SynchronousProfile | ConcurrentProfile | ConstantProfile | PoissonProfile | None = Field(
        None, discriminator="kind"
    )
    operating_point: OperatingPointDoc | None = None
    search_profile: GoodputProfile | None = None
    workload: WorkloadDoc | None = None  # None: the prompts came from `prompts` (no workload file)

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        # Prompts stored before length units were counted in the target's own tokens.
        if isinstance(data, dict) and isinstance(data.get("prompts"), dict) and "unit" not in data["prompts"]:
            data = {**data, "prompts": {**data["prompts"], "unit": "model"}}
        return data

    @property
    def run_profile(self) -> RunProfile | None:
        """The run profile this run was paced by (a goodput run's `pacing`)."""
        if self.pacing is not None:
            return self.pacing
        if self.kind == "synchronous":
            return SynchronousProfile()
        if self.kind == "concurrent" and self.concurrency is not None:
            return ConcurrentProfile(concurrency=self.concurrency)
        if self.kind == "constant" and self.rate is not None:
            return ConstantProfile(rate=self.rate)
        if self.kind == "poisson" and self.rate is not None:
            return PoissonProfile(rate=self.rate, seed=self.seed or 0)
        return None

    @property
    def target(self) -> LoadTarget | None:
        """The load it was asked for: requests in flight, or requests per second."""
        if self.kind == "workload":
            return None if self.rate is None else LoadTarget("rate", self.rate)
        profile = self.run_profile
        if profile is None:
            return None
        if isinstance(profile, SynchronousProfile | ConcurrentProfile):
            return LoadTarget("concurrency", float(profile.concurrency))
        return LoadTarget("rate", float(profile.rate))

    @property
    def load_point(self) -> tuple[Dimension, float] | None:
        """The load this run stands for: its operating point's, else its own target's."""
        if self.operating_point is not None:
            return self.operating_point.dimension, self.operating_point.value
        target = self.target
        return None if target is None else (target.dimension, target.value)
