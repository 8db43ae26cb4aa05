"""Group stored runs into options: one target (model and variant, or an API) on one hardware profile.

Load runs of a target are grouped by the hardware they ran on (`provenance.hardware_profile`, or the
report's `--hardware TARGET=PROFILE`); its accuracy runs join every group of the same target name, since the
same weights answer the same way on any box. The accuracy run of an option is its newest usable run on the
report's primary suite: the suite (by content hash) that the most options were scored on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bench.loadgen.documents import LoadRunProfile
from bench.registry import Hardware, Prices
from bench.report.flags import Flag, run_flags
from bench.report.machine import Machine, measured_machine, mismatch, shared_cores
from bench.report.operating import DEFAULT_TARGET_ATTAINMENT, OperatingPoint, choose_operating_point
from bench.store import RunInfo

OptionKind = Literal["self-hosted", "api"]


@dataclass(frozen=True)
class Pricing:
    """What the registry says about cost: prices and provider per API/mock name, hardware profiles."""

    prices: Mapping[str, Prices] = field(default_factory=dict)
    providers: Mapping[str, str] = field(default_factory=dict)  # openai | anthropic | openai-compatible
    hardware: Mapping[str, Hardware] = field(default_factory=dict)
    overrides: Mapping[str, str] = field(default_factory=dict)  # --hardware TARGET=PROFILE


@dataclass(frozen=True)
class SuiteKey:
    """A suite as runs name it, with the content hash that makes two runs comparable."""

    suite: str
    sha256: str | None

    @property
    def label(self) -> str:
        return self.suite if not self.sha256 else f"{self.suite} ({self.sha256[:8]})"


@dataclass
class Option:
    """One row of the leaderboard, before its figures are computed."""

    key: str
    name: str  # the target name: MODEL[:VARIANT] for a local model, the registry name for an API
    kind: OptionKind
    hardware: str | None
    load_runs: list[RunInfo]
    accuracy_runs: list[RunInfo]
    op: OperatingPoint
    accuracy_run: RunInfo | None = None
    flags: list[Flag] = field(default_factory=list)
    machine: Machine | None = None  # what the operating point's server ran on, as it reported it

    @property
    def model(self) -> str:
        return self.name.partition(":")[0]

    @property
    def variant(self) -> str | None:
        return self.name.partition(":")[2] or None

    @property
    def label(self) -> str:
        return self.name if self.hardware is None else f"{self.name} @ {self.hardware}"


def target_name(info: RunInfo) -> str:
    """The name a run's target is joined on: its registry name (MODEL:VARIANT for a variant), or its URL."""
    model = info.provenance.model
    if model.derived_from and model.variant:  # a variant entry, shown as its user-facing name
        return f"{model.derived_from}:{model.variant}"
    return info.target.name or info.target.url or "?"


def option_kind(info: RunInfo) -> OptionKind:
    return "api" if info.target.kind in ("api", "mock") else "self-hosted"


def suite_key(info: RunInfo) -> SuiteKey:
    profile = info.accuracy_profile
    return SuiteKey(profile.suite, profile.suite_sha256)


def hardware_of(info: RunInfo, pricing: Pricing) -> str | None:
    """The hardware profile a self-hosted run ran on (the report's override first)."""
    if option_kind(info) == "api":
        return None
    for name in (target_name(info), info.target.model):
        if name in pricing.overrides:
            return pricing.overrides[name]
    return info.provenance.hardware_profile


def primary_suite(accuracy_runs: Iterable[RunInfo]) -> SuiteKey | None:
    """The suite scored by the most targets (newest wins a tie); None without accuracy runs."""
    targets: dict[SuiteKey, set[str]] = {}
    newest: dict[SuiteKey, str] = {}
    for run in accuracy_runs:
        if run.summary is None:
            continue
        key = suite_key(run)
        targets.setdefault(key, set()).add(target_name(run))
        newest[key] = max(newest.get(key, ""), run.started_at)
    if not targets:
        return None
    return max(targets, key=lambda k: (len(targets[k]), newest[k]))


