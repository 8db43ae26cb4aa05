"""A sweep file expanded into points, checked against the registry, with time and spend estimates.

A point is one serve configuration (target × variant × engine-argument combination) on one workload:
llmbench serves it once and runs every load of the sweep against it with that workload's traffic, and
every suite at the configuration's first workload, `repetitions` times. API and mock targets are one serve
configuration each. Point ids hash the point's definition, so they are stable across `--resume` (a point
of the default synthetic workload hashes as it did before workloads existed).
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bench.cost import Usage, api_cost
from bench.documents import SweepPoint
from bench.errors import ConfigError, LlmbenchError
from bench.loadgen.profiles import DEFAULT_REQUESTS, GoodputProfile, Limits
from bench.loadgen.spec import PROMPT_FIELDS
from bench.prompts import DEFAULT_OUTPUT_TOKENS, parse_length
from bench.registry import ApiEndpoint, LocalModel, MockEndpoint, Prices, Registry, variant_name
from bench.sweep.spec import (
    LoadStep,
    NamedVariant,
    QuantizedVariant,
    SuiteStep,
    SweepFile,
    TargetSpec,
    with_templates,
)
from bench.sweep.workloads import ResolvedWorkload, WorkloadShape, resolve
from bench.sweep.workloads import served as served_name
from quantize.methods import method_for_registry

# Rough costs for the --dry-run estimate (s); labelled as estimates wherever they are shown.
START_S = {"vllm": 60.0, "hf": 20.0, "mock": 2.0, "api": 0.0, "auto": 60.0}
REQUEST_S = {"local": 0.5, "api": 1.5, "mock": 0.5}  # one request of about 128 output tokens, alone
PARALLEL = {"local": 8, "api": 64, "mock": 256}  # requests that overlap usefully (a CPU box: few)
PROMPT_TOKENS_PER_ITEM = 60  # a suite item's prompt, for the spend estimate
DEFAULT_OUTPUT = DEFAULT_OUTPUT_TOKENS  # a load's output length when it sets none (bench.prompts)
# (serve name, quantization method, backend) -> why it cannot be served here, or None.
ServableFn = Callable[[str, str, str], str | None]


Point = SweepPoint  # one point of the plan, as the store keeps it (bench.documents)


@dataclass(frozen=True)
class SweepPlan:
    """Every point in order, and the totals of the estimates."""

    name: str
    points: list[Point]

    @property
    def estimate_s(self) -> float:
        return sum(p.estimate_s for p in self.points)

    @property
    def estimate_usd(self) -> float:
        return sum(p.estimate_usd for p in self.points)

    @property
    def estimate_simulated_usd(self) -> float:
        return sum(p.estimate_simulated_usd for p in self.points)

    def only(self, pattern: str | None) -> list[Point]:
        """The points whose label or id matches the glob `pattern` (all without one)."""
        if pattern is None:
            return list(self.points)
        return [p for p in self.points if fnmatch.fnmatch(p.label, pattern) or p.point_id.startswith(pattern)]


def _combinations(target: TargetSpec) -> list[dict[str, Any]]:
    """Cartesian product of the list-valued engine args, times each linked set."""
    keys = sorted(target.engine_args)
    axes = [v if isinstance(v, list) else [v] for v in (target.engine_args[k] for k in keys)]
    grid = [dict(zip(keys, values, strict=True)) for values in itertools.product(*axes)] or [{}]
    linked = target.linked or [{}]
    return [{**g, **link} for g in grid for link in linked]


def _variant(v: str | NamedVariant | QuantizedVariant) -> tuple[str, str | None, dict[str, Any] | None]:
    """(variant name, backend override, quantize request)."""
    if isinstance(v, str):
        return v, None, None
    if isinstance(v, NamedVariant):
        return v.variant, v.backend, None
    return v.quantize, v.backend, {"method": v.quantize, "group_size": v.group_size}


def _point_id(definition: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:12]


def expand(
    sweep: SweepFile,
    registry: Registry,
    env: Mapping[str, str] | None = None,
    *,
    check_keys: bool = True,
    file: str | None = None,
    servable: ServableFn | None = None,
) -> SweepPlan:
    """Every point of the sweep, checked against the registry; ConfigError lists every problem at once,
    each as `file: key: message` (`file` is the sweep file's path, when there is one).

    With `check_keys=False` (a dry run) a missing API key is a note on its point instead of an error.
    `servable` refuses quantized variants the engine here cannot serve (e.g. a kernel its CPU build lacks).
    """
    env = os.environ if env is None else env
    problems: list[str] = []
    points: list[Point] = []
    workloads = [(entry, resolve(entry)) for entry in sweep.workloads]
    several = len(workloads) > 1
    for si, suite in enumerate(sweep.suites):
        if suite.judge is not None:
            found = _check_judge(f"suites[{si}].judge", suite.judge, registry, env)
            problems += [p for p in found if check_keys or "needs an API key" not in p]
    for ti, target in enumerate(sweep.targets):
        where = f"targets[{ti}]"
        try:
            kind, entry = registry.get(target.name)
        except LlmbenchError as exc:
            problems.append(f"{where}.name: {exc}" + (f"; {exc.fix}" if isinstance(exc, ConfigError) else ""))
            continue
        found = _check_target(where, target, kind, entry, sweep, registry, env)
        keys = [p for p in found if "needs an API key" in p]
        problems += found if check_keys else [p for p in found if p not in keys]
        first = len(points)
        for variant in target.variants:
            name, backend, quantize = _variant(variant)
            serve_name = target.name if name == "base" else variant_name(target.name, name)
            if kind == "local" and name != "base" and quantize is None:
                try:
                    registry.local(serve_name)
                except LlmbenchError as exc:
                    problems.append(f"{where}.variants: {exc}; or make it with {{quantize: METHOD}}")
                    continue
            method = _method_of(registry, serve_name, quantize) if kind == "local" else None
            problem = servable(serve_name, method, backend or target.backend) if servable and method else None
            if problem is not None:
                problems.append(f"{where}.variants: {problem}")
                continue
            for args in _combinations(target) if kind == "local" else [{}]:
                suites = True  # at the configuration's first workload only
                for chosen, workload in workloads:
                    if not chosen.runs_on(target.name, serve_name):
                        continue
                    points.append(_point(sweep, target, kind, entry, serve_name, name, backend, quantize,
                                         args, workload, suites=suites, several=several))  # fmt: skip
                    suites = False
        for point in points[first:]:
            point.notes.extend(k.split(": ", 1)[1] for k in keys)
    served = {p.serve_name for p in points}
    for wi, (chosen, _) in enumerate(workloads):
        missing = [t for t in chosen.targets or [] if ":" in t and served_name(t) not in served]
        if missing:
            problems.append(
                f"workloads[{wi}].targets: {missing[0]} is not a variant this sweep serves"
                f" (its points serve: {', '.join(sorted(served))})"
            )
    seen: dict[str, str] = {}
    for point in points:
        if point.point_id in seen:
            problems.append(
                f"targets: {point.label} is defined twice (same target, variant, engine args and workload)"
            )
        seen[point.point_id] = point.label
    if not points and not problems:
        problems.append("targets: no point to run")
    if problems:
        lines = [f"{file}: {p}" if file else p for p in problems]
        head = lines[0] if len(lines) == 1 else f"{len(lines)} problems:\n  " + "\n  ".join(lines)
        raise ConfigError(
            head,
            file=file,
            fix="fix the sweep file (or the environment) and run it again; nothing was started",
        )
    return SweepPlan(sweep.name, points)


def _check_judge(where: str, name: str, registry: Registry, env: Mapping[str, str]) -> list[str]:
    """A suite's judge must be an endpoint of the registry, with its key set."""
    try:
        kind, entry = registry.get(name)
    except LlmbenchError as exc:
        return [f"{where}: {exc}" + (f"; {exc.fix}" if isinstance(exc, ConfigError) else "")]
    if kind not in ("local", "api", "mock"):
        return [f"{where}: {name} is a {kind} entry, not an endpoint to judge with"]
    if isinstance(entry, ApiEndpoint) and entry.api_key_env and not env.get(entry.api_key_env):
        return [f"{where}: {name} needs an API key: set the environment variable {entry.api_key_env}"]
    return []


def _method_of(registry: Registry, serve_name: str, quantize: dict[str, Any] | None) -> str | None:
    """The quantization method (CLI name) a local point serves, or None for full precision."""
    if quantize is not None:
        return str(quantize["method"])
    try:
        _, entry = registry.local(serve_name)
    except LlmbenchError:
        return None
    method = method_for_registry(entry.quantization.method) if entry.quantization is not None else None
    return method.name if method is not None else None


def _check_target(
    where: str,
    target: TargetSpec,
    kind: str,
    entry: Any,
    sweep: SweepFile,
    registry: Registry,
    env: Mapping[str, str],
) -> list[str]:
    problems = []
    if kind not in ("local", "api", "mock"):
        problems.append(f"{where}.name: {target.name} is a {kind} entry, not something to measure")
    if kind != "local" and (target.engine_args or target.linked or target.variants != ["base"]):
        problems.append(
            f"{where}: variants and engine args apply to local targets only ({target.name} is {kind})"
        )
    hardware = target.hardware or (sweep.hardware if kind == "local" else None)
    if hardware is not None and hardware not in registry.data.hardware:
        problems.append(
            f"{where}.hardware: unknown hardware profile {hardware!r}; see `llmbench models list`"
        )
    if isinstance(entry, ApiEndpoint) and entry.api_key_env and not env.get(entry.api_key_env):
        problems.append(
            f"{where}: {target.name} needs an API key: set the environment variable {entry.api_key_env}"
        )
    return problems


def _point(
    sweep: SweepFile,
    target: TargetSpec,
    kind: str,
    entry: Any,
    serve_name: str,
    variant: str,
    backend: str | None,
    quantize: dict[str, Any] | None,
    args: dict[str, Any],
    workload: ResolvedWorkload,
    *,
    suites: bool = True,
    several: bool = False,
) -> Point:
    slo = target.slo or sweep.slo
    path = None if workload.path is None else str(workload.path)
    loads = [
        {**load.model_dump(mode="json"), "slo": load.slo or slo, **({"workload": path} if path else {})}
        for load in sweep.loads
    ]
    if path:  # the workload file says what to send: the step's prompt keys describe the synthetic workload
        loads = [{k: v for k, v in load.items() if k not in PROMPT_FIELDS} for load in loads]
    steps = [suite.model_dump(mode="json") for suite in sweep.suites] if suites else []
    loads, steps = with_templates(loads, sweep.templates), with_templates(steps, sweep.templates)
    hardware = target.hardware or (sweep.hardware if kind == "local" else None)
    chosen = (backend or target.backend) if kind == "local" else kind
    definition = {"target": target.name, "serve": serve_name, "backend": chosen, "args": args,
                  "hardware": hardware, "quantize": quantize, "loads": loads, "suites": steps,
                  "repetitions": sweep.repetitions}  # fmt: skip
    if not workload.synthetic:  # a synthetic point hashes as it did before workloads existed
        definition["workload"] = {"name": workload.name, "sha256": workload.sha256}
    extra = " [" + ", ".join(f"{k}={v}" for k, v in sorted(args.items())) + "]" if args else ""
    on = f" on {workload.name}" if several else ""
    limited = sweep.suites if suites else []
    runs = sweep.repetitions * max(1, len(sweep.templates))  # each step once per prompt version (at most)
    seconds, usd = _estimate(kind, entry, chosen, sweep.loads, limited, runs, workload.shape)
    return Point(
        point_id=_point_id(definition),
        label=f"{serve_name}{extra}{on}",
        target=target.name,
        kind=kind,
        serve_name=serve_name,
        variant=variant,
        backend=chosen,
        engine_args=args,
        hardware=hardware,
        quantize=quantize,
        loads=loads,
        suites=steps,
        repetitions=sweep.repetitions,
        workload=workload.name,
        workload_kind=workload.kind,
        workload_sha256=workload.sha256,
        estimate_s=seconds,
        estimate_usd=usd if kind == "api" else 0.0,
        estimate_simulated_usd=usd if kind == "mock" else 0.0,
    )


def _search(load: LoadStep) -> GoodputProfile:
    """The goodput search a load step runs (as `bench load` builds it: LoadOptions.profiles)."""
    (search,) = load.profiles()
    assert isinstance(search, GoodputProfile)
    return search


def _probe_loads(load: LoadStep) -> list[float]:
    """The loads a goodput search probes, roughly: doubling from its start to the ceiling, its bisections,
    and the final run at the operating point (taken as the ceiling: the dearest case)."""
    search = _search(load)
    loads, value = [], float(search.start)
    while value < search.max_load:
        loads.append(value)
        value *= 2
    loads.append(search.max_load)
    return loads + [search.max_load] * search.steps + [search.max_load]


def _runs(load: LoadStep, shape: WorkloadShape | None = None) -> list[tuple[int, float]]:
    """(requests with warm-up, load) of each run one load step makes; a goodput probe is lengthened to hold
    its load, as it will run (GoodputProfile.probe_limits). A workload that sends a set number of requests
    (sessions, a trace, a log) sends them in every run."""
    base = Limits(requests=load.requests) if load.duration_s is None else Limits(duration_s=load.duration_s)
    per_run = load.requests or DEFAULT_REQUESTS
    warmup = load.warmup.requests
    if shape is not None and shape.requests is not None:
        return [(shape.requests + warmup, value) for _, value in _runs(load)]
    if load.profile == "goodput":
        search = _search(load)
        return [
            ((search.probe_limits(value, base).requests or per_run) + warmup, value)
            for value in _probe_loads(load)
        ]
    values: list[float] = [float(v) for v in (load.concurrency or load.rate or [1])]
    if load.profile == "sweep":
        values = [1.0] + [float(max(load.concurrency or [256]))] * (1 + load.sweep_points)
    return [(per_run + warmup, v) for v in values]


def _requests(load: LoadStep, shape: WorkloadShape | None = None) -> int:
    """Requests one load step sends (warm-up included)."""
    return sum(n for n, _ in _runs(load, shape))


def _workload_usage(requests: int, input_tokens: float, output_tokens: float) -> Usage:
    """Tokens `requests` requests of the given mean lengths bill (nothing assumed cached)."""
    return Usage(fresh_input=round(requests * input_tokens), output=round(requests * output_tokens))


def _estimate(
    kind: str,
    entry: Any,
    backend: str,
    loads: list[LoadStep],
    suites: list[SuiteStep],
    repetitions: int,
    shape: WorkloadShape | None = None,
) -> tuple[float, float]:
    """(wall seconds, USD at the entry's prices) for one point; rough on purpose, and said to be.

    Lengths are read with the prompts' own parser (`normal:512:64` is a mean of 512 tokens), or from the
    workload's own traffic (`shape`: its requests, mean lengths and schedule); a suite item's output budget
    defaults to bench accuracy's, and the price is bench.cost's: one formula everywhere, nothing assumed
    cached (an upper bound where a provider caches the workload's prefixes).
    """
    prices: Prices | None = getattr(entry, "prices", None)
    per_request = REQUEST_S["local" if kind == "local" else kind]
    if isinstance(entry, MockEndpoint):
        latency = entry.latency
        per_request = (latency.ttft_ms + DEFAULT_OUTPUT * latency.itl_ms) / 1000.0
    seconds, usd = START_S.get(backend, 0.0) if kind == "local" else START_S[kind], 0.0
    for load in loads:
        n = _requests(load, shape)
        if shape is None:
            inp = parse_length(load.input_tokens).mean
            out = parse_length(load.output_tokens or str(DEFAULT_OUTPUT), flag="--output-tokens").mean
        else:
            inp, out = shape.input_tokens, shape.output_tokens
        step_request = per_request
        if isinstance(entry, MockEndpoint):
            step_request = (entry.latency.ttft_ms + out * entry.latency.itl_ms) / 1000.0
        parallel = PARALLEL.get(kind, 8)
        for requests, value in _runs(load, shape):
            # Open loop: the requests take as long as their schedule; closed loop: waves of `value`.
            if load.duration_s is not None:
                seconds += load.duration_s * repetitions
            elif shape is not None and shape.duration_s is not None:  # the workload's own schedule
                seconds += (shape.duration_s + shape.chain * step_request) * repetitions
            elif load.rate is not None or load.search == "rate":
                seconds += (requests / value + step_request) * repetitions
            else:
                seconds += requests * step_request / min(value, parallel) * repetitions
        if prices is not None:
            usd += api_cost(_workload_usage(n * repetitions, inp, out), prices).total_usd
    for suite in suites:
        items = (suite.limit or 100) * 4  # about four areas per suite
        seconds += items * per_request / suite.concurrency * repetitions
        if prices is not None:
            usage = _workload_usage(items * repetitions, PROMPT_TOKENS_PER_ITEM, suite.max_tokens)
            usd += api_cost(usage, prices).total_usd
    return seconds, usd


__all__ = ["LocalModel", "Point", "SweepPlan", "expand"]
