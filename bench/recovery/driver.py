"""`run_recovery`: serve the base, then the variant, on the backend that runs the variant here; score both
on the same suite items, load both at the same concurrencies, and store the `llmbench.recovery/1` document.

Serving is injected (`ServeFn`: a registry name and a backend in, a running server's root URL out), so the
driver runs the same against servers in their own process groups (bench.recovery.serving) or a test's
fake. Both sides run on one backend, so the speed ratio compares the checkpoints, not two engines.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.accuracy.runner import DEFAULT_MAX_TOKENS
from bench.accuracy.spec import AccuracySpec
from bench.documents import RecoveryDoc
from bench.errors import LlmbenchError, UsageError
from bench.loadgen.spec import LoadSpec
from bench.recovery.report import (
    SCHEMA,
    ModelFacts,
    SpeedPoint,
    SpeedRuns,
    SuiteRuns,
    recovery_document,
    saturation_level,
)
from bench.recovery.spec import RecoverySpec
from bench.registry import LocalModel, Registry
from bench.runs import run_accuracy, run_load
from bench.serving.plan import ServeOptions, local_model_dir, plan_serve
from bench.settings import Settings
from bench.store import Store

Say = Callable[[str], None]


@dataclass(frozen=True)
class Served:
    """A running server: its root URL (no /v1) and the backend that serves it."""

    url: str
    backend: str


ServeFn = Callable[[str, str], AbstractContextManager[Served]]  # (registry name, backend) -> running server


@dataclass(frozen=True)
class RecoveryResult:
    """The document and where it was stored."""

    document: RecoveryDoc
    document_id: str
    store_path: Path


def resolve_pair(registry: Registry, spec: RecoverySpec) -> tuple[str, LocalModel, str, LocalModel]:
    """(base name, base entry, variant entry name, variant entry); the variant must derive from the base."""
    base_name, base = registry.local(spec.base)
    var_name, var = registry.local(spec.variant)
    if var.derived_from != base_name:
        raise UsageError(
            f"{spec.variant} is not a variant of {base_name} (its derived_from is {var.derived_from!r}); "
            f"variants of {base_name}: {', '.join(registry.variants(base_name)) or 'none'}",
            flag="VARIANT",
        )
    return base_name, base, var_name, var


def choose_backend(registry: Registry, settings: Settings, variant: str, spec: RecoverySpec) -> str:
    """The backend that serves the variant here (as `llmbench serve NAME:VARIANT` would pick it).

    The variant's serve plan is made before anything is served, so what `serve` refuses here (a kernel the
    vLLM CPU build lacks, a checkpoint the backend cannot load) is refused before the base is scored.
    """
    options = ServeOptions(backend=spec.backend) if spec.backend is not None else ServeOptions()
    return plan_serve(registry, settings, variant, options).backend


def served_dtype(store: Store, run_ids: Iterable[str]) -> str | None:
    """The dtype the engine served a model in, as its runs' provenance recorded its engine arguments."""
    for run_id in run_ids:
        try:
            dtype = store.get_run(run_id).provenance.served_dtype
        except LlmbenchError:
            continue
        if dtype is not None:
            return dtype
    return None


def model_facts(
    settings: Settings, label: str, name: str, entry: LocalModel, backend: str, served: str | None = None
) -> ModelFacts:
    """Sizes and dtype of a served model from its own folder (a variant quantized at load time has none);
    `served` is the dtype the engine served it in, when its runs recorded it."""
    from quantize import folder_sizes, read_manifest

    method = entry.quantization.method if entry.quantization else None
    folder = local_model_dir(settings, name, entry)
    if folder is None:
        own = "no checkpoint of its own (quantized at load time from the base)"
        reason = own if entry.derived_from else "not in the local model cache"
        return ModelFacts(label, name, backend, method, size_reason=reason, served_dtype=served)
    sizes = folder_sizes(folder)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        dtype = config.get("dtype") or config.get("torch_dtype")
    except (OSError, ValueError):
        dtype = None
    manifest = read_manifest(folder)
    return ModelFacts(
        label, name, backend, method, sizes.weights_bytes, sizes.disk_bytes, dtype=dtype,
        manifest=manifest.to_json() if manifest is not None else None, served_dtype=served,
        calibration=manifest.calibration.name if manifest is not None and manifest.calibration else None,
    )  # fmt: skip