def _best_accuracy_run(runs: Sequence[RunInfo], suite: SuiteKey | None) -> RunInfo | None:
    usable = [
        r
        for r in runs
        if r.summary is not None and r.status in ("complete", "partial") and suite_key(r) == suite
    ]
    usable.sort(key=lambda r: (r.status == "complete", r.started_at), reverse=True)
    return usable[0] if usable else None


def group_options(
    runs: Sequence[RunInfo], pricing: Pricing, target_attainment: float = DEFAULT_TARGET_ATTAINMENT
) -> tuple[list[Option], SuiteKey | None, dict[str, int]]:
    """Options from the selected runs, the primary suite, and the other suites' run counts."""
    loads: dict[tuple[str, str | None], list[RunInfo]] = {}
    accuracy: dict[str, list[RunInfo]] = {}
    kinds: dict[str, OptionKind] = {}
    for run in runs:
        name = target_name(run)
        kinds.setdefault(name, option_kind(run))
        if run.kind == "load":
            loads.setdefault((name, hardware_of(run, pricing)), []).append(run)
        else:
            accuracy.setdefault(name, []).append(run)
    suite = primary_suite(r for rs in accuracy.values() for r in rs)
    other_suites = Counter(
        suite_key(r).label for rs in accuracy.values() for r in rs if suite_key(r) != suite
    )
    keys = list(loads)
    for name, acc_runs in accuracy.items():
        if not any(k[0] == name for k in keys):
            hw = pricing.overrides.get(name) or next(
                (hardware_of(r, pricing) for r in acc_runs if hardware_of(r, pricing)), None
            )
            keys.append((name, hw))
    options: list[Option] = []
    for name, hw in sorted(keys, key=lambda k: (k[0], k[1] or "")):
        load_runs = loads.get((name, hw), [])
        acc_runs = accuracy.get(name, [])
        option = Option(
            key=name if hw is None else f"{name}@{hw}",
            name=name,
            kind=kinds[name],
            hardware=hw,
            load_runs=load_runs,
            accuracy_runs=acc_runs,
            op=choose_operating_point(load_runs, target_attainment),
            accuracy_run=_best_accuracy_run(acc_runs, suite),
        )
        used = {r.id: r for r in (option.op.run, option.op.display, option.accuracy_run) if r is not None}
        option.flags = [f for r in used.values() for f in run_flags(r)]
        option.flags += [
            Flag("operating_point", w, option.op.run.id) for w in option.op.warnings if option.op.run
        ]
        _machine_flags(option, pricing)
        options.append(option)
    return options, suite, dict(other_suites)


def _machine_flags(option: Option, pricing: Pricing) -> None:
    """The machine measured beside the machine priced: a mismatch and a shared-cores caveat, as flags."""
    run = option.op.run or option.op.display
    if option.kind != "self-hosted" or run is None:
        return
    option.machine = measured_machine(run.provenance)
    if option.machine is None:
        return
    priced = pricing.hardware.get(option.hardware or "")
    differs = None if priced is None else mismatch(priced, option.machine)
    if differs:
        option.flags.append(Flag("hardware_mismatch", differs, run.id))
    shared = shared_cores(option.machine)
    if shared:
        option.flags.append(Flag("shared_cores", shared, run.id))


def provenance_row(info: RunInfo, pricing: Pricing) -> dict[str, Any]:
    """The provenance of one run as a report shows it."""
    p = info.provenance
    quant = p.quantization
    method = None if quant is None else (quant.get("method") or "yes")
    sha = p.llmbench.git.sha
    profile = info.profile.label if isinstance(info.profile, LoadRunProfile) else info.profile.suite
    return {
        "run_id": info.id,
        "kind": info.kind,
        "status": info.status,
        "started_at": info.started_at,
        "target": target_name(info),
        "profile": profile,
        "engine": " ".join(v for v in (p.engine.name, p.engine.version) if v) or None,
        "model_repo": p.model.repo,
        "model_revision": p.model.revision,
        "quantization": method,
        "hardware": hardware_of(info, pricing),
        "llmbench": p.llmbench.version,
        "git_sha": None if not sha else sha[:12] + ("+dirty" if p.llmbench.git.dirty else ""),
        "sweep_id": info.sweep_id,
    }