def run_recovery(
    spec: RecoverySpec, registry: Registry, settings: Settings, serve: ServeFn, say: Say | None = None
) -> RecoveryResult:
    """Score and load base and variant, then build, store and return the recovery document."""
    say = say or (lambda _m: None)
    base_name, base, var_name, var = resolve_pair(registry, spec)
    backend = choose_backend(registry, settings, var_name, spec)
    store_path = spec.store or settings.results_path
    notes = [f"both served by the {backend} backend (the one that runs {spec.variant} here)"]
    budget = spec.max_tokens or min(DEFAULT_MAX_TOKENS, var.context.served // 2, base.context.served // 2)
    spec = spec.model_copy(update={"max_tokens": budget})
    base_runs: dict[str, tuple[str, list[Any]]] = {}
    say(f"serving {base_name} ({backend})")
    with serve(base_name, backend) as served:
        for suite in spec.suites:
            base_runs[suite] = _score(spec, registry, settings, base_name, served.url, suite, say)
        base_speed = _speeds(spec, registry, settings, base_name, served.url, spec.speed_levels, say)
    saturation = saturation_level(base_speed, spec.saturation_share) if spec.speed else None
    var_runs: dict[str, tuple[str, list[Any]]] = {}
    say(f"serving {spec.variant} ({backend})")
    with serve(var_name, backend) as served:
        for suite in spec.suites:
            var_runs[suite] = _score(spec, registry, settings, var_name, served.url, suite, say)
        levels = sorted({1, saturation or 1}) if spec.speed else []
        var_speed = _speeds(spec, registry, settings, var_name, served.url, levels, say)
    suites = {
        s: SuiteRuns(base_runs[s][0], base_runs[s][1], var_runs[s][0], var_runs[s][1]) for s in spec.suites
    }
    speed = SpeedRuns(base_speed, var_speed, saturation, spec.saturation_share)
    if not spec.speed:
        speed = SpeedRuns(skipped="--no-speed")
    if backend == "hf" or settings_cpu_only():
        notes.append("CPU speed figures on a shared machine are noisy: read the ratios as rough")
    with Store.open(store_path) as store:
        base_dtype = served_dtype(store, [run for run, _ in base_runs.values()])
        var_dtype = served_dtype(store, [run for run, _ in var_runs.values()])
    var_facts = model_facts(settings, spec.variant, var_name, var, backend, var_dtype)
    calibration = var_facts.calibration
    if calibration and any(_same_suite(calibration, s) for s in spec.suites):
        notes.append(f"the variant was calibrated on {calibration}, which is also scored here")
    document = recovery_document(
        model_facts(settings, spec.base, base_name, base, backend, base_dtype),
        var_facts,
        suites,
        speed,
        threshold=spec.threshold,
        notes=notes,
    )
    with Store.open(store_path) as store:
        doc_id = store.add_document(SCHEMA, document.to_json(), subject=_subject(registry, var_name))
    return RecoveryResult(document, doc_id, store_path)


def _subject(registry: Registry, var_name: str) -> str:
    return registry.resolve(var_name).label


def _same_suite(a: str | None, b: str) -> bool:
    return a is not None and (a == b or Path(a).name == Path(b).name)


def settings_cpu_only() -> bool:
    """True when no NVIDIA GPU is visible (CPU figures)."""
    from serve.gpus import list_gpus, run_nvidia_smi

    return not list_gpus(run_nvidia_smi)


def _score(
    spec: RecoverySpec, registry: Registry, settings: Settings, name: str, url: str, suite: str, say: Say
) -> tuple[str, list[Any]]:
    say(f"  accuracy: {name} on {suite}")
    acc = AccuracySpec(
        target=name, url=url + "/v1", suite=suite, limit=spec.limit, concurrency=spec.accuracy_concurrency,
        max_tokens=spec.max_tokens or DEFAULT_MAX_TOKENS, store=spec.store,
    )  # fmt: skip
    result = run_accuracy(acc, registry, settings)
    with Store.open(spec.store or settings.results_path) as store:
        return result.run_id, store.load_items(result.run_id)


def _speeds(
    spec: RecoverySpec,
    registry: Registry,
    settings: Settings,
    name: str,
    url: str,
    levels: list[int],
    say: Say,
) -> list[SpeedPoint]:
    points = []
    for level in levels if spec.speed else []:
        say(f"  speed: {name} at concurrency {level} ({spec.requests_at(level)} requests)")
        load = LoadSpec(
            target=name, url=url + "/v1", profile="concurrent", concurrency=[level],
            requests=spec.requests_at(level), input_tokens=str(spec.input_tokens),
            output_tokens=str(spec.output_tokens), length_unit="model", ignore_eos=True, store=spec.store,
        )  # fmt: skip
        result = run_load(load, settings, registry, handle_sigint=False)
        for run in result.runs:
            s = run.summary
            points.append(
                SpeedPoint(
                    concurrency=level,
                    output_tokens_per_s=s.output_tokens_per_s,
                    tpot_p50_ms=s.tpot_ms.p50,
                    ttft_p50_ms=s.ttft_ms.p50,
                    completed=s.completed,
                    failed=s.failed,
                    run_id=run.run_id,
                    status=run.status,
                )
            )
        if result.aborted is not None:
            raise result.aborted
    return points
